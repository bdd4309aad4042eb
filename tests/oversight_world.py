"""A fina-1.1.1.1 test log served over HTTP and a monitor config with a [[ca_watch]], for the CA oversight
tests; and what the log holds, read back independently of the monitor (testlog_populated)."""

from __future__ import annotations

import ipaddress
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctsentinel.cli import main
from ctsentinel.store import Store
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import BackgroundLog
from testlog_populated import LoggedEntry, read_log

FINA_DN = "CN=Fina RDC 2020,O=Financijska agencija,C=HR"
# The test log's CRL and OCSP URLs name 127.0.0.1: pkilint rightly calls that an internal name. Ignored there
# only, so that an internal name in a subjectAltName still counts.
IGNORE_URL_HOSTS = "cabf.internal_domain_name@uniformResourceIdentifier"


@dataclass
class World:
    directory: Path  # the log's DIR
    scenario: dict[str, Any]
    entries: list[LoggedEntry]
    log: BackgroundLog
    config: Path
    database: Path

    @property
    def fina_spki(self) -> str:
        return next(c["spki_sha256"] for c in self.scenario["cas"] if c["id"] == "fina-rdc-2020")

    def run_once(self) -> int:
        return main(["-c", str(self.config), "run", "--once"])

    def store(self) -> Store:
        return Store.open(f"sqlite:///{self.database}")


def fina_watch(source: Path, extra: str = "") -> str:
    """A [[ca_watch]] on Fina RDC 2020 by its key hash (from the log's scenario.json), every flag."""
    spki = next(c["spki_sha256"] for c in json.loads((source / "scenario.json").read_text())["cas"]
                if c["id"] == "fina-rdc-2020")  # fmt: skip
    head = f'[[ca_watch]]\nname = "fina"\nissuers = ["sha256:{spki}"]\n'
    return head + f'ignore_lint = ["{IGNORE_URL_HOSTS}"]\n{extra}'


def populated_log(directory: Path, entries: int = 600, seed: int = 1) -> None:
    populate(directory, entries=entries, scenario="fina-1.1.1.1", seed=seed)


def serve_copy(
    source: Path, work: Path, testlog_factory: Callable[..., BackgroundLog], ca_watch: str, extra: str = ""
) -> World:
    """A private copy of a populated log (revocations and faults stay in it), served, with a config that
    reads it from the beginning and has `ca_watch` (TOML) and a jsonl channel."""
    directory = work / "log"
    shutil.copytree(source, directory)
    log = testlog_factory(directory)
    database = work / "ct.db"
    config = work / "ctsentinel.toml"
    config.write_text(
        f"""database = "sqlite:///{database}"

[logs]
list = {json.dumps(str(directory / "log_list.json"))}
start = "beginning"
poll_interval = 0.2
requests_per_second = 1000

[monitor]
decode_processes = 1

{ca_watch}

[[notify]]
kind = "jsonl"
path = {json.dumps(str(work / "events.jsonl"))}
{extra}
"""
    )
    _, _, entries = read_log(directory)
    scenario = json.loads((directory / "scenario.json").read_text())
    return World(directory, scenario, entries, log, config, database)


def serial_hex(entry: LoggedEntry) -> str:
    return entry.serial_hex


def is_reserved(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not ip.is_global


def internal_names(entry: LoggedEntry) -> list[str]:
    """DNS names under no public suffix: in this log, only bare names without a dot are."""
    return [name for name in entry.dns_names if "." not in name]


def expected_flags(entry: LoggedEntry) -> list[str]:
    flags = []
    if entry.ips:
        flags.append("ip_address")
        if any(is_reserved(ip) for ip in entry.ips):
            flags.append("reserved_ip")
    if internal_names(entry):
        flags.append("internal_name")
    return flags


def expected_lint_errors(entry: LoggedEntry) -> list[str]:
    """pkilint's errors on this log's certificates, its CRL and OCSP URL hosts aside: reserved addresses
    and bare names in the subjectAltName."""
    codes = []
    if any(is_reserved(ip) for ip in entry.ips):
        codes.append("lint_error:cabf.internal_ip_address")
    if internal_names(entry):
        codes.append("lint_error:cabf.internal_domain_name")
    return sorted(codes)


def events(work: Path) -> list[dict[str, Any]]:
    path = work / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
