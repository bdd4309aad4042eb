"""A store filled from the fina-1.1.1.1 and hostile scenarios, and `ctsentinel serve` over it, for the web
tests: a real test log on 127.0.0.1, the real monitor (`run --once` with store = "all"), then the real
server in a subprocess, spoken to over HTTP."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ctsentinel.commands.demo import _issue_fina_precertificate, _tree_size
from ctsentinel.commands.run import catch_up
from ctsentinel.config import load_config
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import BackgroundLog

TOKEN = "test-token-0123456789abcdef"
WATCH = "cloudflare-dns"


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def build(base: Path, *, entries: int = 2200) -> Path:
    """Fill a store; returns its config file."""
    log = base / "log"
    populate(log, entries=entries, scenario="fina-1.1.1.1", seed=1)
    populate(log, entries=200, scenario="hostile", seed=2)
    scenario = json.loads((log / "scenario.json").read_text())
    watches = {w["name"]: w for w in scenario["watches"]}
    sections = []
    for watch in watches.values():
        sections.append(
            f"""
[[watch]]
name = {json.dumps(watch["name"])}
domains = {_toml_list(watch.get("domains", []))}
ips = {_toml_list(watch.get("ips", []))}
authorized_issuers = {_toml_list(watch.get("authorized_issuers", []))}
"""
        )
    token_file = base / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    config = base / "ctsentinel.toml"
    config.write_text(
        f"""database = "sqlite:///{base / "ct.db"}"

[logs]
list = {json.dumps(str(log / "log_list.json"))}
start = "beginning"
requests_per_second = 1000

[monitor]
store = "all"

[web]
token_file = "token"
{"".join(sections)}"""
    )
    with BackgroundLog(log, merge_delay=0.05) as served:
        # One current issuance (the scenario's are all expired by now): Fina logs a precertificate for
        # 1.1.1.1 today, so that "unexpired only" (Cert Spotter, exclude=expired) has something to show.
        chain, _serial = _issue_fina_precertificate(log)
        body = json.dumps({"chain": [base64.b64encode(c).decode() for c in chain]}).encode()
        request = urllib.request.Request(
            served.url + "ct/v1/add-pre-chain", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        deadline = time.monotonic() + 30
        while _tree_size(served.url) <= entries + 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        report = catch_up(load_config(config))
    assert report.exit_code() == 0, report
    return config


@dataclass
class Server:
    url: str  # ends in "/"
    process: subprocess.Popen[str]
    config: Path


@contextmanager
def serving(config: Path) -> Iterator[Server]:
    cmd = [sys.executable, "-m", "ctsentinel", "-c", str(config), "serve", "--port", "0"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("ctsentinel: serving "):
        process.kill()
        raise RuntimeError(f"serve did not start: {line!r} {process.stderr.read() if process.stderr else ''}")
    try:
        yield Server(line.split()[2], process, config)
    finally:
        process.terminate()
        process.wait(timeout=30)
