"""One decode process: log answers in, leaf hashes and the entries that matter out.

The monitor's main process downloads and keeps what must follow log order (compact ranges, commits);
everything per entry happens here: parsing the answer (JSON and base64, or a data tile), hashing each
leaf for the Merkle tree, decoding the certificate and matching it. Each entry is parsed once, and only
the entries that matter cross back (matched, malformed, or all of them with store = "all"), with one
32-byte leaf hash per entry for the main process's compact range.

The process speaks over its stdin and stdout. In: frames of two 4-byte lengths, a pickle and raw bytes:
("matcher", matcher, store_all, CA watches), ("call", function, argument), or ("entries", the EntryBody
without its body, new issuer certificates) followed by the body as the log sent it (not pickled: no copy
of megabytes on either side). Out: a 4-byte length and a pickle per call or answer (an Outcome), in
order. It exits when its stdin closes (the monitor ended or was killed), so it never outlives the
monitor. The module imports only the pure packages (ct, certs, watch): a decode process stays small.
"""

from __future__ import annotations

import ctypes
import gc
import pickle
import queue
import struct
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import replace
from hashlib import sha256
from typing import BinaryIO, NamedTuple, Protocol

from ctsentinel.bytecache import ByteCache
from ctsentinel.certs.decode import logged_der, match_view, record_from_entry
from ctsentinel.certs.issuer import verified_issuer
from ctsentinel.certs.record import CertRecord
from ctsentinel.ct.entries import EntryBody, IssuersMissing, entry_pairs
from ctsentinel.ct.errors import CTError
from ctsentinel.ct.tls import LogEntryType, PrecertExtraData, decode_extra_data, decode_merkle_tree_leaf
from ctsentinel.watch.ca_policy import CaVerdict
from ctsentinel.watch.finding import Finding

FRAME = struct.Struct(">II")  # in: the pickle's length, the raw body's length
REPLY = struct.Struct(">I")
_LEAF_HEAD = struct.Struct(">BBQH")  # version, leaf_type, timestamp, entry_type of a MerkleTreeLeaf
_PRECERT = int(LogEntryType.PRECERT_ENTRY)
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
_ISSUERS_BYTES = 16 << 20  # issuer certificates kept per process (a log has a few hundred of a few KB)
_SENT_LIMIT = 4096  # fingerprints of the issuers handed over, remembered per process


class Matcher(Protocol):
    """What decides whether a certificate matters (watch.Watchlist); it must pickle, to reach the workers.

    match() runs on the full record and returns every finding for it. A matcher may also have
    may_match(view: MatchView) -> bool, the cheap test on what an entry states (names, addresses,
    issuer), True for every entry match() could find anything in: with it, the entries it rules out are
    never decoded in full (Watchlist has it; a matcher without it sees every record)."""

    def match(self, record: CertRecord) -> list[Finding]: ...


class PolicyCheck(Protocol):
    """The CA watches' look at every certificate (watch.ca_policy.CaPolicy): None when they do not watch
    its CA; else the certificate is kept, with its findings. It must pickle, to reach the workers."""

    @property
    def verify_first(self) -> bool: ...  # a final certificate's verified issuer is needed to judge it

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


class Outcome(NamedTuple):
    """One answer processed: `entries` entries from answer.start, or why not."""

    entries: int = 0
    leaf_hashes: bytes = b""  # entries * 32 bytes, in log order
    decoded: list[Decoded] = []  # noqa: RUF012 (a NamedTuple default, never mutated)
    error: str | None = None  # the answer is malformed: one line
    missing_issuers: frozenset[bytes] = frozenset()  # a tile needs these issuer certificates first


class Worker:
    """The state of one decode process: the matcher, what to keep, the issuer certificates seen."""

    def __init__(self) -> None:
        self.matcher: Matcher | None = None
        self.policy: PolicyCheck | None = None
        self.store_all = False
        # static-ct issuer certificates, by SHA-256: bounded in bytes; one evicted is asked for again
        self.issuers: ByteCache[bytes] = ByteCache(_ISSUERS_BYTES)
        self.issuers_sent: set[bytes] = set()  # SHA-256 of the issuer certificates handed over in Decoded

    def process(self, answer: EntryBody, issuers: Mapping[bytes, bytes]) -> Outcome:
        for fingerprint, der in issuers.items():
            self.issuers.put(fingerprint, der)
        try:
            # Those handed over for this answer whatever the cache kept: it may not have room for all.
            pairs = entry_pairs(answer, {**self.issuers, **issuers} if issuers else self.issuers)
        except IssuersMissing as missing:
            return Outcome(missing_issuers=missing.fingerprints)
        except CTError as exc:
            return Outcome(error=str(exc))
        digest = sha256
        hashes = b"".join([digest(b"\x00" + leaf).digest() for leaf, _ in pairs])
        decoded = []
        for index, (leaf_input, extra_data) in enumerate(pairs, start=answer.start):
            one = self.decode_one(index, leaf_input, extra_data)
            if one is not None:
                decoded.append(one)
        return Outcome(len(pairs), hashes, decoded)

    def decode_one(self, index: int, leaf_input: bytes, extra_data: bytes) -> Decoded | None:
        """The entry decoded and matched, or None when it does not matter (not matched, not malformed, no
        CA watch's)."""
        matcher, policy = self.matcher, self.policy
        judged: Judged | None
        if self.store_all:
            judged = _judged(record_from_entry(leaf_input, extra_data), matcher, policy)
        else:
            # Nearly every entry matches nothing: for those only the names, addresses and issuer are read.
            # (CA watches look at every certificate's issuer: with them, every entry is read in full.)
            may_match = getattr(matcher, "may_match", None)
            if policy is None and (matcher is None or may_match is not None):
                view = match_view(leaf_input, extra_data)
                if view is not None and (may_match is None or not may_match(view)):
                    return None
            judged = _kept(leaf_input, extra_data, matcher, policy)
            if judged is None:
                return None
        record, findings, verdict = judged
        if len(leaf_input) >= _LEAF_HEAD.size:
            _, _, timestamp, kind = _LEAF_HEAD.unpack_from(leaf_input)
            entry_type = "precert" if kind == _PRECERT else "x509"
        else:
            timestamp, entry_type = 0, "precert" if record.precert else "x509"
        # Revocation checks need the issuer's certificate: of every alert, and of what the CA watches keep.
        overseen = bool(findings) or verdict is not None
        der, chain = _cert_der(leaf_input, extra_data, chain=overseen)
        issuer = self._new_issuer(der, chain) if overseen else None
        if verdict is None:
            return Decoded(index, entry_type, timestamp, record, der, findings, issuer_der=issuer)
        return Decoded(
            index, entry_type, timestamp, record, der, [*findings, *verdict.findings], verdict.lint,
            verdict.revocation, issuer,
        )  # fmt: skip

    def _new_issuer(self, der: bytes | None, chain: list[bytes]) -> bytes | None:
        """The chain certificate whose key verifies `der` (the chain is only a hint), unless this process
        handed it over already."""
        if der is None or not chain:
            return None
        first = sha256(chain[0]).digest()
        if first in self.issuers_sent:
            return None
        if len(self.issuers_sent) >= _SENT_LIMIT:
            self.issuers_sent.clear()
        self.issuers_sent.add(first)
        found = verified_issuer(der, chain)
        if found is None:
            return None
        self.issuers_sent.add(sha256(found.der).digest())
        return found.der


Judged = tuple[CertRecord, list[Finding], CaVerdict | None]


def _judged(record: CertRecord, matcher: Matcher | None, policy: PolicyCheck | None) -> Judged:
    """The record with the watches' findings and the CA watches' verdict on it."""
    findings = matcher.match(record) if matcher is not None else []
    return record, findings, policy.verdict(record) if policy is not None else None


def _kept(
    leaf_input: bytes, extra_data: bytes, matcher: Matcher | None, policy: PolicyCheck | None
) -> Judged | None:
    """An entry that is kept (matched, malformed, or of a watched CA), judged on its record with the final
    certificate's issuer verified; None if it is not kept."""
    # Verifying a final certificate's issuer costs a signature check: first without it, then again,
    # verified, only what is kept (the findings depend on the issuer), unless the CA watches need every
    # final certificate's verified issuer anyway (policy.verify_first).
    record = record_from_entry(leaf_input, extra_data, verify_issuer=False)
    verified = record.issuer_spki_sha256 is not None
    if not verified and policy is not None and policy.verify_first and not record.precert:
        record, verified = record_from_entry(leaf_input, extra_data), True
    judged = _judged(record, matcher, policy)
    _, findings, verdict = judged
    if record.error is None and not findings and verdict is None:
        return None
    return judged if verified else _judged(record_from_entry(leaf_input, extra_data), matcher, policy)


def _cert_der(leaf_input: bytes, extra_data: bytes, *, chain: bool) -> tuple[bytes | None, list[bytes]]:
    """The certificate or precertificate as logged (as the record's sha256 was computed), and if asked
    the chain the log served with it."""
    if not chain:
        der = logged_der(leaf_input, extra_data)
        if der is not None:
            return der, []
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


def release_large_buffers() -> None:
    """Have glibc give megabyte buffers back to the system when they are freed.

    glibc serves a large malloc from its own mapping, but raises that threshold to the size of the
    largest such buffer freed (up to 32 MiB); after the first log answer of a few megabytes is freed, the
    next ones come from the heap, whose fragments stay resident. A fixed threshold keeps every buffer
    above it in a mapping of its own, unmapped when freed. Elsewhere than glibc this does nothing.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.mallopt(_M_MMAP_THRESHOLD, 256 * 1024)
    except (OSError, AttributeError):
        pass


def _read(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


Frame = tuple[bytes, bytes]  # a pickled message and the raw body after it


def _frames(stream: BinaryIO) -> Iterator[Frame]:
    """The frames on the stream, until it closes (or ends inside a frame)."""
    while True:
        header = _read(stream, FRAME.size)
        if header is None:
            return
        message_size, body_size = FRAME.unpack(header)
        payload = _read(stream, message_size)
        body = _read(stream, body_size)
        if payload is None or body is None:
            return
        yield payload, body


def _read_ahead(frames: Iterator[Frame]) -> Iterator[Frame]:
    """The frames, the next one read on a thread while the caller works on this one.

    Through a pipe, an answer of megabytes arrives as fast as the monitor's event loop writes it: read
    only once the previous answer was done, this process waited for each piece of it. At most one frame
    is read ahead of the one the caller holds (the semaphore counts both).
    """
    ready: queue.SimpleQueue[Frame | None] = queue.SimpleQueue()
    room = threading.Semaphore(2)

    def read() -> None:
        try:
            while room.acquire():
                frame = next(frames, None)
                if frame is None:
                    return
                ready.put(frame)
        finally:
            ready.put(None)

    threading.Thread(target=read, name="frames", daemon=True).start()
    while (frame := ready.get()) is not None:
        yield frame
        del frame
        room.release()


def main() -> None:
    """The process's loop: frames in on stdin, frames out on stdout, until stdin closes."""
    release_large_buffers()
    gc.freeze()  # the modules' objects live as long as the process: the collector need not walk them
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    worker = Worker()
    for payload, body in _read_ahead(_frames(stdin)):
        message = pickle.loads(payload)
        if message[0] == "matcher":
            worker.matcher, worker.store_all, worker.policy = message[1], message[2], message[3]
            continue
        result: object
        if message[0] == "call":  # work beside the decoding (lint): ("call", function, argument)
            try:
                result = (True, message[1](message[2]))
            except Exception as exc:
                result = (False, exc)
        else:
            try:
                result = worker.process(replace(message[1], body=body), message[2])
            except Exception as exc:  # a bug must not take the process down: the answer is retried
                result = Outcome(error=f"internal error {type(exc).__name__}: {exc}")
        del body, message, payload
        try:
            reply = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an exception that does not pickle
            reply = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        stdout.write(REPLY.pack(len(reply)))
        stdout.write(reply)
        stdout.flush()
