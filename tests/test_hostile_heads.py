"""A log serving bloated, badly signed tree heads, a new one at every request, costs bounded storage and at
most one health notification per kind; tree_heads stays bounded on an honest log too.

The suite runs the flood for HOSTILE_SECONDS (default 15); `CTSENTINEL_HOSTILE_SECONDS=60 pytest
tests/test_hostile_heads.py` runs the full minute.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ctsentinel.store import Store
from ctsentinel.testlog.server import BackgroundLog
from hostile_helpers import database_of, logs_json, one_api_list, run_once, wait_for_size, write_config
from store_certs import head, log_info
from testlog_client import set_faults, submit
from testlog_pki import make_leaf, make_pki

HOSTILE_SECONDS = float(os.environ.get("CTSENTINEL_HOSTILE_SECONDS", "15"))
PADDING = 900_000  # bytes a head carries: under the 1 MiB a tree head may be, so each one is evidence


@pytest.mark.parametrize("kind", ["rfc6962", "static-ct"])
def test_bloated_bad_heads_cost_bounded_storage_and_one_notification(
    kind: str, tmp_path: Path, testlog_factory: Callable[..., BackgroundLog],
    capsys: pytest.CaptureFixture[str],
) -> None:
    pki = make_pki("Heads")
    log = testlog_factory()
    for n in range(3):
        submit(log.url, pki.chain(make_leaf(pki.intermediate, [f"h{n}.example"])))
    wait_for_size(log, 3)
    events = tmp_path / "events.jsonl"
    notify = f'[[notify]]\nkind = "jsonl"\npath = "{events}"\n'
    config = write_config(tmp_path, one_api_list(log, kind), extra=notify)
    assert run_once(capsys, config)[0] == 0  # caught up: what follows is only the flood
    before = database_of(config).stat().st_size
    set_faults(log.url, {"bloated-sth": PADDING})
    process = subprocess.Popen(
        [sys.executable, "-m", "ctsentinel.cli", "-c", str(config), "run"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(HOSTILE_SECONDS)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err  # a log misbehaved
    grown = database_of(config).stat().st_size - before
    assert grown < 1_000_000, f"the database grew by {grown} bytes"
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    health = [e for e in lines if e.get("event") == "log_health"]
    assert [e["detail"].split(":")[0] for e in health] == ["bad_signature"]
    (status,) = logs_json(capsys, config)
    assert [m["kind"] for m in status["misbehaviour"]] == ["bad_signature", "bad_signature"]
    store = Store.open(f"sqlite:///{database_of(config)}")
    try:
        first, latest = store.misbehaviour(status_log_id(status))
        assert first.evidence["head"]["raw_size"] > PADDING / 2  # cut, its size and hash kept
        assert len(first.evidence["head"]["raw"]) <= 16 << 10
        assert latest.evidence["occurrences"] >= 2
    finally:
        store.close()


def status_log_id(status: dict[str, object]) -> bytes:
    return bytes.fromhex(str(status["log_id"]))


def test_a_head_over_a_mebibyte_is_an_error_not_evidence(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog], capsys: pytest.CaptureFixture[str],
) -> None:
    log = testlog_factory()
    set_faults(log.url, {"bloated-sth": 5_000_000})
    config = write_config(tmp_path, one_api_list(log, "rfc6962"))
    code, _, err = run_once(capsys, config)
    assert code == 1
    # One line. The head's size, root and timestamp are random, so its length varies by a few digits.
    assert re.fullmatch(
        rf"ctsentinel: log {re.escape(log.url)} not caught up: {re.escape(log.url)}ct/v1/get-sth: "
        r"response of 5,?000,?2\d\d bytes exceeds the limit of 1,?048,?576\n",
        err,
    ), err


def test_tree_heads_stay_bounded_on_an_honest_log(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'heads.db'}")
    try:
        info = log_info("honest")
        store.sync_logs([info])
        for size in range(1, 2001):
            store.record_tree_head(info.log_id, head(size, size.to_bytes(32, "big")), verified=True)
        kept = store.tree_heads(info.log_id)
        assert 256 <= len(kept) <= 256 + 64 + 2
        sizes = [h.tree_size for h in kept]
        assert sizes[0] == 1 and sizes[-1] == 2000  # the first sighting and the newest stay
        assert sizes == sorted(sizes)
    finally:
        store.close()
