"""`ctsentinel backfill --watch NAME [--all-logs]`: what was issued before a watch was added.

With store = "all" the stored certificates are matched against the watch; otherwise the logs are read
again for that watch alone, as leased ranges that several `backfill` processes share (monitor/backfill.py).
Alerts go through the outbox like any other and are delivered before the command exits (within
[monitor] deliver_timeout; what is left stays queued for `run`). One line per result on stdout; problems
on stderr. Exit status 0, or 1 when a log misbehaved or could not be read, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from ctsentinel.config import Config, WatchConfig, load_config
from ctsentinel.errors import UserError
from ctsentinel.monitor.backfill import Backfill, BackfillReport
from ctsentinel.monitor.gateway import StoreGateway
from ctsentinel.monitor.settings import Keep
from ctsentinel.notify import Notifier, leftover_lines
from ctsentinel.store import PendingDelivery, Store
from ctsentinel.store.runlock import exclusive_run
from ctsentinel.terminal import safe_text
from ctsentinel.watch import Watchlist


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    watch = next((w for w in config.watches if w.name == args.watch), None)
    if watch is None:
        raise UserError(f"{config.path}: no [[watch]] named {args.watch!r}")
    report, new_alerts, undelivered, interrupted = asyncio.run(_backfill(config, watch, args.all_logs))
    name = safe_text(watch.name)
    if config.monitor.store is Keep.ALL:
        print(f"backfill --watch {name}: {report.certificates:,} stored certificates matched")
    else:
        print(
            f"backfill --watch {name}: {len(report.rescanned)} logs read again "
            f"({report.entries:,} entries by this process)"
        )
        for url in report.skipped:
            print(f"  skipped {safe_text(url)}: its certificates have all expired (--all-logs reads it too)")
    print(f"{new_alerts} new alerts")
    for line in [*(f"ctsentinel: {safe_text(p)}" for p in report.problems), *leftover_lines(undelivered)]:
        print(line, file=sys.stderr)
    if interrupted:
        return 130
    return 1 if report.problems else 0


def _alerts_of(store: Store, watch: str) -> int:
    return sum(1 for alert in store.list_alerts() if alert.watch == watch)


async def _backfill(
    config: Config, watch: WatchConfig, all_logs: bool
) -> tuple[BackfillReport, int, list[PendingDelivery], bool]:
    with exclusive_run(config.database):
        async with StoreGateway.open(config.database) as gateway:
            notifier = Notifier.from_settings(gateway.store, config.notify, offload=gateway.offload)
            gateway.routes = notifier.routes
            before = await gateway.call(_alerts_of, gateway.store, watch.name)
            backfill = Backfill(watch.name, Watchlist.from_config([watch]), gateway, warn=_warn)
            interrupted = asyncio.Event()

            def interrupt() -> None:
                interrupted.set()
                backfill.stop.set()

            loop = asyncio.get_running_loop()
            for number in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(number, interrupt)
            try:
                if config.monitor.store is Keep.ALL:
                    report = await backfill.match_stored()
                else:
                    report = await backfill.rescan(config.logs, config.monitor, all_logs=all_logs)
                undelivered = (
                    [] if interrupted.is_set() else await notifier.drain(config.monitor.deliver_timeout)
                )
            finally:
                await notifier.close()
                for number in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                        loop.remove_signal_handler(number)
            after = await gateway.call(_alerts_of, gateway.store, watch.name)
    return report, after - before, undelivered, interrupted.is_set()


def _warn(message: str) -> None:
    print(f"ctsentinel: {message}", file=sys.stderr, flush=True)
