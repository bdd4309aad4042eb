"""Linting beside the decoding: the certificates CA watches queued are linted in the decode processes when
those have time to spare, and the reports stored with the CA watches' findings they make.

Linting costs a few milliseconds a certificate, a hundred times the decoding, so it never runs inside a
chunk: the decode workers only say which certificates want it (CaPolicy.wants_lint), commits queue them
in the store, and this companion of the run takes them off the queue a few at a time, only while the
decode processes are not all busy (or once work has waited `starve_after` seconds, so a run that never
idles still lints). A backfill therefore goes as fast with CA watches as without, and the lint follows.
With --once, whatever is queued once the logs are caught up is linted before the run ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ctsentinel.oversight.services import Services
from ctsentinel.store import LintDue, LintResult, StoredEntry
from ctsentinel.watch.ca_policy import CaPolicy

if TYPE_CHECKING:
    from ctsentinel.oversight.lint import LintReport

BATCH = 8  # certificates per job: some 40-130 ms of one process, short enough not to hold up a chunk
_IDLE_POLL = 2.0  # seconds between looks at the queue when nothing woke us
_SLACK_POLL = 0.05  # seconds between looks at whether the decode processes have time to spare
UNAVAILABLE = "unavailable"  # the profile recorded for a certificate whose bytes were not kept


def lint_batch(ders: Sequence[bytes | None]) -> list[LintReport]:
    """Worker entry point (top level, so it pickles by name): one report per certificate."""
    # pkilint takes most of a second to import: only the processes that lint pay for it, when they first do.
    from ctsentinel.oversight.lint import LintReport, lint_certificate

    return [LintReport(UNAVAILABLE, ()) if der is None else lint_certificate(der) for der in ders]


class Linter:
    """The run's companion that works the lint queue off (monitor.pipeline.Companion)."""

    def __init__(self, policy: CaPolicy, *, starve_after: float = 60.0) -> None:
        self.policy = policy
        self.starve_after = starve_after
        self.linted = 0  # certificates linted by this run
        self._wake = asyncio.Event()

    def use_policy(self, policy: CaPolicy) -> None:
        """The CA watches of a reloaded config judge what is linted from now on."""
        self.policy = policy

    def committed(self, entries: Sequence[StoredEntry]) -> None:
        if any(entry.lint for entry in entries):
            self._wake.set()

    async def run(self, services: Services, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not await self._lint_some(services, stop):
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), _IDLE_POLL)

    async def finish(self, services: Services) -> None:
        while await self._lint_some(services, None):
            pass

    async def _lint_some(self, services: Services, stop: asyncio.Event | None) -> bool:
        """Lint one batch from the queue; False when the queue is empty."""
        store = services.gateway.store
        due: list[LintDue] = await services.gateway.call(store.lint_due, BATCH)
        if not due:
            return False
        if stop is not None:
            await self._slack(services, stop)
            if stop.is_set():
                return False
        reports = await services.pool.run(lint_batch, [d.der for d in due])
        policy = self.policy
        results = [
            LintResult(d.sha256, report.profile, report.findings, policy.findings(d.record, report.errors))
            for d, report in zip(due, reports, strict=True)
        ]
        touched = await services.gateway.call(store.record_lint, results, services.gateway.routes)
        self.linted += len(results)
        if touched:
            services.wake_sender()
        return True

    async def _slack(self, services: Services, stop: asyncio.Event) -> None:
        """Until a decode process is free (or the work has waited long enough)."""
        started = time.monotonic()
        pool = services.pool
        while pool.busy >= pool.processes and not stop.is_set():
            if time.monotonic() - started >= self.starve_after:
                return
            await asyncio.sleep(_SLACK_POLL)
