"""The same code path on a real PostgreSQL server: a throwaway cluster (initdb/pg_ctl on 127.0.0.1), the
fina-1.1.1.1 test log read by `run --once` with every certificate stored, and the same alerts, searches and
log state as the embedded SQLite default gives for the same log."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pg_cluster
from ctsentinel.cli import main
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import BackgroundLog

pytestmark = pytest.mark.skipif(pg_cluster.available() is not None, reason=str(pg_cluster.available()))


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with pg_cluster.cluster() as url:
        yield url


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main(list(args)) == 0
    out = capsys.readouterr().out
    return json.loads(out) if "--json" in args else out


def _comparable(alerts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    # ids and first_seen differ between two runs; what was found must not.
    return sorted(
        (a["watch"], a["reason"], a["serial"], tuple(a["matched"]), tuple(sorted(a["sha256"])),
         tuple(sorted((e["index"], e["type"]) for e in a["entries"])))
        for a in alerts
    )  # fmt: skip


def test_postgresql_gives_what_sqlite_gives(
    postgres: str,
    tmp_path: Path,
    testlog_factory: Callable[..., BackgroundLog],
    capsys: pytest.CaptureFixture[str],
) -> None:
    log_dir = tmp_path / "log"
    populate(log_dir, entries=1500, scenario="fina-1.1.1.1", seed=1)
    log = testlog_factory(log_dir)
    (watch,) = [w for w in json.loads((log_dir / "scenario.json").read_text())["watches"]]
    results = {}
    for name, database in (("postgresql", postgres), ("sqlite", f"sqlite:///{tmp_path / 'ct.db'}")):
        config = tmp_path / f"{name}.toml"
        config.write_text(
            f'database = "{database}"\n'
            f'[logs]\nlist = "{log.directory / "log_list.json"}"\nstart = "beginning"\n'
            "requests_per_second = 1000\n"
            '[monitor]\nstore = "all"\n'
            f'[[watch]]\nname = "cloudflare-dns"\ndomains = {json.dumps(watch["domains"])}\n'
            f"ips = {json.dumps(watch['ips'])}\n"
            f"authorized_issuers = {json.dumps(watch['authorized_issuers'])}\n"
        )
        c = str(config)
        _run(capsys, "-c", c, "run", "--once")
        _run(capsys, "-c", c, "run", "--once")  # a second run finds nothing new and stores nothing twice
        results[name] = {
            "alerts": _comparable(_run(capsys, "-c", c, "alerts", "--json")),
            "ip": _run(capsys, "-c", c, "search", "1.1.1.1", "--json", "--limit", "1000"),
            "cidr": _run(capsys, "-c", c, "search", "2606:4700:4700::/48", "--json", "--limit", "1000"),
            "domain": _run(capsys, "-c", c, "search", "cloudflare-dns.com", "--json", "--limit", "1000"),
            "issuer": _run(capsys, "-c", c, "search", "issuer:fina rdc", "--json", "--limit", "1000"),
            "logs": [
                {k: row[k] for k in ("tree_size", "position", "backlog", "errors", "misbehaviour")}
                for row in _run(capsys, "-c", c, "logs", "--json")
            ],
        }
    pg, lite = results["postgresql"], results["sqlite"]
    assert len(pg["alerts"]) == 12
    assert pg["logs"] == lite["logs"] and pg["logs"][0]["position"] == 1500
    for key in ("alerts", "ip", "cidr", "domain", "issuer"):
        assert pg[key] and pg[key] == lite[key], key
