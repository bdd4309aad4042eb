"""Operating several processes, on SQLite: a second `run` on the same database is refused in one line;
`logs --json` and `db stats` show which process works each log; SIGTERM exits cleanly and gives the
leases back at once; `db migrate` brings a database up to date and says so."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from ctsentinel.cli import main
from ctsentinel.store import migrations
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import BackgroundLog
from workers_world import ctsentinel, wait_until


def _config(tmp_path: Path, log: BackgroundLog) -> Path:
    config = tmp_path / "ctsentinel.toml"
    config.write_text(
        f'database = "sqlite:///{tmp_path / "ct.db"}"\n'
        f'[logs]\nlist = "{log.directory / "log_list.json"}"\nstart = "beginning"\npoll_interval = 0.2\n'
        '[monitor]\ndecode_processes = 1\nlease_seconds = 30\n'
    )
    return config


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_one_run_per_sqlite_database_and_leases_given_back_on_sigterm(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog], capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "log"
    populate(directory, entries=300, scenario=None, seed=2)
    log = testlog_factory(directory)
    config = _config(tmp_path, log)
    c = str(config)
    running = ctsentinel(config, "run", name="daemon")
    try:

        def working() -> bool:
            if main(["-c", c, "logs", "--json"]) != 0:
                return False
            logs = json.loads(capsys.readouterr().out)
            return bool(logs) and all(row["position"] == 300 and row["worker"] for row in logs)

        wait_until(working, 60, "the daemon to catch up")
        logs = _json(capsys, "-c", c, "logs", "--json")
        assert isinstance(logs, list)
        # The new keys come last: the existing ones keep their order.
        assert list(logs[0])[-2:] == ["worker", "ranges"]
        assert logs[0]["worker"].split(":")[1] == str(running.pid)

        stats = _json(capsys, "-c", c, "db", "stats", "--json")
        assert isinstance(stats, dict)
        assert stats["rows"]["log_leases"] == 1 and stats["size_bytes"] > 0
        assert {row["worker"] for row in stats["logs"]} == {logs[0]["worker"]}
        assert main(["-c", c, "db", "stats"]) == 0
        text = capsys.readouterr().out
        assert "leases:" in text and logs[0]["worker"] in text

        # A second process on the same SQLite file: refused, in one line, naming the holder.
        assert main(["-c", c, "run", "--once"]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"pid {running.pid}" in err and "in use" in err
    finally:
        running.send_signal(signal.SIGTERM)
    assert running.wait(timeout=30) == 0, (tmp_path / "daemon.log").read_text()
    # Given back at once, not left to expire.
    stats = _json(capsys, "-c", c, "db", "stats", "--json")
    assert isinstance(stats, dict)
    assert all(lease["holder"] is None for lease in stats["leases"])
    assert main(["-c", c, "run", "--once"]) == 0


def test_db_migrate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "ctsentinel.toml"
    config.write_text(f'database = "sqlite:///{tmp_path / "ct.db"}"\n')
    assert main(["-c", str(config), "db", "migrate"]) == 0
    first = capsys.readouterr().out
    assert f"migrated from revision (empty database) to {migrations.HEAD}" in first
    assert main(["-c", str(config), "db", "migrate"]) == 0
    assert f"at revision {migrations.HEAD}, nothing to do" in capsys.readouterr().out
