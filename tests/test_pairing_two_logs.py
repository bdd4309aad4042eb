"""One issuance, two logs: a precertificate logged in one test log and its final certificate in another
are ONE alert with both sightings (DESIGN.md section 1), read over HTTP by the real monitor."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ctsentinel.cli import main
from ctsentinel.testlog.server import BackgroundLog
from testlog_client import get_json, submit
from testlog_pki import make_leaf, make_pki


def _merged_log_list(tmp_path: Path, logs: list[BackgroundLog]) -> Path:
    # Each test log publishes its own list; a real monitor reads one list naming several logs.
    operators = []
    for log in logs:
        listed = json.loads((log.directory / "log_list.json").read_text())
        for operator in listed["operators"]:
            operator["name"] = f"{operator['name']} {log.port}"
            operator["tiled_logs"] = []  # read both over RFC 6962 here; the static side is tested elsewhere
            operators.append(operator)
    merged = dict(listed, operators=operators)
    path = tmp_path / "log_list.json"
    path.write_text(json.dumps(merged))
    return path


def test_precert_in_one_log_and_cert_in_another_are_one_alert(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog], capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = testlog_factory(), testlog_factory()
    fina = make_pki("Fina RDC 2020")
    serial = 0xD3167EFD77CAD759000000005FC7C672

    def issue(serial: int, precert: bool) -> list[bytes]:
        return fina.chain(
            make_leaf(fina.intermediate, ["test1.hr"], ["1.1.1.1"], precert=precert, serial=serial)
        )

    submit(first.url, issue(serial, precert=True), precert=True)
    submit(second.url, issue(serial, precert=False))
    submit(second.url, issue(serial + 1, precert=True), precert=True)

    config = tmp_path / "ctsentinel.toml"
    config.write_text(
        f'database = "sqlite:///{tmp_path / "ct.db"}"\n'
        f'[logs]\nlist = "{_merged_log_list(tmp_path, [first, second])}"\nstart = "beginning"\n'
        '[[watch]]\nname = "cloudflare-dns"\nips = ["1.1.1.1"]\n'
    )
    # The sequencer publishes a head within its merge delay; --once catches up to the head it sees at start.
    deadline = time.monotonic() + 30
    while [get_json(f"{log.url}ct/v1/get-sth")["tree_size"] for log in (first, second)] != [1, 2]:
        assert time.monotonic() < deadline, "the test logs did not publish their entries"
        time.sleep(0.05)
    assert main(["-c", str(config), "run", "--once"]) == 0
    capsys.readouterr()
    assert main(["-c", str(config), "alerts", "--json"]) == 0
    alerts = json.loads(capsys.readouterr().out)
    by_serial = {a["serial"]: a for a in alerts}
    assert set(by_serial) == {"d3167efd77cad759000000005fc7c672", "d3167efd77cad759000000005fc7c673"}
    paired = by_serial["d3167efd77cad759000000005fc7c672"]
    assert sorted((e["log"], e["type"]) for e in paired["entries"]) == sorted(
        [(first.url, "precert"), (second.url, "cert")]
    )
    assert len(paired["sha256"]) == 2 and paired["matched"] == ["1.1.1.1"]
    assert paired["reason"] == "unauthorized_issuer" and paired["severity"] == "critical"
    assert len(by_serial["d3167efd77cad759000000005fc7c673"]["entries"]) == 1
