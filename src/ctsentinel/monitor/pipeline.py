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
from ctsentinel.logs.client import LogClient
from ctsentinel.logs.factory import make_client
from ctsentinel.logs.http import HttpClient
from ctsentinel.logs.loglist import LogInfo, LogListSource, is_downloaded, select_logs
from ctsentinel.monitor.decode_pool import DecodePool, Matcher, PolicyCheck
from ctsentinel.monitor.gateway import StoreGateway
from ctsentinel.monitor.leases import LeaseKeeper
from ctsentinel.monitor.progress import Progress
from ctsentinel.monitor.ranges import RangeRunner, split
from ctsentinel.monitor.settings import Keep, LogsSettings, MonitorSettings
from ctsentinel.monitor.verify import Misbehaviour
from ctsentinel.monitor.worker import LogWorker, WorkerResult, now, sleep_or_stop
from ctsentinel.notify import Notifier, misbehaviour_event
from ctsentinel.retry import Backoff, Jitter
from ctsentinel.store import LeaseLost, PendingDelivery, RangeClaim, StoredEntry, StoreError
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
    last_poll: float = 0.0  # when the tree head was last read (monotonic)
    waiting: bool = False  # the backlog is being worked in ranges: look again soon
    seen_target: int | None = None  # --once, while another process works the log: the head it verified


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
        exclusive: bool = False,
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
        self._http: tuple[HttpClient, ...] = ()
        self._refresh_now = asyncio.Event()  # new settings changed the log selection
        # Leases: which logs and ranges this process works when several share the database.
        self.leases = LeaseKeeper(gateway.store, settings.lease_seconds, warn=warn)
        self._clients: dict[bytes, tuple[LogInfo, LogClient]] = {}
        self._exclusive = exclusive  # the only process on the database (SQLite's lock is held)
        self._ranges: RangeRunner | None = None

    # --- the run -----------------------------------------------------------------------------------------

    async def run(self) -> RunReport:
        """--once: until every log reached the tree head it saw at the start; otherwise until interrupted."""
        if self._exclusive:
            await self.leases.reset()
        settings = self.settings
        self._pool = pool = DecodePool(
            settings.decode_processes,
            self._matcher,
            self._keep_all(),
            self._policy,
            timeout=settings.decode_timeout,
        )
        drawer = asyncio.create_task(self._draw())
        renewer = asyncio.create_task(self.leases.run(self.stop))
        watchdog = None
        if not self.once:
            self._sender = asyncio.create_task(self.notifier.run(self.stop))
            watchdog = asyncio.create_task(self._watch_lag())
        try:
            # The list is fetched from where the config says; the logs it names, when it was downloaded,
            # only on public hosts (a host name must resolve to public addresses, as its URL must be).
            timeout = self.logs.request_timeout
            public_only = is_downloaded(self.logs.list)
            async with (
                HttpClient(request_timeout=timeout) as list_http,
                HttpClient(request_timeout=timeout, public_only=public_only) as http,
            ):
                self._http = (list_http, http)  # a reload changes their request deadline
                services = RunServices(http, pool, self.gateway, lambda: self.notifier.wake())
                if not self.once:
                    self._companion_tasks = [
                        asyncio.create_task(companion.run(services, self.stop))
                        for companion in self.companions
                    ]
                await self._monitor_logs(list_http, http, pool)
                if self.once and not self.report.interrupted:
                    await self._finish_companions(services)
            if self.once and not self.report.interrupted:
                self.report.undelivered = await self.notifier.drain(self.settings.deliver_timeout)
        finally:
            await self._shut_down(drawer, watchdog, renewer)
            await pool.close()
        self.report.results = [worker.result for worker, _ in self._tasks.values()]
        return self.report

    async def _monitor_logs(self, list_http: HttpClient, http: HttpClient, pool: DecodePool) -> None:
        source = LogListSource(self.logs.list, list_http, warn=self._warn)
        infos = self._select(await source.refresh())
        if not infos:
            raise UserError(f"log list {self.logs.list}: no log to monitor after selection")
        await self.gateway.call(self.gateway.store.sync_logs, infos)
        self._start_workers(infos, http, pool)
        refresher = (
            None if self.once else asyncio.create_task(self._refresh(source, list_http, http, pool))
        )
        self._ranges = RangeRunner(
            self.leases,
            lambda: list(self._clients),
            self._range_worker,
            slots=self.settings.range_workers,
            stop=self.stop,
            on_misbehaviour=self._misbehaved,
            on_failure=lambda worker, exc: self._failed(worker, _failure_message(exc)),
        )
        ranges = asyncio.create_task(self._ranges.run(self._all_done))
        try:
            await self._wait()
        finally:
            await _cancel(refresher, ranges)

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

    async def _shut_down(
        self, drawer: asyncio.Task[None], watchdog: asyncio.Task[None] | None, renewer: asyncio.Task[None]
    ) -> None:
        """The workers first (a commit in flight completes), then the leases are given back, then the
        sender and its channels, then the last progress lines."""
        await _cancel(*(task for _, task in self._tasks.values()))
        self.stop.set()
        await _cancel(watchdog, renewer, *self._companion_tasks)
        await self.gateway.call(lambda: None)  # the store thread is in order: commits handed over are done
        await self.leases.release_all()
        self.leases.close()
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
        if self._pool is not None:
            self._pool.timeout = settings.decode_timeout
        for client in self._http:
            client.request_timeout = logs.request_timeout
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
            self._clients[info.log_id] = (info, worker.client)

    def _range_worker(self, claim: RangeClaim) -> LogWorker | None:
        """A worker for a claimed range of one of this process's logs, sharing the log's client (and so its
        request budget: one source address, one budget)."""
        found = self._clients.get(claim.log_id)
        owner = self._tasks.get(claim.log_id)
        if found is None or owner is None:
            return None
        info, client = found
        log_worker = owner[0]
        key = info.log_id.hex()

        worker = LogWorker(
            info,
            client,
            self.gateway,
            self._pool_or_fail(),
            start=self.logs.start,
            commit_entries=self.settings.commit_entries,
            on_commit=self._committed,
        )
        worker.result = log_worker.result  # entries and misbehaviour count for the log in this run
        self.progress.update(key, log_worker.position, log_worker.target_size, "ranges")
        return worker

    def _pool_or_fail(self) -> DecodePool:
        assert self._pool is not None
        return self._pool

    def _all_done(self) -> bool:
        """--once: every log's worker finished (ranges are then worked no more)."""
        return self.once and bool(self._tasks) and all(task.done() for _, task in self._tasks.values())

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

    async def _refresh(
        self, source: LogListSource, list_http: HttpClient, http: HttpClient, pool: DecodePool
    ) -> None:
        """Every refresh_interval (or at once when new settings change the selection), the list read again;
        one that cannot be read, or selects no log, is refused in one line and the logs monitored so far
        stay as they are."""
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._refresh_now.wait(), self.logs.refresh_interval)
            self._refresh_now.clear()
            if self.stop.is_set():
                return
            candidate = source
            if source.source != self.logs.list:  # the new settings name another list
                candidate = LogListSource(self.logs.list, list_http, warn=self._warn)
            try:
                listed = await candidate.refresh()
            except Exception as exc:  # a list never loaded (UserError), or a bug: never the end of refreshes
                self._warn(f"{_failure_message(exc)}; still monitoring the logs of the previous list")
                continue
            if candidate.last_error is not None:
                self._warn(f"{candidate.last_error}; keeping the previous list")
                continue
            infos = self._select(listed)
            if not infos:
                self._warn(
                    f"log list {candidate.source}: no log to monitor after selection; "
                    "keeping the previous list"
                )
                continue
            source = candidate
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
                    self._clients.pop(log_id, None)

    # --- one log's worker --------------------------------------------------------------------------------

    async def _run_worker(self, worker: LogWorker) -> None:
        """Attempt after attempt until the monitor stops or, with --once, until this log is done; between
        two, the poll interval after a success, a growing pause after failures."""
        started = now()
        attempts = _Attempts()
        log_id = worker.info.log_id
        try:
            while not self.stop.is_set():
                if not await self._hold(worker, attempts):
                    if self.once and await self._done_elsewhere(worker, attempts):
                        return
                    if self.once and attempts.failures >= _ONCE_TRIES:
                        return
                    wait = min(self.logs.poll_interval, self.settings.lease_seconds / 2)
                    await sleep_or_stop(self.stop, wait)
                    continue
                if await self._attempt(worker, attempts):
                    if self.once:  # done here: another --once may want the log up to a later head
                        await self.leases.release_log(log_id)
                    return
                await sleep_or_stop(self.stop, self._pause(attempts))
        finally:
            result = worker.result
            result.position, result.size = worker.position, worker.target_size
            result.seconds = now() - started

    async def _hold(self, worker: LogWorker, attempts: _Attempts) -> bool:
        """Claim (or keep) the log's lease; False while another process works the log. A new claim resumes
        from the store: whoever held the lease before may have moved the log on."""
        try:
            fence = await self.leases.claim_log(worker.info.log_id)
        except StoreError as exc:
            await self._failed(worker, str(exc))
            attempts.failures += 1
            return False
        if fence != worker.fence:
            attempts.reload = True
            worker.fence = fence
        if fence is None:
            holder = "another process"
            self.progress.update(worker.info.log_id.hex(), worker.position, worker.target_size, holder)
            return False
        return True

    async def _done_elsewhere(self, worker: LogWorker, attempts: _Attempts) -> bool:
        """--once while another process works the log: done once the log reached the verified head this
        process first saw in the store (the other process proves and commits it)."""
        try:
            await worker.load()
        except StoreError:
            return False
        if worker.verifier is None or worker.verifier.verified is None:
            return False  # not started yet: its first head is still to be seen
        if attempts.seen_target is None:
            attempts.seen_target = worker.target_size
        worker.result.caught_up = worker.position >= attempts.seen_target
        return worker.result.caught_up

    async def _attempt(self, worker: LogWorker, attempts: _Attempts) -> bool:
        """Poll the log and catch up with it; True when this worker is done (--once)."""
        try:
            await self._catch_up(worker, attempts)
        except LeaseLost:
            # Another process took the log over (this one was paused or cut off past its lease): nothing
            # was committed, and the next attempt resumes from the store if the lease comes back.
            worker.fence = None
            attempts.reload = True
            return False
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
        if attempts.waiting:
            return False
        if self.once:
            worker.result.caught_up = worker.position >= worker.target_size
        return self.once

    async def _catch_up(self, worker: LogWorker, attempts: _Attempts) -> None:
        if attempts.reload:
            # The store is the truth: after any failure the worker resumes from what is committed.
            await worker.load()
            attempts.reload = False
        # --once targets the head seen at start: after an error it resumes, it does not re-poll. While
        # ranges are worked the head is still read every poll interval, not at every look at them.
        fresh = attempts.waiting and now() - attempts.last_poll < self.logs.poll_interval
        if not (self.once and attempts.polled) and not fresh:
            await worker.poll_head()
            attempts.polled = True
            attempts.last_poll = now()
        attempts.waiting = await self._in_ranges(worker)
        if attempts.waiting:
            attempts.reload = True  # the ranges move the log's position: read it back next time
            return
        await worker.catch_up(self.stop)
        await worker.save_request_rate(force=True)

    async def _in_ranges(self, worker: LogWorker) -> bool:
        """True while the log's backlog is worked in ranges (by any process): when ranges are open, or
        when the backlog is longer than range_entries and has just been cut into ranges."""
        store = self.gateway.store
        log_id = worker.info.log_id
        if await self.gateway.call(store.leases.open_ranges, log_id):
            await self.gateway.call(store.leases.advance, log_id)
            return bool(await self.gateway.call(store.leases.open_ranges, log_id))
        verifier = worker.verifier
        size = self.settings.range_entries
        if self.settings.range_workers <= 0 or verifier is None or verifier.verified is None:
            return False
        if worker.fence is None or verifier.backlog <= size:
            return False
        bounds = split(verifier.position, verifier.verified.tree_size, size)
        await self.gateway.call(store.leases.plan_ranges, log_id, worker.fence, verifier.verified, bounds)
        self.progress.update(log_id.hex(), worker.position, worker.target_size, f"{len(bounds)} ranges")
        return True

    def _pause(self, attempts: _Attempts) -> float:
        failures = attempts.failures
        if attempts.waiting and not failures:
            return min(1.0, self.logs.poll_interval)
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
            await worker.save_request_rate(force=True)  # a log that refused until we gave up slowed us down
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
