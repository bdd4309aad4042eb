"""Decoding and matching in worker processes, so that both cores work on certificates.

Only plain tuples cross the process boundary: (index, leaf_input, extra_data) in, and out only the entries
that matter (matched, malformed, of a CA a [[ca_watch]] watches, or all with store = "all") as `Decoded`
tuples; the parent turns those into store.StoredEntry. Leaf hashing and the compact range stay in the
parent: they must follow log order.

Each certificate meets the watchlist (Matcher) and the CA watches' cheap flags (PolicyCheck); slower work
on the few that ask for it (lint) is handed to the same processes later, through `run`, when they have
time to spare, so that it never holds up a chunk.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import struct
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from hashlib import sha256
from typing import NamedTuple, Protocol, TypeVar

from ctsentinel.certs.decode import record_from_entry
from ctsentinel.certs.issuer import verified_issuer
from ctsentinel.certs.record import CertRecord
from ctsentinel.ct.errors import CTError
from ctsentinel.ct.tls import LogEntryType, PrecertExtraData, decode_extra_data, decode_merkle_tree_leaf
from ctsentinel.errors import Error
from ctsentinel.watch.ca_policy import CaVerdict
from ctsentinel.watch.finding import Finding

RawItem = tuple[int, bytes, bytes]  # index, leaf_input, extra_data
T = TypeVar("T")
A = TypeVar("A")

_LEAF_HEAD = struct.Struct(">BBQH")  # version, leaf_type, timestamp, entry_type of a MerkleTreeLeaf


class PoolError(Error):
    """The pool could not decode a batch (a worker died); the batch is to be retried."""


class Matcher(Protocol):
    """What decides whether a certificate matters (watch.Watchlist); it must pickle, to reach the workers."""

    def match(self, record: CertRecord) -> list[Finding]: ...


class PolicyCheck(Protocol):
    """The CA watches' look at every certificate (watch.ca_policy.CaPolicy): None when they do not watch
    its CA; else the certificate is kept, with its findings. It must pickle, to reach the workers."""

    @property
    def by_key(self) -> bool: ...  # some CA watch selects CAs by key hash: a final certificate's is needed

    def verdict(self, record: CertRecord) -> CaVerdict | None: ...


class Decoded(NamedTuple):
    entry_index: int
    entry_type: str  # "x509" | "precert"
    timestamp: int  # ms, from the leaf
    record: CertRecord
    cert_der: bytes | None  # the certificate or precertificate as logged
    findings: list[Finding]
    lint: bool = False  # a CA watch wants it linted
    revocation: bool = False  # a CA watch wants its revocation status whether alerted or not
    # The first certificate of its chain, a candidate issuer (extra_data is a hint: whoever uses it checks
    # that its key verifies the certificate); each worker hands a given one over once.
    issuer_der: bytes | None = None


_matcher: Matcher | None = None
_policy: PolicyCheck | None = None
_store_all = False
_ISSUERS_SENT_LIMIT = 10_000
_issuers_sent: set[bytes] = set()


def init_worker(
    matcher: Matcher | None, store_all: bool, parent_pid: int, policy: PolicyCheck | None = None
) -> None:
    global _matcher, _store_all, _policy
    _matcher, _store_all, _policy = matcher, store_all, policy
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


def _cert_der(leaf_input: bytes, extra_data: bytes, *, chain: bool) -> tuple[bytes | None, list[bytes]]:
    """The certificate or precertificate as logged, and if asked the chain the log served with it."""
    try:
        entry = decode_merkle_tree_leaf(leaf_input).timestamped_entry
    except CTError:
        return None, []
    if not chain and entry.entry_type != LogEntryType.PRECERT_ENTRY:
        return entry.signed_entry, []
    try:
        extra = decode_extra_data(entry.entry_type, extra_data)
    except CTError:
        return entry.signed_entry, []
    if isinstance(extra, PrecertExtraData):
        precert = entry.entry_type == LogEntryType.PRECERT_ENTRY
        return (extra.pre_certificate if precert else entry.signed_entry), list(extra.precertificate_chain)
    return entry.signed_entry, list(extra.certificate_chain)


def _new_issuer(der: bytes | None, chain: list[bytes]) -> bytes | None:
    """The chain certificate whose key verifies `der` (the chain is only a hint), unless this worker
    handed it over already."""
    if der is None or not chain:
        return None
    first = sha256(chain[0]).digest()
    if first in _issuers_sent:
        return None
    if len(_issuers_sent) >= _ISSUERS_SENT_LIMIT:
        _issuers_sent.clear()
    _issuers_sent.add(first)
    found = verified_issuer(der, chain)
    if found is None:
        return None
    _issuers_sent.add(sha256(found.der).digest())
    return found.der


def decode_one(
    index: int,
    leaf_input: bytes,
    extra_data: bytes,
    matcher: Matcher | None,
    store_all: bool,
    policy: PolicyCheck | None = None,
) -> Decoded | None:
    """The entry decoded and matched, or None when it does not matter (not matched, not malformed, no
    CA watch's)."""
    # Verifying a final certificate's issuer costs a signature check: first every entry without it, then
    # again, verified, only what is kept (the findings depend on the issuer) and, when CA watches select
    # CAs by their key, every final certificate (its key is the one that verifies it).
    record = record_from_entry(leaf_input, extra_data, verify_issuer=False)
    verified = record.issuer_spki_sha256 is not None
    if not verified and policy is not None and policy.by_key and not record.precert:
        record, verified = record_from_entry(leaf_input, extra_data), True
    findings = matcher.match(record) if matcher is not None else []
    verdict = policy.verdict(record) if policy is not None else None
    if not (store_all or findings or verdict is not None or record.error is not None):
        return None
    if not verified:
        record = record_from_entry(leaf_input, extra_data)
        findings = matcher.match(record) if matcher is not None else []
        verdict = policy.verdict(record) if policy is not None else None
    if len(leaf_input) >= _LEAF_HEAD.size:
        _, _, timestamp, kind = _LEAF_HEAD.unpack_from(leaf_input)
        entry_type = "precert" if kind == LogEntryType.PRECERT_ENTRY else "x509"
    else:
        timestamp, entry_type = 0, "precert" if record.precert else "x509"
    # Revocation checks need the issuer's certificate: of every alert, and of what the CA watches keep.
    overseen = bool(findings) or verdict is not None
    der, chain = _cert_der(leaf_input, extra_data, chain=overseen)
    issuer = _new_issuer(der, chain) if overseen else None
    if verdict is None:
        return Decoded(index, entry_type, timestamp, record, der, findings, issuer_der=issuer)
    return Decoded(
        index, entry_type, timestamp, record, der, [*findings, *verdict.findings], verdict.lint,
        verdict.revocation, issuer,
    )  # fmt: skip


def decode_batch(items: Sequence[RawItem]) -> list[Decoded]:
    """Worker entry point (top level, so it pickles by name)."""
    out = []
    for index, leaf_input, extra_data in items:
        decoded = decode_one(index, leaf_input, extra_data, _matcher, _store_all, _policy)
        if decoded is not None:
            out.append(decoded)
    return out


DECODE_TIMEOUT = 120.0  # seconds: a batch of thousands of entries takes well under one


class DecodePool:
    """A process pool of `processes` workers (0: one per core); decode() splits a batch across them.

    Work that takes longer than `timeout` seconds is given up: the processes are killed (a process cannot
    be interrupted otherwise) and a fresh pool started, and the caller gets a PoolError naming the entries,
    rather than waiting forever on a certificate built to be slow.
    """

    def __init__(
        self,
        processes: int,
        matcher: Matcher | None,
        store_all: bool,
        policy: PolicyCheck | None = None,
        *,
        timeout: float = DECODE_TIMEOUT,
    ) -> None:
        self.processes = processes or os.cpu_count() or 1
        self.timeout = timeout
        self._initargs = (matcher, store_all, os.getpid(), policy)
        self._executor = self._start()
        self.busy = 0  # decode batches in the processes now: work handed to `run` waits for slack

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
        parts = min(self.processes, max(1, len(items) // 256))
        size = -(-len(items) // parts)
        parts_count = -(-len(items) // size)
        self.busy += parts_count
        try:
            results = await self._submit(
                [(decode_batch, items[i : i + size]) for i in range(0, len(items), size)],
                f"decoding entries {items[0][0]}-{items[-1][0]}",
            )
        finally:
            self.busy -= parts_count
        return [d for part in results for d in part]

    async def run(self, fn: Callable[[A], T], argument: A) -> T:
        """`fn(argument)` in one of the processes (both must pickle: fn a top-level function). For work
        beside the decoding, e.g. linting; PoolError if the process died."""
        (result,) = await self._submit([(fn, argument)], getattr(fn, "__name__", "work"))
        return result

    async def _submit(self, calls: Sequence[tuple[Callable[[A], T], A]], what: str) -> list[T]:
        loop = asyncio.get_running_loop()
        executor = self._executor
        try:
            # submit itself raises once the pool is known to be broken
            futures = [loop.run_in_executor(executor, fn, argument) for fn, argument in calls]
            return list(await asyncio.wait_for(asyncio.gather(*futures), self.timeout))
        except BrokenProcessPool:
            # A worker died (killed, out of memory): start a fresh pool, once for all the batches that were
            # in the broken one; the caller redoes the chunk.
            self._replace(executor, kill=False)
            raise PoolError("a decode process died; the pool was restarted") from None
        except TimeoutError:
            self._replace(executor, kill=True)
            raise PoolError(
                f"{what} took longer than {self.timeout:g} s; the decode processes were restarted"
            ) from None

    def _replace(self, executor: ProcessPoolExecutor, *, kill: bool) -> None:
        if executor is not self._executor:
            return  # another batch of the same pool replaced it already
        self._executor = self._start()
        if kill:
            # Python 3.14's ProcessPoolExecutor.kill_workers(); other batches in these processes fail
            # with BrokenProcessPool and are redone by their logs.
            for process in list(executor._processes.values()):
                process.kill()
        executor.shutdown(wait=False, cancel_futures=True)

    def set_matcher(
        self, matcher: Matcher | None, store_all: bool, policy: PolicyCheck | None = None
    ) -> None:
        """Use a new watchlist and CA watches from the next batch on (config reload). Batches already
        handed to the old processes finish there; those processes exit when they are done."""
        self._initargs = (matcher, store_all, os.getpid(), policy)
        old, self._executor = self._executor, self._start()
        old.shutdown(wait=False, cancel_futures=False)

    def close(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=True)
