"""`ctsentinel search QUERY [--json]`: stored certificates by name, address, range, hash, serial or issuer."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from ctsentinel.commands.common import config_store, entries_text, text

# The CertRecord JSON contract (DESIGN.md section 5), printed one per issuance by `search --json`.
CERT_RECORD_KEYS = (
    "serial", "issuer", "issuer_spki_sha256", "subject", "subject_spki_sha256", "dns_names", "ip_addresses",
    "not_before", "not_after", "sha256", "tbs_sha256", "precert", "error",
)  # fmt: skip


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


def run(args: argparse.Namespace) -> int:
    with config_store(args.config) as store:
        results = store.search(args.query, limit=args.limit)
    if args.json:
        print(json.dumps([as_cert_record(r) for r in results], indent=2))
        return 0
    if not results:
        print("no certificates found")
        return 0
    for result in results:
        kind = "precertificate" if result.get("precert") else "certificate"
        print(f"{kind} serial {text(result.get('serial'))}  issuer {text(result.get('issuer'))}")
        names = list(_list(result.get("dns_names"))) + list(_list(result.get("ip_addresses")))
        print(f"    names     {text(names)}")
        print(f"    validity  {text(result.get('not_before'))} .. {text(result.get('not_after'))}")
        print(f"    sha256    {text(result.get('sha256'))}")
        print(f"    seen      {entries_text(result.get('entries'))}")
        if result.get("error"):
            print(f"    error     {text(result.get('error'))}")
    return 0


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else []
