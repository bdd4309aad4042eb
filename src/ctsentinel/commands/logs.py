"""`ctsentinel logs [--json]`: what the store knows of each log, as a table or as JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ctsentinel.commands.common import config_store
from ctsentinel.monitor.progress import format_duration
from ctsentinel.monitor.status import collect
from ctsentinel.notify import undelivered_lines
from ctsentinel.terminal import safe_text


def run(args: argparse.Namespace) -> int:
    with config_store(args.config) as store:
        rows = collect(store)
        # Alerts that never reached anyone must be seen wherever the operator looks at the monitor's health.
        pending = undelivered_lines(store.outbox.undelivered()) if not args.json else []
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print(format_table(rows))
    else:
        print("no logs in the store yet: run `ctsentinel run` first")
    if pending:
        print("\nundelivered:")
        for line in pending:
            print(f"  {line}")
    return 0


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return safe_text(str(value))


def format_table(rows: list[dict[str, Any]]) -> str:
    header = ["URL", "TYPE", "TREE SIZE", "POSITION", "BACKLOG", "LAST HEAD", "AGE", "ENTRIES/S", "ERRORS",
              "STATUS"]
    table = [header]
    for row in rows:
        age = row["last_tree_head_age_seconds"]
        if row["misbehaviour"]:
            last = row["misbehaviour"][-1]
            status = f"MISBEHAVING: {last['kind']} at {last['time']}"
        elif row["misbehaving"]:
            status = "MISBEHAVING"
        elif row["position"] is None:
            status = "not started"
        else:
            status = "ok"
        if row["last_error"]:
            status += f"; last error: {row['last_error']}"
        rate = row["entries_per_second"]
        table.append([
            _cell(row["url"]), _cell(row["type"]), _cell(row["tree_size"]), _cell(row["position"]),
            _cell(row["backlog"]), _cell(row["last_tree_head_time"]),
            format_duration(age) if age is not None else "-",
            f"{rate:,.0f}" if rate is not None else "-", _cell(row["errors"]), safe_text(status),
        ])
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    lines = []
    for r in table:
        pairs = enumerate(zip(r, widths, strict=False))
        cells = [c.ljust(w) if i < 2 or i == 5 else c.rjust(w) for i, (c, w) in pairs]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    return "\n".join(lines)
