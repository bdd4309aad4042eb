"""Decoding and matching in worker processes, so that both cores work on certificates.

Only plain tuples cross the process boundary: (index, leaf_input, extra_data) in, and out only the entries
that matter (matched, malformed, or all with store = "all") as `Decoded` tuples; the parent turns those into
store.StoredEntry. Leaf hashing and the compact range stay in the parent: they must follow log order.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import struct
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple, Protocol

from ctsentinel.certs.decode import record_from_entry
from ctsentinel.certs.record import CertRecord
from ctsentinel.ct.errors import CTError
from ctsentinel.ct.tls import LogEntryType, PrecertExtraData, decode_extra_data, decode_merkle_tree_leaf
from ctsentinel.errors import Error
from ctsentinel.watch.finding import Finding

RawItem = tuple[int, bytes, bytes]  # index, leaf_input, extra_data

_LEAF_HEAD = struct.Struct(">BBQH")  # version, leaf_type, timestamp, entry_type of a MerkleTreeLeaf


class PoolError(Error):
    """The pool could not decode a batch (a worker died); the batch is to be retried."""


class Matcher(Protocol):
    """What decides whether a certificate matters (watch.Watchlist); it must pickle, to reach the workers."""

    def match(self, record: CertRecord) -> list[Finding]: ...


class Decoded(NamedTuple):
    entry_index: int
    entry_type: str  # "x509" | "precert"
    timestamp: int  # ms, from the leaf
    record: CertRecord
    cert_der: bytes | None  # the certificate or precertificate as logged
    findings: list[Finding]


_matcher: Matcher | None = None
_store_all = False


def init_worker(matcher: Matcher | None, store_all: bool, parent_pid: int) -> None:
    global _matcher, _store_all
    _matcher, _store_all = matcher, store_all
    if parent_pid:
        threading.Thread(target=_exit_with_parent, args=(parent_pid, os.getppid()), daemon=True).start()


def _gone(pid: int) -> bool:
    """True once the process has exited, including as a zombie its own parent has not reaped yet."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False


def _exit_with_parent(parent_pid: int, ppid: int) -> None:
    # A monitor killed with -9 cannot shut its pool down; its workers must not outlive it.
    while True:
        time.sleep(0.5)
        if os.getppid() != ppid or _gone(parent_pid):
            os._exit(0)


def _cert_der(leaf_input: bytes, extra_data: bytes) -> bytes | None:
    try:
        entry = decode_merkle_tree_leaf(leaf_input).timestamped_entry
        if entry.entry_type == LogEntryType.PRECERT_ENTRY:
            try:
                extra = decode_extra_data(entry.entry_type, extra_data)
            except CTError:
                return entry.signed_entry
            return extra.pre_certificate if isinstance(extra, PrecertExtraData) else entry.signed_entry
        return entry.signed_entry
    except CTError:
        return None


def decode_one(
    index: int, leaf_input: bytes, extra_data: bytes, matcher: Matcher | None, store_all: bool
) -> Decoded | None:
    """The entry decoded and matched, or None when it does not matter (not matched, not malformed)."""
    # Verifying a final certificate's issuer costs a signature check: first every entry without it, then
    # again, verified, only what is kept (the findings depend on the issuer).
    record = record_from_entry(leaf_input, extra_data, verify_issuer=False)
    findings = matcher.match(record) if matcher is not None else []
    if not (store_all or findings or record.error is not None):
        return None
    if record.issuer_spki_sha256 is None:
        record = record_from_entry(leaf_input, extra_data)
        findings = matcher.match(record) if matcher is not None else []
    if len(leaf_input) >= _LEAF_HEAD.size:
        _, _, timestamp, kind = _LEAF_HEAD.unpack_from(leaf_input)
        entry_type = "precert" if kind == LogEntryType.PRECERT_ENTRY else "x509"
    else:
        timestamp, entry_type = 0, "precert" if record.precert else "x509"
    return Decoded(index, entry_type, timestamp, record, _cert_der(leaf_input, extra_data), findings)


def decode_batch(items: Sequence[RawItem]) -> list[Decoded]:
    """Worker entry point (top level, so it pickles by name)."""
    out = []
    for index, leaf_input, extra_data in items:
        decoded = decode_one(index, leaf_input, extra_data, _matcher, _store_all)
        if decoded is not None:
            out.append(decoded)
    return out


class DecodePool:
    """A process pool of `processes` workers (0: one per core); decode() splits a batch across them."""

    def __init__(self, processes: int, matcher: Matcher | None, store_all: bool) -> None:
        self.processes = processes or os.cpu_count() or 1
        self._initargs = (matcher, store_all, os.getpid())
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # forkserver: workers start from a clean process, not a fork of one running threads and sockets.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["ctsentinel.monitor.decode_pool"])
        return ProcessPoolExecutor(
            self.processes, mp_context=context, initializer=init_worker, initargs=self._initargs
        )

    async def decode(self, items: Sequence[RawItem]) -> list[Decoded]:
        if not items:
            return []
        loop = asyncio.get_running_loop()
        parts = min(self.processes, max(1, len(items) // 256))
        size = -(-len(items) // parts)
        executor = self._executor
        try:
            # submit itself raises once the pool is known to be broken
            futures = [
                loop.run_in_executor(executor, decode_batch, items[i : i + size])
                for i in range(0, len(items), size)
            ]
            results = await asyncio.gather(*futures)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): start a fresh pool, once for all the batches that were
            # in the broken one; the caller redoes the chunk.
            if executor is self._executor:
                self._executor = self._start()
                executor.shutdown(wait=False, cancel_futures=True)
            raise PoolError("a decode process died; the pool was restarted") from None
        return [d for part in results for d in part]

    def set_matcher(self, matcher: Matcher | None, store_all: bool) -> None:
        """Use a new watchlist from the next batch on (config reload). Batches already handed to the old
        processes finish there; those processes exit when they are done."""
        self._initargs = (matcher, store_all, os.getpid())
        old, self._executor = self._executor, self._start()
        old.shutdown(wait=False, cancel_futures=False)

    def close(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=True)
