"""`ctsentinel demo`: the 1.1.1.1 incident replayed on a local test log.

It builds a test log holding the `fina-1.1.1.1` scenario (ordinary traffic with Fina RDC 2020's
precertificates for 1.1.1.1 and the legitimate certificates of Cloudflare's own CA among it), serves it on
127.0.0.1, then reads it back the way a monitor must: it checks the tree head's signature, downloads every
entry, recomputes the Merkle root over all of them, decodes each into a CertRecord and looks for the watched
names and addresses.

Until the monitor pipeline (issue 4) and the watchlist engine (issue 5) exist, the reading and matching here
are a deliberately small stand-in for them — exact addresses and domain suffixes only — so that the demo
already shows what the product is for. It will be replaced by `run --once` and `alerts`.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctsentinel.certs.decode import record_from_entry
from ctsentinel.certs.record import CertRecord
from ctsentinel.ct.errors import CTError
from ctsentinel.ct.merkle import CompactRange, leaf_hash
from ctsentinel.ct.signatures import LogKey, verify_sth
from ctsentinel.ct.sth import SignedTreeHead, parse_get_entries_response
from ctsentinel.errors import UserError
from ctsentinel.terminal import safe_text

SCENARIO = "fina-1.1.1.1"


@dataclass
class Sighting:
    """One issuance: a precertificate and its final certificate share issuer and serial (DESIGN.md 1)."""

    record: CertRecord
    matched: list[str]
    entries: list[tuple[int, str]]


@contextmanager
def _served_log(directory: Path) -> Iterator[str]:
    """Runs `ctsentinel testlog serve` in a child process and yields its base URL."""
    command = [sys.executable, "-m", "ctsentinel", "testlog", "serve", "--dir", str(directory), "--port", "0"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.startswith("testlog: serving "):
            error = child.stderr.read() if child.stderr else ""
            raise UserError(f"the test log did not start: {(line + error).strip() or 'no output'}")
        yield line.split()[2].rstrip("/") + "/"
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def _read_log(base_url: str, key: LogKey) -> tuple[SignedTreeHead, list[tuple[bytes, bytes]]]:
    """The log's verified tree head and all its entries, checked against that head's root."""
    sth = SignedTreeHead.from_json(_get_json(base_url + "ct/v1/get-sth"))
    verify_sth(key, sth)
    entries: list[tuple[bytes, bytes]] = []
    tree = CompactRange()
    while len(entries) < sth.tree_size:
        start = len(entries)
        batch = parse_get_entries_response(
            _get_json(f"{base_url}ct/v1/get-entries?start={start}&end={sth.tree_size - 1}")
        )
        if not batch:
            raise UserError(f"the log returned no entries at {start}")
        entries.extend(batch)
        tree.extend(leaf_hash(leaf) for leaf, _ in batch)
    tree.verify_root(sth.tree_size, sth.root_hash)
    return sth, entries


def _matches(record: CertRecord, domains: list[str], networks: list[Any]) -> list[str]:
    hits = []
    for name in record.dns_names:
        bare = name[2:] if name.startswith("*.") else name
        if any(bare == d or bare.endswith("." + d) for d in domains):
            hits.append(name)
    for text in record.ip_addresses:
        address = ipaddress.ip_address(text)
        if any(address.version == net.version and address in net for net in networks):
            hits.append(text)
    return hits


def _print_sighting(sighting: Sighting, label: str) -> None:
    record = sighting.record
    seen = ", ".join(f"{kind} at entry {index}" for index, kind in sighting.entries)
    print(f"  [{label}] serial {record.serial}: {seen}")
    print(f"      issuer:   {safe_text(record.issuer or '?')}")
    print(f"      names:    {safe_text(', '.join(record.dns_names + record.ip_addresses))}")
    print(f"      matched:  {safe_text(', '.join(sighting.matched))}")
    print(f"      validity: {record.not_before} .. {record.not_after}")


def run(args: argparse.Namespace) -> int:
    from ctsentinel.testlog.populate import populate

    entries = getattr(args, "entries", 5000)
    with tempfile.TemporaryDirectory(prefix="ctsentinel-demo-") as scratch:
        directory = Path(getattr(args, "dir", None) or scratch) / "log"
        print(f"1. Building a test log with the {SCENARIO} scenario ({entries} entries) in {directory} ...")
        report = populate(directory, entries=entries, scenario=SCENARIO, seed=1)
        print("   " + report.summary().replace("\n", "\n   "))
        scenario = json.loads((directory / "scenario.json").read_text())
        key = LogKey.from_base64(scenario["log"]["key"])
        (watch,) = [w for w in scenario["watches"] if w["name"] == "cloudflare-dns"]
        domains = [d.lower().rstrip(".") for d in watch["domains"]]
        networks = [ipaddress.ip_network(ip, strict=False) for ip in watch["ips"]]
        authorized = {h.removeprefix("sha256:") for h in watch["authorized_issuers"]}
        print(f"2. Watching {', '.join(domains + watch['ips'])}")
        print(f"   authorized issuer key(s): {', '.join(sorted(authorized))}")

        with _served_log(directory) as base_url:
            print(f"3. Serving the log at {base_url} and reading it back ...")
            started = time.monotonic()
            try:
                sth, log_entries = _read_log(base_url, key)
            except CTError as exc:
                raise UserError(f"the log failed verification: {exc}") from exc
            elapsed = time.monotonic() - started
        print(
            f"   tree head: size {sth.tree_size}, signature valid; "
            f"all {len(log_entries)} entries hash to its "
            f"root ({elapsed:.1f} s)"
        )

        issuances: dict[tuple[str | None, str | None], Sighting] = {}
        malformed = 0
        for index, (leaf, extra) in enumerate(log_entries):
            record = record_from_entry(leaf, extra)
            malformed += record.error is not None
            hits = _matches(record, domains, networks)
            if not hits:
                continue
            kind = "precert" if record.precert else "cert"
            sighting = issuances.setdefault(
                (record.issuer_spki_sha256, record.serial), Sighting(record, hits, [])
            )
            sighting.entries.append((index, kind))
        alerts = [s for s in issuances.values() if s.record.issuer_spki_sha256 not in authorized]
        authorized_sightings = [s for s in issuances.values() if s.record.issuer_spki_sha256 in authorized]

    print(f"4. {len(alerts)} issuance(s) for watched names or addresses by an UNAUTHORIZED issuer:")
    for sighting in alerts:
        _print_sighting(sighting, "ALERT unauthorized_issuer")
    print(
        f"   {len(authorized_sightings)} issuance(s) by the authorized CA matched too and were not alerted; "
        f"{malformed} entr{'y' if malformed == 1 else 'ies'} could not be fully parsed."
    )
    return 0 if alerts else 1
