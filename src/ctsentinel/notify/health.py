"""Log health as events: a log that misbehaved, and one that fell behind by more than a configured time.

Each event comes with an identity naming the occurrence, which the outbox turns into the idempotency key:
the same fork found again after a restart, or the same stale head seen at every check, is reported once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from ctsentinel.ct.misbehaviour import MisbehaviourKind
from ctsentinel.notify.events import HealthEvent, health_event
from ctsentinel.timefmt import duration
from ctsentinel.watch.severity import Severity

# A frozen log is expected to stop signing new heads; only one that should be live can fall behind.
_FROZEN_STATES = frozenset({"readonly", "retired", "rejected"})


class LogStateLike(Protocol):
    """What lag_events reads of a store.LogState."""

    @property
    def url(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def position(self) -> int | None: ...
    @property
    def verified_size(self) -> int | None: ...
    @property
    def verified_timestamp(self) -> int | None: ...
    @property
    def misbehaving(self) -> bool: ...
    @property
    def updated_at(self) -> datetime | None: ...


def misbehaviour_event(
    url: str, kind: MisbehaviourKind, detail: str, when: datetime | None = None
) -> tuple[HealthEvent, str]:
    """A critical event for a log's misbehaviour, and its identity."""
    kind = MisbehaviourKind(kind)
    event = health_event(url, "misbehaving", f"{kind.value}: {detail}", Severity.CRITICAL, when)
    return event, f"{url}\x00misbehaving\x00{kind.value}\x00{detail}"


def _duration(seconds: float) -> str:
    return duration(seconds, spaced=True)


def lag_events(
    states: Sequence[LogStateLike], now: datetime, max_lag: float
) -> list[tuple[HealthEvent, str]]:
    """An event (severity high) for each started, live log that fell behind by more than `max_lag` seconds:
    its newest verified tree head is older than that (the log stopped answering, or stopped signing), or
    entries it has proven are waiting and nothing was processed for that long."""
    out: list[tuple[HealthEvent, str]] = []
    for state in states:
        if state.position is None or state.misbehaving or state.state in _FROZEN_STATES:
            continue
        if state.verified_timestamp is not None:
            age = now.timestamp() - state.verified_timestamp / 1000
            if age > max_lag:
                detail = f"newest verified tree head is {_duration(age)} old (limit {_duration(max_lag)})"
                identity = f"{state.url}\x00stale\x00{state.verified_timestamp}"
                out.append((health_event(state.url, "behind", detail, time=now), identity))
                continue
        backlog = (state.verified_size or 0) - state.position
        if backlog > 0 and state.updated_at is not None:
            updated = state.updated_at if state.updated_at.tzinfo else state.updated_at.replace(tzinfo=UTC)
            idle = (now - updated).total_seconds()
            if idle > max_lag:
                limit = _duration(max_lag)
                detail = f"{backlog} entries waiting, none processed for {_duration(idle)} (limit {limit})"
                identity = f"{state.url}\x00backlog\x00{state.position}"
                out.append((health_event(state.url, "behind", detail, time=now), identity))
    return out
