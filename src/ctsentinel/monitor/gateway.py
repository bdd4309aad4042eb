"""The store as the monitor's async code reaches it: every call on one thread, in order.

SQLite has one writer, and the event loop must never wait on the disk. The `run` command opens the
gateway and hands the monitor and the notifier its `offload`. `routes` are where a commit queues its new
alerts' deliveries: the monitor sets them to its notifier's channels, and swaps them with the notifier.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ctsentinel.store import Route, Store

T = TypeVar("T")


class StoreGateway:
    def __init__(self, store: Store, thread: ThreadPoolExecutor) -> None:
        self.store = store
        self.routes: tuple[Route, ...] = ()
        self._thread = thread

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[StoreGateway]:
        """The store at `url`, opened on its thread; closed on the way out once the calls already handed
        over are done (a commit completes: it is one transaction)."""
        thread = ThreadPoolExecutor(1, thread_name_prefix="ctsentinel-store")
        loop = asyncio.get_running_loop()
        try:
            store = await loop.run_in_executor(thread, Store.open, url)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        try:
            yield cls(store, thread)
        finally:
            await loop.run_in_executor(None, thread.shutdown, True)
            store.close()

    def offload(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Run `fn` on the store thread."""
        return asyncio.get_running_loop().run_in_executor(self._thread, fn)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.offload(lambda: fn(*args, **kwargs))
