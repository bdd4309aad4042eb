"""`ctsentinel run [--once]`: monitor the logs; --once catches every log up to its tree head, then exits.

This command builds what the monitor is handed (settings, store, channels, watchlist) from the config,
and owns the signals: SIGINT and SIGTERM stop the monitor (a second one exits at once), SIGHUP reloads the
config and hands the monitor what changed; a broken edit is refused in one line and the monitor goes on.

On --once, one summary line per log goes to stdout; problems (a log that misbehaved or did not catch up,
deliveries still pending) go to stderr, one line each. The exit status: 0 when every log was caught up,
1 when one was not or misbehaved, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator

from ctsentinel.config import Config, load_config
from ctsentinel.errors import UserError
from ctsentinel.monitor.decode_pool import Matcher
from ctsentinel.monitor.gateway import StoreGateway
from ctsentinel.monitor.pipeline import Companion, Monitor, RunReport, log_label
from ctsentinel.notify import Notifier, leftover_lines
from ctsentinel.store.runlock import exclusive_run
from ctsentinel.terminal import safe_text
from ctsentinel.timefmt import duration
from ctsentinel.watch import Watchlist
from ctsentinel.watch.ca_policy import CaPolicy


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    once: bool = args.once
    # The modules' tens of thousands of objects never die: out of the collector's sight, its full passes
    # walk only what the run creates (a run with store = "all" creates objects by the million).
    gc.freeze()
    report = asyncio.run(_monitor(config, once=once))
    if once:
        for line in summary_lines(report):
            print(line)
    lines = problem_lines(report)
    for line in [*(lines if once else lines[: len(report.misbehaving)]), *leftover_lines(report.undelivered)]:
        print(line, file=sys.stderr)
    return report.exit_code() if once else (1 if report.misbehaving else 0)


def catch_up(config: Config) -> RunReport:
    """`run --once` without printing (what the demo runs)."""
    return asyncio.run(_monitor(config, once=True))


def summary_lines(report: RunReport) -> list[str]:
    lines = []
    for result in report.results:
        rate = result.entries / result.seconds if result.seconds > 0 else 0.0
        state = f"{result.position:,}/{result.size:,} verified"
        if result.misbehaviour:
            state += f", MISBEHAVING ({', '.join(sorted({m.kind for m in result.misbehaviour}))})"
        elif not result.caught_up:
            state += ", NOT caught up"
        lines.append(
            f"{safe_text(log_label(result.info))}: {state}; {result.entries:,} entries in "
            f"{duration(result.seconds)} ({rate:,.0f}/s)"
        )
    return lines


def problem_lines(report: RunReport) -> list[str]:
    lines = []
    for result in report.misbehaving:
        first = result.misbehaviour[0]
        lines.append(f"ctsentinel: log {safe_text(result.info.url)} misbehaved: {safe_text(str(first))}")
    for result in report.incomplete if report.interrupted is False else []:
        why = result.error or "interrupted"
        lines.append(f"ctsentinel: log {safe_text(result.info.url)} not caught up: {safe_text(why)}")
    return lines


def _warn(message: str) -> None:
    print(f"ctsentinel: {message}", file=sys.stderr, flush=True)


def _matcher(config: Config) -> Matcher | None:
    return Watchlist.from_config(config.watches) if config.watches else None


def _policy(config: Config) -> CaPolicy | None:
    return CaPolicy.from_config(config.ca_watches) if config.ca_watches else None


def _companions(config: Config) -> list[Companion]:
    """CA oversight beside the logs, with [[ca_watch]] tables or any watch: the lint queue worked off in
    the decode processes' spare time, revocation checks of what is alerted (and what CA watches ask for),
    over the logs' HTTP client within the same per-server budgets."""
    if not (config.ca_watches or config.watches):
        return []
    from ctsentinel.oversight.checking import RevocationChecker
    from ctsentinel.oversight.linting import Linter

    checker = RevocationChecker(
        interval=datetime.timedelta(seconds=config.monitor.revocation_interval),
        concurrency=config.logs.concurrency,
        requests_per_second=config.logs.requests_per_second,
    )
    return [Linter(_policy(config) or CaPolicy([])), checker]


def _notifier(config: Config, gateway: StoreGateway) -> Notifier:
    """UserError (one line) for a bad [[notify]] option. Without [[notify]] tables nothing is queued, but
    deliveries left from an earlier config are still worked off (and fail visibly)."""
    return Notifier.from_settings(gateway.store, config.notify, offload=gateway.offload)


async def _monitor(config: Config, *, once: bool) -> RunReport:
    with exclusive_run(config.database) as exclusive:
        return await _monitor_alone(config, once=once, exclusive=exclusive)


async def _monitor_alone(config: Config, *, once: bool, exclusive: bool) -> RunReport:
    matcher = _matcher(config)
    async with StoreGateway.open(config.database) as gateway, _metrics(config):
        notifier = _notifier(config, gateway)
        monitor = Monitor(
            config.logs,
            config.monitor,
            gateway=gateway,
            notifier=notifier,
            matcher=matcher,
            once=once,
            warn=_warn,
            policy=_policy(config),
            exclusive=exclusive,
            companions=_companions(config),
        )
        hangup = None if once else asyncio.Event()
        with _signals(monitor, hangup):
            reloader = None
            if hangup is not None:
                reloader = asyncio.create_task(_reload_on_hangup(hangup, monitor, gateway, config))
            try:
                return await monitor.run()
            finally:
                if reloader is not None:
                    reloader.cancel()
                    await asyncio.gather(reloader, return_exceptions=True)


@contextlib.asynccontextmanager
async def _metrics(config: Config) -> AsyncIterator[None]:
    """Prometheus metrics on 127.0.0.1 while the monitor runs, when [monitor] metrics_port asks for it."""
    if not config.monitor.metrics_port:
        yield
        return
    from ctsentinel.web.metrics import metrics_server

    async with metrics_server(config.database, config.monitor.metrics_port) as url:
        _warn(f"metrics at {url}")
        yield


@contextlib.contextmanager
def _signals(monitor: Monitor, hangup: asyncio.Event | None) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    received = 0

    def interrupt() -> None:
        nonlocal received
        received += 1
        if received > 1:
            # Second signal: leave now. The database is consistent at any instant (one transaction per
            # chunk), so the only loss is the chunk in flight, which the next run redoes.
            sys.stderr.write("ctsentinel: interrupted again, exiting at once\n")
            sys.stderr.flush()
            os._exit(130)
        monitor.interrupt()

    handlers = {signal.SIGINT: interrupt, signal.SIGTERM: interrupt}
    if hangup is not None:
        handlers[signal.SIGHUP] = hangup.set
    for number, handler in handlers.items():
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(number, handler)
    try:
        yield
    finally:
        for number in handlers:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(number)


async def _reload_on_hangup(
    hangup: asyncio.Event, monitor: Monitor, gateway: StoreGateway, config: Config
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await hangup.wait()
        hangup.clear()
        try:
            new = await loop.run_in_executor(None, load_config, config.path)
            await _reconfigure(monitor, gateway, config, new)
        except UserError as exc:
            # A broken edit must not take a running monitor down: keep going on the config we have.
            _warn(f"config not reloaded, still running on the previous one: {exc}")
            continue
        config = new
        _warn(f"reloaded {config.path}")


async def _reconfigure(monitor: Monitor, gateway: StoreGateway, old: Config, new: Config) -> None:
    """Hand the monitor what changed. Whatever can fail is built before anything changes."""
    if new.database != old.database:
        raise UserError(f"database changed to {new.database!r}: that needs a restart")
    notifier = _notifier(new, gateway) if new.notify != old.notify else None
    rematch = (
        new.watches != old.watches
        or new.ca_watches != old.ca_watches
        or new.monitor.store != old.monitor.store
    )
    matcher = _matcher(new) if rematch else None
    policy = _policy(new) if rematch else None
    monitor.use_settings(new.logs, new.monitor)
    if rematch:
        monitor.use_matcher(matcher, policy)
        from ctsentinel.oversight.linting import Linter

        for companion in monitor.companions:
            if isinstance(companion, Linter):
                companion.use_policy(policy or CaPolicy([]))
    if notifier is not None:
        await monitor.use_notifier(notifier)
