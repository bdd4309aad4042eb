"""`ctsentinel run` without --once: polls, follows the log list as it changes, stops cleanly on a signal."""

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

from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import BackgroundLog
from test_testlog_server import wait_for_size
from testlog_client import submit
from testlog_pki import make_leaf, make_pki


def positions(database: Path) -> dict[str, int | None]:
    if not database.exists():
        return {}
    try:
        with sqlite3.connect(database) as db:
            return dict(db.execute("SELECT url, position FROM logs").fetchall())
    except sqlite3.OperationalError:
        return {}


def wait_until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def rfc6962_list(*logs: BackgroundLog) -> str:
    documents = [json.loads((log.directory / "log_list.json").read_text()) for log in logs]
    operators = []
    for document in documents:
        for operator in document["operators"]:
            operator["tiled_logs"] = []
            operators.append(operator)
    return json.dumps({**documents[0], "operators": operators})


def test_run_follows_the_log_and_its_list_then_stops_cleanly(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog]
) -> None:
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    populate(first_dir, entries=300, scenario=None, seed=11)
    populate(second_dir, entries=200, scenario=None, seed=12)
    first = testlog_factory(first_dir)
    second = testlog_factory(second_dir)
    log_list = tmp_path / "list.json"
    log_list.write_text(rfc6962_list(first))
    database = tmp_path / "ct.db"
    config = tmp_path / "ct.toml"
    config.write_text(
        f'database = "sqlite:///{database}"\n'
        f'[logs]\nlist = "{log_list}"\nstart = "beginning"\npoll_interval = 0.2\nrefresh_interval = 1\n'
        f'[monitor]\nstore = "all"\ncommit_entries = 100\ndecode_processes = 1\n'
    )
    output = (tmp_path / "run.log").open("w")
    child = subprocess.Popen(
        [sys.executable, "-m", "ctsentinel", "-c", str(config), "run"],
        stdout=output, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        wait_until(lambda: positions(database).get(first.url) == 300)
        # New entries are read on the next poll.
        pki = make_pki("Daemon")
        for i in range(3):
            submit(first.url, pki.chain(make_leaf(pki.intermediate, [f"later{i}.example.org"])))
        wait_for_size(first.url, 303)
        wait_until(lambda: positions(database).get(first.url) == 303)
        # A broken list is reported and the old one kept; a good one adds the new log.
        log_list.write_text("{ not json")
        time.sleep(1.5)
        assert child.poll() is None
        log_list.write_text(rfc6962_list(first, second))
        wait_until(lambda: positions(database).get(second.url) == 200)
        assert positions(database)[first.url] == 303
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        output.close()
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM log_entries").fetchone()[0] == 503
        assert db.execute("SELECT sum(errors), sum(misbehaving) FROM logs").fetchone() == (0, 0)
    text = (tmp_path / "run.log").read_text()
    assert "Traceback" not in text and "keeping the previous list" in text, text


def test_run_refuses_a_missing_or_broken_list_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "ct.toml"
    for list_text in (None, "[]"):
        path = tmp_path / "list.json"
        if list_text is not None:
            path.write_text(list_text)
        config.write_text(f'database = "sqlite:///{tmp_path}/ct.db"\n[logs]\nlist = "{path}"\n')
        result = subprocess.run(
            [sys.executable, "-m", "ctsentinel", "-c", str(config), "run", "--once"],
            capture_output=True, text=True, timeout=60,
        )
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ctsentinel: log list"), result.stderr


def test_progress_is_drawn_on_a_terminal_and_absent_in_a_pipe(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog]
) -> None:
    import pty

    directory = tmp_path / "log"
    populate(directory, entries=400, scenario=None, seed=13)
    log = testlog_factory(directory)
    log_list = tmp_path / "list.json"
    log_list.write_text(rfc6962_list(log))
    outputs = {}
    for name in ("terminal", "pipe"):
        config = tmp_path / f"{name}.toml"
        config.write_text(
            f'database = "sqlite:///{tmp_path / name}.db"\n[logs]\nlist = "{log_list}"\nstart = "beginning"\n'
            f'[monitor]\nstore = "all"\ncommit_entries = 50\ndecode_processes = 1\n'
        )
        command = [sys.executable, "-m", "ctsentinel", "-c", str(config), "run", "--once"]
        if name == "pipe":
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0
            outputs[name] = done.stderr
            continue
        controller, terminal = pty.openpty()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=terminal)
        os.close(terminal)
        chunks = []
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        os.close(controller)
        assert child.wait(timeout=60) == 0
        outputs[name] = b"".join(chunks).decode()
    assert outputs["pipe"] == ""
    drawn = outputs["terminal"]
    assert "\x1b[2K" in drawn and "ctsentinel test log (RFC 6962) (rfc6962)" in drawn
    assert "400/400" in drawn and "caught up" in drawn
