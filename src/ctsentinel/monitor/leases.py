"""This process's leases (store/leases.py): claimed per log and per range, renewed while it works, given
back when it stops.

Renewals run on a thread of their own, so they never wait behind a long commit on the store's thread. A
lease found taken over at a renewal (this process was paused or cut off past its lease) is dropped here
and its work abandoned by whoever registered for it; even without that, the fencing token makes every
later commit under it fail with LeaseLost, so nothing of it can be written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ctsentinel.errors import Error
from ctsentinel.store import OWN_BACKLOG, Fence, RangeClaim, Store, StoreError
from ctsentinel.store.identity import process_name

T = TypeVar("T")


def holder_name() -> str:
    """host:pid:nonce: which process holds a lease, as `logs --json` and `db stats` show it (and, on
    PostgreSQL, the application_name of its sessions)."""
    return process_name()


class LeaseKeeper:
    def __init__(
        self, store: Store, ttl: float, *, warn: Callable[[str], None], holder: str | None = None
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.holder = holder or holder_name()
        self._warn = warn
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ctsentinel-leases")
        self._logs: dict[bytes, Fence] = {}
        self._ranges: dict[int, RangeClaim] = {}
        self._on_lost: dict[object, Callable[[], None]] = {}

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, lambda: fn(*args, **kwargs))

    # --- claims ------------------------------------------------------------------------------------------

    async def claim_log(self, log_id: bytes) -> Fence | None:
        """The log's lease (the one already held, or a new claim); None while another process holds it."""
        fence = await self._call(self.store.leases.claim_log, log_id, self.holder, self.ttl)
        if fence is None:
            self._logs.pop(log_id, None)
        else:
            self._logs[log_id] = fence
        return fence

    async def claim_range(
        self, log_ids: Sequence[bytes], watch: str = OWN_BACKLOG, exclude: Sequence[int] = ()
    ) -> RangeClaim | None:
        leases = self.store.leases
        claim = await self._call(leases.claim_range, self.holder, self.ttl, log_ids, watch, exclude)
        if claim is not None:
            self._ranges[claim.id] = claim
        return claim

    def on_lost(self, key: bytes | int, callback: Callable[[], None]) -> None:
        """Call `callback` when the lease of this log (bytes) or range (int) turns out to be lost."""
        self._on_lost[key] = callback

    async def release_log(self, log_id: bytes) -> None:
        self._logs.pop(log_id, None)
        self._on_lost.pop(log_id, None)
        await self._call(self.store.leases.release, self.holder, log_id=log_id)

    async def release_range(self, range_id: int) -> None:
        self._ranges.pop(range_id, None)
        self._on_lost.pop(range_id, None)
        await self._call(self.store.leases.release, self.holder, range_id=range_id)

    async def release_all(self) -> None:
        """Give every lease back at once (a clean stop): others go on without waiting for them to expire."""
        self._logs.clear()
        self._ranges.clear()
        self._on_lost.clear()
        try:
            await self._call(self.store.leases.release, self.holder)
        except StoreError as exc:
            self._warn(f"leases not given back (they expire by themselves): {exc}")

    def close(self) -> None:
        self._thread.shutdown(wait=False)

    async def reset(self) -> None:
        """This process is the only one on the database (it holds the SQLite lock): leases left by a process
        that died are free at once, not after they expire."""
        await self._call(self.store.leases.release_everyone)

    # --- renewal -----------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Renew every lease a third of the lease time, until `stop`."""
        interval = self.ttl / 3
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), interval)
                return
            except TimeoutError:
                pass
            await self.renew()

    async def renew(self) -> None:
        try:
            # First, as it never waits on a lock: a process whose leases lapsed a whole lease time ago is
            # stopped or cut off, and its sessions are ended so that the row locks it may hold do not stall
            # everyone else (this renewal included).
            await self._call(self.store.leases.end_sessions_of_lapsed, self.holder, self.ttl)
            held = await self._call(self.store.leases.renew, self.holder, self.ttl)
        except Error as exc:
            self._warn(f"leases not renewed: {exc}")
            return
        lost: list[bytes | int] = [log for log in self._logs if log not in held.logs]
        lost += [r for r in self._ranges if r not in held.ranges]
        for key in lost:
            if isinstance(key, bytes):
                self._logs.pop(key, None)
            else:
                self._ranges.pop(key, None)
            callback = self._on_lost.pop(key, None)
            if callback is not None:
                callback()
