"""An aiohttp application served on one address for the length of a block: `serve`'s pages and `run`'s
metrics port start, refuse a port in use and stop the same way."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from ctsentinel.errors import UserError


@contextlib.asynccontextmanager
async def listening(app: web.Application, host: str, port: int, refused: str) -> AsyncIterator[int]:
    """Serve `app` on host:port until the block ends; yields the port bound (port 0 picks a free one). An
    address that cannot be bound is a UserError, "<refused>: <why>"."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise UserError(f"{refused}: {exc.strerror or exc}") from None
        bound = runner.addresses[0] if runner.addresses else (host, port)
        yield int(bound[1])
    finally:
        await runner.cleanup()
