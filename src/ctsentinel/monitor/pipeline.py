"""The run: every selected log read by its own task, decode in a process pool, one store.

The log list is loaded (and, in continuous mode, refreshed every refresh_interval, keeping the old list on
failure), the logs synced into the store, then one LogWorker task per log polls, proves and commits. Errors
of one log are recorded and retried on the next poll; they never stop the others. `interrupt()` cancels
the workers: a commit already handed to the store thread completes (it is one transaction), nothing is
half-written.

The monitor is handed everything it works with: its settings, the store (through a StoreGateway), the
notifier, the watch matcher and the CA watches' policy. The `run` command builds them from the config, and
hands over new ones when the config is reloaded. Work the run does beside the logs (CA oversight: lint,
revocation checks) comes as Companions, which share the run's pool and HTTP client: they run alongside,
and with --once they finish what is due once the logs are caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from ctsentinel.errors import Error, UserError
from ctsentinel.logs.budget import LogBudget
from ctsentinel.logs.factory import make_client
from ctsentinel.logs.http import HttpClient
from ctsentinel.logs.loglist import LogInfo, LogListSource, select_logs
from ctsentinel.monitor.decode_pool import DecodePool, Matcher, PolicyCheck
from ctsentinel.monitor.gateway import StoreGateway
from ctsentinel.monitor.progress import Progress
from ctsentinel.monitor.settings import Keep, LogsSettings, MonitorSettings
from ctsentinel.monitor.verify import Misbehaviour
from ctsentinel.monitor.worker import LogWorker, WorkerResult, now, sleep_or_stop
from ctsentinel.notify import Notifier, misbehaviour_event
from ctsentinel.retry import Backoff, Jitter
from ctsentinel.store import PendingDelivery, StoredEntry, StoreError
from ctsentinel.watch.severity import Severity

_ONCE_TRIES = 3  # --once: attempts per log (each with the HTTP client's own retries) before giving up
_ONCE_LONGEST_PAUSE = 8.0  # --once: the longest pause between two attempts of one log
# After the n-th failure in a row a log waits 1, 2, 4 ... 32 s, and never longer than its poll interval.
_RETRY = Backoff(base=1.0, cap=32.0, jitter=Jitter.NONE)


@dataclass
class RunReport:
    results: list[WorkerResult] = field(default_factory=list)
    interrupted: bool = False
    undelivered: list[PendingDelivery] = field(default_factory=list)  # --once: deliveries still pending

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


@dataclass(frozen=True)
class RunServices:
    """What the run shares with its companions."""

    http: HttpClient  # the logs' client: its timeouts, size limit and retries
    pool: DecodePool  # the decode processes; `busy` says whether they have time to spare
    gateway: StoreGateway  # the store, on its thread; gateway.routes are the current channels
    wake_sender: Callable[[], None]  # deliveries were queued: send them now


class Companion(Protocol):
    """Work beside the logs that the command hands the monitor (it never imports what does it)."""

    async def run(self, services: RunServices, stop: asyncio.Event) -> None:
        """Work until `stop` is set (a continuous run)."""
        ...

    async def finish(self, services: RunServices) -> None:
        """--once, the logs caught up: do what is due now, then return."""
        ...

    def committed(self, entries: Sequence[StoredEntry]) -> None:
        """A chunk was committed (there may be new work)."""
        ...


def log_label(info: LogInfo) -> str:
    return f"{info.description or info.url} ({info.kind})"


@dataclass
class _Attempts:
    """Where one log's worker stands between two attempts."""

    failures: int = 0  # in a row
    polled: bool = False  # the tree head has been read (--once reads it once: the target of the run)
    reload: bool = True  # resume from the store first (at the start, and after any failure)


def _failure_message(exc: Exception) -> str:
    if isinstance(exc, Error):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc}"
    return f"internal error {type(exc).__name__}: {exc}"


async def _cancel(*tasks: asyncio.Task[None] | None) -> None:
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


class Monitor:
    def __init__(
        self,
        logs: LogsSettings,
        settings: MonitorSettings,
        *,
        gateway: StoreGateway,
        notifier: Notifier,
        matcher: Matcher | None,
        once: bool,
        warn: Callable[[str], None],
        progress_stream: TextIO | None = None,
        policy: PolicyCheck | None = None,
        companions: Sequence[Companion] = (),
    ) -> None:
        self.logs = logs
        self.settings = settings
        self.gateway = gateway
        self.notifier = notifier
        gateway.routes = notifier.routes  # every alert a commit creates is queued to these channels
        self.once = once
        self.progress = Progress(progress_stream)
        self.stop = asyncio.Event()
        self.report = RunReport()
        self._warn = warn  # one line about trouble that does not stop the run (the caller shows it)
        self._matcher = matcher
        self._policy = policy
        self.companions = tuple(companions)
        self._companion_tasks: list[asyncio.Task[None]] = []
        self._pool: DecodePool | None = None
        self._tasks: dict[bytes, tuple[LogWorker, asyncio.Task[None]]] = {}
        self._sender: asyncio.Task[None] | None = None
        self._refresh_now = asyncio.Event()  # new settings changed the log selection

    # --- the run -----------------------------------------------------------------------------------------

    async def run(self) -> RunReport:
        """--once: until every log reached the tree head it saw at the start; otherwise until interrupted."""
        self._pool = pool = DecodePool(
            self.settings.decode_processes, self._matcher, self._keep_all(), self._policy
        )
        drawer = asyncio.create_task(self._draw())
        watchdog = None
        if not self.once:
            self._sender = asyncio.create_task(self.notifier.run(self.stop))
            watchdog = asyncio.create_task(self._watch_lag())
        try:
            async with HttpClient() as http:
                services = RunServices(http, pool, self.gateway, lambda: self.notifier.wake())
                if not self.once:
                    self._companion_tasks = [
                        asyncio.create_task(companion.run(services, self.stop))
                        for companion in self.companions
                    ]
                await self._monitor_logs(http, pool)
                if self.once and not self.report.interrupted:
                    await self._finish_companions(services)
            if self.once and not self.report.interrupted:
                self.report.undelivered = await self.notifier.drain(self.settings.deliver_timeout)
        finally:
            await self._shut_down(drawer, watchdog)
            pool.close(wait=False)
        self.report.results = [worker.result for worker, _ in self._tasks.values()]
        return self.report

    async def _monitor_logs(self, http: HttpClient, pool: DecodePool) -> None:
        source = LogListSource(self.logs.list, http)
        infos = self._select(await source.refresh())
        if not infos:
            raise UserError(f"log list {self.logs.list}: no log to monitor after selection")
        await self.gateway.call(self.gateway.store.sync_logs, infos)
        self._start_workers(infos, http, pool)
        refresher = None if self.once else asyncio.create_task(self._refresh(source, http, pool))
        try:
            await self._wait()
        finally:
            await _cancel(refresher)

    async def _finish_companions(self, services: RunServices) -> None:
        """--once: each companion's due work, unless the run is interrupted meanwhile."""
        for companion in self.companions:
            finishing = asyncio.create_task(companion.finish(services))
            stopper = asyncio.create_task(self.stop.wait())
            await asyncio.wait([finishing, stopper], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not finishing.done():
                await _cancel(finishing)
                return
            problem = finishing.exception()
            if problem is not None:
                self._warn(
                    _failure_message(problem if isinstance(problem, Exception) else Exception(problem))
                )

    async def _wait(self) -> None:
        if not self.once:
            await self.stop.wait()
            return
        tasks = [task for _, task in self._tasks.values()]
        stopper = asyncio.create_task(self.stop.wait())
        await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        while not self.stop.is_set() and not all(t.done() for t in tasks):
            await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()

    async def _shut_down(self, drawer: asyncio.Task[None], watchdog: asyncio.Task[None] | None) -> None:
        """The workers first (a commit in flight completes), then the sender and its channels, then the
        last progress lines."""
        await _cancel(*(task for _, task in self._tasks.values()))
        self.stop.set()
        await _cancel(watchdog, *self._companion_tasks)
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)
        await self.notifier.close()
        await _cancel(drawer)
        self.progress.draw(force=True)

    def interrupt(self) -> None:
        """Stop (SIGINT, SIGTERM): every worker is cancelled; --once then reports the run as interrupted."""
        if self.once:
            self.report.interrupted = True
        self.stop.set()
        for _, task in self._tasks.values():
            task.cancel()

    # --- new settings, matcher, channels (a reloaded config) ---------------------------------------------
    # Positions, compact ranges and verified heads live in the store and are untouched: no log restarts,
    # and a certificate already processed is not matched again.

    def use_settings(self, logs: LogsSettings, settings: MonitorSettings) -> None:
        reselect = logs.selection() != self.logs.selection()
        self.logs, self.settings = logs, settings
        if reselect:
            self._refresh_now.set()

    def use_matcher(self, matcher: Matcher | None, policy: PolicyCheck | None = None) -> None:
        """From the next batch on: this watchlist and these CA watches, and the current settings' choice
        of what to keep."""
        self._matcher, self._policy = matcher, policy
        if self._pool is not None:
            self._pool.set_matcher(matcher, self._keep_all(), policy)

    async def use_notifier(self, notifier: Notifier) -> None:
        previous, previous_sender = self.notifier, self._sender
        # Commits from here on queue to the new channels.
        self.gateway.routes = notifier.routes
        self.notifier = notifier
        if not self.once:
            self._sender = asyncio.create_task(notifier.run(self.stop))
        await _cancel(previous_sender)
        await previous.close()

    def _keep_all(self) -> bool:
        return self.settings.store is Keep.ALL

    # --- logs and workers ------------------------------------------------------------------------------

    def _select(self, infos: list[LogInfo]) -> list[LogInfo]:
        logs = self.logs
        return select_logs(infos, logs.states, logs.include, logs.exclude)

    def _start_workers(self, infos: list[LogInfo], http: HttpClient, pool: DecodePool) -> None:
        logs = self.logs
        for info in infos:
            if info.log_id in self._tasks:
                continue
            budget = LogBudget(logs.concurrency, logs.requests_per_second, logs.batch_size)
            key = info.log_id.hex()
            self.progress.log(key, log_label(info))
            worker = LogWorker(
                info,
                make_client(info, http, budget),
                self.gateway,
                pool,
                start=logs.start,
                commit_entries=self.settings.commit_entries,
                on_progress=self._progress_callback(key),
                on_commit=self._committed,
            )
            task = asyncio.create_task(self._run_worker(worker), name=f"log {info.url}")
            self._tasks[info.log_id] = (worker, task)

    def _committed(self, entries: Sequence[StoredEntry]) -> None:
        # Alerts were queued in the commit's transaction; the sender takes them at once, not at its next pass.
        if any(Severity(f.severity).is_alert for e in entries for f in e.findings):
            self.notifier.wake()
        for companion in self.companions:
            companion.committed(entries)

    def _progress_callback(self, key: str) -> Callable[[int, int, str], None]:
        def update(position: int, size: int, status: str) -> None:
            self.progress.update(key, position, size, status)

        return update

    async def _refresh(self, source: LogListSource, http: HttpClient, pool: DecodePool) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._refresh_now.wait(), self.logs.refresh_interval)
            self._refresh_now.clear()
            if self.stop.is_set():
                return
            if source.source != self.logs.list:  # the new settings name another list
                source = LogListSource(self.logs.list, http)
            infos = self._select(await source.refresh())  # keeps the old list on failure
            try:
                await self.gateway.call(self.gateway.store.sync_logs, infos)
            except StoreError as exc:
                self._warn(str(exc))
                continue
            self._start_workers(infos, http, pool)
            wanted = {info.log_id for info in infos}
            for log_id, (_, task) in list(self._tasks.items()):
                if log_id not in wanted:
                    task.cancel()

    # --- one log's worker --------------------------------------------------------------------------------

    async def _run_worker(self, worker: LogWorker) -> None:
        """Attempt after attempt until the monitor stops or, with --once, until this log is done; between
        two, the poll interval after a success, a growing pause after failures."""
        started = now()
        attempts = _Attempts()
        try:
            while not self.stop.is_set():
                if await self._attempt(worker, attempts):
                    return
                await sleep_or_stop(self.stop, self._pause(attempts.failures))
        finally:
            result = worker.result
            result.position, result.size = worker.position, worker.target_size
            result.seconds = now() - started

    async def _attempt(self, worker: LogWorker, attempts: _Attempts) -> bool:
        """Poll the log and catch up with it; True when this worker is done (--once)."""
        try:
            await self._catch_up(worker, attempts)
        except Misbehaviour as finding:
            await self._misbehaved(worker, finding)
            return self.once
        except Exception as exc:
            # Expected trouble (HTTP, malformed answers, the database) and bugs alike are recorded and
            # retried; they must never take the other logs down.
            await self._failed(worker, _failure_message(exc))
            attempts.reload = True
            attempts.failures += 1
            return self.once and attempts.failures >= _ONCE_TRIES
        attempts.failures = 0
        if self.once:
            worker.result.caught_up = worker.position >= worker.target_size
        return self.once

    async def _catch_up(self, worker: LogWorker, attempts: _Attempts) -> None:
        if attempts.reload:
            # The store is the truth: after any failure the worker resumes from what is committed.
            await worker.load()
            attempts.reload = False
        # --once targets the head seen at start: after an error it resumes, it does not re-poll.
        if not (self.once and attempts.polled):
            await worker.poll_head()
            attempts.polled = True
        await worker.catch_up(self.stop)

    def _pause(self, failures: int) -> float:
        if not failures:
            return self.logs.poll_interval
        longest = _ONCE_LONGEST_PAUSE if self.once else self.logs.poll_interval
        return min(longest, _RETRY.delay(failures))

    async def _misbehaved(self, worker: LogWorker, finding: Misbehaviour) -> None:
        if await worker.misbehaved(finding):
            await self.notifier.report(*misbehaviour_event(worker.info.url, finding.kind, finding.detail))
        self.progress.update(
            worker.info.log_id.hex(), worker.position, worker.target_size, f"MISBEHAVING: {finding.kind}"
        )

    async def _failed(self, worker: LogWorker, message: str) -> None:
        self.progress.update(
            worker.info.log_id.hex(), worker.position, worker.target_size, f"error: {message[:80]}"
        )
        try:
            await worker.failed(message)
        except StoreError as exc:
            worker.result.error = f"{message} (and not recorded: {exc})"

    # --- log health -------------------------------------------------------------------------------------

    async def _watch_lag(self) -> None:
        """Every so often, a health event for each log that fell behind by more than max_lag (once each)."""
        while not self.stop.is_set():
            max_lag = self.settings.max_lag
            await sleep_or_stop(self.stop, min(60.0, max(1.0, max_lag / 4)) if max_lag else 60.0)
            if self.stop.is_set() or not max_lag:
                continue
            try:
                states = await self.gateway.call(self.gateway.store.log_states)
                await self.notifier.check_lag(states, max_lag)
            except StoreError as exc:
                self._warn(f"log health check failed: {exc}")

    # --- progress ---------------------------------------------------------------------------------------

    async def _draw(self) -> None:
        if not self.progress.enabled:
            return
        while True:
            self.progress.draw()
            await asyncio.sleep(self.progress.min_interval)
