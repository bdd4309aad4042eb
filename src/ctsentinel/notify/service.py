"""The notifier the monitor holds: the configured channels, which are also the routes every batch commit
queues its alerts' deliveries to, and the sender working the store's outbox off.

    notifier = Notifier.from_settings(store, settings.notify, offload=run_on_store_thread)
    store.commit_batch(batch, notifier.routes)                         (on the store thread)
    # run:         task = asyncio.create_task(notifier.run(stop))        (continuous delivery)
    # run --once:  left = await notifier.drain(timeout); print(*leftover_lines(left), file=sys.stderr)
    # health:      await notifier.report(*misbehaviour_event(url, kind, detail))
    await notifier.close()
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from ctsentinel.notify.base import Channel
from ctsentinel.notify.events import HealthEvent
from ctsentinel.notify.factory import build_channels
from ctsentinel.notify.health import LogStateLike, lag_events
from ctsentinel.notify.sender import Sender
from ctsentinel.notify.settings import ChannelSettings
from ctsentinel.redact import redact_urls
from ctsentinel.retry import Backoff
from ctsentinel.store import PendingDelivery, Route, Store, Undelivered
from ctsentinel.terminal import safe_text
from ctsentinel.timefmt import rfc3339

Offload = Callable[[Callable[[], Any]], Awaitable[Any]]


class Notifier:
    def __init__(
        self,
        store: Store,
        channels: Sequence[Channel],
        *,
        offload: Offload | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.channels = list(channels)
        self.outbox = store.outbox
        self.sender = Sender(self.outbox, self.channels, backoff=backoff, offload=offload)
        self._offload = offload

    @classmethod
    def from_settings(
        cls,
        store: Store,
        settings: Sequence[ChannelSettings],
        *,
        offload: Offload | None = None,
        stdout: TextIO | None = None,
    ) -> Notifier:
        """UserError (one line) for a bad [[notify]] option. Without channels nothing is queued, but
        deliveries left from an earlier config are still worked off (and fail visibly)."""
        return cls(store, build_channels(settings, stdout), offload=offload)

    @property
    def routes(self) -> tuple[Route, ...]:
        """What Store.commit_batch queues each new alert's deliveries to."""
        return tuple(self.channels)

    async def run(self, stop: asyncio.Event) -> None:
        await self.sender.run(stop)

    def wake(self) -> None:
        self.sender.wake()

    async def drain(self, timeout: float) -> list[PendingDelivery]:
        return await self.sender.drain(timeout)

    async def report(self, event: HealthEvent, identity: str) -> int:
        """Queue a log-health event (see notify.health); returns how many deliveries were queued."""
        routes = self.routes
        queued = await self._db(lambda: self.outbox.enqueue_event(event, identity, routes))
        if queued:
            self.wake()
        return int(queued)

    async def check_lag(self, states: Sequence[LogStateLike], max_lag: float) -> int:
        """Report every log that fell behind by more than `max_lag` seconds (each occurrence once)."""
        queued = 0
        for event, identity in lag_events(states, datetime.now(UTC), max_lag):
            queued += await self.report(event, identity)
        return queued

    async def close(self) -> None:
        await self.sender.close()

    async def _db(self, call: Callable[[], Any]) -> Any:
        return call() if self._offload is None else await self._offload(call)


def leftover_lines(left: Sequence[PendingDelivery]) -> list[str]:
    """For `run --once`: one line per channel with deliveries still pending, naming the last error the
    outbox recorded; empty when everything went out."""
    by_channel: dict[str, list[PendingDelivery]] = {}
    for item in left:
        by_channel.setdefault(item.channel, []).append(item)
    lines = []
    for channel, items in sorted(by_channel.items()):
        count = len(items)
        # Redacted again on the way out: rows written before errors were redacted may still hold a URL.
        errors = Counter(redact_urls(item.last_error) for item in items if item.last_error)
        why = f" (last error: {errors.most_common(1)[0][0]})" if errors else ""
        lines.append(
            f"ctsentinel: {count} deliver{'y' if count == 1 else 'ies'} to {channel} still pending{why}; "
            "kept in the outbox for the next run"
        )
    return lines


def undelivered_lines(rows: Sequence[Undelivered]) -> list[str]:
    """For `alerts` and `logs`: one line per delivery not accepted yet, so that a channel that keeps
    failing is seen, not silently dropped."""
    lines = []
    for row in rows:
        if row.alert is None:
            what = "log-health event"
        elif row.kind == "revocation":
            what = f"revocation news of alert #{row.alert}"
        else:
            what = f"alert #{row.alert}"
        if row.next_attempt is None:
            state = "FAILED for good"
        else:
            state = f"pending, next try {rfc3339(row.next_attempt)}"
        error = f": {safe_text(redact_urls(row.last_error))}" if row.last_error else ""
        tries = row.attempts
        lines.append(
            f"delivery of {what} to {safe_text(row.channel)} {state} "
            f"({tries} failed attempt{'' if tries == 1 else 's'}){error}"
        )
    return lines
