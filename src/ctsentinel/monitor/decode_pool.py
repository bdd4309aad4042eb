"""Decode processes, so that both cores work on entries while this process downloads and commits.

Each process (monitor/decode_worker.py) gets log answers as the log sent them and returns the leaf hashes
and the entries that matter; what crosses the pipes is a pickle of plain data, once per answer. The pool
is a handful of child processes spoken to over their stdin and stdout from the event loop: no executor
thread, no semaphore, no fork server or resource tracker (each would be one more Python process in
memory), and a child whose stdin closes exits, so none outlives the monitor even when it is killed.

At most `_PENDING` answers wait per process: `process` awaits a free place, which is the back-pressure
that keeps the answers held in memory bounded whatever the backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pickle
import sys
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar, cast

from ctsentinel.ct.entries import EntryBody
from ctsentinel.errors import Error
from ctsentinel.monitor.decode_worker import (
    FRAME,
    REPLY,
    Decoded,
    Matcher,
    Outcome,
    PolicyCheck,
    release_large_buffers,
)

__all__ = ["DecodePool", "Decoded", "Matcher", "Outcome", "PolicyCheck", "PoolError"]

T = TypeVar("T")
A = TypeVar("A")
_PENDING = 2  # answers queued per process: one being decoded, one ready to start
# The child imports what this process imports from: its sys.path (as multiprocessing hands it over), so
# that a matcher defined anywhere this process can import unpickles there too.
_START = "import sys; sys.path[:] = {path!r}; from ctsentinel.monitor.decode_worker import main; main()"


_F_SETPIPE_SZ = 1031  # fcntl's command number (Linux)
_PIPE_BYTES = 1 << 20  # /proc/sys/fs/pipe-max-size's default: what an unprivileged process may ask


def _widen_pipe(child: asyncio.subprocess.Process) -> None:
    """Give the answer pipe a mebibyte instead of 64 KiB, so a 4 MB answer crosses in a few writes
    rather than sixty, each of which waits on this loop; where the system refuses (not Linux), it stays."""
    transport = child.stdin.transport if child.stdin is not None else None
    pipe = transport.get_extra_info("pipe") if transport is not None else None
    if pipe is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)


class PoolError(Error):
    """The pool could not process an answer (a decode process died); the work is to be retried."""


class _Process:
    def __init__(self, child: asyncio.subprocess.Process) -> None:
        self.child = child
        self.waiting: deque[asyncio.Future[Any]] = deque()  # an Outcome, or a call's (ok, result)
        self.reader = asyncio.create_task(self._read())

    @property
    def alive(self) -> bool:
        return self.child.returncode is None and not self.reader.done()

    def write(self, message: tuple[object, ...], body: bytes = b"") -> None:
        """Queue one frame (written whole: frames never interleave, and they arrive in this order)."""
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        stdin = self.child.stdin
        assert stdin is not None
        stdin.write(FRAME.pack(len(payload), len(body)))
        stdin.write(payload)
        if body:
            stdin.write(body)

    async def drain(self) -> None:
        stdin = self.child.stdin
        assert stdin is not None
        await stdin.drain()

    async def _read(self) -> None:
        stdout = self.child.stdout
        assert stdout is not None
        try:
            while True:
                header = await stdout.readexactly(REPLY.size)
                outcome = pickle.loads(await stdout.readexactly(REPLY.unpack(header)[0]))
                future = self.waiting.popleft()
                if not future.done():
                    future.set_result(outcome)
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            while self.waiting:
                future = self.waiting.popleft()
                if not future.done():
                    future.set_exception(PoolError("a decode process died; its work is retried"))

    async def stop(self) -> None:
        stdin = self.child.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        with contextlib.suppress(ProcessLookupError):
            if self.child.returncode is None:
                try:
                    await asyncio.wait_for(self.child.wait(), 5)
                except TimeoutError:
                    self.child.kill()
                    await self.child.wait()
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)


DECODE_TIMEOUT = 120.0  # seconds: an answer of a thousand entries takes well under one


class DecodePool:
    """`processes` decode processes (0: one per core but one), started on first use in the running loop.

    Work that takes longer than `timeout` seconds is given up: its process is killed (a process cannot be
    interrupted otherwise) and replaced, and the caller gets a PoolError naming the entries, rather than
    waiting forever on a certificate built to be slow.
    """

    def __init__(
        self,
        processes: int,
        matcher: Matcher | None,
        store_all: bool,
        policy: PolicyCheck | None = None,
        *,
        timeout: float = DECODE_TIMEOUT,
    ) -> None:
        # By default one per core but one: this process downloads, absorbs the leaf hashes and commits, and
        # on two cores a second decode process only competes with it (and costs ~35 MB).
        self.processes = processes or max(1, (os.cpu_count() or 1) - 1)
        self.timeout = timeout  # seconds one answer (or call) may take: then its process is killed
        self._matcher = matcher
        self._store_all = store_all
        self._policy = policy
        self.busy = 0  # answers in the processes now: work handed to `run` may wait for slack
        release_large_buffers()  # this process holds the log answers until the decode processes take them
        self._workers: list[_Process | None] = [None] * self.processes
        self._freed: asyncio.Event | None = None
        self._starting: asyncio.Lock | None = None

    @property
    def pids(self) -> list[int]:
        """The decode processes running now."""
        return [w.child.pid for w in self._workers if w is not None and w.alive]

    @property
    def capacity(self) -> int:
        """Answers the pool holds at once (being decoded or queued)."""
        return self.processes * _PENDING

    async def process(self, answer: EntryBody, issuers: Mapping[bytes, bytes] | None = None) -> Outcome:
        """The answer parsed, hashed, decoded and matched in a decode process."""
        return await (await self.submit(answer, issuers))

    async def submit(
        self, answer: EntryBody, issuers: Mapping[bytes, bytes] | None = None
    ) -> asyncio.Future[Outcome]:
        """Hand the answer to a decode process once one has room; its outcome is the future's result. The
        pool keeps no reference to the answer: a caller that drops its own frees the body at once."""
        if self._freed is None:
            self._freed = asyncio.Event()
        while True:
            slot = await self._least_busy()
            if len(slot.waiting) < _PENDING:
                break
            self._freed.clear()
            await self._freed.wait()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        slot.waiting.append(future)
        self.busy += 1
        future.add_done_callback(self._on_done)
        self._deadline(slot, future, f"decoding entries {answer.start}-{answer.start + answer.asked - 1}")
        try:
            slot.write(("entries", replace(answer, body=b""), dict(issuers or {})), answer.body)
            await slot.drain()
        except BaseException as exc:
            if not future.done():
                future.cancel()  # its outcome is read and dropped when it comes
            if isinstance(exc, ConnectionError):
                raise PoolError("a decode process died; its work is retried") from None
            raise
        return future

    def _deadline(self, slot: _Process, future: asyncio.Future[Any], what: str) -> None:
        def expire() -> None:
            if future.done():
                return
            future.set_exception(
                PoolError(f"{what} took longer than {self.timeout:g} s; the decode processes were restarted")
            )
            with contextlib.suppress(ProcessLookupError):
                slot.child.kill()  # the reader sees it die; what else it held fails and is redone

        timer = asyncio.get_running_loop().call_later(self.timeout, expire)
        future.add_done_callback(lambda _: timer.cancel())

    def _on_done(self, future: asyncio.Future[Any]) -> None:
        self.busy -= 1
        if self._freed is not None:
            self._freed.set()

    async def run(self, fn: Callable[[A], T], argument: A) -> T:
        """`fn(argument)` in one of the processes (both must pickle: fn a top-level function), for work
        beside the decoding, e.g. linting. Its exception is raised here; PoolError if the process died."""
        slot = await self._least_busy()
        future: asyncio.Future[tuple[bool, Any]] = asyncio.get_running_loop().create_future()
        slot.waiting.append(future)
        self._deadline(slot, future, getattr(fn, "__name__", "work"))
        try:
            slot.write(("call", fn, argument))
            await slot.drain()
        except ConnectionError:
            raise PoolError("a decode process died; its work is retried") from None
        ok, result = await future
        if not ok:
            raise result
        return cast(T, result)

    async def _least_busy(self) -> _Process:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            for number, worker in enumerate(self._workers):
                if worker is None or not worker.alive:
                    if worker is not None:
                        await worker.stop()
                    self._workers[number] = await self._start()
        workers = [w for w in self._workers if w is not None]
        return min(workers, key=lambda w: len(w.waiting))

    async def _start(self) -> _Process:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _START.format(path=sys.path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        _widen_pipe(child)
        process = _Process(child)
        process.write(("matcher", self._matcher, self._store_all, self._policy))
        return process

    def set_matcher(
        self, matcher: Matcher | None, store_all: bool, policy: PolicyCheck | None = None
    ) -> None:
        """Use a new watchlist and CA watches from the next answer on (config reload): answers already
        handed over are decoded with the old ones."""
        self._matcher, self._store_all, self._policy = matcher, store_all, policy
        for worker in self._workers:
            if worker is not None and worker.alive:
                # In order on the same pipe: every answer queued after it sees the new matcher.
                worker.write(("matcher", matcher, store_all, policy))

    async def close(self) -> None:
        workers = [w for w in self._workers if w is not None]
        self._workers = [None] * self.processes
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
