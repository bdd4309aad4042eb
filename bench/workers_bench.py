"""Backlog throughput of 1, 2 and 4 `ctsentinel run --once` processes sharing one PostgreSQL database, on
one log that answers every request after 20 ms (the test log's `slow` fault, as a distant log would).

    .venv/bin/python bench/workers_bench.py [--entries 24000] [--latency 0.02] [--batch 16] [--dir DIR]

Each process asks the log as one source address may: one request at a time (concurrency 1), 16 entries
per get-entries (--batch; the log is served with that --batch-size), so one process is bound by the
latency, not by the CPU, and more processes (each its own budget) read more. The backlog is cut into
ranges of 1/16 of the log, which the processes share through leases. Beside it: one process on SQLite
and one on PostgreSQL reading the same log sequentially (no ranges).

Populates DIR (reused when it already holds --entries entries), serves it with `ctsentinel testlog serve`
in a child process, starts a throwaway PostgreSQL cluster (tests/pg_cluster.py), then runs each setup
on a fresh database, one after the other. For each: wall time from start until every process exited,
and the steady rate (entries committed per second between 10% and 90% of the log, from the database),
its ratio to one process, and the CPU seconds the OS accounts to the ctsentinel processes (RUSAGE_CHILDREN:
what they and the children they reaped used; not the test log's server nor PostgreSQL). The load average
is printed before and after: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy import create_engine, text  # noqa: E402

import pg_cluster  # noqa: E402
from ctsentinel.testlog.populate import populate  # noqa: E402


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def tree_size(directory: Path) -> int:
    if not (directory / "log.db").exists():
        return -1
    from ctsentinel.testlog.storage import LogStorage

    with LogStorage.open(directory) as storage:
        return storage.tree_size


def serve(directory: Path, latency: float, batch: int) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "ctsentinel", "testlog", "serve", "--dir", str(directory), "--port", "0",
        "--batch-size", str(batch), "--merge-delay", "1", "--fault", f"slow={latency}",
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("testlog: serving "):
        server.kill()
        raise SystemExit(f"testlog serve did not start: {line!r}")
    return server


def rfc6962_list(directory: Path, out: Path) -> Path:
    document = json.loads((directory / "log_list.json").read_text())
    for operator in document["operators"]:
        operator["tiled_logs"] = []
    out.write_text(json.dumps(document))
    return out


def new_database(cluster: str, name: str) -> str:
    engine = create_engine(_psycopg(cluster), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return cluster.rsplit("/", 1)[0] + "/" + name


def processed(url: str) -> int:
    engine = create_engine(_psycopg(url) if url.startswith("postgresql") else url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(text("SELECT coalesce(sum(entries_processed), 0) FROM logs")).scalar_one()
            )
    except Exception:  # the schema is not there yet
        return 0
    finally:
        engine.dispose()


def config(folder: Path, database: str, log_list: Path, range_workers: int, ranges: int, batch: int) -> Path:
    path = folder / "ctsentinel.toml"
    path.write_text(
        f'database = "{database}"\n'
        f'[logs]\nlist = "{log_list}"\nstart = "beginning"\nbatch_size = {batch}\nconcurrency = 1\n'
        "requests_per_second = 1000\npoll_interval = 1\n"
        f'[monitor]\nstore = "matched"\ncommit_entries = 1024\ndecode_processes = 1\n'
        f"lease_seconds = 10\nrange_entries = {ranges}\nrange_workers = {range_workers}\n"
        '[[watch]]\nname = "bench"\ndomains = ["example.com"]\n'
    )
    return path


@dataclass(frozen=True)
class Setup:
    entries: int
    batch: int
    log_list: Path


def measure(label: str, folder: Path, database: str, setup: Setup, processes: int, ranged: bool) -> float:
    """Run the processes to the end; print wall time, rates and CPU seconds; return the steady rate."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = setup.entries
    ranges = max(1, entries // 16) if ranged else 10**9
    path = config(folder, database, setup.log_list, 2 if ranged else 0, ranges, setup.batch)
    cpu_before = _children_cpu()
    started = time.monotonic()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "ctsentinel", "-c", str(path), "run", "--once"],
            stdout=(folder / f"w{i}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for i in range(processes)
    ]
    marks: dict[str, float] = {}
    while any(w.poll() is None for w in workers):
        done = processed(database)
        now = time.monotonic()
        if done >= entries * 0.1 and "low" not in marks:
            marks["low"], marks["low_n"] = now, done
        if done >= entries * 0.9 and "high" not in marks:
            marks["high"], marks["high_n"] = now, done
        time.sleep(0.1)
    wall = time.monotonic() - started
    cpu = _children_cpu() - cpu_before
    failed = [i for i, w in enumerate(workers) if w.returncode != 0]
    if failed or processed(database) != entries:
        raise SystemExit(f"{label}: processes {failed} failed or not caught up; see {folder}")
    steady = (marks["high_n"] - marks["low_n"]) / (marks["high"] - marks["low"]) if "high" in marks else 0.0
    print(
        f"{label:<34} {wall:7.1f} s {entries / wall:9,.0f} /s  steady {steady:9,.0f} /s  "
        f"CPU {cpu:6.1f} s ({cpu / entries * 1e6:,.0f} us/entry)",
        flush=True,
    )
    return steady


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=24000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument(
        "--batch", type=int, default=16, help="entries per get-entries (default: %(default)s)"
    )
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "ctsentinel-workers-bench")
    args = parser.parse_args()
    if pg_cluster.available() is not None:
        raise SystemExit(f"no PostgreSQL here: {pg_cluster.available()}")
    log_dir = args.dir / "log"
    if tree_size(log_dir) != args.entries:
        import shutil

        shutil.rmtree(log_dir, ignore_errors=True)
        print(f"populating {args.entries:,} entries in {log_dir} …", flush=True)
        populate(log_dir, entries=args.entries, scenario=None, seed=1)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    server = serve(log_dir, args.latency, args.batch)
    try:
        setup = Setup(args.entries, args.batch, rfc6962_list(log_dir, args.dir / "list.json"))
        with pg_cluster.cluster() as cluster:
            print(
                f"{args.entries:,} entries, {args.latency * 1000:.0f} ms per request, "
                f"{args.batch} entries per request, one request at a time per process"
            )
            rates = {}
            for n in (1, 2, 4):
                database = new_database(cluster, f"bench{n}")
                label = f"{n} process{'es' if n > 1 else ''}, PostgreSQL, ranges"
                rates[n] = measure(label, args.dir / f"pg{n}", database, setup, n, True)
            database = new_database(cluster, "sequential")
            measure("1 process, PostgreSQL, sequential", args.dir / "pgseq", database, setup, 1, False)
            sqlite = args.dir / "sqlite" / "ct.db"
            for suffix in ("", ".lock", "-wal", "-shm"):
                Path(f"{sqlite}{suffix}").unlink(missing_ok=True)
            measure("1 process, SQLite, sequential", sqlite.parent, f"sqlite:///{sqlite}", setup, 1, False)
            print(
                f"speed-up (steady rate): 2 processes {rates[2] / rates[1]:.2f}x, "
                f"4 processes {rates[4] / rates[1]:.2f}x"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
