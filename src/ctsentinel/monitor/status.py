"""What the store knows of each log: its size, verified position, last tree head, errors, misbehaviour.

`LogStatus.to_json()` is the object `ctsentinel logs --json` prints for each log: its keys, in this order,
are a contract.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ctsentinel.store import OWN_BACKLOG, LeaseInfo, LogState, MisbehaviourRecord, Store, StoredTreeHead
from ctsentinel.timefmt import rfc3339, rfc3339_ms


@dataclass(frozen=True)
class MisbehaviourNote:
    kind: str
    time: str  # RFC 3339
    detail: str


@dataclass(frozen=True)
class RangeNote:
    start: int
    end: int
    position: int
    worker: str | None  # None while no process holds it


@dataclass(frozen=True)
class LogStatus:
    url: str
    log_id: str  # hex
    type: str  # "rfc6962" | "static"
    description: str
    operator: str
    state: str  # in the log list: usable, qualified, readonly, retired, ...
    tree_size: int | None  # of the last verified tree head
    latest_tree_size: int | None  # the largest tree head seen, verified or not
    position: int | None  # the next entry to process; None: not started
    start_index: int | None
    last_tree_head_time: str | None  # RFC 3339
    last_tree_head_age_seconds: float | None
    backlog: int | None
    entries_processed: int
    entries_per_second: float | None
    errors: int
    last_error: str | None
    misbehaving: bool
    misbehaviour: list[MisbehaviourNote]
    # Several processes on one database: which one works the log (host:pid:nonce), and the ranges of its
    # backlog still open with the process working each.
    worker: str | None = None
    ranges: list[RangeNote] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _time(timestamp_ms: int | None) -> str | None:
    return None if timestamp_ms is None else rfc3339_ms(timestamp_ms)


def _first_seen(heads: Sequence[StoredTreeHead]) -> datetime | None:
    first = min((h.first_seen for h in heads), default=None)
    return None if first is None else first.replace(microsecond=0)  # to the second, as it is shown


def log_status(
    state: LogState,
    heads: Sequence[StoredTreeHead],
    misbehaviour: Sequence[MisbehaviourRecord],
    now: datetime,
) -> LogStatus:
    """One log's status from what the store returns for it (its state, tree heads and misbehaviour)."""
    size = state.verified_size
    latest = max(x for x in (state.latest_size, size, 0) if x is not None)
    age = None
    if state.verified_timestamp is not None:
        age = max(0.0, now.timestamp() - state.verified_timestamp / 1000)
    # entries/s: entries processed over the time from the first head seen to the last commit.
    rate = None
    started = _first_seen(heads)
    if started is not None and state.updated_at is not None and state.entries_processed:
        elapsed = (state.updated_at - started).total_seconds()
        rate = round(state.entries_processed / elapsed, 1) if elapsed > 0 else None
    return LogStatus(
        url=state.url,
        log_id=state.log_id.hex(),
        type=state.kind,
        description=state.description,
        operator=state.operator,
        state=state.state,
        tree_size=size,
        latest_tree_size=state.latest_size,
        position=state.position,
        start_index=state.start_index,
        last_tree_head_time=_time(state.verified_timestamp),
        last_tree_head_age_seconds=round(age, 1) if age is not None else None,
        backlog=latest - state.position if state.position is not None else None,
        entries_processed=state.entries_processed,
        entries_per_second=rate,
        errors=state.errors,
        last_error=state.last_error,
        misbehaving=state.misbehaving,
        misbehaviour=[MisbehaviourNote(m.kind.value, rfc3339(m.time), m.detail) for m in misbehaviour],
    )


def log_statuses(store: Store, now: datetime | None = None) -> list[LogStatus]:
    now = now or datetime.now(UTC)
    leases = store.leases.leases()
    return [
        with_workers(
            log_status(state, store.tree_heads(state.log_id), store.misbehaviour(state.log_id), now),
            [lease for lease in leases if lease.log_id == state.log_id],
        )
        for state in store.log_states()
    ]


def with_workers(status: LogStatus, leases: Sequence[LeaseInfo]) -> LogStatus:
    """The status with the processes that hold the log's lease and its ranges' (the log's own backlog)."""
    worker = next((x.holder for x in leases if x.watch is None and x.live), None)
    ranges = [
        RangeNote(x.start, x.end, x.position, x.holder if x.live else None)
        for x in leases
        if x.watch == OWN_BACKLOG and x.start is not None and x.end is not None and x.position is not None
    ]
    return dataclasses.replace(status, worker=worker, ranges=ranges)
