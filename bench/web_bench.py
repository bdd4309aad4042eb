"""`ctsentinel serve` on a large store: latency per search kind and of the certificate page, then load.

    .venv/bin/python bench/web_bench.py [--certificates 1000000] [--dir DIR] [--seconds 30] [--clients 50]

Builds an SQLite store of N generated certificates (precertificate and certificate pairs sharing issuer and
serial, names under ~N/5 registered domains, 5% with IPv4 or IPv6 addresses, 24 issuers of skewed sizes)
through Store.commit_batch — the monitor's own write path, with `store = "all"` semantics — unless --dir
already holds one. Then starts `ctsentinel serve` on 127.0.0.1 and measures over HTTP: p50/p95/p99 of each
search kind (name, subdomains, wildcard, IP, CIDR v4 and v6, issuer, serial, fingerprint) and of the
certificate page, then --clients concurrent clients for --seconds with an error count. Nothing of the data is
committed to the repository. Targets (issue): search p95 < 50 ms per kind, certificate page p95 < 100 ms,
no error under load.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import ipaddress
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp

from ctsentinel.certs.record import CertRecord
from ctsentinel.ct.merkle import CompactRange
from ctsentinel.store import CommitBatch, Store, StoredEntry
from store_bench import Head, Info, Key  # the store's log and head protocols, met by plain records

BATCH = 4096
WORDS = (
    "alpha", "bravo", "cobalt", "delta", "ember", "falcon", "granite", "harbor", "indigo", "juniper",
    "kestrel", "lumen", "meadow", "nimbus", "orchid", "pepper", "quartz", "raven", "sierra", "tundra",
    "umber", "velvet", "willow", "xenon", "yonder", "zephyr",
)  # fmt: skip
TLDS = ("com", "net", "org", "io", "de", "hr", "jp", "example")


def domain(n: int) -> str:
    return f"{WORDS[n % 26]}{n // 26}.{TLDS[n % len(TLDS)]}"


class Generator:
    def __init__(self, certificates: int, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.domains = max(100, certificates // 5)
        self.issuers = [
            (f"CN=Bench CA {i},O=Bench Issuer {i % 12},C=US", hashlib.sha256(b"issuer%d" % i).hexdigest())
            for i in range(24)
        ]
        self.weights = [1 / (i + 1) for i in range(24)]  # a few big CAs, many small ones

    def issuance(self, n: int) -> list[CertRecord]:
        rng = self.rng
        base = domain(rng.randrange(self.domains))
        names = [base, f"www.{base}"] if rng.random() < 0.6 else [f"{rng.choice(WORDS)}.{base}"]
        if rng.random() < 0.05:
            names.append(f"*.{base}")
        ips: list[str] = []
        if rng.random() < 0.05:
            if rng.random() < 0.7:
                ips.append(str(ipaddress.IPv4Address(0x0A000000 + rng.randrange(1 << 20))))
            else:
                ips.append(str(ipaddress.IPv6Address((0x2001_0DB8 << 96) + rng.randrange(1 << 24))))
        issuer, spki = rng.choices(self.issuers, self.weights)[0]
        serial = rng.getrandbits(128).to_bytes(16, "big").hex()
        day = 1 + n % 700
        not_before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000 + day * 86400))
        not_after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000 + (day + 90) * 86400))
        out = []
        for precert in (True, False) if rng.random() < 0.5 else (True,):
            out.append(
                CertRecord(
                    serial=serial,
                    issuer=issuer,
                    issuer_spki_sha256=spki,
                    subject=f"CN={names[0]}",
                    subject_spki_sha256=hashlib.sha256(serial.encode()).hexdigest(),
                    dns_names=list(names),
                    ip_addresses=ips,
                    not_before=not_before,
                    not_after=not_after,
                    sha256=hashlib.sha256(f"{n}/{precert}".encode()).hexdigest(),
                    tbs_sha256=hashlib.sha256(f"tbs{n}/{precert}".encode()).hexdigest(),
                    precert=precert,
                    error=None,
                )
            )
        return out


def build(path: Path, certificates: int) -> None:
    started = time.perf_counter()
    store = Store.open(str(path))
    log_id = hashlib.sha256(b"bench log").digest()
    store.sync_logs(
        [Info("https://bench.example/", "rfc6962", log_id, Key(b"k"), "bench", "bench", "usable", 86400)]
    )
    store.start_log(log_id, 0, CompactRange().to_bytes(), Head(0, 0, b"\0" * 32, b"{}"))
    gen = Generator(certificates)
    index, n, cr = 0, 0, CompactRange()
    der = os.urandom(900)
    pending: list[StoredEntry] = []
    while index < certificates:
        for record in gen.issuance(n):
            kind = "precert" if record.precert else "x509"
            pending.append(StoredEntry(index, kind, 1_700_000_000_000 + index, record, der, []))
            index += 1
        n += 1
        if len(pending) >= BATCH or index >= certificates:
            start = pending[0].index
            cr.extend([hashlib.sha256(b"%d" % e.index).digest() for e in pending])
            head = Head(cr.size, cr.size, cr.root(), b"{}")
            store.commit_batch(CommitBatch(log_id, start, index, cr.to_bytes(), head, pending), ())
            pending = []
            if (index // BATCH) % 50 == 0:
                print(
                    f"   {index:,} certificates ({index / (time.perf_counter() - started):,.0f}/s)",
                    flush=True,
                )
    store.close()
    print(f"built {certificates:,} certificates in {time.perf_counter() - started:.0f} s: {path}")


def queries(gen_seed_domains: int, rng: random.Random, store: Store) -> dict[str, list[str]]:
    """Realistic queries of each kind, drawn from what the store holds."""
    names = [domain(rng.randrange(gen_seed_domains)) for _ in range(200)]
    out = {
        "name": names,
        "subdomains": [f"*.{d}" for d in names],
        "wildcard": [f"www.{d}" for d in names],  # a name under a domain that often has *.domain too
        "ip": [str(ipaddress.IPv4Address(0x0A000000 + rng.randrange(1 << 20))) for _ in range(200)],
        "cidr4": [f"10.{rng.randrange(16)}.{rng.randrange(256)}.0/24" for _ in range(200)],
        "cidr6": [f"2001:db8::{rng.randrange(256):x}00:0/104" for _ in range(200)],
        "issuer": [f"issuer:Bench CA {rng.randrange(24)}," for _ in range(200)],
    }
    return out


async def measure(session: aiohttp.ClientSession, base: str, paths: list[str]) -> tuple[list[float], int]:
    times, errors = [], 0
    for path in paths:
        started = time.perf_counter()
        async with session.get(base + path) as response:
            await response.read()
            if response.status != 200:
                errors += 1
        times.append((time.perf_counter() - started) * 1000)
    return times, errors


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def row(kind: str, times: list[float], errors: int) -> str:
    p50, p95, p99 = pct(times, 0.5), pct(times, 0.95), pct(times, 0.99)
    return f"{kind:<12} {p50:8.1f} {p95:8.1f} {p99:8.1f} {errors:7d}"


async def bench(base: str, db: Path, seconds: float, clients: int, certificates: int) -> None:
    rng = random.Random(7)
    domains = max(100, certificates // 5)
    kinds = queries(domains, rng, Store.open_for_browsing(f"sqlite:///{db}", time_limit=5))
    async with aiohttp.ClientSession() as session:
        # serial and fingerprint queries come from real results
        async with session.get(base + "/api/v1/search?q=" + quote("issuer:Bench CA 3,") + "&limit=200") as r:
            found = (await r.json())["results"]
        kinds["serial"] = [f"serial:{x['serial']}" for x in found]
        kinds["fingerprint"] = [f"sha256:{x['sha256']}" for x in found]
        print(f"{'kind':<12} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for kind, values in kinds.items():
            await measure(session, base, [f"/api/v1/search?q={quote(v)}" for v in values[:10]])  # warm up
            times, errors = await measure(session, base, [f"/api/v1/search?q={quote(v)}" for v in values])
            print(row(kind, times, errors))
        pages = [f"/certificates/{x['sha256']}" for x in found]
        times, errors = await measure(session, base, pages)
        print(row("cert page", times, errors))
        mixed = [f"/api/v1/search?q={quote(v)}" for values in kinds.values() for v in values] + pages
        deadline = time.monotonic() + seconds
        counts = {"requests": 0, "errors": 0}
        latencies: list[float] = []

        async def client(number: int) -> None:
            own = random.Random(number)
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    async with session.get(base + own.choice(mixed)) as response:
                        await response.read()
                        counts["errors"] += response.status != 200
                except aiohttp.ClientError:
                    counts["errors"] += 1
                counts["requests"] += 1
                latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(client(i) for i in range(clients)))
        print(
            f"load: {clients} clients for {seconds:.0f} s: {counts['requests']:,} requests "
            f"({counts['requests'] / seconds:,.0f}/s), {counts['errors']} errors, "
            f"p50 {pct(latencies, 0.5):.0f} ms, p95 {pct(latencies, 0.95):.0f} ms, "
            f"p99 {pct(latencies, 0.99):.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--certificates", type=int, default=1_000_000)
    parser.add_argument("--dir", help="keep (and reuse) the store here")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    folder = Path(args.dir or tempfile.mkdtemp(prefix="ctsentinel-web-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"web-{args.certificates}.db"
    if not db.exists():
        build(db, args.certificates)
    config = folder / "bench.toml"
    config.write_text(f'database = "sqlite:///{db}"\n[logs]\nlist = "chrome"\n')
    server = subprocess.Popen(
        [sys.executable, "-m", "ctsentinel", "-c", str(config), "serve", "--port", "0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        base = server.stdout.readline().split()[2].rstrip("/")
        asyncio.run(bench(base, db, args.seconds, args.clients, args.certificates))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
