"""The Channel interface, the events channels carry, and the filters that pick which events a channel gets.

Two kinds of event travel through the channels, both plain JSON-ready dicts:
- an alert: exactly the alert object of DESIGN.md section 5, plus private fields (keys starting with "_",
  such as the certificate PEM) that channels may use but never send: `public_view` strips them;
- a log-health event: {"event": "log_health", "log", "problem", "detail", "severity", "time"}, a clearly
  distinct object, so a receiver never mistakes a log problem for a certificate.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ctsentinel.errors import Error
from ctsentinel.timefmt import rfc3339
from ctsentinel.watch.severity import Severity

Event = dict[str, Any]

HEALTH_EVENT = "log_health"


class DeliveryError(Error):
    """A channel did not accept an event; the message is one line naming why."""


def one_line(text: object, limit: int = 300) -> str:
    """Messages end up in a one-line status column: newlines and runs of spaces would break it."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def is_health(event: Mapping[str, Any]) -> bool:
    return event.get("event") == HEALTH_EVENT


def public_view(event: Mapping[str, Any]) -> Event:
    """The event as sent to the outside: private fields (leading underscore) removed, order kept."""
    return {key: value for key, value in event.items() if not key.startswith("_")}


def health_event(
    log: str, problem: str, detail: str, severity: Severity = Severity.HIGH, time: datetime | None = None
) -> Event:
    """A log-health event: `problem` is e.g. "misbehaving" (with the misbehaviour kind in `detail`) or
    "behind" (the log fell behind by more than the configured time)."""
    if not Severity(severity).is_alert:
        raise ValueError(f"health event severity {severity!r} is not one of {', '.join(Severity.alerting())}")
    return {
        "event": HEALTH_EVENT,
        "log": log,
        "problem": problem,
        "detail": detail,
        "severity": str(severity),
        "time": rfc3339(time or datetime.now(UTC)),
    }


class Channel(ABC):
    """One configured [[notify]] table. `key` names it in the outbox (kind#position, or its `name`)."""

    kind: str = ""
    # Deliveries to one channel in flight at once; 1 keeps file and terminal output in order.
    concurrency: int = 1
    # Retry after the n-th failure (n >= 1) within uniform [0, min(retry_cap, retry_base * 2**(n-1))) s.
    retry_base: float = 2.0
    retry_cap: float = 600.0

    def __init__(self, key: str, min_severity: Severity = Severity.LOW, watches: Sequence[str] = ()) -> None:
        self.key = key
        self.min_severity = Severity(min_severity)
        self.watches = tuple(watches)

    def accepts(self, severity: Severity, watch: str | None) -> bool:
        """The per-channel filters: minimum severity and watch names. `watch` is None for a log-health
        event, which concerns every watch, so a watch filter lets it through."""
        if not severity.is_alert or not severity.at_least(self.min_severity):
            return False
        return watch is None or not self.watches or watch in self.watches

    @abstractmethod
    async def deliver(self, event: Event, idempotency_key: str) -> None:
        """Hand one event to the receiver; return only once it accepted, else raise DeliveryError."""

    async def close(self) -> None:  # noqa: B027 - most channels hold nothing open
        """Release what the channel holds open (HTTP sessions)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key}>"
