"""`ctsentinel ca report ISSUER [--json | --html FILE]`: what the store holds of one CA.

Text by default (the numbers and the flagged issuances), the `ca report --json` object, or a
self-contained HTML page with charts written to FILE.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from ctsentinel.commands.common import config_store, text
from ctsentinel.errors import UserError
from ctsentinel.oversight.report import CaReport, ca_report
from ctsentinel.oversight.report_html import render


def run(args: argparse.Namespace) -> int:
    with config_store(args.config) as store:
        report = ca_report(store, args.issuer)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0
    if args.html:
        path = Path(args.html)
        try:
            path.write_text(render(report, generated=datetime.now(UTC)), encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
        print(f"wrote the report on {text(report.key.name)} to {path}")
        return 0
    print_report(report)
    return 0


def print_report(report: CaReport, indent: str = "") -> None:
    data = report.to_json()
    print(f"{indent}{text(data['issuer'])} (sha256:{data['issuer_spki_sha256']})")
    print(
        f"{indent}  {data['issuances']:,} issuances, {data['identifiers']['dns']:,} naming DNS names, "
        f"{data['identifiers']['ip']:,} naming IP addresses"
    )
    flags = ", ".join(f"{k} {v:,}" for k, v in data["findings"].items() if v) or "none"
    print(f"{indent}  flagged: {len(report.flagged):,} ({flags})")
    lint = ", ".join(f"{k} {v:,}" for k, v in data["lint"].items()) or "none"
    print(f"{indent}  lint errors ({report.activity.linted:,} linted): {lint}")
    revocation = ", ".join(f"{k} {v:,}" for k, v in data["revocation"].items())
    print(f"{indent}  revocation: {revocation}")
    for item in report.flagged:
        state = item.revocation
        status = "unchecked" if state is None or state.status is None else state.status
        names = text([*item.ip_addresses, *item.dns_names])
        flags = ", ".join(item.findings)
        print(
            f"{indent}    {text(item.serial)}  {(item.not_before or '')[:10]}  {names}  [{flags}]  {status}"
        )
