"""The application: its services (the stores, the token, the watches), middlewares and routes."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from aiohttp import web
from aiohttp.typedefs import Handler

from ctsentinel.store import Store
from ctsentinel.web import actions, compat, feeds, metrics, views
from ctsentinel.web.errors import Unauthorized, error_pages
from ctsentinel.web.security import add_security_headers
from ctsentinel.web.services import SERVICES, Services, services
from ctsentinel.web.settings import WatchSpec, WebSettings

# What anyone may fetch even when reads need the token: the way in, and what it is drawn with.
_ALWAYS_OPEN = ("/login", "/static/")


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
