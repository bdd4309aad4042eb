"""`backfill --watch NAME`: what a watch added today would have caught in what the monitor already read.

With store = "all" every certificate is in the store: they are matched against the watch, page by page.
Otherwise the logs are read again for that watch alone, from entry 0 up to where the monitor stands: as
ranges (ranges.py), each proven against the log's verified head like any backlog, leased so that several
`backfill` processes share them, committed with the entries that match (a rescan never moves a log's
position). By default only logs whose temporal interval still holds unexpired certificates are read
again (a log whose interval ended holds expired certificates only); `all_logs` reads every log.
Either way the alerts found are written with their deliveries in the same transaction, through the
outbox, once: a certificate already recorded for the watch is not recorded again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ctsentinel.logs.budget import LogBudget
from ctsentinel.logs.client import LogClient
from ctsentinel.logs.factory import make_client
from ctsentinel.logs.http import HttpClient
from ctsentinel.logs.loglist import LogInfo, LogListSource, is_downloaded, select_logs
from ctsentinel.monitor.decode_pool import DecodePool, Matcher
from ctsentinel.monitor.gateway import StoreGateway
from ctsentinel.monitor.leases import LeaseKeeper
from ctsentinel.monitor.ranges import RangeRunner, split
from ctsentinel.monitor.settings import LogsSettings, MonitorSettings, Start
from ctsentinel.monitor.verify import Misbehaviour
from ctsentinel.monitor.worker import LogWorker, StoredHead, sleep_or_stop
from ctsentinel.store import EntryType, RangeClaim, StoredEntry

_PAGE = 1000  # stored certificates matched per transaction
_LOOK = 0.5  # seconds between two looks at the ranges left
_FAILURES = 5  # failed range attempts in a row before the rescan gives up


@dataclass
class BackfillReport:
    watch: str
    rescanned: list[str] = field(default_factory=list)  # URLs of the logs read again
    skipped: list[str] = field(default_factory=list)  # logs left out: their certificates have all expired
    certificates: int = 0  # stored certificates matched (store = "all")
    entries: int = 0  # entries this process read again
    alerts: set[int] = field(default_factory=set)  # alerts created or grown
    problems: list[str] = field(default_factory=list)  # misbehaviour or errors that stopped the rescan


def expired(info: LogInfo, now: datetime) -> bool:
    """True when the log only accepts certificates that expired before `now` (its temporal interval)."""
    return info.temporal_end is not None and info.temporal_end <= now


class Backfill:
    def __init__(
        self,
        watch: str,
        matcher: Matcher,
        gateway: StoreGateway,
        *,
        warn: Callable[[str], None],
    ) -> None:
        self.report = BackfillReport(watch)
        self.matcher = matcher
        self.gateway = gateway
        self.stop = asyncio.Event()
        self._warn = warn

    # --- store = "all" -----------------------------------------------------------------------------------

    async def match_stored(self) -> BackfillReport:
        store = self.gateway.store
        after = b""
        while not self.stop.is_set():
            records = await self.gateway.call(store.rematch.certificates, after, _PAGE)
            if not records:
                break
            entries = []
            for record in records:
                findings = self.matcher.match(record)
                if findings:
                    kind = EntryType.PRECERT if record.precert else EntryType.X509
                    entries.append(StoredEntry(0, kind, 0, record, None, list(findings)))
            touched = await self.gateway.call(store.rematch.record_findings, entries, self.gateway.routes)
            self.report.alerts.update(touched)
            self.report.certificates += len(records)
            after = bytes.fromhex(records[-1].sha256)
        return self.report

    # --- store = "matched": the logs read again ---------------------------------------------------------

    async def rescan(
        self, logs: LogsSettings, settings: MonitorSettings, *, all_logs: bool
    ) -> BackfillReport:
        store = self.gateway.store
        keeper = LeaseKeeper(store, settings.lease_seconds, warn=self._warn)
        pool = DecodePool(settings.decode_processes, self.matcher, False)
        renewer = asyncio.create_task(keeper.run(self.stop))
        try:
            timeout = logs.request_timeout
            async with (
                HttpClient(request_timeout=timeout) as list_http,
                HttpClient(request_timeout=timeout, public_only=is_downloaded(logs.list)) as http,
            ):
                chosen = await self._plan(list_http, logs, settings, all_logs)
                clients = {}
                for info in chosen:
                    budget = LogBudget(logs.concurrency, logs.requests_per_second, logs.batch_size)
                    clients[info.log_id] = (info, make_client(info, http, budget))
                await self._work(keeper, pool, clients, settings)
        finally:
            self.stop.set()
            await asyncio.gather(renewer, return_exceptions=True)
            await self.gateway.call(lambda: None)
            await keeper.release_all()
            keeper.close()
            await pool.close()
        return self.report

    async def _plan(
        self, list_http: HttpClient, logs: LogsSettings, settings: MonitorSettings, all_logs: bool
    ) -> list[LogInfo]:
        store = self.gateway.store
        listed = await LogListSource(logs.list, list_http, warn=self._warn).refresh()
        infos = select_logs(listed, logs.states, logs.include, logs.exclude)
        states = {state.log_id: state for state in await self.gateway.call(store.log_states)}
        now = datetime.now(UTC)
        chosen = []
        for info in infos:
            state = states.get(info.log_id)
            if state is None or not state.position or state.verified_root is None:
                continue  # never read: nothing a watch could have caught there yet
            assert state.verified_size is not None
            if expired(info, now) and not all_logs:
                self.report.skipped.append(info.url)
                continue
            target = StoredHead(state.verified_size, state.verified_timestamp or 0, state.verified_root)
            bounds = split(0, state.position, settings.range_entries)
            await self.gateway.call(
                store.leases.plan_ranges, info.log_id, None, target, bounds, self.report.watch
            )
            chosen.append(info)
            self.report.rescanned.append(info.url)
        return chosen

    async def _work(
        self,
        keeper: LeaseKeeper,
        pool: DecodePool,
        clients: dict[bytes, tuple[LogInfo, LogClient]],
        settings: MonitorSettings,
    ) -> None:
        store = self.gateway.store
        failures = [0]
        workers: list[LogWorker] = []

        def make_worker(claim: RangeClaim) -> LogWorker | None:
            found = clients.get(claim.log_id)
            if found is None:
                return None
            info, client = found

            def committed(entries: Sequence[StoredEntry]) -> None:
                failures[0] = 0

            worker = LogWorker(
                info,
                client,
                self.gateway,
                pool,
                start=Start.BEGINNING,
                commit_entries=settings.commit_entries,
                on_commit=committed,
            )
            workers.append(worker)
            return worker

        async def misbehaved(worker: LogWorker, finding: Misbehaviour) -> None:
            await worker.misbehaved(finding)
            self.report.problems.append(f"log {worker.info.url} misbehaved: {finding}")
            self.stop.set()

        async def failed(worker: LogWorker, exc: Exception) -> None:
            failures[0] += 1
            if failures[0] >= _FAILURES:
                self.report.problems.append(f"log {worker.info.url}: {exc}")
                self.stop.set()

        runner = RangeRunner(
            keeper,
            lambda: list(clients),
            make_worker,
            slots=max(1, settings.range_workers),
            stop=self.stop,
            on_misbehaviour=misbehaved,
            on_failure=failed,
            watch=self.report.watch,
        )
        left = [1]
        working = asyncio.create_task(runner.run(lambda: left[0] == 0))
        try:
            while not self.stop.is_set() and not working.done():
                counts = [
                    await self.gateway.call(store.leases.open_ranges, log_id, self.report.watch)
                    for log_id in clients
                ]
                left[0] = sum(counts)
                if left[0] == 0:
                    break
                await sleep_or_stop(self.stop, _LOOK)
        finally:
            if left[0] == 0:
                await working
            else:
                await runner.cancel()
                working.cancel()
                await asyncio.gather(working, return_exceptions=True)
        self.report.entries = sum(worker.result.entries for worker in workers)
