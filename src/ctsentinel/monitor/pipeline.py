"""The run: every selected log read by its own task, decode in a process pool, one store.

The log list is loaded (and, in continuous mode, refreshed every refresh_interval, keeping the old list on
failure), the logs synced into the store, then one LogWorker task per log polls, proves and commits. Errors
of one log are recorded and retried on the next poll; they never stop the others. SIGINT/SIGTERM cancel the
workers: a commit already handed to the store thread completes (it is one transaction), nothing is
half-written, and a second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

from ctsentinel.config import Config, load_config
from ctsentinel.ct.errors import CTError
from ctsentinel.errors import UserError
from ctsentinel.logs.budget import LogBudget
from ctsentinel.logs.factory import make_client
from ctsentinel.logs.http import HttpClient, LogHTTPError
from ctsentinel.logs.loglist import LogInfo, LogListSource, select_logs
from ctsentinel.monitor.decode_pool import DecodePool, PoolError
from ctsentinel.monitor.progress import Progress
from ctsentinel.monitor.verify import Misbehaviour
from ctsentinel.monitor.worker import LogWorker, StoreGateway, WorkerResult, now, sleep_or_stop
from ctsentinel.notify import Notifier, leftover_lines, misbehaviour_event
from ctsentinel.store import Store, StoredEntry, StoreError

_ONCE_TRIES = 3  # --once: attempts per log (each with the HTTP client's own retries) before giving up
_RETRY_ERRORS = (LogHTTPError, CTError, StoreError, PoolError, OSError, TimeoutError)


@dataclass
class RunReport:
    results: list[WorkerResult] = field(default_factory=list)
    interrupted: bool = False
    undelivered: list[str] = field(default_factory=list)  # one line per channel with deliveries pending

    @property
    def misbehaving(self) -> list[WorkerResult]:
        return [r for r in self.results if r.misbehaviour]

    @property
    def incomplete(self) -> list[WorkerResult]:
        return [r for r in self.results if not r.misbehaviour and not r.caught_up]

    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.misbehaving or self.incomplete else 0


def log_label(info: LogInfo) -> str:
    return f"{info.description or info.url} ({info.kind})"


class Monitor:
    def __init__(self, config: Config, *, once: bool, progress_stream: TextIO | None = None) -> None:
        self.config = config
        self.once = once
        self.progress = Progress(progress_stream)
        self.stop = asyncio.Event()
        self.report = RunReport()
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="ctsentinel-store")
        self._tasks: dict[bytes, tuple[LogWorker, asyncio.Task[None]]] = {}
        self._signals = 0
        self._notifier: Notifier | None = None
        self._gateway: StoreGateway | None = None
        self._hangup = asyncio.Event()  # SIGHUP: reload the config
        self._refresh_now = asyncio.Event()  # a reload changed the log selection
        self._sender: asyncio.Task[None] | None = None

    # --- entry point -----------------------------------------------------------------------------------

    async def run(self) -> RunReport:
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        store = await loop.run_in_executor(self._store_thread, Store.open, self.config.database)

        def offload(fn: Callable[[], Any]) -> Any:
            return loop.run_in_executor(self._store_thread, fn)

        try:
            self._notifier = notifier = Notifier.from_settings(store, self.config.notify, offload=offload)
        except BaseException:
            await loop.run_in_executor(None, self._store_thread.shutdown, True)
            store.close()
            raise
        self._gateway = gateway = StoreGateway(store, offload, notifier.routes)
        pool = DecodePool(
            self.config.monitor.decode_processes, self._matcher(), self.config.monitor.store == "all"
        )
        drawer = asyncio.create_task(self._draw())
        self._sender = None if self.once else asyncio.create_task(notifier.run(self.stop))
        reloader = None if self.once else asyncio.create_task(self._reloader(store, offload, pool))
        watchdog = None if self.once else asyncio.create_task(self._watch_lag(store, offload))
        try:
            async with HttpClient() as http:
                source = self._source = LogListSource(self.config.logs.list, http)
                infos = self._select(await source.refresh())
                if not infos:
                    raise UserError(f"log list {self.config.logs.list}: no log to monitor after selection")
                await gateway.call(store.sync_logs, infos)
                self._start_workers(infos, http, gateway, pool)
                refresher = (
                    None if self.once else asyncio.create_task(self._refresh(source, http, gateway, pool))
                )
                try:
                    await self._wait()
                finally:
                    if refresher is not None:
                        refresher.cancel()
                        await asyncio.gather(refresher, return_exceptions=True)
            if self.once and not self.report.interrupted:
                timeout = self.config.monitor.deliver_timeout
                self.report.undelivered = leftover_lines(await notifier.drain(timeout))
        finally:
            tasks = [task for _, task in self._tasks.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.stop.set()
            for helper in (reloader, watchdog):
                if helper is not None:
                    helper.cancel()
                    await asyncio.gather(helper, return_exceptions=True)
            if self._sender is not None:
                await asyncio.gather(self._sender, return_exceptions=True)
            await self._notifier.close()
            drawer.cancel()
            await asyncio.gather(drawer, return_exceptions=True)
            self.progress.draw(force=True)
            # The store thread finishes any commit already handed to it before the store closes.
            await loop.run_in_executor(None, self._store_thread.shutdown, True)
            store.close()
            pool.close(wait=False)
            self._remove_signals(loop)
        self.report.results = [worker.result for worker, _ in self._tasks.values()]
        return self.report

    async def _wait(self) -> None:
        if self.once:
            tasks = [task for _, task in self._tasks.values()]
            stopper = asyncio.create_task(self.stop.wait())
            await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            while not self.stop.is_set() and not all(t.done() for t in tasks):
                await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
        else:
            await self.stop.wait()

    # --- logs and workers ------------------------------------------------------------------------------

    def _select(self, infos: list[LogInfo]) -> list[LogInfo]:
        logs = self.config.logs
        return select_logs(infos, logs.states, logs.include, logs.exclude)

    def _matcher(self) -> Any:
        if not self.config.watches:
            return None
        from ctsentinel.watch import Watchlist

        return Watchlist.from_config(self.config.watches)

    def _start_workers(
        self, infos: list[LogInfo], http: HttpClient, gateway: StoreGateway, pool: DecodePool
    ) -> None:
        logs = self.config.logs
        for info in infos:
            if info.log_id in self._tasks:
                continue
            budget = LogBudget(logs.concurrency, logs.requests_per_second, logs.batch_size)
            key = info.log_id.hex()
            self.progress.log(key, log_label(info))
            worker = LogWorker(
                info,
                make_client(info, http, budget),
                gateway,
                pool,
                start=logs.start,
                commit_entries=self.config.monitor.commit_entries,
                on_progress=self._progress_callback(key),
                on_commit=self._committed,
            )
            task = asyncio.create_task(self._run_worker(worker), name=f"log {info.url}")
            self._tasks[info.log_id] = (worker, task)

    def _committed(self, entries: Sequence[StoredEntry]) -> None:
        # Alerts were queued in the commit's transaction; the sender takes them at once, not at its next pass.
        if self._notifier is not None and any(f.severity != "none" for e in entries for f in e.findings):
            self._notifier.wake()

    def _progress_callback(self, key: str) -> Callable[[int, int, str], None]:
        def update(position: int, size: int, status: str) -> None:
            self.progress.update(key, position, size, status)

        return update

    async def _refresh(
        self, source: LogListSource, http: HttpClient, gateway: StoreGateway, pool: DecodePool
    ) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._refresh_now.wait(), self.config.logs.refresh_interval)
            self._refresh_now.clear()
            if self.stop.is_set():
                return
            if self._source.source != self.config.logs.list:  # the reloaded config names another list
                self._source = LogListSource(self.config.logs.list, http)
            infos = self._select(await self._source.refresh())  # keeps the old list on failure
            try:
                await gateway.call(gateway.store.sync_logs, infos)
            except StoreError as exc:
                print(f"ctsentinel: {exc}", file=sys.stderr)
                continue
            self._start_workers(infos, http, gateway, pool)
            wanted = {info.log_id for info in infos}
            for log_id, (_, task) in list(self._tasks.items()):
                if log_id not in wanted:
                    task.cancel()

    async def _run_worker(self, worker: LogWorker) -> None:
        result = worker.result
        started = now()
        tries = 0
        polled = False
        reload = True
        try:
            while not self.stop.is_set():
                try:
                    if reload:
                        # The store is the truth: after any failure the worker resumes from what is committed.
                        await worker.load()
                        reload = False
                    # --once targets the head seen at start: after an error it resumes, it does not re-poll.
                    if not (self.once and polled):
                        await worker.poll_head()
                        polled = True
                    await worker.catch_up(self.stop)
                    tries = 0
                    if self.once:
                        result.caught_up = worker.position >= worker.target_size
                        return
                except Misbehaviour as finding:
                    if await worker.misbehaved(finding) and self._notifier is not None:
                        await self._notifier.report(
                            *misbehaviour_event(worker.info.url, finding.kind, finding.detail)
                        )
                    self.progress.update(
                        worker.info.log_id.hex(),
                        worker.position,
                        worker.target_size,
                        f"MISBEHAVING: {finding.kind}",
                    )
                    if self.once:
                        return
                except Exception as exc:
                    # Expected trouble (HTTP, malformed answers, the database) and bugs alike are recorded
                    # and retried; they must never take the other logs down.
                    known = isinstance(exc, _RETRY_ERRORS) and not isinstance(exc, OSError)
                    message = str(exc) if known else f"{type(exc).__name__}: {exc}"
                    if not isinstance(exc, _RETRY_ERRORS):
                        message = f"internal error {message}"
                    await self._failed(worker, message)
                    reload = True
                    tries += 1
                    if self.once and tries >= _ONCE_TRIES:
                        return
                delay = self.config.logs.poll_interval
                if self.once or tries:
                    delay = min(delay if not self.once else 8.0, 0.5 * 2 ** min(tries, 6))
                await sleep_or_stop(self.stop, delay)
        finally:
            result.position, result.size = worker.position, worker.target_size
            result.seconds = now() - started

    async def _failed(self, worker: LogWorker, message: str) -> None:
        self.progress.update(
            worker.info.log_id.hex(), worker.position, worker.target_size, f"error: {message[:80]}"
        )
        try:
            await worker.failed(message)
        except StoreError as exc:
            worker.result.error = f"{message} (and not recorded: {exc})"

    # --- log health -------------------------------------------------------------------------------------

    async def _watch_lag(self, store: Store, offload: Callable[[Callable[[], Any]], Any]) -> None:
        """Every so often, a health event for each log that fell behind by more than max_lag (once each)."""
        while not self.stop.is_set():
            max_lag = self.config.monitor.max_lag
            await sleep_or_stop(self.stop, min(60.0, max(1.0, max_lag / 4)) if max_lag else 60.0)
            if self.stop.is_set() or not max_lag or self._notifier is None:
                continue
            try:
                states = await offload(store.log_states)
                await self._notifier.check_lag(states, max_lag)
            except StoreError as exc:
                print(f"ctsentinel: log health check failed: {exc}", file=sys.stderr, flush=True)

    # --- config reload (SIGHUP) -------------------------------------------------------------------------

    async def _reloader(
        self, store: Store, offload: Callable[[Callable[[], Any]], Any], pool: DecodePool
    ) -> None:
        loop = asyncio.get_running_loop()
        while not self.stop.is_set():
            await self._hangup.wait()
            self._hangup.clear()
            try:
                new = await loop.run_in_executor(None, load_config, self.config.path)
                await self._apply(new, store, offload, pool)
            except UserError as exc:
                # A broken edit must not take a running monitor down: keep going on the config we have.
                print(
                    f"ctsentinel: config not reloaded, still running on the previous one: {exc}",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            print(f"ctsentinel: reloaded {self.config.path}", file=sys.stderr, flush=True)

    async def _apply(
        self, new: Config, store: Store, offload: Callable[[Callable[[], Any]], Any], pool: DecodePool
    ) -> None:
        """Switch to a reloaded config. Positions, compact ranges and verified heads live in the store and
        are untouched: no log restarts. A certificate already processed is not matched again."""
        old = self.config
        if new.database != old.database:
            raise UserError(f"database changed to {new.database!r}: that needs a restart")
        notifier = None
        if new.notify != old.notify:
            # UserError before anything changes
            notifier = Notifier.from_settings(store, new.notify, offload=offload)
        self.config = new
        if new.watches != old.watches or new.monitor.store != old.monitor.store:
            pool.set_matcher(self._matcher(), new.monitor.store == "all")
        if notifier is not None and self._notifier is not None:
            previous, previous_sender = self._notifier, self._sender
            # Commits from here on queue to the new channels.
            if self._gateway is not None:
                self._gateway.routes = notifier.routes
            self._notifier = notifier
            self._sender = asyncio.create_task(notifier.run(self.stop))
            if previous_sender is not None:
                previous_sender.cancel()
                await asyncio.gather(previous_sender, return_exceptions=True)
            await previous.close()
        if (new.logs.list, new.logs.states, new.logs.include, new.logs.exclude) != (
            old.logs.list,
            old.logs.states,
            old.logs.include,
            old.logs.exclude,
        ):
            self._refresh_now.set()

    # --- progress and signals ---------------------------------------------------------------------------

    async def _draw(self) -> None:
        if not self.progress.enabled:
            return
        while True:
            self.progress.draw()
            await asyncio.sleep(self.progress.min_interval)

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_signal)
        if not self.once:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signal.SIGHUP, self._hangup.set)

    def _remove_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)

    def _on_signal(self) -> None:
        self._signals += 1
        if self._signals > 1:
            # Second signal: leave now. The database is consistent at any instant (one transaction per
            # chunk), so the only loss is the chunk in flight, which the next run redoes.
            sys.stderr.write("ctsentinel: interrupted again, exiting at once\n")
            sys.stderr.flush()
            os._exit(130)
        if self.once:
            self.report.interrupted = True
        self.stop.set()
        for _, task in self._tasks.values():
            task.cancel()
