"""kill -9 (and one Ctrl-C) during `ctsentinel run`, restart, repeat: the database ends as uninterrupted."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import BackgroundLog

ENTRIES = 3000
KILLS = 6

# Everything the run produces except wall-clock times (first_seen, updated_at), which differ by nature.
DUMP = {
    "logs": "SELECT hex(log_id), url, kind, position, start_index, hex(compact_range), verified_size,"
    " hex(verified_root), verified_timestamp, misbehaving, entries_processed FROM logs ORDER BY log_id",
    "certificates": "SELECT hex(sha256), issuance, hex(tbs_sha256), serial, issuer, hex(issuer_spki_sha256),"
    " subject, hex(subject_spki_sha256), dns_names, ip_addresses, not_before, not_after, precert, error,"
    " hex(der) FROM certificates ORDER BY sha256",
    "log_entries": "SELECT log, idx, hex(cert_sha256), entry_type, timestamp FROM log_entries"
    " ORDER BY log, idx",
    "cert_names": "SELECT * FROM cert_names ORDER BY 1, 2",
    "cert_ips": "SELECT * FROM cert_ips ORDER BY 1, 2",
    "misbehaviour": "SELECT count(*) FROM misbehaviour",
}


def dump(database: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(database) as db:
        return {name: db.execute(query).fetchall() for name, query in DUMP.items()}


def write_config(path: Path, database: Path, log_list: Path) -> Path:
    path.write_text(
        f'database = "sqlite:///{database}"\n'
        f'[logs]\nlist = "{log_list}"\nstart = "beginning"\npoll_interval = 0.2\nbatch_size = 256\n'
        f'requests_per_second = 1000\n'
        f'[monitor]\nstore = "all"\ncommit_entries = 128\ndecode_processes = 2\n'
    )
    return path


def ctsentinel(config: Path, *args: str) -> subprocess.Popen[str]:
    # Output goes to a file: after kill -9, pipes could stay open in the dying pool's workers for a moment.
    log = config.with_suffix(".log").open("a")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "ctsentinel", "-c", str(config), "run", *args],
            stdout=log, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    finally:
        log.close()


def position(database: Path) -> int:
    if not database.exists():
        return 0
    with sqlite3.connect(database) as db:
        try:
            row = db.execute("SELECT position FROM logs").fetchone()
        except sqlite3.OperationalError:  # killed before the schema was committed
            return 0
    return int(row[0]) if row and row[0] is not None else 0


def test_kill_9_at_random_points_then_restart_equals_an_uninterrupted_run(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog]
) -> None:
    directory = tmp_path / "log"
    populate(directory, entries=ENTRIES, scenario=None, seed=3)
    testlog_factory(directory)
    document = json.loads((directory / "log_list.json").read_text())
    for operator in document["operators"]:
        operator["tiled_logs"] = []  # RFC 6962: get-entries batches and consistency proofs per chunk
    log_list = tmp_path / "list.json"
    log_list.write_text(json.dumps(document))

    reference_db = tmp_path / "reference.db"
    reference_config = write_config(tmp_path / "reference.toml", reference_db, log_list)
    reference = ctsentinel(reference_config, "--once")
    assert reference.wait(timeout=120) == 0, reference_config.with_suffix(".log").read_text()
    expected = dump(reference_db)
    assert len(expected["log_entries"]) == ENTRIES

    database = tmp_path / "crashed.db"
    config = write_config(tmp_path / "crashed.toml", database, log_list)
    rng = random.Random(20261127)
    seen = [0]
    for kill in range(KILLS):
        child = ctsentinel(config)
        # Each kill lands at a random point: at start-up for the first, then a random time after the run
        # has passed a random position, so kills fall inside fetching, decoding and committing alike.
        if kill == 0:
            time.sleep(rng.uniform(0.2, 0.8))
        else:
            # Targets spread over the log, so that each run has work left when it is killed.
            span = ENTRIES // KILLS
            target = max(seen[-1] + 1, rng.randrange(kill * span, (kill + 1) * span - 200))
            deadline = time.monotonic() + 60
            while position(database) < target and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.02))
        # One of the interruptions is a Ctrl-C: a clean stop, exit status 0, at a chunk end too.
        interrupt = signal.SIGINT if kill == 2 else signal.SIGKILL
        child.send_signal(interrupt)
        returncode = child.wait(timeout=30)
        assert returncode == (0 if interrupt == signal.SIGINT else -signal.SIGKILL), returncode
        seen.append(position(database))
        assert seen[-1] >= seen[-2]
    # The kills did land in the middle of the work, at different points, and only ever on chunk ends.
    assert len({p for p in seen if 0 < p < ENTRIES}) >= 3, seen
    assert all(p % 128 == 0 or p == ENTRIES for p in seen), seen
    finish = ctsentinel(config, "--once")
    assert finish.wait(timeout=120) == 0, config.with_suffix(".log").read_text()
    assert dump(database) == expected
