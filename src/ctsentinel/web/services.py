"""What every handler shares: the stores, the token check, the watches and the query threads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web

from ctsentinel.store import Store
from ctsentinel.web.security import Auth, Session
from ctsentinel.web.settings import WatchSpec, WebSettings

T = TypeVar("T")
QUERY_THREADS = 8  # browsing queries in flight at once; more wait their turn off the event loop


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
