"""Times and durations as ctsentinel prints them: RFC 3339 in UTC with a Z, durations in short units."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(when: datetime) -> str:
    """ "2026-11-27T06:30:00Z". A naive datetime is taken as UTC (SQLite hands back what it was given)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_or_none(when: datetime | None) -> str | None:
    return None if when is None else rfc3339(when)


def rfc3339_ms(timestamp_ms: int, *, millis: bool = False) -> str:
    """A CT timestamp (milliseconds since the epoch) to the second; with millis, to the millisecond
    ("2026-11-27T06:30:00.125Z"), as `inspect` shows a signed timestamp."""
    when = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z") if millis else rfc3339(when)


def parse_rfc3339(text: str) -> datetime:
    """The inverse of rfc3339 (and of any ISO 8601 time with an offset or a Z); ValueError otherwise."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def duration(seconds: float, *, spaced: bool = False) -> str:
    """Two units at most: "42s", "3m05s", "2h07m", "1d03h"; spaced: "3m 5s", "2h 7m", "1d 3h" (prose)."""
    seconds = int(seconds)
    units = ((86400, "d", 3600, "h"), (3600, "h", 60, "m"), (60, "m", 1, "s"))
    for size, name, small, small_name in units:
        if seconds >= size:
            rest = seconds % size // small
            return (
                f"{seconds // size}{name} {rest}{small_name}"
                if spaced
                else (f"{seconds // size}{name}{rest:02d}{small_name}")
            )
    return f"{seconds}s"
