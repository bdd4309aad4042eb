"""What the monitor sees of a log, whichever API it speaks: tree heads, proofs, entries, compact ranges.

The clients check that answers have the promised shape (counts, order, sizes) and fail with one
LogHTTPError line when they do not; whether what a log serves is *true* (signatures, proofs, roots) is
decided by the monitor with ct/, from the evidence the clients hand over untouched (TreeHead.raw).
"""

from __future__ import annotations

import abc
import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from ctsentinel.ct.checkpoint import open_checkpoint, parse_checkpoint_text
from ctsentinel.ct.entries import EntryApi, EntryBody, IssuersMissing, entry_pairs
from ctsentinel.ct.errors import CTError, DecodeError, SignatureError
from ctsentinel.ct.merkle import CompactRange
from ctsentinel.ct.note import parse_note
from ctsentinel.ct.signatures import verify_sth
from ctsentinel.ct.sth import SignedTreeHead
from ctsentinel.logs.budget import LogBudget
from ctsentinel.logs.http import HttpClient, LogResponseError
from ctsentinel.logs.loglist import LogInfo


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    timestamp: int  # ms since the epoch
    root_hash: bytes
    raw: bytes  # the exact get-sth body or checkpoint bytes (evidence)

    def verify(self, info: LogInfo) -> None:
        """SignatureError or DecodeError unless `raw` is a head signed by the log's key that says exactly
        this size, timestamp and root (so the parsed fields can be trusted once this returns)."""
        if info.kind == "static-ct":
            note = parse_note(self.raw)
            origin = parse_checkpoint_text(note.text).origin
            # The RFC6962NoteSignature signs the tree head without the origin line, so the origin taken
            # from the checkpoint itself cannot buy a forger anything; the key ID (which hashes the origin
            # with the log's key) and the signature must still match.
            verified = open_checkpoint(self.raw, origin, info.key)
            said = (verified.checkpoint.tree_size, verified.timestamp, verified.checkpoint.root_hash)
        else:
            try:
                sth = SignedTreeHead.from_json(json.loads(self.raw))
            except (ValueError, UnicodeDecodeError) as exc:
                raise DecodeError(f"get-sth response: not JSON ({exc})") from None
            verify_sth(info.key, sth)
            said = (sth.tree_size, sth.timestamp, sth.root_hash)
        if said != (self.tree_size, self.timestamp, self.root_hash):
            raise SignatureError(
                f"tree head (size {self.tree_size}, timestamp {self.timestamp}) is not what its signed "
                f"body says (size {said[0]}, timestamp {said[1]})"
            )


@dataclass(frozen=True)
class RawEntry:
    index: int
    leaf_input: bytes  # the MerkleTreeLeaf bytes exactly as hashed into the tree
    extra_data: bytes  # RFC 6962 extra_data (static-ct: rebuilt from the tile and the issuer certificates)


class LogClient(abc.ABC):
    """A client for one log; factory.make_client picks the API from LogInfo.kind."""

    def __init__(self, info: LogInfo, http: HttpClient, budget: LogBudget) -> None:
        self.info = info
        self.http = http
        self.budget = budget

    @abc.abstractmethod
    async def get_tree_head(self) -> TreeHead: ...

    @abc.abstractmethod
    async def get_consistency_proof(self, old_size: int, new_size: int) -> list[bytes]: ...

    @abc.abstractmethod
    async def fetch_entries(self, start: int, end: int) -> EntryBody:
        """The log's unparsed answer to a request for entries [start, end) (or a prefix of them): parse it
        with ct.entries.entry_pairs (anywhere), then hand the count to `accept` before using it."""

    async def issuers(self, fingerprints: Iterable[bytes]) -> dict[bytes, bytes]:
        """The issuer certificates (SHA-256 fingerprint -> DER) a static-ct tile names; {} for RFC 6962."""
        return {}

    def accept(self, answer: EntryBody, count: int) -> None:
        """Record that `answer` held `count` entries (what the budget learns of the log's batch size)."""
        if answer.api is EntryApi.RFC6962:
            self.budget.observe_batch(answer.asked, count)

    async def get_entries(self, start: int, end: int) -> list[RawEntry]:
        """Entries [start, end) or a prefix of them (at least one while start < end), in order."""
        answer = await self.fetch_entries(start, end)
        issuers: dict[bytes, bytes] = {}
        while True:
            try:
                pairs = entry_pairs(answer, issuers)
                break
            except IssuersMissing as missing:
                if missing.fingerprints & issuers.keys():
                    raise LogResponseError(answer.url, "issuer certificates missing") from None
                issuers.update(await self.issuers(missing.fingerprints))
            except CTError as exc:
                raise LogResponseError(answer.url, str(exc)) from None
        self.accept(answer, len(pairs))
        return [RawEntry(answer.start + i, leaf, extra) for i, (leaf, extra) in enumerate(pairs)]

    @abc.abstractmethod
    async def get_compact_range(self, size: int) -> CompactRange: ...

    @property
    def chunk_size(self) -> int:
        """Entries per request that suit the log: its learned get-entries batch, or a tile."""
        return self.budget.batch_size

    async def fetch_range(self, start: int, end: int) -> list[RawEntry]:
        """Every entry of [start, end), asking again from where a short answer stopped."""
        entries: list[RawEntry] = []
        while start < end:
            got = await self.get_entries(start, end)
            entries.extend(got)
            start += len(got)
        return entries

    async def stream_entries(
        self, start: int, end: int, *, window: int | None = None
    ) -> AsyncIterator[list[RawEntry]]:
        """Entries [start, end) as consecutive lists, in order, fetched with up to `window` requests
        (default: the budget's concurrency) ahead of the consumer, so memory stays bounded.

        Chunk boundaries fall on multiples of chunk_size, which keeps requests aligned with the
        log's own batches and tiles.
        """
        window = window or self.budget.concurrency
        pending: list[asyncio.Task[list[RawEntry]]] = []
        position = start
        try:
            while position < end or pending:
                while position < end and len(pending) < window:
                    size = self.chunk_size
                    stop = min(end, (position // size + 1) * size)
                    pending.append(asyncio.create_task(self.fetch_range(position, stop)))
                    position = stop
                yield await pending.pop(0)
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)


__all__ = ["LogClient", "RawEntry", "TreeHead"]
