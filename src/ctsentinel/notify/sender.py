"""Delivering the outbox: every pending delivery is retried with exponential backoff and full jitter until
its channel accepts it, and is marked delivered only after that.

The outbox is durable (store.Outbox), so the order of operations is the whole guarantee: a
delivery is marked only after `Channel.deliver` returned. A crash between the two repeats the delivery
after the restart with the same idempotency key, which is how the receiver recognises the repeat; a crash
before it loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ctsentinel.notify.base import Channel, DeliveryError, one_line
from ctsentinel.notify.events import event_from_payload
from ctsentinel.retry import Backoff, Jitter
from ctsentinel.store.models import PendingDelivery

log = logging.getLogger(__name__)
# The outbox key of an unnamed channel in versions that keyed channels by their place in the config.
_LEGACY_KEY = re.compile(r"(?P<kind>stdout|jsonl|webhook|email|exec)#[1-9][0-9]*")


class Outbox(Protocol):
    """What the sender needs of an outbox: store.Outbox, or MemoryOutbox."""

    def due(self, now: datetime, limit: int) -> list[PendingDelivery]:
        """Pending deliveries whose next attempt is at or before `now`, oldest first."""
        ...

    def mark_delivered(self, id: int) -> None: ...

    def mark_failed(self, id: int, error: str, next_attempt_at: datetime | None) -> None:
        """Record a failed attempt; `next_attempt_at` None means give up (failed permanently)."""
        ...

    def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due; None when nothing is pending."""
        ...

    def pending(self, limit: int) -> list[PendingDelivery]:
        """Deliveries still pending, oldest first (what `run --once` reports as left over)."""
        ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PassResult:
    delivered: int = 0
    failed: int = 0


class Sender:
    """Delivers due items through the channels; `channels` maps each channel key to its Channel."""

    def __init__(
        self,
        outbox: Outbox,
        channels: Iterable[Channel],
        *,
        backoff: Backoff | None = None,
        batch: int = 500,
        attempt_timeout: float = 300.0,
        clock: Callable[[], datetime] = utc_now,
        offload: Callable[[Callable[[], Any]], Awaitable[Any]] | None = None,
    ) -> None:
        """`backoff` overrides every channel's own retry_base/retry_cap (tests); `offload` runs each outbox
        call elsewhere (the monitor's store thread), so that the event loop never waits on the database."""
        self.outbox = outbox
        self.channels: Mapping[str, Channel] = {channel.key: channel for channel in channels}
        # Keys the channels had before: an old key never shadows a channel's own.
        self._aliases = {
            alias: channel
            for channel in self.channels.values()
            for alias in channel.aliases
            if alias not in self.channels
        }
        self._backoffs = {
            key: backoff or Backoff(channel.retry_base, channel.retry_cap, Jitter.FULL)
            for key, channel in self.channels.items()
        }
        self._default_backoff = backoff or Backoff(Channel.retry_base, Channel.retry_cap, Jitter.FULL)
        self._offload = offload
        self.batch = batch
        self.attempt_timeout = attempt_timeout
        self.clock = clock
        self._limits = {key: asyncio.Semaphore(max(1, ch.concurrency)) for key, ch in self.channels.items()}
        self._wake = asyncio.Event()

    async def deliver_due(self) -> PassResult:
        """One pass: attempt every delivery due now, each at most once, concurrently across channels and
        up to each channel's concurrency within one."""
        result = PassResult()
        tried: set[int] = set()
        while True:
            due = await self._db(self.outbox.due, self.clock(), self.batch)
            items = [item for item in due if item.id not in tried]
            if not items:
                return result
            tried.update(item.id for item in items)
            outcomes = await asyncio.gather(*(self._attempt(item) for item in items))
            result.delivered += sum(outcomes)
            result.failed += len(outcomes) - sum(outcomes)

    def channel_for(self, key: str) -> Channel | None:
        """The channel a delivery queued under `key` goes to: the channel with that key, else the one that
        had it as its old positional key ("webhook#2"), else, for such a key, the only channel of its kind."""
        channel = self.channels.get(key) or self._aliases.get(key)
        if channel is None:
            legacy = _LEGACY_KEY.fullmatch(key)
            if legacy is not None:
                same_kind = [c for c in self.channels.values() if c.kind == legacy["kind"]]
                if len(same_kind) == 1:
                    channel = same_kind[0]
        return channel

    async def _attempt(self, item: PendingDelivery) -> bool:
        channel = self.channel_for(item.channel)
        if channel is None:
            # Its [[notify]] table is gone (or its destination changed without a name): nobody can receive
            # it any more, so it is marked failed for good, where `alerts`/`logs` show it, rather than
            # retried forever.
            error = f"channel {item.channel} is no longer configured"
            legacy = _LEGACY_KEY.fullmatch(item.channel)
            if legacy is not None:
                error += (
                    f" (a key by position from an earlier version, and the {legacy['kind']} channels "
                    "configured now do not say which one it was)"
                )
            await self._db(self.outbox.mark_failed, item.id, error, None)
            return False
        try:
            event = event_from_payload(item.payload)
        except (KeyError, ValueError, TypeError) as exc:
            # Not an event this version can read: no retry will change that.
            error = one_line(f"{item.channel}: the queued event cannot be read: {type(exc).__name__}: {exc}")
            await self._db(self.outbox.mark_failed, item.id, error, None)
            return False
        async with self._limits[channel.key]:
            try:
                async with asyncio.timeout(self.attempt_timeout):
                    await channel.deliver(event, item.idempotency_key)
            except DeliveryError as exc:
                error = one_line(exc)
            except TimeoutError:
                error = f"{item.channel}: no answer within {self.attempt_timeout:g}s"
            except Exception as exc:  # a channel bug must not stop the other deliveries
                error = one_line(f"{item.channel}: {type(exc).__name__}: {exc}")
            else:
                await self._db(self.outbox.mark_delivered, item.id)
                return True
        # Full jitter spreads the retries of many deliveries to one receiver apart.
        wait = self._backoffs.get(channel.key, self._default_backoff).delay(item.attempts + 1)
        await self._db(self.outbox.mark_failed, item.id, error, self.clock() + timedelta(seconds=wait))
        return False

    async def _db(self, method: Callable[..., Any], *args: Any) -> Any:
        if self._offload is None:
            return method(*args)
        return await self._offload(lambda: method(*args))

    async def drain(self, timeout: float) -> list[PendingDelivery]:
        """For `run --once`: deliver and retry until nothing is pending or `timeout` seconds have passed.
        Returns what is still pending (it stays in the outbox for the next run)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                # A hanging receiver must not hold `run --once` past its bound: an attempt cut short stays
                # pending (unmarked), which is safe.
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await self.deliver_due()
            except TimeoutError:
                return list(await self._db(self.outbox.pending, 10_000))
            upcoming = await self._db(self.outbox.next_due)
            if upcoming is None:
                return []
            wait = max(0.0, (upcoming - self.clock()).total_seconds())
            if time.monotonic() + wait > deadline:
                return list(await self._db(self.outbox.pending, 10_000))
            await asyncio.sleep(wait)

    async def run(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        """For `run`: deliver as deliveries fall due until `stop` is set. New alerts are noticed within
        `idle` seconds; call `wake()` after a commit to deliver them at once."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                upcoming = await self._run_pass(stopping)
                if stop.is_set():
                    return
                wait = idle if upcoming is None else (upcoming - self.clock()).total_seconds()
                waking = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait(
                    [stopping, waking], timeout=min(max(wait, 0.0), idle), return_when=asyncio.FIRST_COMPLETED
                )
                waking.cancel()
                self._wake.clear()
        finally:
            stopping.cancel()

    async def _run_pass(self, stopping: asyncio.Future[Any]) -> datetime | None:
        """One delivery pass, abandoned (its attempts left unmarked, so pending) as soon as `stop` is set:
        shutdown never waits for a slow receiver."""
        delivering = asyncio.ensure_future(self.deliver_due())
        await asyncio.wait([delivering, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not delivering.done():
            delivering.cancel()
            await asyncio.gather(delivering, return_exceptions=True)
            return None
        try:
            delivering.result()
            upcoming: datetime | None = await self._db(self.outbox.next_due)
            return upcoming
        except Exception as exc:  # the database is busy or gone: keep the loop alive, try again later
            log.warning("delivering alerts: %s", one_line(exc))
            return None

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
