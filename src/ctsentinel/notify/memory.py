"""An outbox in memory: the Outbox protocol without a database, for tests and for tools that deliver a
one-off event (nothing in it survives the process)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from ctsentinel.notify.events import Event
from ctsentinel.notify.sender import utc_now
from ctsentinel.store.models import PendingDelivery


@dataclass
class _Row:
    item: PendingDelivery
    status: str  # pending | delivered | failed
    next_attempt_at: datetime
    last_error: str | None = None


class MemoryOutbox:
    def __init__(self) -> None:
        self.rows: dict[int, _Row] = {}
        self._keys: set[str] = set()

    def enqueue(self, channel: str, idempotency_key: str, event: Event) -> bool:
        """False when that idempotency key is already queued (delivered or not)."""
        if idempotency_key in self._keys:
            return False
        self._keys.add(idempotency_key)
        row_id = len(self.rows) + 1
        self.rows[row_id] = _Row(
            PendingDelivery(row_id, channel, idempotency_key, event.to_payload()), "pending", utc_now()
        )
        return True

    def due(self, now: datetime, limit: int) -> list[PendingDelivery]:
        ready = [r.item for r in self.rows.values() if r.status == "pending" and r.next_attempt_at <= now]
        return ready[:limit]

    def mark_delivered(self, id: int) -> None:
        self.rows[id].status = "delivered"

    def mark_failed(self, id: int, error: str, next_attempt_at: datetime | None) -> None:
        row = self.rows[id]
        row.item = replace(row.item, attempts=row.item.attempts + 1, last_error=error)
        row.last_error = error
        if next_attempt_at is None:
            row.status = "failed"
        else:
            row.next_attempt_at = next_attempt_at

    def next_due(self) -> datetime | None:
        times = [r.next_attempt_at for r in self.rows.values() if r.status == "pending"]
        return min(times, default=None)

    def pending(self, limit: int) -> list[PendingDelivery]:
        return [r.item for r in self.rows.values() if r.status == "pending"][:limit]
