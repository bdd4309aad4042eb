"""Backfill with and without a "*" [[ca_watch]] (every flag, lint on what the cheap flags flag), same log.

    .venv/bin/python bench/ca_watch_bench.py [--entries 100000] [--dir DIR] [--rounds 1]

Populates DIR (the fina-1.1.1.1 scenario; reused when it holds exactly --entries entries), serves it with
`ctsentinel testlog serve`, then runs `ctsentinel run --once` from the beginning, one configuration after
the other on the same log (so that they do not share the two cores):

  watch only          the demo's [[watch]] (store = "matched")
  watch + "*" store   the same, store = "all" (what a "*" CA watch must keep anyway: every certificate)
  "*" ca_watch, no lint  the same [[watch]] and a [[ca_watch]] on every CA, the cheap flags only
  watch + "*" ca_watch   the same [[watch]] and a [[ca_watch]] on every CA with every flag (lint on
                         what the cheap flags flag): linting costs the difference from the line above

For each: the backfill rate (entries/s while catching up, as `run --once` reports it), the whole run
(catch-up, then the lint queue worked off and the revocation checks, both beside or after the backfill),
how many certificates were linted and flagged, and the lint cost per certificate measured alone.
"""

from __future__ import annotations

import argparse
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from monitor_bench import api_list, serve, tree_size, watch_toml

_RATE = re.compile(r"(\d[\d,]*) entries in \S+ \(([\d,]+)/s\)")


@dataclass
class Row:
    name: str
    backfill_rate: float  # entries/s of the catch-up
    seconds: float  # the whole run --once
    stored: int
    linted: int
    alerts: int

    def line(self) -> str:
        return (f"{self.name:<22} {self.backfill_rate:>12,.0f} {self.seconds:>10.1f} {self.stored:>10,} "
                f"{self.linted:>8,} {self.alerts:>8,}")  # fmt: skip


def run(directory: Path, work: Path, log_list: Path, name: str, extra: str, store: str) -> Row:
    database = work / f"{re.sub(r'[^a-z]+', '-', name.replace('*', 'all')).strip('-')}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    config = database.with_suffix(".toml")
    config.write_text(
        f'database = "sqlite:///{database}"\n[logs]\nlist = "{log_list}"\nstart = "beginning"\n'
        f'requests_per_second = 1000\n[monitor]\nstore = "{store}"\n' + watch_toml(directory) + extra
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "ctsentinel", "-c", str(config), "run", "--once"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{name}: run --once failed: {done.stderr.strip()[-2000:]}")
    found = _RATE.search(done.stdout)
    if found is None:
        raise SystemExit(f"{name}: no rate in {done.stdout!r}")
    with sqlite3.connect(database) as db:
        stored = db.execute("SELECT count(*) FROM certificates").fetchone()[0]
        linted = db.execute("SELECT count(*) FROM lint_reports").fetchone()[0]
        alerts = db.execute("SELECT count(*) FROM alerts").fetchone()[0]
    return Row(name, float(found.group(2).replace(",", "")), seconds, stored, linted, alerts)


def lint_cost(directory: Path, count: int = 200) -> float:
    """Milliseconds per certificate, pkilint alone, after the warm-up (validators built once a profile)."""
    from ctsentinel.oversight.lint import lint_certificate
    from ctsentinel.testlog.storage import LogStorage

    with LogStorage.open(directory) as storage:
        raw = storage.get_entries(0, min(count, storage.tree_size) - 1)
    from ctsentinel.ct.tls import decode_merkle_tree_leaf

    ders = [decode_merkle_tree_leaf(leaf).timestamped_entry.signed_entry for leaf, _ in raw]
    ders = [d for d in ders if d[:1] == b"\x30"]
    for der in ders[:40]:
        lint_certificate(der)  # warm-up: every profile built
    started = time.perf_counter()
    for der in ders:
        lint_certificate(der)
    return 1000 * (time.perf_counter() - started) / max(1, len(ders))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--dir", help="the test log's folder (default: a temporary one)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each configuration (the best shown)")
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory(prefix="ca-watch-bench-")
    work = Path(scratch.name)
    directory = Path(args.dir) if args.dir else work / "log"
    size = tree_size(directory)
    if size != args.entries:
        if size > 0:
            raise SystemExit(f"{directory} holds {size} entries, not {args.entries}: use another --dir")
        from ctsentinel.testlog.populate import populate

        print(f"populating {directory} with {args.entries:,} entries ...", flush=True)
        report = populate(directory, entries=args.entries, scenario="fina-1.1.1.1", seed=1)
        print(report.summary(), flush=True)
    every = '[[ca_watch]]\nname = "every-ca"\nissuers = ["*"]\n'
    # The cheap flags alone: what linting adds is the difference from the line above it.
    no_lint = every + 'flag = ["ip_address", "reserved_ip", "internal_name", "long_validity"]\n'
    configurations = [
        ("watch only", "", "matched"),
        ('watch + "*" store', "", "all"),
        ('"*" ca_watch, no lint', no_lint, "matched"),
        ('watch + "*" ca_watch', every, "matched"),
    ]
    server, url = serve(directory)
    rows: list[Row] = []
    try:
        log_list = api_list(directory, work, "rfc6962")
        print(f"serving {url} ({args.entries:,} entries, RFC 6962 API)", flush=True)
        for name, extra, store in configurations:
            best = min((run(directory, work, log_list, name, extra, store) for _ in range(args.rounds)),
                       key=lambda row: -row.backfill_rate)  # fmt: skip
            rows.append(best)
            print(best.line(), flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    cost = lint_cost(directory)
    scratch.cleanup()
    print()
    heads = ("backfill/s", "run s", "stored", "linted", "alerts")
    print(
        f"{'configuration':<22} "
        + " ".join(f"{h:>{w}}" for h, w in zip(heads, (12, 10, 10, 8, 8), strict=True))
    )
    for row in rows:
        print(row.line())
    base, ca = rows[0].backfill_rate, rows[-1].backfill_rate
    print(f'\n"*" ca_watch backfill: {ca / base:.2f}x the watch-only rate; lint: {cost:.1f} ms/certificate')
    return 0


if __name__ == "__main__":
    sys.exit(main())
