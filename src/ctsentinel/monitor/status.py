"""What the store knows of each log: its size, verified position, last tree head, errors, misbehaviour."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ctsentinel.store import LogState, Store


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _first_seen(heads: list[dict[str, object]]) -> datetime | None:
    times = [h["first_seen"] for h in heads if isinstance(h.get("first_seen"), str)]
    if not times:
        return None
    return min(datetime.fromisoformat(str(t).replace("Z", "+00:00")) for t in times)


def log_row(state: LogState, heads: list[dict[str, object]], misbehaviour: list[dict[str, object]],
            now: datetime) -> dict[str, Any]:
    """One log's status with stable snake_case keys (the JSON contract of `logs --json`)."""
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
    return {
        "url": state.url,
        "log_id": state.log_id.hex(),
        "type": state.kind,
        "description": state.description,
        "operator": state.operator,
        "state": state.state,
        "tree_size": size,
        "latest_tree_size": state.latest_size,
        "position": state.position,
        "start_index": state.start_index,
        "last_tree_head_time": _iso(state.verified_timestamp),
        "last_tree_head_age_seconds": round(age, 1) if age is not None else None,
        "backlog": latest - state.position if state.position is not None else None,
        "entries_processed": state.entries_processed,
        "entries_per_second": rate,
        "errors": state.errors,
        "last_error": state.last_error,
        "misbehaving": state.misbehaving,
        "misbehaviour": [{"kind": m["kind"], "time": m["time"], "detail": m["detail"]} for m in misbehaviour],
    }


def collect(store: Store, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or datetime.now(UTC)
    rows = []
    for state in store.log_states():
        rows.append(log_row(state, store.tree_heads(state.log_id), store.misbehaviour(state.log_id), now))
    return rows
