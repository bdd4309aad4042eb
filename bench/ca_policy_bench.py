"""CA-watch cost per certificate on the hot path, beside the watchlist match every certificate already pays.

Run: .venv/bin/python bench/ca_policy_bench.py [--records N]
Rows: the baseline (Watchlist.match with 10 and 100,000 watch items, as bench/watch_bench.py measures it),
a "*" CA watch with every cheap flag (every certificate is judged), a CA watch naming one CA (most
certificates are only looked at), and the Public Suffix List lookup cold (first use loads the list).
Records are CertRecords with realistic identifiers: 1-10 DNS names over common TLDs, 5% with an IP
address, 1% with an internal name, validity 90 days to 2 years.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ctsentinel.certs.record import CertRecord
from ctsentinel.watch import Watchlist
from ctsentinel.watch.ca_policy import CaFlag, CaPolicy, CaWatch, LintIgnore, RevocationScope
from ctsentinel.watch.public_suffix import is_internal_name, is_public_tld

TLDS = ["com", "net", "org", "de", "hr", "io", "co.uk", "fr", "nl", "dev", "app", "xyz", "com.br", "jp"]
ISSUERS = [(f"CN=CA {n},O=Bench Org {n},C=US", f"{n:02x}" * 32) for n in range(20)]


@dataclass(frozen=True)
class IssuerRule:
    spki_sha256: str | None = None
    organization: str | None = None


@dataclass(frozen=True)
class Watch:
    name: str
    domains: tuple[str, ...]
    ips: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    authorized_issuers: tuple[IssuerRule, ...] = ()
    authorized_keys: tuple[str, ...] = ()
    approved_certificates: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaWatchConfig:
    name: str
    issuers: tuple[IssuerRule, ...] = ()
    every_ca: bool = False
    flags: tuple[CaFlag, ...] = ()
    ignore_lint: tuple[LintIgnore, ...] = ()
    revocation: RevocationScope = RevocationScope.ALERTS


def domain(rng: random.Random) -> str:
    return f"{rng.randrange(10**9):x}-{rng.randrange(1000)}.{rng.choice(TLDS)}"


def make_records(count: int, rng: random.Random) -> list[CertRecord]:
    records = []
    for _ in range(count):
        names = [rng.choice(["", "www.", "*.", "api.eu."]) + domain(rng)
                 for _ in range(rng.choice([1, 1, 2, 2, 3, 4, 10]))]
        if rng.random() < 0.01:
            names.append(rng.choice(["intranet", "mail.corp", "host.local"]))
        ips = []
        if rng.random() < 0.05:
            ips.append(rng.choice(["1.1.1.1", "10.1.10.10", "192.0.2.7", "2001:db8::1", "8.8.8.8"]))
        issuer, spki = rng.choice(ISSUERS)
        days = rng.choice([90, 90, 90, 365, 397, 730])
        records.append(CertRecord(
            serial="01", issuer=issuer, issuer_spki_sha256=spki, subject=None, subject_spki_sha256="11" * 32,
            dns_names=names, ip_addresses=ips, not_before="2025-01-01T00:00:00Z",
            not_after=f"{2025 + (days > 364)}-{1 + (days % 365) // 31:02d}-28T23:59:59Z",
            sha256="22" * 32, tbs_sha256="33" * 32, precert=True, error=None,
        ))
    return records


def per_record_us(function: Callable[[CertRecord], object], records: Sequence[CertRecord]) -> float:
    started = time.perf_counter()
    for record in records:
        function(record)
    return (time.perf_counter() - started) / len(records) * 1e6


def hot_path(policy: CaPolicy) -> Callable[[CertRecord], object]:
    def judge(record: CertRecord) -> object:
        watches: tuple[CaWatch, ...] = policy.watching(record)
        if not watches:
            return None
        return policy.judge(record, watches)

    return judge


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(13)
    records = make_records(args.records, rng)

    started = time.perf_counter()
    is_internal_name("cold.example.com")
    cold_ms = (time.perf_counter() - started) * 1e3

    rows: list[tuple[str, float, int]] = []
    for size in (10, 100_000):
        watches = [Watch(f"w{n}", (domain(rng),)) for n in range(size)]
        watchlist = Watchlist.from_config(watches)
        rows.append((f"baseline: watchlist match, {size:,} items",
                     per_record_us(watchlist.match, records), sum(len(watchlist.match(r)) for r in records)))
    star = CaPolicy.from_config([CaWatchConfig("all", every_ca=True)])
    rows.append(('ca_watch "*", all cheap flags', per_record_us(hot_path(star), records),
                 sum(bool(star.check(r)) for r in records)))
    named = CaPolicy.from_config([CaWatchConfig("one", (IssuerRule(spki_sha256=ISSUERS[3][1]),))])
    rows.append(("ca_watch on one CA by key hash", per_record_us(hot_path(named), records),
                 sum(bool(named.check(r)) for r in records)))
    by_org = CaPolicy.from_config([CaWatchConfig("org", (IssuerRule(organization="Bench Org 3"),))])
    rows.append(("ca_watch on one CA by organization", per_record_us(hot_path(by_org), records),
                 sum(bool(by_org.check(r)) for r in records)))

    print(f"{len(records):,} records; Public Suffix List first lookup (loads the list): {cold_ms:.0f} ms; "
          f"cached TLDs: {is_public_tld.cache_info().currsize}")
    print(f"{'':42} {'us/record':>10} {'flagged/matched':>16}")
    for label, cost, hits in rows:
        print(f"{label:42} {cost:>10.2f} {hits:>16,}")


if __name__ == "__main__":
    main()
