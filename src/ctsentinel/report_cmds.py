"""`ctsentinel alerts` and `ctsentinel search`: stored findings, as JSON for scripts or text for people.

Every certificate-controlled string shown on a terminal goes through safe_text; JSON output keeps the raw
values (json.dumps escapes control characters itself).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

from ctsentinel.config import load_config
from ctsentinel.store import Store
from ctsentinel.terminal import safe_text

# The CertRecord JSON contract (DESIGN.md section 5), printed one per issuance by `search --json`.
CERT_RECORD_KEYS = (
    "serial", "issuer", "issuer_spki_sha256", "subject", "subject_spki_sha256", "dns_names", "ip_addresses",
    "not_before", "not_after", "sha256", "tbs_sha256", "precert", "error",
)  # fmt: skip


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[Store]:
    config = load_config(args.config)
    store = Store.open(config.database)
    try:
        yield store
    finally:
        store.close()


def _text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(safe_text(str(v)) for v in value)
    return safe_text("" if value is None else str(value))


def _entries_text(entries: object) -> str:
    if not isinstance(entries, list):
        return ""
    return "; ".join(f"{_text(e.get('type'))} at {_text(e.get('log'))} #{e.get('index')}" for e in entries)


def alerts_command(args: argparse.Namespace) -> int:
    from ctsentinel.notify import undelivered_lines

    with _store(args) as store:
        alerts = store.list_alerts()
        # A channel that keeps failing must be seen where the operator looks at alerts, not dropped.
        pending = undelivered_lines(store.outbox.undelivered())
    if args.json:
        print(json.dumps(alerts, indent=2))
        for line in pending:  # the JSON contract stays exact on stdout; the problem goes to stderr
            print(f"ctsentinel: {line}", file=sys.stderr)
        return 0
    print_alerts(alerts)
    if pending:
        print("\nundelivered:")
        for line in pending:
            print(f"  {line}")
    return 0


def print_alerts(alerts: list[dict[str, Any]], indent: str = "") -> None:
    """Alerts as text blocks, every certificate-controlled field escaped for the terminal."""
    if not alerts:
        print(f"{indent}no alerts")
        return
    for alert in alerts:
        print(
            f"{indent}#{alert['id']} {str(alert['severity']).upper()} {_text(alert['reason'])} "
            f"on watch {_text(alert['watch'])}: {_text(alert['matched'])}"
        )
        names = list(alert["dns_names"]) + list(alert["ip_addresses"])
        print(f"{indent}    issuer    {_text(alert['issuer'])}")
        print(f"{indent}    serial    {_text(alert['serial'])}")
        print(f"{indent}    names     {_text(names)}")
        print(f"{indent}    validity  {_text(alert['not_before'])} .. {_text(alert['not_after'])}")
        print(f"{indent}    seen      {_entries_text(alert['entries'])}")
        print(f"{indent}    first     {_text(alert['first_seen'])}")


def as_cert_record(issuance: Mapping[str, Any]) -> dict[str, Any]:
    """An issuance from the store as exactly a CertRecord: `sha256` is the representative certificate's (the
    final certificate when one was seen, else the precertificate)."""
    record = {key: issuance.get(key) for key in CERT_RECORD_KEYS}
    fingerprints = issuance.get("sha256")
    if isinstance(fingerprints, list):
        record["sha256"] = issuance.get("representative_sha256") or (
            fingerprints[0] if fingerprints else None
        )
    return record


def search_command(args: argparse.Namespace) -> int:
    with _store(args) as store:
        results = store.search(args.query, limit=args.limit)
    if args.json:
        print(json.dumps([as_cert_record(r) for r in results], indent=2))
        return 0
    if not results:
        print("no certificates found")
        return 0
    for result in cast(list[dict[str, Any]], results):
        kind = "precertificate" if result.get("precert") else "certificate"
        print(f"{kind} serial {_text(result.get('serial'))}  issuer {_text(result.get('issuer'))}")
        names = list(result.get("dns_names") or []) + list(result.get("ip_addresses") or [])
        print(f"    names     {_text(names)}")
        print(f"    validity  {_text(result.get('not_before'))} .. {_text(result.get('not_after'))}")
        print(f"    sha256    {_text(result.get('sha256'))}")
        print(f"    seen      {_entries_text(result.get('entries'))}")
        if result.get("error"):
            print(f"    error     {_text(result.get('error'))}")
    return 0
