"""`ctsentinel run --once` over a large test log, beside Debian's certspotter reading the same log.

    .venv/bin/python bench/monitor_bench.py [--entries 1000000] [--dir DIR] [--store matched|all|both]

Populates DIR (reused when it already holds exactly --entries entries: populating 1M takes ~10 minutes),
serves it with `ctsentinel testlog serve` in a child process, then, one after the other so that they do
not share the two cores: ctsentinel (store = "matched" with the demo's watch, and/or store = "all") and
certspotter (`-logs` on the log's own list, from the beginning; it has no --once, so its state.json is
polled until its verified position reaches the tree size, then it is stopped). For each: wall time from
start to caught up, entries/s, and peak RSS summed over its processes (sampled from /proc every 0.1 s),
plus RSS at each quarter of the log to show whether memory grows with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CERTSPOTTER = shutil.which("certspotter") or "/usr/bin/certspotter"
PAGE = os.sysconf("SC_PAGE_SIZE")


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


def rss_bytes(pid: int) -> int:
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total


@dataclass
class Sampler:
    """Peak RSS of a process tree, and its RSS when progress() first passes each quarter of `total`."""

    pid: int
    total: int
    progress: object  # Callable[[], int]
    peak: int = 0
    quarters: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Sampler:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        last_progress = 0.0
        while not self._stop.is_set():
            rss = rss_bytes(self.pid)
            self.peak = max(self.peak, rss)
            now = time.monotonic()
            if now - last_progress > 1.0:
                last_progress = now
                done = self.progress()  # type: ignore[operator]
                for q in (1, 2, 3, 4):
                    if q not in self.quarters and done >= self.total * q // 4:
                        self.quarters[q] = rss
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Result:
    tool: str
    entries: int
    seconds: float
    peak_rss: int
    quarters: dict[int, int]
    note: str = ""

    def row(self) -> str:
        rate = self.entries / self.seconds if self.seconds else 0.0
        quarters = " ".join(f"{self.quarters[q] / 2**20:,.0f}" if q in self.quarters else "-"
                            for q in (1, 2, 3, 4))
        return (f"{self.tool:<36} {self.entries:>10,} {self.seconds:>9.1f} {rate:>10,.0f} "
                f"{self.peak_rss / 2**20:>9,.0f}  {quarters:<22} {self.note}")


def serve(directory: Path) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "ctsentinel", "testlog", "serve", "--dir", str(directory), "--port", "0",
         "--batch-size", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.startswith("testlog: serving "):
        child.kill()
        raise SystemExit(f"testlog serve did not start: {line!r}")
    return child, line.split()[2]


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
    return (f'[[watch]]\nname = "cloudflare-dns"\ndomains = {json.dumps(watch["domains"])}\n'
            f'ips = {json.dumps(watch["ips"])}\n'
            f'authorized_issuers = {json.dumps(watch["authorized_issuers"])}\n')


def run_ctsentinel(directory: Path, work: Path, log_list: Path, store: str, total: int) -> Result:
    database = work / f"ctsentinel-{store}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    config = work / f"ctsentinel-{store}.toml"
    config.write_text(
        f'database = "sqlite:///{database}"\n[logs]\nlist = "{log_list}"\nstart = "beginning"\n'
        # A local log has no rate limit to respect, and certspotter applies none: neither do we here.
        f"requests_per_second = 1000\n"
        f'[monitor]\nstore = "{store}"\n' + watch_toml(directory)
    )

    def progress() -> int:
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.1) as db:
                row = db.execute("SELECT position FROM logs").fetchone()
            return int(row[0] or 0) if row else 0
        except sqlite3.Error:
            return 0

    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "ctsentinel", "-c", str(config), "run", "--once"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(child.pid, total, progress).start()
    _, err = child.communicate()
    seconds = time.monotonic() - started
    sampler.stop()
    if child.returncode != 0:
        raise SystemExit(f"ctsentinel run --once failed ({child.returncode}): {err.strip()[-2000:]}")
    sampler.quarters.setdefault(4, sampler.peak)
    with sqlite3.connect(database) as db:
        stored = db.execute("SELECT count(*) FROM log_entries").fetchone()[0]
        position = db.execute("SELECT position FROM logs").fetchone()[0]
    if position != total:
        raise SystemExit(f"ctsentinel stopped at {position}, not {total}")
    api = "static-ct" if log_list.name.startswith("static-ct") else "rfc6962"
    return Result(f"ctsentinel {api} store={store}", total, seconds, sampler.peak, sampler.quarters,
                  f"{stored:,} entries stored")


def run_certspotter(directory: Path, work: Path, log_list: Path, total: int) -> Result:
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

    started = time.monotonic()
    child = subprocess.Popen(
        [CERTSPOTTER, "-logs", str(log_list), "-watchlist", str(watchlist), "-state_dir", str(state),
         "-stdout"],
        stdout=subprocess.DEVNULL, stderr=(work / "certspotter.stderr").open("w"), env=env,
    )
    sampler = Sampler(child.pid, total, progress).start()
    done_at = None
    while child.poll() is None:
        if progress() >= total:
            done_at = time.monotonic()
            break
        time.sleep(0.05)
    sampler.stop()
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
    if done_at is None:
        complaint = (work / "certspotter.stderr").read_text()[-2000:]
        raise SystemExit(f"certspotter exited before catching up: {complaint}")
    sampler.quarters.setdefault(4, sampler.peak)
    return Result("certspotter (Debian)", total, done_at - started, sampler.peak, sampler.quarters,
                  "state.json polled every 50 ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--dir", help="the test log's folder (default: a temporary one)")
    parser.add_argument("--store", choices=["matched", "all", "both"], default="matched")
    parser.add_argument("--no-certspotter", action="store_true")
    parser.add_argument("--api", choices=["rfc6962", "static-ct"], default="rfc6962",
                        help="the API ctsentinel reads (certspotter 0.16 reads RFC 6962 only)")
    parser.add_argument("--certspotter-first", action="store_true", help="run certspotter before ctsentinel")
    args = parser.parse_args()

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
    results = []
    try:
        ours = api_list(directory, work, args.api)
        print(f"serving {url} ({args.entries:,} entries; ctsentinel reads its {args.api} API, certspotter "
              f"RFC 6962; get-entries batches of 1000); {os.cpu_count()} cores", flush=True)
        stores = ["matched", "all"] if args.store == "both" else [args.store]
        runs = [lambda store=store: run_ctsentinel(directory, work, ours, store, args.entries)
                for store in stores]
        if not args.no_certspotter:
            rfc6962 = api_list(directory, work, "rfc6962")
            spot = [lambda: run_certspotter(directory, work, rfc6962, args.entries)]
            runs = spot + runs if args.certspotter_first else runs + spot
        for run in runs:
            results.append(run())
            print(results[-1].row(), flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        scratch.cleanup()
    print()
    print(f"{'tool':<36} {'entries':>10} {'seconds':>9} {'entries/s':>10} {'peak MB':>9}  "
          f"{'RSS MB at 25/50/75/100%':<22}")
    for result in results:
        print(result.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())
