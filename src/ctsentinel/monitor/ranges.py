"""Ranges of a long backlog, worked by any process: each proven on its own, committed in any order.

A range [start, end) is proven against the verified head it was planned with (its *target*), exactly as a
log's backlog is (docs/monitor-design.md): the compact range at `start` comes from the log (an inclusion
proof of leaf start-1, or hash tiles on a static-ct log) and counts only once a consistency proof from
`start` to the target's size verifies with its root (LogVerifier.prove_range_start); then every chunk's
range is proven against the target before anything in it is stored. Commits carry the range's lease
(fencing), and move the log's position over the contiguous prefix of committed ranges (store/leases.py).
A range resumed after a crash starts from the compact range its last commit stored.

`split` cuts a backlog; `RangeRunner` claims ranges and works up to `slots` of them at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from ctsentinel.ct.merkle import CompactRange
from ctsentinel.monitor.leases import LeaseKeeper
from ctsentinel.monitor.verify import LogVerifier, Misbehaviour
from ctsentinel.monitor.worker import LogWorker, sleep_or_stop
from ctsentinel.store import OWN_BACKLOG, LeaseLost, RangeClaim

IDLE = 0.5  # seconds between two looks for a free range when none was free


def split(start: int, end: int, size: int) -> list[tuple[int, int]]:
    """[start, end) cut into ranges of `size` entries whose inner bounds fall on multiples of `size` (the
    last one shorter)."""
    bounds = []
    while start < end:
        stop = min(end, (start // size + 1) * size)
        bounds.append((start, stop))
        start = stop
    return bounds


async def work_range(claim: RangeClaim, worker: LogWorker, stop: asyncio.Event) -> None:
    """Prove the range's start if the log must provide it, then prove and commit its entries in chunks.
    Misbehaviour, LeaseLost and the client's errors are raised; what was committed stays committed."""
    target = claim.target
    if claim.compact_range is None:
        compact = await worker.client.get_compact_range(claim.position)
        proof = await worker.client.get_consistency_proof(claim.position, target.tree_size)
        LogVerifier.prove_range_start(target, claim.position, compact, proof)
    else:
        compact = CompactRange.from_bytes(claim.compact_range)
    worker.verifier = LogVerifier(target, compact)
    worker.fence = claim.fence
    worker.end = claim.end
    await worker.catch_up(stop)


# What the runner needs of its caller: a worker for a claimed range (None: not one of this process's
# logs), and what to do when the range's log misbehaved or the work failed.
MakeWorker = Callable[[RangeClaim], LogWorker | None]
OnMisbehaviour = Callable[[LogWorker, Misbehaviour], Awaitable[None]]
OnFailure = Callable[[LogWorker, Exception], Awaitable[None]]


class RangeRunner:
    def __init__(
        self,
        keeper: LeaseKeeper,
        log_ids: Callable[[], Sequence[bytes]],
        make_worker: MakeWorker,
        *,
        slots: int,
        stop: asyncio.Event,
        on_misbehaviour: OnMisbehaviour,
        on_failure: OnFailure,
        watch: str = OWN_BACKLOG,
    ) -> None:
        self.keeper = keeper
        self.log_ids = log_ids
        self.make_worker = make_worker
        self.slots = slots
        self.stop = stop
        self.watch = watch
        self._on_misbehaviour = on_misbehaviour
        self._on_failure = on_failure
        self._tasks: set[asyncio.Task[None]] = set()
        self._skip: set[int] = set()  # ranges whose log misbehaved in this process: not claimed again
        self.worked = 0  # ranges this runner finished

    async def run(self, done: Callable[[], bool] = lambda: False) -> None:
        """Claim and work ranges until `stop` is set or `done()` says so."""
        try:
            while not self.stop.is_set() and not done():
                while len(self._tasks) < self.slots and not self.stop.is_set():
                    claim = await self.keeper.claim_range(self.log_ids(), self.watch, sorted(self._skip))
                    if claim is None:
                        break
                    task = asyncio.create_task(self._work(claim), name=f"range {claim.start}-{claim.end}")
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                if self._tasks:
                    await asyncio.wait(self._tasks, timeout=IDLE, return_when=asyncio.FIRST_COMPLETED)
                else:
                    await sleep_or_stop(self.stop, IDLE)
        finally:
            await self.cancel()

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def cancel(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _work(self, claim: RangeClaim) -> None:
        worker = self.make_worker(claim)
        if worker is None:
            await self.keeper.release_range(claim.id)
            return
        task = asyncio.current_task()
        if task is not None:

            def abandon() -> None:
                task.cancel()

            self.keeper.on_lost(claim.id, abandon)
        try:
            await work_range(claim, worker, self.stop)
            if worker.position >= claim.end:
                self.worked += 1
        except LeaseLost:
            pass  # another process holds the range now and goes on from the last commit
        except Misbehaviour as finding:
            self._skip.add(claim.id)
            await self._on_misbehaviour(worker, finding)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._on_failure(worker, exc)
            await sleep_or_stop(self.stop, IDLE)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.keeper.release_range(claim.id))
