"""The test log's storage and HTTP server: append rate, disk, and request latencies on a large tree.

    .venv/bin/python bench/testlog_bench.py [--entries N] [--dir DIR]

Fills DIR (a temporary directory by default) with N entries through LogStorage (a few generated chains,
reused: storage cost does not depend on which certificate it is), serves it on 127.0.0.1 in-process, and
times single-client requests with a persistent HTTP connection. With --dir pointing at an existing log,
the fill step is skipped if it already holds N entries.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from ctsentinel.testlog.server import BackgroundLog
from ctsentinel.testlog.storage import LogStorage, Submission
from testlog_pki import make_leaf, make_pki

BATCH = 10_000


def fill(directory: Path, entries: int) -> None:
    pki = make_pki("Bench")
    chains = [
        (pki.chain(make_leaf(pki.intermediate, [f"b{i}.example.com"], precert=i % 2 == 1)), i % 2 == 1)
        for i in range(64)
    ]
    with LogStorage.open(directory) as storage:
        have = storage.tree_size + storage.pending_count
        if have >= entries:
            print(f"log already holds {have} entries")
            return
        start = time.perf_counter()
        for first in range(have, entries, BATCH):
            n = min(BATCH, entries - first)
            storage.add(
                [Submission(*chains[(first + i) % 64], 1_700_000_000_000 + first + i) for i in range(n)],
                sign=False,
            )
        added = time.perf_counter() - start
        storage.integrate()
        total = time.perf_counter() - start
    size = sum(f.stat().st_size for f in directory.iterdir())
    print(
        f"storage: {entries - have} entries appended in {added:.1f} s ({(entries - have) / added:,.0f}/s), "
        f"integrated in {total - added:.1f} s; {size / 1e6:,.0f} MB on disk "
        f"({size / entries:,.0f} bytes/entry)"
    )


def timed(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None) -> float:
    start = time.perf_counter()
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"{method} {path}: HTTP {response.status}")
    return elapsed


def report(name: str, samples: list[float]) -> None:
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{name:<38} median {statistics.median(samples) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or Path(tmp) / "log"
        fill(directory, args.entries)
        rng = random.Random(1)
        with BackgroundLog(directory, merge_delay=0.2) as log:
            parts = urlsplit(log.url)
            base = parts.path
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
            size = json.loads(_get(conn, base + "ct/v1/get-sth"))["tree_size"]
            cases: list[tuple[str, Callable[[], str]]] = [
                ("get-sth", lambda: base + "ct/v1/get-sth"),
                ("get-entries (256, random start)", lambda: _entries(base, rng.randrange(size - 256))),
                (
                    "get-entry-and-proof (random)",
                    lambda: (
                        base + f"ct/v1/get-entry-and-proof?leaf_index={rng.randrange(size)}&tree_size={size}"
                    ),
                ),
                (
                    "get-sth-consistency (random)",
                    lambda: base + f"ct/v1/get-sth-consistency?first={rng.randrange(1, size)}&second={size}",
                ),
                ("checkpoint", lambda: base + "checkpoint"),
                ("hash tile level 0 (random full)", lambda: base + _tile(0, rng.randrange(size // 256))),
                (
                    "data tile (random full, identity)",
                    lambda: base + _tile("data", rng.randrange(size // 256)),
                ),
            ]
            for name, path in cases:
                report(name, [timed(conn, "GET", path()) for _ in range(args.requests)])
            pki = make_pki("BenchHTTP")
            bodies = [
                json.dumps(
                    {
                        "chain": [
                            base64.b64encode(c).decode()
                            for c in pki.chain(make_leaf(pki.intermediate, [f"h{i}.example.org"]))
                        ]
                    }
                ).encode()
                for i in range(args.requests)
            ]
            start = time.perf_counter()
            samples = [timed(conn, "POST", base + "ct/v1/add-chain", b) for b in bodies]
            elapsed = time.perf_counter() - start
            report("add-chain (one client, keep-alive)", samples)
            print(f"add-chain throughput, one client: {len(bodies) / elapsed:,.0f}/s")
            conn.close()


def _get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    return conn.getresponse().read()


def _entries(base: str, start: int) -> str:
    return base + f"ct/v1/get-entries?start={start}&end={start + 255}"


def _tile(level: int | str, index: int) -> str:
    from ctsentinel.ct.tiles import tile_path

    return tile_path(level, index)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
