"""The Channel interface and the filters that pick which events a channel gets (events.py: the events)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from ctsentinel.errors import Error
from ctsentinel.notify.events import Event
from ctsentinel.redact import redact_urls
from ctsentinel.watch.severity import Severity


class DeliveryError(Error):
    """A channel did not accept an event; the message is one line naming why."""


def one_line(text: object, limit: int = 300) -> str:
    """Messages end up in a one-line status column: newlines and runs of spaces would break it. They are
    also stored and shown to whoever reads the outbox, so any URL in them is cut to its host."""
    flat = " ".join(redact_urls(str(text)).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class Channel(ABC):
    """One configured [[notify]] table. `key` names it in the outbox: its `name`, or its kind and
    destination (factory.py); `aliases` are keys it had before and still answers to (the positional
    "kind#N" of versions that keyed channels by their place in the config)."""

    kind: str = ""
    # Deliveries to one channel in flight at once; 1 keeps file and terminal output in order.
    concurrency: int = 1
    # Retry after the n-th failure (n >= 1) within uniform [0, min(retry_cap, retry_base * 2**(n-1))) s.
    retry_base: float = 2.0
    retry_cap: float = 600.0

    def __init__(self, key: str, min_severity: Severity = Severity.LOW, watches: Sequence[str] = ()) -> None:
        self.key = key
        self.aliases: tuple[str, ...] = ()
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

    def destination(self) -> tuple[str, tuple[str, ...]]:
        """Where this channel sends: a label fit to show (nothing secret in it) and the values that tell
        this destination from another (its whole URL, address or command), from which an unnamed channel's
        outbox key is derived. The process's stdout is the only destination without either."""
        return "", ()

    async def close(self) -> None:  # noqa: B027 - most channels hold nothing open
        """Release what the channel holds open (HTTP sessions)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key}>"
