"""`ctsentinel serve [--host 127.0.0.1] [--port 8080]`: the web UI and JSON API over the config's store.

Binds 127.0.0.1 unless told otherwise. The database is opened (and migrated) once for alert actions, then
again read-only for browsing, each read under `[web] time_limit` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable

from ctsentinel.config import Config, WatchConfig, load_config
from ctsentinel.errors import UserError
from ctsentinel.store import Store
from ctsentinel.web.app import create_app
from ctsentinel.web.listening import listening
from ctsentinel.web.settings import WatchSpec


def watch_specs(config: Config) -> list[WatchSpec]:
    return [_spec(watch) for watch in config.watches]


def _spec(watch: WatchConfig) -> WatchSpec:
    return WatchSpec(
        name=watch.name,
        domains=watch.domains,
        networks=tuple(str(n.network_address) if n.num_addresses == 1 else str(n) for n in watch.ips),
        authorized_keys=frozenset(r.spki_sha256 for r in watch.authorized_issuers if r.spki_sha256),
        authorized_organizations=frozenset(
            r.organization.casefold() for r in watch.authorized_issuers if r.organization
        ),
    )


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: not a TCP port")
    asyncio.run(serve(config, args.host, args.port, announce=_announce))
    return 0


def _announce(url: str) -> None:
    print(f"ctsentinel: serving {url} (Ctrl-C stops)", flush=True)


async def serve(
    config: Config,
    host: str,
    port: int,
    *,
    announce: Callable[[str], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or until `stop` is set)."""
    writer = Store.open(config.database)
    reader = Store.open_for_browsing(config.database, time_limit=config.web.time_limit)
    try:
        app = create_app(reader, writer, config.web, watch_specs(config))
        async with listening(app, host, port, f"cannot listen on {host}:{port}") as bound:
            shown = f"[{host}]" if ":" in host else host
            announce(f"http://{shown}:{bound}/")
            stop = stop or asyncio.Event()
            loop = asyncio.get_running_loop()
            for number in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(number, stop.set)
            await stop.wait()
    finally:
        reader.close()
        writer.close()
