"""Several `ctsentinel run` processes on one PostgreSQL database (a throwaway cluster on 127.0.0.1), real
test logs over HTTP, real processes and real signals:

- three workers on the backlog of three logs (one read through static-ct tiles), one of them killed with
  SIGKILL mid-way, end with exactly what one process alone stores: every entry once, every alert once;
- a worker paused with SIGSTOP past its lease, then continued, commits nothing;
- one log's backlog worked in ranges by two processes equals the same log read sequentially.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pg_cluster
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import BackgroundLog
from workers_world import (
    combined_log_list,
    ctsentinel,
    dump,
    new_database,
    query,
    scalar,
    wait_until,
    watch_table,
    write_config,
)

pytestmark = pytest.mark.skipif(pg_cluster.available() is not None, reason=str(pg_cluster.available()))

SIZES = (1500, 1100, 900)  # the first log carries the 1.1.1.1 scenario: 12 alerts


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with pg_cluster.cluster() as url:
        yield url


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """Three populated logs, served (slowly, 5 ms a request, so that work is spread over time) for the
    module's tests."""
    base = tmp_path_factory.mktemp("logs")
    directories = []
    for position, size in enumerate(SIZES):
        directory = base / f"log{position}"
        scenario = "fina-1.1.1.1" if position == 0 else None
        populate(directory, entries=size, scenario=scenario, seed=position + 1)
        directories.append(directory)
    served = [BackgroundLog(d, merge_delay=0.05, faults=("slow=0.005",)).start() for d in directories]
    try:
        yield directories
    finally:
        for log in served:
            log.stop()


Dump = dict[str, list[tuple[Any, ...]]]


def _reference(postgres: str, tmp_path: Path, log_list: Path, watches: str) -> Dump:
    """What one process alone, reading every log sequentially, leaves behind."""
    database = new_database(postgres)
    config = write_config(tmp_path / "reference.toml", database, log_list, watches=watches, range_workers=0)
    process = ctsentinel(config, "run", "--once", name="reference")
    assert process.wait(timeout=180) == 0, (tmp_path / "reference.log").read_text()
    return dump(database)


def test_three_workers_one_killed_equal_one_process(postgres: str, logs: list[Path], tmp_path: Path) -> None:
    log_list = combined_log_list(tmp_path / "list.json", logs, static={2})
    watches = watch_table(logs[0])
    expected = _reference(postgres, tmp_path, log_list, watches)
    assert len(expected["alerts"]) == 12 and expected["ranges_left"] == [(0,)]
    assert sorted(row[2] for row in expected["logs"]) == sorted(SIZES)

    database = new_database(postgres)
    alerts = tmp_path / "alerts.jsonl"
    config = write_config(
        tmp_path / "shared.toml", database, log_list, watches=watches, range_entries=250, notify=alerts
    )
    workers = [ctsentinel(config, "run", "--once", name=f"worker{i}") for i in range(3)]
    total = sum(SIZES)
    # Killed once the three together have committed a third of everything: in the middle of the work.
    wait_until(lambda: scalar(database, "SELECT count(*) FROM log_entries") >= total // 3, 120, "progress")
    workers[0].send_signal(signal.SIGKILL)
    assert workers[0].wait(timeout=30) == -signal.SIGKILL
    for i, worker in enumerate(workers[1:], start=1):
        assert worker.wait(timeout=180) == 0, (tmp_path / f"worker{i}.log").read_text()

    found = dump(database)
    queued = found.pop("deliveries")
    expected.pop("deliveries")  # the reference has no channel
    assert found == expected
    # Each alert was queued once, and no process delivered one twice.
    assert len(queued) == 12 and len(set(queued)) == 12
    delivered = [json.loads(line) for line in alerts.read_text().splitlines()] if alerts.exists() else []
    ids = [event["id"] for event in delivered if "event" not in event]
    assert len(ids) == len(set(ids))


def test_paused_worker_commits_nothing(postgres: str, logs: list[Path], tmp_path: Path) -> None:
    log_list = combined_log_list(tmp_path / "list.json", logs[:2])
    watches = watch_table(logs[0])
    expected = _reference(postgres, tmp_path, log_list, watches)

    database = new_database(postgres)
    config = write_config(tmp_path / "shared.toml", database, log_list, watches=watches, range_entries=400)
    paused = ctsentinel(config, "run", "--once", name="paused")
    wait_until(lambda: scalar(database, "SELECT count(*) FROM log_entries") >= 300, 120, "progress")
    paused.send_signal(signal.SIGSTOP)
    try:
        # Its leases expire (2 s); a second process takes every log and range over and finishes.
        successor = ctsentinel(config, "run", "--once", name="successor")
        try:
            code = successor.wait(timeout=180)
        except subprocess.TimeoutExpired:
            successor.kill()
            code = None
        assert code == 0, _diagnosis(database, tmp_path / "successor.log")
        finished = dump(database)
        assert finished == expected
    finally:
        paused.send_signal(signal.SIGCONT)
    # Woken past its leases, with downloads, proofs and commits in flight: none of them lands.
    paused.wait(timeout=120)
    assert dump(database) == finished


def test_range_parallel_backfill_equals_sequential(postgres: str, logs: list[Path], tmp_path: Path) -> None:
    """The 1.1.1.1 log through both of its APIs: cut into ranges of 200 entries (each range's start proven
    from an inclusion proof, or from hash tiles), worked by two processes at once."""
    for static in (set(), {0}):
        folder = tmp_path / ("static" if static else "rfc6962")
        folder.mkdir()
        log_list = combined_log_list(folder / "list.json", logs[:1], static=static)
        watches = watch_table(logs[0])
        expected = _reference(postgres, folder, log_list, watches)
        database = new_database(postgres)
        config = write_config(folder / "ranges.toml", database, log_list, watches=watches, range_entries=200)
        workers = [ctsentinel(config, "run", "--once", name=f"ranges{i}") for i in range(2)]
        for i, worker in enumerate(workers):
            assert worker.wait(timeout=180) == 0, (folder / f"ranges{i}.log").read_text()
        assert dump(database) == expected
        # Both did part of the work, and together every entry once.
        done = [_entries((folder / f"ranges{i}.log").read_text()) for i in range(2)]
        assert all(done) and sum(done) == SIZES[0], done


def _diagnosis(database: str, output: Path) -> str:
    """What the database's sessions and leases were doing, for a failure message."""
    sessions = query(
        database,
        "SELECT pid, state, wait_event_type, wait_event, left(query, 100) FROM pg_stat_activity"
        " WHERE datname = current_database()",
    )
    leases = query(database, "SELECT * FROM log_leases")
    ranges = query(database, 'SELECT log, start, "end", position, holder, token, expires_at FROM log_ranges')
    logs = query(database, "SELECT url, position, verified_size FROM logs")
    return f"{output.read_text()}\nsessions: {sessions}\nleases: {leases}\nranges: {ranges}\nlogs: {logs}"


def _entries(output: str) -> int:
    """The entries one `run --once` committed, from its summary line ("…; 1,234 entries in 2s (…)")."""
    (line,) = [line for line in output.splitlines() if " entries in " in line]
    return int(line.split("; ")[-1].split(" entries in ")[0].replace(",", ""))
