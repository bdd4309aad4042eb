"""`ctsentinel search QUERY [--json]`: stored certificates by name, address, range, hash, serial or issuer."""

from __future__ import annotations

import argparse
import json

from ctsentinel.commands.common import config_store, entries_text, text


def run(args: argparse.Namespace) -> int:
    with config_store(args.config) as store:
        results = store.search(args.query, limit=args.limit)
    if args.json:
        print(json.dumps([result.record.to_json() for result in results], indent=2))
        return 0
    if not results:
        print("no certificates found")
        return 0
    for result in results:
        record = result.record
        kind = "precertificate" if record.precert else "certificate"
        print(f"{kind} serial {text(record.serial)}  issuer {text(record.issuer)}")
        print(f"    names     {text(record.dns_names + record.ip_addresses)}")
        print(f"    validity  {text(record.not_before)} .. {text(record.not_after)}")
        print(f"    sha256    {text(list(result.fingerprints))}")
        print(f"    seen      {entries_text([entry.to_json() for entry in result.entries])}")
        if record.error:
            print(f"    error     {text(record.error)}")
    return 0
