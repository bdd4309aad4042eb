"""The application: its services (the stores, the token, the watches), middlewares and routes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from ctsentinel.store import Store
from ctsentinel.web.errors import Unauthorized, error_pages
from ctsentinel.web.security import Auth, Session, add_security_headers
from ctsentinel.web.settings import WatchSpec, WebSettings

T = TypeVar("T")
QUERY_THREADS = 8  # browsing queries in flight at once; more wait their turn off the event loop
# What anyone may fetch even when reads need the token: the way in, and what it is drawn with.
_ALWAYS_OPEN = ("/login", "/static/")


@dataclass
class Services:
    reader: Store  # read-only, every read under the time limit
    writer: Store  # alert actions only
    settings: WebSettings
    watches: Sequence[WatchSpec]
    auth: Auth = field(init=False)
    executor: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.auth = Auth(self.settings.token, token_for_reads=self.settings.token_for_reads)
        self.executor = ThreadPoolExecutor(max_workers=QUERY_THREADS, thread_name_prefix="ctsentinel-query")

    def watch(self, name: str) -> WatchSpec | None:
        return next((w for w in self.watches if w.name == name), None)

    async def query(self, function: Callable[..., T], *args: object) -> T:
        """Run a blocking store call on the query threads, so the event loop keeps serving."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)


SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def session(request: web.Request) -> Session | None:
    return services(request).auth.session(request)


@web.middleware
async def reads_need_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    auth = services(request).auth
    signed_in = auth.bearer(request) or auth.session(request) is not None
    if auth.token_for_reads and not request.path.startswith(_ALWAYS_OPEN) and not signed_in:
        raise Unauthorized("this server needs the token: log in, or send Authorization: Bearer <token>")
    response: web.StreamResponse = await handler(request)
    return response


def create_app(
    reader: Store, writer: Store, settings: WebSettings, watches: Sequence[WatchSpec]
) -> web.Application:
    from ctsentinel.web import actions, compat, feeds, metrics, views

    app = web.Application(middlewares=[error_pages, reads_need_token], client_max_size=64 * 1024)
    app[SERVICES] = Services(reader, writer, settings, watches)
    app.on_response_prepare.append(add_security_headers)

    async def stop_threads(app: web.Application) -> None:
        app[SERVICES].executor.shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(stop_threads)
    static = resources.files("ctsentinel.web") / "static"
    app.router.add_static("/static/", str(static), show_index=False, follow_symlinks=False)
    for module in (views, actions, compat, feeds, metrics):
        module.add_routes(app.router)
    return app
