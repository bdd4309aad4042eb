"""An independent RFC 6962 monitor, Debian's certspotter (SSLMate, Go), reads `testlog serve`.

certspotter is given our DIR/log_list.json with -logs (so it never fetches its default list) and runs with
HTTP(S)_PROXY pointing at a closed local port: Go never proxies loopback, so the log on 127.0.0.1 is
reachable while any other address it might try fails without leaving the machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from test_testlog_server import wait_for_size
from testlog_client import get_json, set_faults, submit
from testlog_pki import make_leaf, make_pki

CERTSPOTTER = shutil.which("certspotter")
pytestmark = pytest.mark.skipif(
    CERTSPOTTER is None, reason="certspotter not installed (apt-get install certspotter; .ci/run does it)"
)

_ENTRY = re.compile(r"^(?P<sha256>[0-9a-f]{64}):$")
_LOG_ENTRY = re.compile(r"Log Entry = (?P<index>\d+) @ (?P<url>\S+)")


def _read_reports(stream: Any, reports: dict[int, str], lock: threading.Lock) -> None:
    current = None
    for line in stream:
        line = line.strip()
        if m := _ENTRY.match(line):
            current = m["sha256"]
        elif (m := _LOG_ENTRY.search(line)) and current:
            with lock:
                reports[int(m["index"])] = current


def run_certspotter(
    log_dir: Path,
    watchlist: Path,
    state_dir: Path,
    done: Callable[[dict[int, str], str], bool],
    timeout: float = 60,
) -> tuple[dict[int, str], str]:
    """Run certspotter on log_dir/log_list.json until done(reports, stderr) or timeout; then SIGTERM it.

    Returns the reports ({entry index: SHA-256 of the reported (pre)certificate}) and its stderr log.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(state_dir.parent),
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    cmd = [
        str(CERTSPOTTER),
        "-logs", str(log_dir / "log_list.json"),
        "-watchlist", str(watchlist),
        "-state_dir", str(state_dir),
        "-stdout",
        "-verbose",
        "-batch_size", "7",  # several get-entries calls, crossing our own batch boundaries
    ]  # fmt: skip
    stderr_path = state_dir.parent / f"certspotter-{time.monotonic_ns()}.stderr"
    reports: dict[int, str] = {}
    lock = threading.Lock()
    with stderr_path.open("w") as stderr:
        spotter = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        reader = threading.Thread(target=_read_reports, args=(spotter.stdout, reports, lock), daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and spotter.poll() is None:
            with lock:
                if done(dict(reports), stderr_path.read_text()):
                    break
            time.sleep(0.1)
        time.sleep(0.5)  # anything reported beyond what we waited for would show up now
        spotter.send_signal(signal.SIGTERM)
        spotter.wait(timeout=30)
        reader.join(timeout=10)
    return reports, stderr_path.read_text()


def test_certspotter_reports_the_planted_certificates(
    tmp_path: Path, testlog_process_factory: Callable[..., Any]
) -> None:
    pki = make_pki("Spot")
    log = testlog_process_factory(tmp_path / "log", "--merge-delay", "0.1")
    planted: dict[int, str] = {}
    index = 0

    def add(dns: list[str], ips: list[str] | None = None, *, precert: bool = False, watched: bool) -> None:
        nonlocal index
        chain = pki.chain(make_leaf(pki.intermediate, dns, ips, precert=precert))
        submit(log.url, chain, precert=precert)
        if watched:
            planted[index] = hashlib.sha256(chain[0]).hexdigest()
        index += 1

    for i in range(20):
        add([f"shop{i}.example.net"], watched=False)
    add(["www.watched.example"], ["1.1.1.1"], precert=True, watched=True)
    add(["www.watched.example"], ["1.1.1.1"], watched=True)
    add(["other.example.org", "deep.api.watched.example"], watched=True)
    add(["*.watched.example"], precert=True, watched=True)
    add(["notwatched.example", "watched.example.com"], watched=False)
    for i in range(5):
        add([f"late{i}.example.net"], ["10.0.0.1"], watched=False)
    assert wait_for_size(log.url, index).tree_size == index

    watchlist = tmp_path / "watchlist"
    watchlist.write_text(".watched.example\n")
    reports, log_text = run_certspotter(
        log.directory, watchlist, tmp_path / "state", done=lambda reports, _: len(reports) >= len(planted)
    )
    assert reports == planted, log_text[-3000:]
    assert f"downloading entries from {log.url} in range [0, {index})" in log_text
    # It verified our tree as it went: no error from the log task other than the final shutdown.
    errors = [
        line for line in log_text.splitlines() if "error" in line.lower() and "context canceled" not in line
    ]
    assert errors == [], errors
    (state_file,) = (tmp_path / "state" / "logs").glob("*/state.json")
    state = json.loads(state_file.read_text())
    assert state["verified_sth"]["tree_size"] == index == state["verified_position"]["size"]
    head = get_json(log.url + "ct/v1/get-sth")
    assert state["verified_sth"]["sha256_root_hash"] == head["sha256_root_hash"]
    assert log.stop() == 0


@pytest.mark.parametrize(
    ("fault", "complaint"),
    [
        ("bad-sth-signature", "STH returned by server has invalid signature"),
        ("bad-entries", "does not match the entries returned by the log"),
        ("fork", "does not match the entries returned by the log"),
    ],
)
def test_certspotter_catches_a_lying_log(
    tmp_path: Path, testlog_factory: Callable[..., Any], fault: str, complaint: str
) -> None:
    pki = make_pki("Liar")
    log = testlog_factory(tmp_path / "log")
    for i in range(6):
        submit(log.url, pki.chain(make_leaf(pki.intermediate, [f"n{i}.watched.example"])))
    wait_for_size(log.url, 6)
    watchlist = tmp_path / "watchlist"
    watchlist.write_text(".watched.example\n")
    state = tmp_path / "state"
    if fault == "fork":
        # certspotter must know the honest tree first: a fork is only visible against the past.
        reports, log_text = run_certspotter(log.directory, watchlist, state, done=lambda r, _: len(r) >= 6)
        assert len(reports) == 6 and complaint not in log_text
    set_faults(log.url, {fault: None})
    if fault == "fork":
        submit(log.url, pki.chain(make_leaf(pki.intermediate, ["after.watched.example"])))
        wait_for_size(log.url, 7)
    _, log_text = run_certspotter(log.directory, watchlist, state, done=lambda _, err: complaint in err)
    assert complaint in log_text, log_text[-3000:]
