"""Certificate fields are attacker-controlled: a hostile certificate is shown escaped in every text output
(alerts, search), kept raw but valid in JSON, and the run still verifies and stores everything."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ctsentinel.cli import main
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import BackgroundLog

DANGEROUS = ["\x1b", "\x00", "\x07", "\x9b", "\u202e", "\r"]


def test_hostile_names_are_escaped_everywhere(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog], capsys: pytest.CaptureFixture[str]
) -> None:
    log_dir = tmp_path / "log"
    populate(log_dir, entries=400, scenario="hostile", seed=3)
    log = testlog_factory(log_dir)
    config = tmp_path / "ctsentinel.toml"
    config.write_text(
        f'database = "sqlite:///{tmp_path / "ct.db"}"\n'
        f'[logs]\nlist = "{log.directory / "log_list.json"}"\nstart = "beginning"\n'
        "requests_per_second = 1000\n"
        '[[watch]]\nname = "hostile"\ndomains = ["hostile.example"]\nips = ["198.18.0.0/24"]\n'
    )
    assert main(["-c", str(config), "run", "--once"]) == 0
    capsys.readouterr()

    assert main(["-c", str(config), "alerts", "--json"]) == 0
    alerts = json.loads(capsys.readouterr().out)
    expected = json.loads((log_dir / "scenario.json").read_text())["expected_alerts"]
    assert len(alerts) == len(expected) > 5
    raw_names = [n for a in alerts for n in a["dns_names"]]
    assert any("\x1b" in n for n in raw_names), "JSON keeps what the CA signed"

    assert main(["-c", str(config), "alerts"]) == 0
    text = capsys.readouterr().out
    assert "hostile.example" in text
    for char in DANGEROUS:
        assert char not in text, repr(char)
    assert "\\x1b" in text

    assert main(["-c", str(config), "search", "hostile.example"]) == 0
    text = capsys.readouterr().out
    assert "hostile.example" in text
    for char in DANGEROUS:
        assert char not in text, repr(char)
