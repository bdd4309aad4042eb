"""Shared by the hostile-log tests: a test log's own list cut to one API, a config, `run --once`, alerts."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from ctsentinel import cli
from ctsentinel.certs.record import CertRecord
from ctsentinel.config import load_config
from ctsentinel.monitor.decode_pool import Matcher
from ctsentinel.monitor.gateway import StoreGateway
from ctsentinel.monitor.pipeline import Monitor, RunReport
from ctsentinel.notify import Notifier
from ctsentinel.testlog.server import BackgroundLog
from ctsentinel.watch.finding import Finding
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


class StallingMatcher:
    """A matcher (picklable, for the decode processes) that takes `seconds` over any certificate naming
    stall.example and matches nothing: what a certificate built to be slow to decode does to a worker."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def match(self, record: CertRecord) -> list[Finding]:
        if "stall.example" in record.dns_names:
            time.sleep(self.seconds)
        return []


def run_monitor_once(config_path: Path, matcher: Matcher | None) -> RunReport:
    """`run --once` through the monitor's public API, with a matcher of the test's choosing."""

    async def main() -> RunReport:
        config = load_config(config_path)
        async with StoreGateway.open(config.database) as gateway:
            notifier = Notifier.from_settings(gateway.store, config.notify, offload=gateway.offload)
            monitor = Monitor(
                config.logs, config.monitor, gateway=gateway, notifier=notifier, matcher=matcher,
                once=True, warn=lambda line: None,
            )
            return await monitor.run()

    return asyncio.run(main())
