"""One log's worker: poll and verify its tree head, then fetch, prove, decode and commit its entries.

The entries of a catch-up flow through three bounded stages, so that memory does not depend on the
backlog and both cores stay busy: the log's answers are downloaded here, a few requests ahead, and handed
as they came to the decode processes (parsing, leaf hashes, decoding and matching happen there); their
leaf hashes come back and are absorbed here into the compact range in log order; at each chunk end
(every `commit_entries` entries, and the target) the chunk is proven and then committed in one store
transaction, chunks strictly in order. A chunk that fails its proof cancels those behind it, and nothing
of it is stored. No per-entry object outlives its chunk: what is held is raw answers in flight, 32 bytes
per entry until its chunk is cut, and the entries that matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeAlias

from ctsentinel.ct.entries import EntryApi, EntryBody
from ctsentinel.ct.errors import CTError
from ctsentinel.ct.merkle import HASH_SIZE, CompactRange
from ctsentinel.logs.client import LogClient, TreeHead
from ctsentinel.logs.http import LogResponseError
from ctsentinel.logs.loglist import LogInfo
from ctsentinel.monitor.decode_pool import Decoded, DecodePool, Outcome
from ctsentinel.monitor.gateway import StoreGateway
from ctsentinel.monitor.settings import Start
from ctsentinel.monitor.verify import Chunk, LogVerifier, Misbehaviour, bad_signature
from ctsentinel.store import CommitBatch, EntryType, Fence, LogState, StoredEntry
from ctsentinel.store.types import TreeHeadLike

_Prepared = tuple[Chunk, "asyncio.Task[list[StoredEntry]]"]
_Queue: TypeAlias = "asyncio.Queue[_Prepared | BaseException | None]"
# An enum's call by value costs microseconds, a dict look-up a fraction: this is once per kept entry.
_ENTRY_TYPES = {entry_type.value: entry_type for entry_type in EntryType}
_IN_FLIGHT = 3  # chunks between download and commit: enough to overlap the stages, bounded in memory
_AHEAD_ENTRIES = 1000  # entries downloaded ahead of what the decode processes hold (one 4 MB answer)
# The request rate the log tolerates is saved when it moved by this fraction, or at most this often.
_RATE_CHANGE = 0.1
_RATE_SAVE_INTERVAL = 30.0


@dataclass(frozen=True)
class StoredHead:
    """The verified head as the store remembers it (its raw body is in tree_heads, not needed here)."""

    tree_size: int
    timestamp: int
    root_hash: bytes
    raw: bytes = b""


@dataclass
class WorkerResult:
    """What a worker did in this run, for --once's summary and exit status."""

    info: LogInfo
    misbehaviour: list[Misbehaviour] = field(default_factory=list)
    error: str | None = None
    entries: int = 0
    seconds: float = 0.0
    position: int = 0
    size: int = 0
    caught_up: bool = False  # --once: reached the head it saw at start


class LogWorker:
    def __init__(
        self,
        info: LogInfo,
        client: LogClient,
        store: StoreGateway,
        pool: DecodePool,
        *,
        start: Start,
        commit_entries: int,
        on_progress: Callable[[int, int, str], None] | None = None,
        on_commit: Callable[[Sequence[StoredEntry]], None] | None = None,
    ) -> None:
        self.info = info
        self.client = client
        self.store = store
        self.pool = pool
        self.start = start
        self.commit_entries = commit_entries
        self.on_progress = on_progress or (lambda position, size, status: None)
        self.on_commit = on_commit or (lambda entries: None)
        self.verifier: LogVerifier | None = None
        # Under a lease (several processes on one database), every commit carries it; a range of the
        # backlog stops at `end` instead of the target's size.
        self.fence: Fence | None = None
        self.end: int | None = None
        self.result = WorkerResult(info)
        self._saved_rate: float | None = None  # the request rate as the store has it
        self._rate_saved_at = 0.0

    # --- state -----------------------------------------------------------------------------------------

    async def load(self) -> None:
        state: LogState | None = await self.store.call(self.store.store.log_state, self.info.log_id)
        if state is not None and self._saved_rate is None and state.request_rate is not None:
            # Once per run: after a failure the budget has learned more recently than the store.
            self.client.budget.resume(state.request_rate)
            self._saved_rate = state.request_rate
        if state is None or state.position is None:
            self.verifier = None
            return
        verified = None
        if state.verified_size is not None and state.verified_root is not None:
            verified = StoredHead(state.verified_size, state.verified_timestamp or 0, state.verified_root)
        compact = CompactRange.from_bytes(state.compact_range) if state.compact_range else CompactRange()
        self.verifier = LogVerifier(verified, compact)

    @property
    def position(self) -> int:
        return self.verifier.position if self.verifier else 0

    @property
    def target_size(self) -> int:
        verified = self.verifier.verified if self.verifier else None
        return verified.tree_size if verified else 0

    # --- misbehaviour and errors -------------------------------------------------------------------------

    async def misbehaved(self, finding: Misbehaviour) -> bool:
        """Record the misbehaviour (the store keeps the first and the latest of a streak); True when it is
        to be reported: the first of its kind for this log in a day. The run's result keeps the first of
        each kind, so that a log lying at every poll cannot fill the memory either."""
        if all(seen.kind != finding.kind for seen in self.result.misbehaviour):
            self.result.misbehaviour.append(finding)
        report: bool = await self.store.call(
            self.store.store.record_misbehaviour,
            self.info.log_id,
            finding.kind,
            finding.detail,
            finding.evidence,
        )
        return report

    async def failed(self, message: str) -> None:
        self.result.error = message
        await self.store.call(self.store.store.record_error, self.info.log_id, message)

    # --- tree heads ------------------------------------------------------------------------------------

    async def poll_head(self) -> bool:
        """Fetch and verify the tree head; returns True if there are entries to read. Misbehaviour is
        recorded and raised."""
        head = await self.client.get_tree_head()
        try:
            head.verify(self.info)
        except CTError as exc:
            # Not a head of this log at all (anyone can send one): its evidence goes with the misbehaviour,
            # and nothing of it into tree_heads or the log's latest size.
            raise bad_signature(head, exc) from None
        if self.verifier is None:
            await self._first_head(head)
        else:
            try:
                last = self.verifier.verified
                assert last is not None
                proof: list[bytes] = []
                if self.verifier.is_stale(head):
                    if head.tree_size > 0:
                        proof = await self.client.get_consistency_proof(head.tree_size, last.tree_size)
                elif self.verifier.needs_consistency(head):
                    proof = await self.client.get_consistency_proof(last.tree_size, head.tree_size)
                self.verifier.accept_head(head, proof)
            except Misbehaviour:
                await self.store.call(
                    self.store.store.record_tree_head, self.info.log_id, head, verified=False
                )
                raise
            await self.store.call(self.store.store.record_tree_head, self.info.log_id, head, verified=True)
        self.on_progress(self.position, self.target_size, "")
        return self.position < self.target_size

    async def _first_head(self, head: TreeHead) -> None:
        verifier = LogVerifier(None, CompactRange())
        if self.start is Start.END and head.tree_size > 0:
            compact = await self.client.get_compact_range(head.tree_size)
            try:
                verifier.bootstrap(head, compact)
            except Misbehaviour:
                await self.store.call(
                    self.store.store.record_tree_head, self.info.log_id, head, verified=False
                )
                raise
        else:
            verifier.accept_head(head)
        await self.store.call(
            self.store.store.start_log, self.info.log_id, verifier.position, verifier.range.to_bytes(), head
        )
        self.verifier = verifier

    # --- entries ---------------------------------------------------------------------------------------

    async def catch_up(self, stop: asyncio.Event) -> None:
        """Read, prove and commit every entry up to the current target. Misbehaviour is raised."""
        verifier = self.verifier
        assert verifier is not None and verifier.verified is not None
        if verifier.position >= self._end(verifier.verified):
            return
        # The producer downloads and cuts chunks while this task commits: a commit waiting on the disk
        # never holds up the downloads, and the bounded queue keeps memory independent of the backlog.
        queue: _Queue = asyncio.Queue(maxsize=_IN_FLIGHT)
        producer = asyncio.create_task(self._produce(queue, stop))
        pending: list[_Prepared] = []
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                pending.append(item)
                await self._commit(*item)
                pending.remove(item)
                if stop.is_set():
                    break
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
            while not queue.empty():
                left = queue.get_nowait()
                if isinstance(left, tuple):
                    pending.append(left)
            for _, task in pending:
                task.cancel()
            await asyncio.gather(*(task for _, task in pending), return_exceptions=True)

    async def _produce(self, queue: _Queue, stop: asyncio.Event) -> None:
        verifier = self.verifier
        assert verifier is not None and verifier.verified is not None
        target = verifier.verified
        end = self._end(target)
        running = verifier.range.copy()
        chunk_start = position = running.size
        kept: list[Decoded] = []
        step = self.commit_entries
        try:
            async for outcome_start, outcome in self._processed(position, end):
                hashes, count, used = outcome.leaf_hashes, outcome.entries, 0
                if outcome_start != position:
                    raise CTError(f"entries from {outcome_start} arrived at position {position}")
                while used < count:
                    # Chunk ends fall on multiples of commit_entries, and at the target size.
                    boundary = min(end, (chunk_start // step + 1) * step)
                    take = min(count - used, boundary - position)
                    first, last = used * HASH_SIZE, (used + take) * HASH_SIZE
                    running.extend(hashes[i : i + HASH_SIZE] for i in range(first, last, HASH_SIZE))
                    kept.extend(d for d in outcome.decoded if position <= d.entry_index < position + take)
                    position += take
                    used += take
                    if position == boundary:
                        chunk = Chunk(chunk_start, running.copy(), target)
                        task = asyncio.create_task(self._prove(chunk, kept))
                        kept = []
                        try:
                            await queue.put((chunk, task))
                        except BaseException:
                            task.cancel()
                            raise
                        chunk_start = boundary
                if stop.is_set():
                    break
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the committing task, which raises it in order
            await queue.put(exc)
            return
        await queue.put(None)

    def _end(self, target: TreeHeadLike) -> int:
        return target.tree_size if self.end is None else min(self.end, target.tree_size)

    async def _processed(self, start: int, end: int) -> AsyncIterator[tuple[int, Outcome]]:
        """(first index, outcome) for consecutive answers covering [start, end), in order, with requests
        running ahead of the consumer by a bounded number of entries."""
        size = self.client.chunk_size
        window = max(2, -(-(self.pool.capacity * size + _AHEAD_ENTRIES) // size))
        pending: deque[asyncio.Task[list[tuple[int, Outcome]]]] = deque()
        position = start
        try:
            while position < end or pending:
                while position < end and len(pending) < window:
                    # Requests aligned on multiples of the batch size, as the log's own batches and tiles are.
                    stop = min(end, (position // size + 1) * size)
                    pending.append(asyncio.create_task(self._read_range(position, stop)))
                    position = stop
                for item in await pending.popleft():
                    yield item
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def _read_range(self, start: int, end: int) -> list[tuple[int, Outcome]]:
        """Entries [start, end) downloaded and processed, asking again from where a short answer stopped."""
        outcomes = []
        while start < end:
            outcome = await self._decode(await self.client.fetch_entries(start, end))
            outcomes.append((start, outcome))
            start += outcome.entries
        return outcomes

    async def _decode(self, answer: EntryBody) -> Outcome:
        issuers: dict[bytes, bytes] = {}
        while True:
            pending = await self.pool.submit(answer, issuers)
            if answer.api is EntryApi.RFC6962:
                # Never sent again (only a tile may need its issuers first): the body is in the pipe, and
                # this process need not hold megabytes while it is decoded.
                answer = replace(answer, body=b"")
            outcome = await pending
            if outcome.error is not None:
                raise LogResponseError(answer.url, outcome.error)
            if not outcome.missing_issuers:
                if outcome.entries < 1:
                    raise LogResponseError(answer.url, "no entries in the answer")
                self.client.accept(answer, outcome.entries)
                return outcome
            if outcome.missing_issuers & issuers.keys():
                raise LogResponseError(answer.url, "issuer certificates missing")
            # A static-ct tile names issuers this decode process has not seen: fetch them and ask again.
            issuers.update(await self.client.issuers(outcome.missing_issuers))

    async def _prove(self, chunk: Chunk, kept: list[Decoded]) -> list[StoredEntry]:
        if LogVerifier.chunk_needs_proof(chunk):
            proof = await self.client.get_consistency_proof(chunk.end, chunk.target.tree_size)
            LogVerifier.prove(chunk, proof)
        else:
            LogVerifier.prove(chunk)
        return [
            StoredEntry(
                d.entry_index,
                _ENTRY_TYPES[d.entry_type],
                d.timestamp,
                d.record,
                d.cert_der,
                list(d.findings),
                lint=d.lint,
                revocation=d.revocation,
                issuer_der=d.issuer_der,
            )
            for d in kept
        ]

    async def _commit(self, chunk: Chunk, task: asyncio.Task[list[StoredEntry]]) -> None:
        entries = await task
        batch = CommitBatch(
            log_id=self.info.log_id,
            start=chunk.start,
            end=chunk.end,
            compact_range=chunk.range.to_bytes(),
            head=chunk.target,
            entries=entries,
            fence=self.fence,
        )
        # Shielded: once handed to the store thread the transaction completes or rolls back as a whole,
        # and the in-memory state must follow what the database did.
        commit = self.store.store.commit_batch
        committing = asyncio.ensure_future(self.store.call(commit, batch, self.store.routes))
        # Cancelled while it runs, its outcome is still read (a refused commit is no surprise to anyone).
        committing.add_done_callback(lambda done: done.cancelled() or done.exception())
        await asyncio.shield(committing)
        assert self.verifier is not None
        self.verifier.advance(chunk)
        self.result.entries += chunk.end - chunk.start
        self.on_commit(entries)
        self.on_progress(self.position, self.target_size, "")
        await self.save_request_rate()

    async def save_request_rate(self, *, force: bool = False) -> None:
        """Remember the request rate the log tolerates when it moved (or, with force, whenever it differs)."""
        rate = self.client.budget.tolerated_rate
        saved = self._saved_rate
        if saved is not None and rate == saved:
            return
        moved = saved is None or abs(rate - saved) > _RATE_CHANGE * saved
        if force or moved or now() - self._rate_saved_at > _RATE_SAVE_INTERVAL:
            await self.store.call(self.store.store.record_request_rate, self.info.log_id, rate)
            self._saved_rate, self._rate_saved_at = rate, now()


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def now() -> float:
    return time.monotonic()
