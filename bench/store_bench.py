"""Store.commit_batch throughput with every certificate stored (`store = "all"`), against plain sqlite3.

    .venv/bin/python bench/store_bench.py [--entries N] [--batch 4096] [--log DIR] [--postgres]

Entries come from a real test log (`populate`, default scenario: distinct certificates and precertificates
with realistic names), decoded with ctsentinel.certs outside the timed part. Each run commits N entries in
batches into a fresh SQLite file: first through Store.commit_batch, then the same rows through plain
sqlite3 executemany into an identical schema (the baseline), so the store's own overhead shows as a ratio.
A second pass commits the same certificates as another log's entries (the deduplicated path).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ctsentinel.certs.decode import record_from_entry
from ctsentinel.ct.merkle import CompactRange, leaf_hash
from ctsentinel.ct.tls import LogEntryType, PrecertExtraData, decode_extra_data, decode_merkle_tree_leaf
from ctsentinel.store import CommitBatch, Store, StoredEntry, dialect
from ctsentinel.store.rows import CERT_COLUMNS, BatchRows
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.storage import LogStorage


@dataclass(frozen=True)
class Key:
    spki_der: bytes


@dataclass(frozen=True)
class Info:
    url: str
    kind: str
    log_id: bytes
    key: Key
    description: str
    operator: str
    state: str
    mmd: int


@dataclass(frozen=True)
class Head:
    tree_size: int
    timestamp: int
    root_hash: bytes
    raw: bytes


def load_entries(directory: Path, n: int) -> tuple[list[StoredEntry], list[bytes]]:
    with LogStorage.open(directory) as storage:
        if storage.tree_size < n:
            populate(directory, entries=n - storage.tree_size, scenario=None, seed=1)
    with LogStorage.open(directory) as storage:
        raw = storage.get_entries(0, n - 1)
    entries: list[StoredEntry] = []
    hashes: list[bytes] = []
    for index, (leaf_input, extra_data) in enumerate(raw):
        timestamped = decode_merkle_tree_leaf(leaf_input).timestamped_entry
        record = record_from_entry(leaf_input, extra_data)
        if timestamped.entry_type == LogEntryType.PRECERT_ENTRY:
            extra = decode_extra_data(timestamped.entry_type, extra_data)
            assert isinstance(extra, PrecertExtraData)
            der, kind = extra.pre_certificate, "precert"
        else:
            der, kind = timestamped.signed_entry, "x509"
        entries.append(StoredEntry(index, kind, timestamped.timestamp, record, der, []))
        hashes.append(leaf_hash(leaf_input))
    return entries, hashes


def run_store(
    url: str, entries: list[StoredEntry], hashes: list[bytes], batch: int, logs: int
) -> list[tuple[float, float]]:
    """(wall, CPU) seconds per pass; pass k commits every entry as log k's. CPU is this process's only
    (a PostgreSQL server's is not counted)."""
    store = Store.open(url)
    times = []
    for k in range(logs):
        log_id = hashlib.sha256(f"log{k}".encode()).digest()
        store.sync_logs(
            [Info(f"https://log{k}.example/", "rfc6962", log_id, Key(b"k"), "", "", "usable", 86400)]
        )
        store.start_log(log_id, 0, CompactRange().to_bytes(), Head(0, 0, b"\0" * 32, b"{}"))
        ranges = []
        cr = CompactRange()
        for start in range(0, len(entries), batch):
            cr.extend(hashes[start : start + batch])
            ranges.append((cr.to_bytes(), Head(cr.size, cr.size, cr.root(), b"{}")))
        started, cpu = time.perf_counter(), time.process_time()
        for i, start in enumerate(range(0, len(entries), batch)):
            end = min(start + batch, len(entries))
            blob, head = ranges[i]
            store.commit_batch(CommitBatch(log_id, start, end, blob, head, entries[start:end]), ())
        times.append((time.perf_counter() - started, time.process_time() - cpu))
    store.close()
    return times


def run_baseline(path: Path, entries: list[StoredEntry], batch: int) -> tuple[float, float]:
    """Plain sqlite3 executemany of the same rows into the same schema, same pragmas, one transaction per
    batch (rows prepared outside the timing, so this is the floor for the database work alone)."""
    Store.open(str(path)).close()
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute(
        "INSERT INTO logs (log_id, url, kind, description, operator, state, misbehaving, errors,"
        " entries_processed, position) VALUES (?, 'u', 'rfc6962', '', '', 'usable', 0, 0, 0, 0)",
        (b"\1" * 32,),
    )
    prepared = []
    for start in range(0, len(entries), batch):
        end = min(start + batch, len(entries))
        rows = BatchRows(1, start, end, entries[start:end], datetime.now(UTC))
        first_seen = str(rows.certificates[0][-1])  # sqlite3's own datetime adapter is deprecated
        certs = [(*r[:-1], first_seen) for r in rows.certificates]
        prepared.append((start, end, list(CERT_COLUMNS), certs, rows.entries, rows.names, rows.ips))
    started, cpu = time.perf_counter(), time.process_time()
    for start, end, cols, certs, log_entries, names, ips in prepared:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            f"INSERT INTO certificates ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            " ON CONFLICT (sha256) DO NOTHING",
            certs,
        )
        conn.executemany(
            "INSERT INTO log_entries (log, idx, cert_sha256, entry_type, timestamp) VALUES (?, ?, ?, ?, ?)",
            log_entries,
        )
        conn.executemany(
            "INSERT INTO cert_names (name_rev, cert_sha256, name) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            names,
        )
        conn.executemany("INSERT INTO cert_ips (ip, cert_sha256) VALUES (?, ?) ON CONFLICT DO NOTHING", ips)
        conn.execute("UPDATE logs SET position = ? WHERE id = 1 AND position = ?", (end, start))
        conn.execute("COMMIT")
    elapsed = (time.perf_counter() - started, time.process_time() - cpu)
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=16384)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument(
        "--log", type=Path, default=None, help="test log directory to reuse (created if absent)"
    )
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL: COPY beside executemany")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = args.log or Path(tmp) / "log"
        t0 = time.perf_counter()
        entries, hashes = load_entries(log_dir, args.entries)
        n = len(entries)
        print(f"prepared {n} decoded entries from a test log in {time.perf_counter() - t0:.1f} s")
        der_bytes = sum(len(e.cert_der or b"") for e in entries)
        print(
            f"certificate DER: {der_bytes / n:.0f} bytes/entry; names/entry "
            f"{sum(len(e.record.dns_names) for e in entries) / n:.2f}"
        )
        new, dup = run_store(str(Path(tmp) / "store.db"), entries, hashes, args.batch, logs=2)
        base = run_baseline(Path(tmp) / "baseline.db", entries, args.batch)
        size = (Path(tmp) / "store.db").stat().st_size
        batches = n / args.batch

        def line(what: str, t: tuple[float, float]) -> str:
            return (
                f"{what:<38} {n / t[0]:9,.0f} entries/s wall, {n / t[1]:9,.0f} per CPU-second"
                f"  ({t[0] / batches * 1000:.0f} ms per {args.batch}-entry batch)"
            )

        print(line("Store.commit_batch, new certificates", new))
        print(line("Store.commit_batch, same certs again", dup) + "  [second log: deduplicated]")
        print(line("plain sqlite3 executemany (baseline)", base))
        print(f"overhead ratio store/baseline: {new[0] / base[0]:.2f} wall, {new[1] / base[1]:.2f} CPU")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} (on {os.cpu_count()} cores)")
        print(f"database size: {size / n:.0f} bytes/entry after both passes")
        if args.postgres:
            postgres(entries, hashes, args.batch, line)


Line = Callable[[str, tuple[float, float]], str]


def postgres(entries: list[StoredEntry], hashes: list[bytes], batch: int, line: Line) -> None:
    """The same commits on a throwaway PostgreSQL cluster (tests/pg_cluster.py, 127.0.0.1): through COPY, as
    the store does for large batches, and through executemany (COPY turned off) for comparison."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import pg_cluster

    missing = pg_cluster.available()
    if missing is not None:
        print(f"PostgreSQL: skipped ({missing})")
        return
    for what, threshold in (("COPY", dialect.COPY_MIN_ROWS), ("executemany", 1 << 62)):
        dialect.COPY_MIN_ROWS = threshold
        with pg_cluster.cluster() as url:
            new, dup = run_store(url, entries, hashes, batch, logs=2)
        print(line(f"PostgreSQL {what}, new certificates", new))
        print(line(f"PostgreSQL {what}, same certs again", dup))


if __name__ == "__main__":
    main()
