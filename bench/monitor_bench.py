"""`ctsentinel run --once` with its defaults over a large test log, beside Debian's certspotter on it.

    .venv/bin/python bench/monitor_bench.py [--entries 1000000] [--dir DIR] [--runs 3]
                                            [--only rfc6962-matched,static-ct-all,...] [--no-certspotter]

Populates DIR (reused when it already holds exactly --entries entries: populating 1M takes ~10 minutes),
serves it with `ctsentinel testlog serve` in a child process, then runs, one after the other so that they
never share the cores, `--runs` rounds of: certspotter (RFC 6962: the only API it reads; `-logs` on the
log's own list, from the beginning; it has no --once, so its state.json is polled until its verified
position reaches the tree size), and ctsentinel on each API with store = "matched" (the demo's watch) and
store = "all". ctsentinel runs with its defaults: the config names only the database, the log list, start
= "beginning", the store mode and the watch (no rate, concurrency or batch setting).

For each run: wall time from start to caught up, entries/s, CPU seconds of the tool's processes (all of
them, summed, sampled from /proc every 0.1 s), CPU seconds of the test log's server meanwhile, peak RSS
summed over the tool's processes and its RSS at each quarter of the log (flat means memory does not grow
with the log). The summary gives each configuration's median over the rounds with the spread (min-max),
and its ratio to certspotter's entries/s in the same round. The machine's load average is printed with
every run: other work on the machine slows whoever runs at that moment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CERTSPOTTER = shutil.which("certspotter") or "/usr/bin/certspotter"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
CONFIGS = ("rfc6962-matched", "static-ct-matched", "rfc6962-all", "static-ct-all")


def tree_size(directory: Path) -> int:
    database = directory / "log.db"
    if not database.exists():
        return -1
    from ctsentinel.testlog.storage import LogStorage

    with LogStorage.open(directory) as storage:
        return storage.tree_size


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def usage(pid: int) -> tuple[int, float] | None:
    """(RSS bytes, CPU seconds) of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            rss = int(f.read().split()[1]) * PAGE
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return rss, (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class Sampler:
    """A process tree's peak summed RSS, its CPU seconds, and its RSS when progress() first passes each
    quarter of `total`."""

    pid: int
    total: int
    progress: Callable[[], int]
    peak: int = 0
    quarters: dict[int, int] = field(default_factory=dict)
    cpu: dict[int, float] = field(default_factory=dict)  # per pid, the last value seen
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Sampler:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        last_progress = 0.0
        while not self._stop.is_set():
            rss = 0
            for pid in descendants(self.pid):
                seen = usage(pid)
                if seen is not None:
                    rss += seen[0]
                    self.cpu[pid] = seen[1]
            self.peak = max(self.peak, rss)
            now = time.monotonic()
            if now - last_progress > 1.0:
                last_progress = now
                done = self.progress()
                for q in (1, 2, 3, 4):
                    if q not in self.quarters and done >= self.total * q // 4:
                        self.quarters[q] = rss
            time.sleep(0.1)

    def stop(self) -> float:
        """Stop sampling; the CPU seconds of every process seen."""
        self._stop.set()
        time.sleep(0.15)
        return sum(self.cpu.values())


def cpu_seconds(pid: int) -> float:
    seen = usage(pid)
    return seen[1] if seen else 0.0


@dataclass
class Result:
    tool: str
    entries: int
    seconds: float
    cpu: float
    server_cpu: float
    peak_rss: int
    quarters: dict[int, int]
    load: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0

    def row(self) -> str:
        quarters = " ".join(
            f"{self.quarters[q] / 2**20:,.0f}" if q in self.quarters else "-" for q in (1, 2, 3, 4)
        )
        return (
            f"{self.tool:<30} {self.seconds:>8.1f} {self.rate:>10,.0f} {self.cpu:>7.1f} "
            f"{self.server_cpu:>7.1f} "
            f"{self.peak_rss / 2**20:>8,.0f}  {quarters:<20} {self.load:>5.1f}  {self.note}"
        )


HEADER = (
    f"{'run':<30} {'seconds':>8} {'entries/s':>10} {'CPU s':>7} {'log CPU':>7} {'peak MB':>8}  "
    f"{'MB at 25/50/75/100%':<20} {'load':>5}"
)


def serve(directory: Path) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "ctsentinel", "testlog", "serve", "--dir", str(directory), "--port", "0",
         "--batch-size", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    stdout = child.stdout
    lines = []
    for line in stdout:  # the CA repository's line may come first
        lines.append(line)
        if line.startswith("testlog: serving "):
            # Whatever it prints later is read and dropped, so that a full pipe never blocks it.
            threading.Thread(target=lambda: [None for _ in stdout], daemon=True).start()
            return child, line.split()[2]
    child.kill()
    raise SystemExit(f"testlog serve did not start: {lines!r}")


def api_list(directory: Path, work: Path, api: str) -> Path:
    """The log's own list with only the section of one API (it lists itself under both)."""
    document = json.loads((directory / "log_list.json").read_text())
    for operator in document["operators"]:
        operator["tiled_logs" if api == "rfc6962" else "logs"] = []
    path = work / f"{api}-list.json"
    path.write_text(json.dumps(document))
    return path


def watch_toml(directory: Path) -> str:
    scenario = json.loads((directory / "scenario.json").read_text())
    (watch,) = [w for w in scenario["watches"] if w["name"] == "cloudflare-dns"]
    return (
        f'[[watch]]\nname = "cloudflare-dns"\ndomains = {json.dumps(watch["domains"])}\n'
        f'ips = {json.dumps(watch["ips"])}\n'
        f'authorized_issuers = {json.dumps(watch["authorized_issuers"])}\n'
    )


def run_ctsentinel(
    directory: Path, work: Path, api: str, store: str, total: int, server: int
) -> Result:
    database = work / f"ctsentinel-{api}-{store}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    config = work / f"ctsentinel-{api}-{store}.toml"
    log_list = api_list(directory, work, api)
    # The defaults a user gets: nothing about rates, concurrency, batches or processes.
    config.write_text(
        f'database = "sqlite:///{database}"\n[logs]\nlist = "{log_list}"\nstart = "beginning"\n'
        f'[monitor]\nstore = "{store}"\n' + watch_toml(directory)
    )

    def progress() -> int:
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.1) as db:
                row = db.execute("SELECT position FROM logs").fetchone()
            return int(row[0] or 0) if row else 0
        except sqlite3.Error:
            return 0

    load = os.getloadavg()[0]
    server_cpu = cpu_seconds(server)
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "ctsentinel", "-c", str(config), "run", "--once"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    sampler = Sampler(child.pid, total, progress).start()
    _, err = child.communicate()
    seconds = time.monotonic() - started
    cpu = sampler.stop()
    server_cpu = cpu_seconds(server) - server_cpu
    if child.returncode != 0:
        raise SystemExit(f"ctsentinel run --once failed ({child.returncode}): {err.strip()[-2000:]}")
    sampler.quarters.setdefault(4, sampler.peak)
    with sqlite3.connect(database) as db:
        stored = db.execute("SELECT count(*) FROM log_entries").fetchone()[0]
        position = db.execute("SELECT position FROM logs").fetchone()[0]
        rate = db.execute("SELECT request_rate FROM logs").fetchone()[0]
    if position != total:
        raise SystemExit(f"ctsentinel stopped at {position}, not {total}")
    note = f"{stored:,} stored; ends at {rate or 0:,.0f} req/s"
    name = f"ctsentinel {api} {store}"
    return Result(name, total, seconds, cpu, server_cpu, sampler.peak, sampler.quarters, load, note)


def run_certspotter(directory: Path, work: Path, total: int, server: int) -> Result:
    state = work / "certspotter-state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir()
    watchlist = work / "watchlist"
    watchlist.write_text(".one.one.one.one\n.cloudflare-dns.com\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        # Go never proxies loopback: the test log is reachable, any other address fails locally.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }

    def progress() -> int:
        # certspotter writes state.json when it saves its position, which may be only at the end: the
        # quarters it never reported show as "-".
        for path in state.glob("logs/*/state.json"):
            try:
                return int(json.loads(path.read_text())["verified_position"]["size"])
            except (OSError, ValueError, KeyError, TypeError):
                return 0
        return 0

    load = os.getloadavg()[0]
    server_cpu = cpu_seconds(server)
    started = time.monotonic()
    child = subprocess.Popen(
        [CERTSPOTTER, "-logs", str(api_list(directory, work, "rfc6962")), "-watchlist", str(watchlist),
         "-state_dir", str(state), "-stdout"],
        stdout=subprocess.DEVNULL, stderr=(work / "certspotter.stderr").open("w"), env=env,
    )  # fmt: skip
    sampler = Sampler(child.pid, total, progress).start()
    done_at = None
    while child.poll() is None:
        if progress() >= total:
            done_at = time.monotonic()
            break
        time.sleep(0.05)
    cpu = sampler.stop()
    server_cpu = cpu_seconds(server) - server_cpu
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
    if done_at is None:
        complaint = (work / "certspotter.stderr").read_text()[-2000:]
        raise SystemExit(f"certspotter exited before catching up: {complaint}")
    sampler.quarters.setdefault(4, sampler.peak)
    return Result(
        "certspotter rfc6962", total, done_at - started, cpu, server_cpu, sampler.peak, sampler.quarters,
        load, "state.json polled every 50 ms",
    )  # fmt: skip


def spread(values: list[float], fmt: str) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{format(mid, fmt)} [{format(low, fmt)}-{format(high, fmt)}]"


def summary(rounds: list[dict[str, Result]]) -> None:
    names = list(rounds[0])
    print()
    print(
        f"summary over {len(rounds)} round(s): median [min-max]; x certspotter: entries/s over certspotter's "
        "in the same round"
    )
    print(
        f"{'run':<30} {'entries/s':>22} {'x certspotter':>18} {'CPU s':>18} {'peak RSS MB':>16} "
        f"{'RSS MB at 25%':>14}"
    )
    for name in names:
        results = [r[name] for r in rounds if name in r]
        ratios = [
            r[name].rate / r["certspotter rfc6962"].rate
            for r in rounds
            if name in r and "certspotter rfc6962" in r
        ]
        quarter = [res.quarters.get(1, 0) / 2**20 for res in results]
        print(
            f"{name:<30} {spread([r.rate for r in results], ',.0f'):>22} "
            f"{spread(ratios, '.2f') if ratios else '-':>18} {spread([r.cpu for r in results], '.1f'):>18} "
            f"{spread([r.peak_rss / 2**20 for r in results], ',.0f'):>16} {spread(quarter, ',.0f'):>14}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--dir", help="the test log's folder (default: a temporary one)")
    parser.add_argument("--runs", type=int, default=3, help="rounds of every configuration")
    parser.add_argument("--only", default=",".join(CONFIGS), help=f"ctsentinel configurations: {CONFIGS}")
    parser.add_argument("--no-certspotter", action="store_true")
    args = parser.parse_args()
    configs = [c for c in args.only.split(",") if c]
    if unknown := set(configs) - set(CONFIGS):
        parser.error(f"unknown configuration(s): {sorted(unknown)}")

    scratch = tempfile.TemporaryDirectory(prefix="monitor-bench-")
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
    server, url = serve(directory)
    rounds: list[dict[str, Result]] = []
    try:
        print(
            f"serving {url} ({args.entries:,} entries, get-entries answers of up to 1000); "
            f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        print(HEADER)
        for _ in range(args.runs):
            results: dict[str, Result] = {}
            if not args.no_certspotter:
                result = run_certspotter(directory, work, args.entries, server.pid)
                results[result.tool] = result
                print(result.row(), flush=True)
            for config in configs:
                api, store = config.rsplit("-", 1)
                result = run_ctsentinel(directory, work, api, store, args.entries, server.pid)
                results[result.tool] = result
                print(result.row(), flush=True)
            rounds.append(results)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        scratch.cleanup()
    summary(rounds)
    loads = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end (1, 5, 15 min): {loads} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
