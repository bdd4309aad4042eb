"""A tree head whose size has 4,301 decimal digits (past the int-from-text limit Python sets, and far past
uint64) is a malformed response of that log, reported in one line, over real HTTP from the test log's
huge-tree-size fault; the run goes on with what it verified before."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ctsentinel import cli
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import BackgroundLog
from testlog_client import set_faults


def _list_of_one_api(log: BackgroundLog, kind: str) -> Path:
    document = json.loads((log.directory / "log_list.json").read_text())
    for operator in document["operators"]:
        operator["tiled_logs" if kind == "rfc6962" else "logs"] = []
    path = log.directory.parent / f"{kind}.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize("kind", ["rfc6962", "static-ct"])
def test_a_huge_tree_size_is_a_malformed_response_of_that_log(
    kind: str,
    tmp_path: Path,
    testlog_factory: Callable[..., BackgroundLog],
    capsys: pytest.CaptureFixture[str],
) -> None:
    populate(tmp_path / "log", entries=40, scenario=None, seed=5)
    log = testlog_factory(tmp_path / "log")
    config = tmp_path / "ctsentinel.toml"
    config.write_text(
        f'database = "sqlite:///{tmp_path / "ct.db"}"\n'
        f'[logs]\nlist = "{_list_of_one_api(log, kind)}"\nstart = "beginning"\nrequests_per_second = 1000\n'
    )
    assert cli.main(["-c", str(config), "run", "--once"]) == 0
    capsys.readouterr()

    set_faults(log.url, {"huge-tree-size": None})
    assert cli.main(["-c", str(config), "run", "--once"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 400, err
    assert "internal error" not in err and "ValueError" not in err
    assert f"log {log.url}" in err and "digits" in err and "9" * 50 not in err
    assert cli.main(["-c", str(config), "logs", "--json"]) == 0
    (state,) = json.loads(capsys.readouterr().out)
    assert state["position"] == 40 and state["errors"] >= 1
