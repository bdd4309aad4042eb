"""Match cost per certificate with 10 and with 100,000 watch items, beside a naive linear scan.

Run: .venv/bin/python bench/watch_bench.py [--records N]
The records are CertRecords with realistic identifier counts (1-10 DNS names, a few with IP addresses);
a few percent hit a watch, like real traffic for a large watchlist.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import time
from dataclasses import dataclass

from ctsentinel.certs.record import CertRecord
from ctsentinel.config import IssuerRule
from ctsentinel.watch import Watchlist

TLDS = ["com", "net", "org", "de", "hr", "io", "co.uk"]


@dataclass(frozen=True)
class Watch:
    name: str
    domains: tuple[str, ...]
    ips: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    authorized_issuers: tuple[IssuerRule, ...] = ()
    authorized_keys: tuple[str, ...] = ()
    approved_certificates: tuple[str, ...] = ()


def domain(rng: random.Random) -> str:
    return f"{rng.randrange(10**9):x}-{rng.randrange(1000)}.{rng.choice(TLDS)}"


def make_watches(count: int, rng: random.Random) -> list[Watch]:
    watches = []
    for number in range(count):
        if number % 4 == 3:
            prefix = rng.choice([32, 24, 16])
            net = ipaddress.ip_network(
                f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.0/24"
            )
            watches.append(
                Watch(
                    f"w{number}", (), (ipaddress.ip_network(f"{net.network_address}/{prefix}", strict=False),)
                )
            )
        else:
            watches.append(Watch(f"w{number}", (domain(rng),), ()))
    return watches


def make_records(count: int, watches: list[Watch], rng: random.Random) -> list[CertRecord]:
    watched = [w.domains[0] for w in watches if w.domains]
    records = []
    for _ in range(count):
        names = []
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4, 10])):
            base = rng.choice(watched) if rng.random() < 0.01 else domain(rng)
            names.append(rng.choice(["", "www.", "*.", "api.eu."]) + base)
        ips = [
            f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
            for _ in range(1 if rng.random() < 0.05 else 0)
        ]
        records.append(
            CertRecord(
                serial="01",
                issuer="CN=Bench CA,O=Bench",
                issuer_spki_sha256="00" * 32,
                subject=None,
                subject_spki_sha256="11" * 32,
                dns_names=names,
                ip_addresses=ips,
                not_before=None,
                not_after=None,
                sha256="22" * 32,
                tbs_sha256="33" * 32,
                precert=False,
                error=None,
            )
        )
    return records


def naive_matches(record: CertRecord, watches: list[Watch]) -> int:
    hits = 0
    for watch in watches:
        for name in record.dns_names:
            bare = name[2:] if name.startswith("*.") else name
            if any(bare == d or bare.endswith("." + d) for d in watch.domains):
                hits += 1
        for text in record.ip_addresses:
            address = ipaddress.ip_address(text)
            if any(address in net for net in watch.ips):
                hits += 1
    return hits


def measure(function, records: list[CertRecord]) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for record in records:
        function(record)
    return (time.perf_counter() - started) / len(records) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args()
    rng = random.Random(7)
    print(
        f"{'watch items':>12} {'build s':>8} {'index us/cert':>14} {'naive us/cert':>14} "
        f"{'ratio':>7} {'findings':>9}"
    )
    for count in (10, 1_000, 100_000):
        watches = make_watches(count, rng)
        records = make_records(args.records, watches, rng)
        started = time.perf_counter()
        watchlist = Watchlist.from_config(watches)
        build = time.perf_counter() - started
        indexed = measure(watchlist.match, records)
        findings = sum(len(watchlist.match(r)) for r in records)
        # The naive scan is linear in the watch count: time it on a sample and report per certificate.
        sample = records[: max(50, args.records // (count // 10 + 1))]
        naive = measure(lambda r, w=watches: naive_matches(r, w), sample)
        print(
            f"{count:>12,} {build:>8.2f} {indexed:>14.2f} {naive:>14.1f} "
            f"{naive / indexed:>6.0f}x {findings:>9,}"
        )


if __name__ == "__main__":
    main()
