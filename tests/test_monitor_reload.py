"""SIGHUP reloads the config of a running `ctsentinel run`: new watches and channels take effect, no log
restarts from scratch, and a broken edit is refused in one line while the monitor goes on."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ctsentinel.config import load_config
from ctsentinel.store import Store
from ctsentinel.testlog.server import BackgroundLog
from testlog_client import get_json, submit
from testlog_pki import make_leaf, make_pki


def _config(tmp_path: Path, log: BackgroundLog, watch: str, jsonl: str) -> str:
    return (
        f'database = "sqlite:///{tmp_path / "ct.db"}"\n'
        f'[logs]\nlist = "{log.directory / "log_list.json"}"\nstart = "beginning"\npoll_interval = 0.1\n'
        f"[[watch]]\n{watch}\n"
        f'[[notify]]\nkind = "jsonl"\npath = "{tmp_path / jsonl}"\n'
    )


def _wait(predicate: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_sighup_reloads_watches_and_channels_without_restarting_logs(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog]
) -> None:
    log = testlog_factory()
    fina = make_pki("Fina RDC 2020")

    def plant(serial: int) -> None:
        leaf = make_leaf(fina.intermediate, ["test1.hr"], ["1.1.1.1"], precert=True, serial=serial)
        submit(log.url, fina.chain(leaf), precert=True)

    config = tmp_path / "ctsentinel.toml"
    config.write_text(_config(tmp_path, log, 'name = "w"\ndomains = ["nothing.example"]', "before.jsonl"))
    database = load_config(config).database
    stderr = (tmp_path / "run.stderr").open("w+")
    run = subprocess.Popen(
        [sys.executable, "-m", "ctsentinel", "-c", str(config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    try:

        def position() -> int:
            store = Store.open(database)
            try:
                return max((s.position or 0) for s in store.log_states()) if store.log_states() else 0
            finally:
                store.close()

        def alerts() -> list[dict[str, object]]:
            store = Store.open(database)
            try:
                return [alert.to_json() for alert in store.list_alerts()]
            finally:
                store.close()

        plant(1)
        _wait(lambda: position() == 1, "the first entry to be processed")
        assert alerts() == []  # 1.1.1.1 is not watched yet

        config.write_text(_config(tmp_path, log, 'name = "w"\nips = ["1.1.1.1"]', "after.jsonl"))
        run.send_signal(signal.SIGHUP)
        _wait(lambda: "reloaded" in (tmp_path / "run.stderr").read_text(), "the reload")
        plant(2)
        _wait(lambda: len(alerts()) == 1, "the alert under the new watch")
        (alert,) = alerts()
        # Only the new entry: the log was not re-read from the start (entry 0 is not matched again).
        assert alert["serial"] == "02" and alert["entries"] == [
            {"log": log.url, "index": 1, "type": "precert"}
        ]
        assert position() == 2
        _wait(lambda: (tmp_path / "after.jsonl").exists(), "delivery through the new channel")
        assert json.loads((tmp_path / "after.jsonl").read_text().splitlines()[0])["serial"] == "02"
        assert not (tmp_path / "before.jsonl").exists()

        # A broken edit is refused in one line; the monitor keeps running on the config it has.
        config.write_text(_config(tmp_path, log, 'name = "w"\nips = ["1.1.1.300"]', "after.jsonl"))
        run.send_signal(signal.SIGHUP)
        _wait(lambda: "config not reloaded" in (tmp_path / "run.stderr").read_text(), "the refusal")
        refusal = [ln for ln in (tmp_path / "run.stderr").read_text().splitlines() if "not reloaded" in ln]
        assert len(refusal) == 1 and "ips[0] '1.1.1.300' is not an IP address" in refusal[0]
        plant(3)
        _wait(lambda: len(alerts()) == 2, "the alert after the refused reload")
        assert run.poll() is None
        assert get_json(f"{log.url}ct/v1/get-sth")["tree_size"] == 3
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=30) == 0
        stderr.close()


def test_a_log_that_falls_behind_is_a_health_event(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog]
) -> None:
    log = testlog_factory()
    fina = make_pki("Fina RDC 2020")
    submit(log.url, fina.chain(make_leaf(fina.intermediate, ["a.example"], precert=True)), precert=True)
    config = tmp_path / "ctsentinel.toml"
    config.write_text(
        _config(tmp_path, log, 'name = "w"\ndomains = ["example.org"]', "health.jsonl")
        + "[monitor]\nmax_lag = 1\n"
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "ctsentinel", "-c", str(config), "run"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def caught_up() -> bool:
            store = Store.open(load_config(config).database)
            try:
                return any(s.position == 1 for s in store.log_states())
            finally:
                store.close()

        _wait(caught_up, "the monitor to verify the log")
        # The log stops signing new tree heads: its newest verified head ages past max_lag.
        log.stop()
        path = tmp_path / "health.jsonl"
        _wait(lambda: path.exists() and path.read_text().strip() != "", "a log-health event", seconds=60)
        event = json.loads(path.read_text().splitlines()[0])
        assert event["event"] == "log_health" and event["log"] == log.url
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=30) == 0
