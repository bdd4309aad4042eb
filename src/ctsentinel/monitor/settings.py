"""What the monitor is told to do: plain values that the `run` command fills in from the config.

The monitor never reads a file: it is handed these, and new ones when the config is reloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Start(StrEnum):
    """Where a log the store has not seen yet is read from."""

    END = "end"  # its current tree head: only what is logged from now on
    BEGINNING = "beginning"  # entry 0: the whole log


class Keep(StrEnum):
    """Which certificates the store keeps."""

    MATCHED = "matched"  # those that match a watch (and those that could not be parsed)
    ALL = "all"  # every certificate of every log, for search like crt.sh


@dataclass(frozen=True)
class LogsSettings:
    list: str = "chrome"  # "chrome", "apple", a path or an http(s) URL of a log list
    start: Start = Start.END
    poll_interval: float = 10.0  # seconds between tree-head polls of one log
    refresh_interval: float = 3600.0  # seconds between log list refreshes
    states: tuple[str, ...] = ("usable", "qualified", "readonly")
    include: tuple[str, ...] = ()  # only these log URLs (empty: all of the list)
    exclude: tuple[str, ...] = ()  # never these log URLs
    batch_size: int = 1000  # most entries asked for in one request (logs may return fewer)
    # Ceilings on each log's adaptive request budget (logs/budget.py); None: no ceiling.
    requests_per_second: float | None = None
    concurrency: int | None = None
    request_timeout: float = 60.0  # seconds one request to a log may take, its retries included

    def selection(self) -> tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """What decides which logs are monitored: a change here means the log list is read again."""
        return (self.list, self.states, self.include, self.exclude)


@dataclass(frozen=True)
class MonitorSettings:
    decode_processes: int = 0  # 0: one per core but the one the monitor's own process works on (at least 1)
    commit_entries: int = 4096  # most entries committed in one transaction
    store: Keep = Keep.MATCHED
    deliver_timeout: float = 30.0  # run --once: seconds to keep retrying deliveries before exiting
    max_lag: float = 3600.0  # a log behind by more than this many seconds is a health event (0: off)
    # Several processes on one database (leases): a lease not renewed for lease_seconds is free to take;
    # a backlog longer than range_entries is cut into ranges of that many entries, which any process
    # works (range_workers at a time in each).
    lease_seconds: float = 30.0
    range_entries: int = 1_000_000
    range_workers: int = 2
    decode_timeout: float = 120.0  # seconds one batch may take to decode before it is given up
    revocation_interval: float = 21600.0  # seconds between two revocation checks of one certificate
    metrics_port: int = 0  # `run` serves Prometheus metrics on 127.0.0.1 at this port (0: off)
