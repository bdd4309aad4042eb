"""A per-log request budget: concurrency, request rate, backoff after refusals, and the learned batch size.

Logs publish rate limits loosely or not at all, so the budget starts from the configured rate and adapts:
a 429 halves the rate and pauses every request to that log until its Retry-After (or an exponential,
jittered backoff) has passed; each success wins back a little. This is the AIMD rule that keeps a
monitor just under a log's limit without hammering it after a refusal.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ctsentinel.retry import Backoff, Jitter

_PROBE_AFTER = 8  # full answers at the learned batch size before asking for twice as many once


@dataclass
class BudgetStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    timeouts: int = 0
    bytes: int = 0


class LogBudget:
    """At most `concurrency` requests in flight and `requests_per_second` started, per log."""

    def __init__(
        self,
        concurrency: int = 4,
        requests_per_second: float = 20.0,
        batch_size: int = 1000,
        *,
        min_rate: float = 0.2,
        backoff_base: float = 0.5,
        backoff_cap: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        if concurrency < 1 or requests_per_second <= 0 or batch_size < 1:
            raise ValueError("concurrency, requests_per_second and batch_size must be positive")
        self.concurrency = concurrency
        self.max_rate = requests_per_second
        self.rate = requests_per_second
        self.min_rate = min(min_rate, requests_per_second)
        self.configured_batch = batch_size
        # Equal jitter: spread out, yet none retries at once.
        self._backoff = Backoff(backoff_base, backoff_cap, Jitter.EQUAL, rng or random.Random())
        self.stats = BudgetStats()
        self._proven: int | None = None  # most entries the log returned, once it has answered short
        self._full_streak = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._next_start = 0.0  # monotonic time before which no request starts (rate spacing)
        self._paused_until = 0.0  # after a 429 or repeated failures

    # --- pacing ------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the log's concurrent request slots, started no sooner than the rate allows."""
        async with self._slots:
            await self._wait_turn()
            self.stats.requests += 1
            yield

    async def _wait_turn(self) -> None:
        while True:
            now = time.monotonic()
            start = max(now, self._next_start, self._paused_until)
            if start <= now:
                self._next_start = now + 1.0 / self.rate
                return
            # Re-check after sleeping: a 429 seen meanwhile may have pushed the pause further out.
            await asyncio.sleep(start - now)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before the attempt-th retry (1-based)."""
        return self._backoff.delay(attempt)

    def pause(self, seconds: float) -> None:
        """No request to this log starts within `seconds` (every in-flight retry waits too)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def rate_limited(self, retry_after: float | None, attempt: int) -> float:
        """Record a 429: halve the rate, pause the log; returns the pause chosen."""
        self.stats.rate_limited += 1
        # Requests in flight when the log started refusing all come back 429 together: that is one
        # refusal, not one per request, so halve once per pause.
        if time.monotonic() >= self._paused_until:
            self.rate = max(self.min_rate, self.rate / 2)
        delay = retry_after if retry_after is not None else self.backoff(attempt)
        self.pause(delay)
        return delay

    def succeeded(self) -> None:
        # Additive increase: about ten successes at the current rate win back one tenth of the maximum.
        if self.rate < self.max_rate:
            self.rate = min(self.max_rate, self.rate + self.max_rate / 100)

    # --- batch size --------------------------------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        """How many entries to ask for in one get-entries: the configured size until the log has answered
        short, then the most it has ever returned, probing twice that now and then (a log that answered
        short only up to an alignment boundary would otherwise be read in needlessly small batches)."""
        if self._proven is None:
            return self.configured_batch
        if self._full_streak >= _PROBE_AFTER:
            return min(self.configured_batch, 2 * self._proven)
        return self._proven

    def observe_batch(self, asked: int, got: int) -> None:
        """Record a get-entries answer of `got` entries to a request for `asked`.

        Any answer proves the log's cap is at least `got`; a short one shows it is below `asked`. The
        latest short answer alone is not the cap: a log may answer short under load, or adversarially.
        """
        if got <= 0:
            return
        if got < asked:
            self._proven = min(self.configured_batch, max(self._proven or 0, got))
            self._full_streak = 0
        elif self._proven is not None:
            if asked >= self.batch_size:
                self._full_streak = 0 if self._full_streak >= _PROBE_AFTER else self._full_streak + 1
            self._proven = min(self.configured_batch, max(self._proven, got))
