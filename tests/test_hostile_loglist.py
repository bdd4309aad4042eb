"""A log list that selects nothing, or cannot be parsed (nested past the JSON parser's depth included), is
refused in one line: at start the run ends with that line; on a refresh the previous list is kept and its
logs stay monitored."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ctsentinel.testlog.server import BackgroundLog
from hostile_helpers import database_of, one_api_list, run_once, wait_for_size, write_config
from testlog_client import request, set_faults, submit
from testlog_pki import make_leaf, make_pki


def test_a_downloaded_list_nested_too_deeply_is_refused_in_one_line(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog], capsys: pytest.CaptureFixture[str],
) -> None:
    log = testlog_factory()
    set_faults(log.url, {"loglist-nested": 100_000})
    listed = f"{log.url}log_list.json"
    code, out, err = run_once(capsys, write_config(tmp_path, listed))
    assert (code, out) == (1, "")
    assert err == f"ctsentinel: log list {listed}: not a log list (JSON nested too deeply)\n"


def test_a_list_that_selects_nothing_is_refused_at_start(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog], capsys: pytest.CaptureFixture[str],
) -> None:
    log = testlog_factory()
    set_faults(log.url, {"loglist-empty": True})
    mirrored = tmp_path / "mirrored.json"  # the operator's list, as published, kept by path
    mirrored.write_bytes(request(f"{log.url}log_list.json").body)
    code, out, err = run_once(capsys, write_config(tmp_path, mirrored))
    assert (code, out) == (1, "")
    assert err == f"ctsentinel: log list {mirrored}: no log to monitor after selection\n"


def _position(config: Path) -> int:
    """The log's committed position; -1 before the run has started it."""
    try:
        with sqlite3.connect(database_of(config)) as db:
            row = db.execute("SELECT position FROM logs").fetchone()
    except sqlite3.OperationalError:  # the store is not created yet
        return -1
    return int(row[0]) if row and row[0] is not None else -1


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_a_refresh_that_selects_nothing_or_cannot_be_parsed_keeps_the_previous_list(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog],
) -> None:
    pki = make_pki("Refresh")
    log = testlog_factory()
    listed = one_api_list(log, "rfc6962")
    good = listed.read_bytes()
    config = write_config(tmp_path, listed, logs="refresh_interval = 1\n")
    stderr = tmp_path / "run.stderr"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(stderr, "w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "ctsentinel.cli", "-c", str(config), "run"],
            stdout=subprocess.DEVNULL, stderr=errors, env=env,
        )
    try:
        _wait(lambda: _position(config) == 0, "the run did not start")
        broken = {
            "selects nothing": json.dumps(
                {"operators": [{"name": "x", "logs": [], "tiled_logs": []}]}
            ).encode(),
            "nested": b"[" * 100_000 + b"]" * 100_000,
            "not JSON": b"{",
        }
        for expected, (what, body) in enumerate(broken.items(), start=1):
            lines = len(stderr.read_text().splitlines())
            listed.write_bytes(body)
            _wait(lambda lines=lines: len(stderr.read_text().splitlines()) > lines, f"no line for {what}")
            # The log is still monitored: what it logs now is read.
            submit(log.url, pki.chain(make_leaf(pki.intermediate, [f"{what.replace(' ', '-')}.example"])))
            wait_for_size(log, expected)
            _wait(lambda n=expected: _position(config) == n, f"the log was not followed after {what}")
        listed.write_bytes(good)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0
    lines = stderr.read_text().splitlines()
    kept = "keeping the previous list"
    assert f"ctsentinel: log list {listed}: no log to monitor after selection; {kept}" in lines
    assert (
        f"ctsentinel: log list {listed}: not a log list (JSON nested too deeply); {kept}" in lines
    )
    assert any(line.startswith(f"ctsentinel: log list {listed}: not JSON (") for line in lines)
    assert all(line.startswith("ctsentinel: log list ") for line in lines), lines
