"""What CA oversight needs of the run it works in (monitor.pipeline.RunServices has it): the decode
processes, the store on its thread, the HTTP client and a way to wake the sender. Declared here as
protocols so that oversight and the monitor never import each other; the run command hands one to the
other."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from ctsentinel.logs.http import HttpClient
from ctsentinel.store import Route, Store

T = TypeVar("T")
A = TypeVar("A")


class WorkerPool(Protocol):
    @property
    def processes(self) -> int: ...
    @property
    def busy(self) -> int: ...  # decode batches in the processes now

    async def run(self, fn: Callable[[A], T], argument: A) -> T: ...


class StoreAccess(Protocol):
    @property
    def store(self) -> Store: ...
    @property
    def routes(self) -> Sequence[Route]: ...  # the channels a new alert or event is queued to

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...


class Services(Protocol):
    @property
    def http(self) -> HttpClient: ...
    @property
    def pool(self) -> WorkerPool: ...
    @property
    def gateway(self) -> StoreAccess: ...
    @property
    def wake_sender(self) -> Callable[[], None]: ...
