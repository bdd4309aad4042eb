"""What the store hands out: typed rows of its read side."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # for good: the sender gave up


@dataclass(frozen=True)
class PendingDelivery:
    id: int
    channel: str  # the channel's key
    idempotency_key: str
    payload: dict[str, Any] = field(hash=False)  # the event as queued: a JSON object
    attempts: int = 0  # failed attempts so far
    last_error: str | None = None


@dataclass(frozen=True)
class Undelivered:
    """A delivery not accepted yet, for `alerts` and `logs`."""

    id: int
    alert: int | None  # None for an event that is not an alert (a log's health)
    channel: str
    status: DeliveryStatus  # pending or failed
    attempts: int
    last_error: str | None
    next_attempt: datetime | None  # None once failed for good
    created: datetime


@dataclass(frozen=True)
class AlertDelivery:
    """One delivery of an alert, whatever its state."""

    channel: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    delivered: datetime | None
