"""What the several-process tests share: test logs served over HTTP, one log list for them, a database per
test on a throwaway PostgreSQL cluster, `ctsentinel` processes, and a dump of what a run left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

PG_DUMP = {
    "logs": "SELECT url, kind, position, start_index, encode(compact_range, 'hex'), verified_size,"
    " encode(verified_root, 'hex'), misbehaving, entries_processed FROM logs ORDER BY url",
    "certificates": "SELECT encode(sha256, 'hex'), issuance, serial, issuer, dns_names, ip_addresses,"
    " precert, error, md5(der) FROM certificates ORDER BY sha256",
    "log_entries": "SELECT l.url, e.idx, encode(e.cert_sha256, 'hex'), e.entry_type, e.timestamp"
    " FROM log_entries e JOIN logs l ON l.id = e.log ORDER BY l.url, e.idx",
    "cert_names": "SELECT name_rev, encode(cert_sha256, 'hex') FROM cert_names ORDER BY 1, 2",
    "cert_ips": "SELECT encode(ip, 'hex'), encode(cert_sha256, 'hex') FROM cert_ips ORDER BY 1, 2",
    "alerts": "SELECT watch, issuance, reason, severity, matched FROM alerts ORDER BY watch, issuance",
    "findings": "SELECT encode(f.cert_sha256, 'hex'), f.watch, f.reason, f.severity, a.issuance"
    " FROM findings f LEFT JOIN alerts a ON a.id = f.alert ORDER BY 1, 2",
    # The alerts' deliveries (not the news of their revocation, queued beside them).
    "deliveries": "SELECT a.watch, a.issuance, d.channel FROM deliveries d JOIN alerts a ON a.id = d.alert"
    " WHERE d.idempotency_key LIKE 'ctsentinel-alert-%' ORDER BY 1, 2, 3",
    "misbehaviour": "SELECT count(*) FROM misbehaviour",
    "ranges_left": "SELECT count(*) FROM log_ranges WHERE watch = ''",
}


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def new_database(cluster_url: str) -> str:
    """A fresh, empty database on the cluster; its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(_psycopg(cluster_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return cluster_url.rsplit("/", 1)[0] + "/" + name


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(_psycopg(url))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def scalar(url: str, sql: str) -> int:
    try:
        return int(query(url, sql)[0][0] or 0)
    except Exception:  # the schema is not there yet
        return 0


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(_psycopg(url))
    try:
        with engine.connect() as conn:
            return {name: [tuple(r) for r in conn.execute(text(sql))] for name, sql in PG_DUMP.items()}
    finally:
        engine.dispose()


def combined_log_list(path: Path, directories: list[Path], static: set[int] = frozenset()) -> Path:
    """One log list of several test logs: the RFC 6962 API of each, or its static-ct API for the
    positions in `static`."""
    operators = []
    for position, directory in enumerate(directories):
        document = json.loads((directory / "log_list.json").read_text())
        for operator in document["operators"]:
            operator["name"] = f"{operator['name']}-{position}"
            if position in static:
                operator["logs"] = []
            else:
                operator["tiled_logs"] = []
            operators.append(operator)
    document["operators"] = operators
    path.write_text(json.dumps(document))
    return path


def watch_table(directory: Path) -> str:
    (watch,) = json.loads((directory / "scenario.json").read_text())["watches"]
    return (
        f'[[watch]]\nname = "cloudflare-dns"\ndomains = {json.dumps(watch["domains"])}\n'
        f"ips = {json.dumps(watch['ips'])}\n"
        f"authorized_issuers = {json.dumps(watch['authorized_issuers'])}\n"
    )


def write_config(
    path: Path,
    database: str,
    log_list: Path,
    *,
    watches: str = "",
    store: str = "all",
    range_entries: int = 1_000_000,
    range_workers: int = 2,
    lease_seconds: float = 2.0,
    notify: Path | None = None,
    extra_logs: str = "",
) -> Path:
    channel = f'[[notify]]\nkind = "jsonl"\npath = "{notify}"\n' if notify else ""
    path.write_text(
        f'database = "{database}"\n'
        f'[logs]\nlist = "{log_list}"\nstart = "beginning"\npoll_interval = 0.2\nbatch_size = 256\n'
        f"requests_per_second = 1000\n{extra_logs}"
        f'[monitor]\nstore = "{store}"\ncommit_entries = 128\ndecode_processes = 1\n'
        f"lease_seconds = {lease_seconds}\nrange_entries = {range_entries}\nrange_workers = {range_workers}\n"
        f"deliver_timeout = 3\n{watches}{channel}"
    )
    return path


def ctsentinel(config: Path, *args: str, name: str = "run") -> subprocess.Popen[str]:
    """`ctsentinel -c CONFIG ARGS…` as a process; its output goes to CONFIG's folder, NAME.log."""
    out = (config.parent / f"{name}.log").open("a")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "ctsentinel", "-c", str(config), *args],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )  # fmt: skip
    finally:
        out.close()


def wait_until(predicate: Any, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
