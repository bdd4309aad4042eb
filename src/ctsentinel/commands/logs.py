"""`ctsentinel logs [--json]`: what the store knows of each log, as a table or as JSON."""

from __future__ import annotations

import argparse
import json

from ctsentinel.commands.common import config_store
from ctsentinel.monitor.status import LogStatus, log_statuses
from ctsentinel.notify import undelivered_lines
from ctsentinel.terminal import safe_text
from ctsentinel.timefmt import duration

_HEADER = (
    "URL", "TYPE", "TREE SIZE", "POSITION", "BACKLOG", "LAST HEAD", "AGE", "ENTRIES/S", "ERRORS", "STATUS",
)  # fmt: skip
_LEFT_ALIGNED = {0, 1, 5}  # URL, TYPE, LAST HEAD; numbers are right-aligned, STATUS is last and free


def run(args: argparse.Namespace) -> int:
    with config_store(args.config) as store:
        statuses = log_statuses(store)
        # Alerts that never reached anyone must be seen wherever the operator looks at the monitor's health.
        pending = undelivered_lines(store.outbox.undelivered()) if not args.json else []
    if args.json:
        print(json.dumps([status.to_json() for status in statuses], indent=2))
    elif statuses:
        print(format_table(statuses))
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


def _status_text(log: LogStatus) -> str:
    if log.misbehaviour:
        last = log.misbehaviour[-1]
        status = f"MISBEHAVING: {last.kind} at {last.time}"
    elif log.misbehaving:
        status = "MISBEHAVING"
    elif log.position is None:
        status = "not started"
    else:
        status = "ok"
    if log.worker:
        status += f"; worked by {log.worker}"
    if log.ranges:
        status += f"; {len(log.ranges)} ranges open"
    if log.last_error:
        status += f"; last error: {log.last_error}"
    return safe_text(status)


def _row(log: LogStatus) -> list[str]:
    age, rate = log.last_tree_head_age_seconds, log.entries_per_second
    return [
        _cell(log.url), _cell(log.type), _cell(log.tree_size), _cell(log.position), _cell(log.backlog),
        _cell(log.last_tree_head_time), duration(age) if age is not None else "-",
        f"{rate:,.0f}" if rate is not None else "-", _cell(log.errors), _status_text(log),
    ]  # fmt: skip


def format_table(logs: list[LogStatus]) -> str:
    table = [list(_HEADER), *(_row(log) for log in logs)]
    widths = [max(len(row[i]) for row in table) for i in range(len(_HEADER) - 1)]
    lines = []
    for row in table:
        pairs = enumerate(zip(row[:-1], widths, strict=True))
        cells = [c.ljust(w) if i in _LEFT_ALIGNED else c.rjust(w) for i, (c, w) in pairs]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
