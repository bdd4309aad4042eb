"""`ctsentinel backfill --watch NAME`: a watch added after the logs were read finds what it would have
caught had it been there from the start, in both store modes, through the outbox, once.

store = "all": the stored certificates are matched. store = "matched": the log is read again for that
watch alone, as leased ranges, here by two processes at once on a throwaway PostgreSQL cluster (and by
one on SQLite).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pg_cluster
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import BackgroundLog
from workers_world import combined_log_list, ctsentinel, new_database, watch_table, write_config

needs_postgres = pytest.mark.skipif(pg_cluster.available() is not None, reason=str(pg_cluster.available()))

UNRELATED = '[[watch]]\nname = "unrelated"\ndomains = ["example.org"]\n'


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    if pg_cluster.available() is not None:
        pytest.skip(str(pg_cluster.available()))
    with pg_cluster.cluster() as url:
        yield url


@pytest.fixture(scope="module")
def fina_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("fina") / "log"
    populate(directory, entries=1200, scenario="fina-1.1.1.1", seed=5)
    log = BackgroundLog(directory, merge_delay=0.05).start()
    try:
        yield directory
    finally:
        log.stop()


def _run(config: Path, *args: str, name: str) -> str:
    process = ctsentinel(config, *args, name=name)
    output = config.parent / f"{name}.log"
    assert process.wait(timeout=180) == 0, output.read_text()
    return output.read_text()


def _alerts(config: Path, name: str) -> list[tuple[Any, ...]]:
    out = _run(config, "alerts", "--json", name=name)
    alerts = json.loads(out[out.index("[") :])
    return sorted(
        (a["watch"], a["reason"], a["serial"], tuple(a["matched"]), tuple(sorted(a["sha256"])),
         tuple(sorted((e["index"], e["type"]) for e in a["entries"])))
        for a in alerts
    )  # fmt: skip


def _scenario(
    tmp_path: Path, fina_log: Path, database: str, store: str, sink: Path
) -> tuple[Path, Path, Path]:
    """The config without the watch, with it, and a reference run that had it from the start."""
    log_list = combined_log_list(tmp_path / "list.json", [fina_log])
    watch = watch_table(fina_log)
    kwargs: dict[str, Any] = {"store": store, "range_entries": 300, "notify": sink}
    before = write_config(tmp_path / "before.toml", database, log_list, watches=UNRELATED, **kwargs)
    after = write_config(tmp_path / "after.toml", database, log_list, watches=UNRELATED + watch, **kwargs)
    reference_db = f"sqlite:///{tmp_path / 'reference.db'}"
    reference = write_config(
        tmp_path / "reference.toml", reference_db, log_list, watches=UNRELATED + watch, store=store
    )
    return before, after, reference


def _check(tmp_path: Path, before: Path, after: Path, reference: Path, sink: Path, processes: int) -> None:
    _run(reference, "run", "--once", name="reference")
    expected = _alerts(reference, "reference-alerts")
    assert len(expected) == 12
    _run(before, "run", "--once", name="before")
    assert _alerts(before, "none") == []  # nothing watched the addresses yet
    workers = [
        ctsentinel(after, "backfill", "--watch", "cloudflare-dns", name=f"backfill{i}")
        for i in range(processes)
    ]
    for i, worker in enumerate(workers):
        assert worker.wait(timeout=180) == 0, (tmp_path / f"backfill{i}.log").read_text()
    assert _alerts(after, "after") == expected
    delivered = [json.loads(line) for line in sink.read_text().splitlines()]
    # (run --once also tells each alert's owner that Fina revoked it: those are not alerts.)
    alerts = [event for event in delivered if "event" not in event]
    assert sorted(event["id"] for event in alerts) == list(range(1, 13))  # each alert once
    # Again: nothing new, nothing delivered twice; and the monitor goes on from where it was.
    again = _run(after, "backfill", "--watch", "cloudflare-dns", name="again")
    assert "0 new alerts" in again
    _run(after, "run", "--once", name="run-after")
    assert _alerts(after, "final") == expected
    assert len([line for line in sink.read_text().splitlines() if '"event": ' not in line]) == 12


@needs_postgres
@pytest.mark.parametrize("store", ["matched", "all"])
def test_backfill_finds_what_a_new_watch_would_have_caught(
    postgres: str, fina_log: Path, tmp_path: Path, store: str
) -> None:
    sink = tmp_path / "alerts.jsonl"
    before, after, reference = _scenario(tmp_path, fina_log, new_database(postgres), store, sink)
    # A rescan is shared by two processes; matching stored certificates needs one.
    _check(tmp_path, before, after, reference, sink, processes=2 if store == "matched" else 1)


def test_backfill_rescan_on_sqlite(fina_log: Path, tmp_path: Path) -> None:
    sink = tmp_path / "alerts.jsonl"
    before, after, reference = _scenario(
        tmp_path, fina_log, f"sqlite:///{tmp_path / 'ct.db'}", "matched", sink
    )
    _check(tmp_path, before, after, reference, sink, processes=1)
