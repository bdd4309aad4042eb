"""`ctsentinel alerts [--json]`: stored alerts, newest first, as JSON for scripts or text for people.

Every certificate-controlled string shown on a terminal goes through safe_text; JSON output keeps the raw
values (json.dumps escapes control characters itself).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ctsentinel.commands.common import config_store, entries_text, text
from ctsentinel.notify import undelivered_lines


def run(args: argparse.Namespace) -> int:
    with config_store(args.config) as store:
        alerts = [alert.to_json() for alert in store.list_alerts()]
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
            f"{indent}#{alert['id']} {str(alert['severity']).upper()} {text(alert['reason'])} "
            f"on watch {text(alert['watch'])}: {text(alert['matched'])}"
        )
        names = list(alert["dns_names"]) + list(alert["ip_addresses"])
        print(f"{indent}    issuer    {text(alert['issuer'])}")
        print(f"{indent}    serial    {text(alert['serial'])}")
        print(f"{indent}    names     {text(names)}")
        print(f"{indent}    validity  {text(alert['not_before'])} .. {text(alert['not_after'])}")
        print(f"{indent}    seen      {entries_text(alert['entries'])}")
        print(f"{indent}    first     {text(alert['first_seen'])}")
