"""Progress lines on a terminal (and nothing in a pipe); the `logs` table and its escaping."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from ctsentinel.commands.logs import format_table
from ctsentinel.ct.misbehaviour import MisbehaviourKind
from ctsentinel.monitor.progress import LogProgress, Progress, format_line
from ctsentinel.monitor.status import log_status
from ctsentinel.store import LogState, MisbehaviourRecord, StoredTreeHead
from ctsentinel.timefmt import duration


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_rate_and_eta_from_positions() -> None:
    progress = LogProgress("log")
    progress.update(1000, 101000, now=100.0)
    progress.update(6000, 101000, now=105.0)
    assert progress.rate() == 1000.0
    line = format_line(progress)
    assert "6,000/101,000" in line and "1,000/s" in line and "ETA 1m35s" in line
    progress.update(101000, 101000, now=106.0)
    assert "caught up" in format_line(progress)
    assert [duration(s) for s in (5, 65, 3700, 90000)] == ["5s", "1m05s", "1h01m", "1d01h"]


def test_lines_are_redrawn_in_place_on_a_terminal_only() -> None:
    terminal = Terminal()
    progress = Progress(terminal, min_interval=0.0)
    progress.log("a", "first log\x1b[2J")
    progress.log("b", "second log")
    progress.update("a", 10, 100)
    progress.update("b", 20, 200)
    progress.draw()
    first = terminal.getvalue()
    assert first.count("\n") == 2 and "\x1b[2J" not in first and "first log\\x1b[2J" in first
    progress.update("a", 50, 100)
    progress.draw()
    second = terminal.getvalue()[len(first):]
    assert second.startswith("\x1b[2F") and second.count("\x1b[2K") == 2 and "50/100" in second

    pipe = io.StringIO()
    quiet = Progress(pipe, min_interval=0.0)
    quiet.log("a", "first log")
    quiet.update("a", 10, 100)
    quiet.draw(force=True)
    assert not quiet.enabled and pipe.getvalue() == ""


def state(**changes: object) -> LogState:
    values: dict[str, object] = dict(
        log_id=bytes(range(32)), url="http://127.0.0.1:1/\x1b]0;pwned\x07/", kind="rfc6962",
        description="d", state="usable", position=900, start_index=0, compact_range=None,
        verified_size=1000, verified_root=b"\x00" * 32, verified_timestamp=1_700_000_000_000,
        misbehaving=False, errors=2, last_error="http://x/: HTTP 503 after 6 tries", entries_processed=900,
        updated_at=datetime(2023, 11, 14, 22, 15, 20, tzinfo=UTC), latest_size=1200,
    )
    values.update(changes)
    return LogState(**values)  # type: ignore[arg-type]


def test_logs_rows_and_table() -> None:
    now = datetime(2023, 11, 14, 22, 20, 0, tzinfo=UTC)
    heads = [StoredTreeHead(1000, 0, bytes(32), b"{}", True, datetime(2023, 11, 14, 22, 13, 50, tzinfo=UTC))]
    status = log_status(state(), heads, [], now)
    row = status.to_json()
    assert row["tree_size"] == 1000 and row["position"] == 900 and row["backlog"] == 300
    assert row["last_tree_head_time"] == "2023-11-14T22:13:20Z"
    assert row["last_tree_head_age_seconds"] == 400.0
    assert row["entries_per_second"] == 10.0  # 900 entries from 22:13:50 to 22:15:20
    assert row["errors"] == 2 and row["misbehaving"] is False
    fork = MisbehaviourRecord(
        MisbehaviourKind.FORK, "two heads", {}, datetime(2023, 11, 14, 22, 19, 0, tzinfo=UTC)
    )
    bad_status = log_status(state(misbehaving=True), heads, [fork], now)
    bad = bad_status.to_json()
    assert bad["misbehaviour"] == [{"kind": "fork", "time": "2023-11-14T22:19:00Z", "detail": "two heads"}]
    table = format_table([status, bad_status])
    lines = table.splitlines()
    assert len(lines) == 3 and lines[0].startswith("URL")
    assert "\x1b" not in table and "\x07" not in table and "\\x1b]0;pwned\\x07" in table
    assert "MISBEHAVING: fork at 2023-11-14T22:19:00Z" in lines[2]
    assert "1,000" in lines[1] and "6m40s" in lines[1]
