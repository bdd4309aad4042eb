"""`ctsentinel db migrate | db stats [--json]`: the schema brought up to date; what the database holds.

`db migrate` runs the schema migrations (every command also runs them when it opens the database; this
one does nothing else, for a deployment step that upgrades before the monitors restart). `db stats`
shows the rows of each table, the database's size, each log's position and who works it, and every
lease (logs and ranges of a backlog) with its holder.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from ctsentinel.config import load_config
from ctsentinel.store import LeaseInfo, LogState, Store
from ctsentinel.store.engine import display_url
from ctsentinel.store.stats import DatabaseStats, revision_of
from ctsentinel.terminal import safe_text
from ctsentinel.timefmt import rfc3339


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.action == "migrate":
        return _migrate(config.database)
    with Store.open(config.database) as store:
        stats = store.stats(config.database)
        states = store.log_states()
        leases = store.leases.leases()
    if args.json:
        print(json.dumps(stats_json(stats, states, leases), indent=2))
    else:
        print(stats_text(stats, states, leases))
    return 0


def _migrate(url: str) -> int:
    before = revision_of(url)
    Store.open(url).close()
    after = revision_of(url)
    where = display_url(url)
    if before == after:
        print(f"{where}: at revision {after}, nothing to do")
    else:
        print(f"{where}: migrated from revision {before or '(empty database)'} to {after}")
    return 0


def _holder(lease: LeaseInfo | None) -> str | None:
    return lease.holder if lease is not None and lease.live else None


def stats_json(stats: DatabaseStats, states: list[LogState], leases: list[LeaseInfo]) -> dict[str, object]:
    log_leases = {lease.log_id: lease for lease in leases if lease.watch is None}
    return {
        "database": stats.where,
        "revision": stats.revision,
        "size_bytes": stats.size_bytes,
        "rows": stats.rows,
        "logs": [
            {
                "url": state.url,
                "position": state.position,
                "tree_size": state.verified_size,
                "worker": _holder(log_leases.get(state.log_id)),
            }
            for state in states
        ],
        "leases": [
            {
                "log": lease.url,
                "range": None if lease.watch is None else [lease.start, lease.end],
                "watch": lease.watch or None,
                "position": lease.position,
                "holder": lease.holder,
                "live": lease.live,
                "expires_at": None if lease.expires_at is None else rfc3339(lease.expires_at),
            }
            for lease in leases
        ],
    }


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def stats_text(stats: DatabaseStats, states: list[LogState], leases: list[LeaseInfo]) -> str:
    now = datetime.now(UTC)
    lines = [
        f"database: {safe_text(stats.where)}",
        f"revision: {stats.revision or '-'}",
        f"size:     {_size(stats.size_bytes)}",
        "rows:",
        *_table([[name, f"{count:,}"] for name, count in stats.rows.items()]),
    ]
    log_leases = {lease.log_id: lease for lease in leases if lease.watch is None}
    if states:
        lines.append("logs:")
        rows = [["URL", "POSITION", "TREE SIZE", "WORKER"]]
        for state in states:
            holder = _holder(log_leases.get(state.log_id))
            rows.append(
                [safe_text(state.url), _number(state.position), _number(state.verified_size), holder or "-"]
            )
        lines.extend(_table(rows))
    ranges = [lease for lease in leases if lease.watch is not None]
    held = [lease for lease in leases if lease.watch is None and lease.holder is not None]
    if held or ranges:
        lines.append("leases:")
        rows = [["LOG", "WORK", "POSITION", "HOLDER", "EXPIRES IN"]]
        for lease in [*held, *ranges]:
            if lease.watch is None:
                work = "the log"
            else:
                work = f"[{lease.start:,}, {lease.end:,})"
                work += f" for watch {lease.watch}" if lease.watch else ""
            expires = "-"
            if lease.holder is not None and lease.expires_at is not None:
                left = (lease.expires_at - now).total_seconds()
                expires = f"{left:.0f}s" if left >= 0 else "expired"
            rows.append(
                [safe_text(lease.url), safe_text(work), _number(lease.position), lease.holder or "-", expires]
            )
        lines.extend(_table(rows))
    return "\n".join(lines)
