"""Shared by the hostile-log tests: a test log's own list cut to one API, a config, `run --once`, alerts."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from ctsentinel import cli
from ctsentinel.testlog.server import BackgroundLog
from testlog_client import get_json


def one_api_list(log: BackgroundLog, kind: str) -> Path:
    """The test log's own list keeping one API's section (it lists itself under both)."""
    document = json.loads((log.directory / "log_list.json").read_text())
    for operator in document["operators"]:
        operator["tiled_logs" if kind == "rfc6962" else "logs"] = []
    path = log.directory.parent / f"{log.directory.name}-{kind}.json"
    path.write_text(json.dumps(document))
    return path


def write_config(tmp_path: Path, list_path: Path | str, *, name: str = "ct", extra: str = "",
                 monitor: str = "", logs: str = "") -> Path:
    config = tmp_path / f"{name}.toml"
    config.write_text(
        f'database = "sqlite:///{tmp_path / name}.db"\n'
        f'[logs]\nlist = "{list_path}"\nstart = "beginning"\npoll_interval = 0.2\n'
        f"requests_per_second = 1000\n{logs}"
        f"[monitor]\ndecode_processes = 1\ndeliver_timeout = 3\n{monitor}"
        + extra
    )
    return config


def database_of(config: Path) -> Path:
    return Path(config.read_text().split("sqlite:///", 1)[1].split('"', 1)[0])


def run_once(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, str, str]:
    code = cli.main(["-c", str(config), "run", "--once"])
    out, err = capsys.readouterr()
    return code, out, err


def alerts(capsys: pytest.CaptureFixture[str], config: Path) -> list[dict[str, Any]]:
    assert cli.main(["-c", str(config), "alerts", "--json"]) == 0
    found: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return found


def logs_json(capsys: pytest.CaptureFixture[str], config: Path) -> list[dict[str, Any]]:
    assert cli.main(["-c", str(config), "logs", "--json"]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


def wait_for_size(log: BackgroundLog, size: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while get_json(f"{log.url}ct/v1/get-sth")["tree_size"] < size:
        assert time.monotonic() < deadline, f"the test log did not reach size {size}"
        time.sleep(0.05)


def table_rows(config: Path, table: str) -> int:
    with sqlite3.connect(database_of(config)) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
