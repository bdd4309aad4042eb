"""A per-log request budget that finds what the log tolerates: request rate, requests in flight, backoff
after refusals, and the learned batch size.

Logs publish their limits loosely or not at all, and they differ by orders of magnitude (a get-entries
request a second for some, hundreds for a static tile bucket), so no fixed rate suits them all. Each log's
budget starts modestly and adapts, the way TCP finds a path's capacity:

- **Start**: `START_RATE` requests a second (or the rate this log tolerated last time, from the store),
  at most `START_CONCURRENCY` in flight until the log's answer time is known. Published CT log limits are
  "tens of requests a second" where they are stated at all, and monitors that read the strict ones settle
  on about four parallel requests; ten a second is at the low end of the first without being slow (10
  get-entries of 1000 entries are 10,000 entries a second).
- **Growth**, once per *round* (half a second's worth of answers at the current rate), and only when the
  budget itself held requests back during the round (a pipeline that cannot keep up is no reason to ask
  the log for more) and the log answered quickly (most answers within twice the fastest one of their size,
  plus 50 ms): doubling until the first refusal ("slow start"); after one, quickly back towards 90% of the
  rate that was refused (half the distance per round), then beyond it by 1/32 of it per round, so that
  the log is probed again only every few seconds.
- **Back-off**: a 429, a 503 or a timeout halves the rate (once per episode: the requests in flight when
  the log started refusing come back refused together) and pauses every request to the log until its
  Retry-After has passed, or else a jittered exponential backoff (ctsentinel.retry.Backoff).
- **Ceilings**: `[logs] requests_per_second` and `concurrency`, when configured, are upper bounds the
  budget never exceeds; without them the budget is bounded only by what the log and the pipeline take.
- **Memory**: `tolerated_rate` is what the monitor stores per log, and a new budget for that log starts
  there, growing from it additively (what was tolerated last time is known; what lies above is not).

Requests in flight follow the rate: enough to sustain it at the log's answer time (rate × answer time,
with headroom), never fewer than two, at most the configured ceiling or `MAX_CONCURRENCY`.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ctsentinel.retry import Backoff, Jitter

START_RATE = 10.0  # requests a second for a log never read before
START_CONCURRENCY = 4  # in flight until the log's answer time is known
MAX_CONCURRENCY = 64  # in flight without a configured ceiling: a bound on sockets and memory, not a goal
MAX_RATE = 10_000.0  # without a ceiling: only keeps the arithmetic finite
_ROUND_SECONDS = 0.5  # answers at the current rate that make one round of growth
_DECREASE = 0.5  # multiplicative decrease on a refusal, overload or timeout
_STEP = 1 / 8  # additive growth per round after a refusal, of the rate after the cut, at least
_SAFE = 0.9  # after a refusal the rate returns quickly to this fraction of the rate refused ...
_PROBE_STEP = 1 / 32  # ... and grows beyond it by this fraction of that rate per round
_SLOW_FACTOR = 2.0  # an answer slower than this times the fastest of its size is slow ...
_SLOW_SLACK = 0.05  # ... and this many seconds on top (a fast log's jitter is not congestion)
_PROBE_AFTER = 8  # full answers at the learned batch size before asking for twice as many once


@dataclass
class BudgetStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    timeouts: int = 0
    bytes: int = 0
    cuts: int = 0  # times the rate was cut (one per episode of refusals)


class LogBudget:
    """At most `concurrency` requests in flight and `rate` started per second, per log; both adapt."""

    def __init__(
        self,
        concurrency: int | None = None,
        requests_per_second: float | None = None,
        batch_size: int = 1000,
        *,
        initial_rate: float | None = None,
        tolerated_rate: float | None = None,
        min_rate: float = 0.2,
        backoff_base: float = 0.5,
        backoff_cap: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        """`concurrency` and `requests_per_second` are ceilings (None: none); `initial_rate` overrides
        START_RATE; `tolerated_rate` is what this log tolerated before (from the store)."""
        if concurrency is not None and concurrency < 1:
            raise ValueError("concurrency must be positive")
        if requests_per_second is not None and not 0 < requests_per_second < math.inf:
            raise ValueError("requests_per_second must be a positive number")
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.max_concurrency = concurrency  # the configured ceiling, or None
        self.max_rate = requests_per_second if requests_per_second is not None else MAX_RATE
        self.min_rate = min(min_rate, self.max_rate)
        self._threshold: float | None = None  # the rate after the last cut: growth above it is additive
        self._refused: float | None = None  # the rate at which the log last refused
        start = START_RATE if initial_rate is None else initial_rate
        self.rate = max(self.min_rate, min(self.max_rate, start))
        self.resume(tolerated_rate)
        self.configured_batch = batch_size
        # Equal jitter: spread out, yet none retries at once.
        self._backoff = Backoff(backoff_base, backoff_cap, Jitter.EQUAL, rng or random.Random())
        self.stats = BudgetStats()
        self._proven: int | None = None  # most entries the log returned, once it has answered short
        self._full_streak = 0
        self._in_flight = 0
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._next_start = 0.0  # monotonic time before which no request starts (rate spacing)
        self._paused_until = 0.0  # after a refusal: no request starts before
        self._episode_until = 0.0  # refusals before this belong to the episode that already cut the rate
        self._answer_time: float | None = None  # moving average of answer times, seconds
        self._fastest: dict[int, float] = {}  # fastest answer time by response size class
        self._round_answers = 0
        self._round_slow = 0
        self._round_held = 0  # requests the budget held back (rate spacing, or no free slot)

    def resume(self, tolerated_rate: float | None) -> None:
        """Start from what this log tolerated before (the store remembers it across restarts)."""
        if tolerated_rate is not None and tolerated_rate > 0:
            self.rate = self._threshold = max(self.min_rate, min(self.max_rate, tolerated_rate))

    # --- limits ------------------------------------------------------------------------------------------

    @property
    def concurrency(self) -> int:
        """Requests allowed in flight now: enough for the rate at the log's answer time."""
        if self._answer_time is None:
            wanted = START_CONCURRENCY
        else:
            wanted = max(2, math.ceil(self.rate * self._answer_time * 1.5) + 1)
        ceiling = self.max_concurrency if self.max_concurrency is not None else MAX_CONCURRENCY
        return max(1, min(wanted, ceiling))

    @property
    def tolerated_rate(self) -> float:
        """The rate to remember for this log: the current one, which it has answered without refusing."""
        return self.rate

    @property
    def paused_for(self) -> float:
        """Seconds until requests to this log may start again (0 when they may)."""
        return max(0.0, self._paused_until - time.monotonic())

    # --- pacing ------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the log's request slots, started no sooner than the rate allows."""
        held = False
        while self._in_flight >= self.concurrency:
            held = True
            # A future of the running loop (not an asyncio.Event, which binds to the first loop it sees).
            waiter = asyncio.get_running_loop().create_future()
            self._slot_waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: the slot goes to the next in line
                raise
            finally:
                if waiter in self._slot_waiters:
                    self._slot_waiters.remove(waiter)
        self._in_flight += 1
        try:
            held = await self._wait_turn() or held
            if held:
                self._round_held += 1
            self.stats.requests += 1
            yield
        finally:
            self._in_flight -= 1
            self._wake_one()

    def _wake_one(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _wait_turn(self) -> bool:
        """Wait for this request's start time; True if the budget held it back."""
        held = False
        while True:
            now = time.monotonic()
            start = max(now, self._next_start, self._paused_until)
            if start <= now:
                self._next_start = max(now, self._next_start) + 1.0 / self.rate
                return held
            held = True
            # Re-check after sleeping: a refusal seen meanwhile may have pushed the pause further out.
            await asyncio.sleep(start - now)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before the attempt-th retry (1-based)."""
        return self._backoff.delay(attempt)

    def pause(self, seconds: float) -> None:
        """No request to this log starts within `seconds` (every in-flight retry waits too)."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    # --- what the log said -------------------------------------------------------------------------------

    def rate_limited(self, retry_after: float | None, attempt: int) -> float:
        """A 429: cut the rate, pause the log; returns the pause chosen."""
        self.stats.rate_limited += 1
        return self._congested(retry_after, attempt)

    def overloaded(self, retry_after: float | None, attempt: int) -> float:
        """A 503 (the log says it is overloaded): as a 429."""
        self.stats.server_errors += 1
        return self._congested(retry_after, attempt)

    def timed_out(self, attempt: int) -> float:
        """A request that did not complete in time: the log (or the way to it) is congested."""
        self.stats.timeouts += 1
        return self._congested(None, attempt)

    def _congested(self, retry_after: float | None, attempt: int) -> float:
        now = time.monotonic()
        delay = retry_after if retry_after is not None else self.backoff(attempt)
        if now >= self._episode_until:
            self._refused = self.rate
            self.rate = max(self.min_rate, self.rate * _DECREASE)
            self._threshold = self.rate
            self.stats.cuts += 1
            self._new_round()
            # The answers to requests already in flight (at most an answer time away) are this episode's.
            self._episode_until = now + max(delay, 2 * (self._answer_time or 0.0), 0.1)
        self.pause(delay)
        return delay

    def succeeded(self, seconds: float | None = None, size: int = 0) -> None:
        """An answer that took `seconds` (None: not timed) and carried `size` bytes."""
        if seconds is not None:
            self._observe_answer_time(seconds, size)
        self._round_answers += 1
        if self._round_answers >= max(1.0, self.rate * _ROUND_SECONDS):
            self._end_round()

    def _observe_answer_time(self, seconds: float, size: int) -> None:
        self._answer_time = seconds if self._answer_time is None else 0.8 * self._answer_time + 0.2 * seconds
        size_class = size.bit_length() // 3  # sizes within a factor of 8 compare
        fastest = self._fastest.get(size_class)
        if fastest is None or seconds < fastest:
            self._fastest[size_class] = fastest = seconds
        if seconds > _SLOW_FACTOR * fastest + _SLOW_SLACK:
            self._round_slow += 1

    def _end_round(self) -> None:
        answers, slow, held = self._round_answers, self._round_slow, self._round_held
        self._new_round()
        if time.monotonic() < self._episode_until or held * 2 < answers or slow * 4 > answers:
            return
        if self._threshold is None:
            grown = self.rate * 2
        elif self._refused is None:  # resumed from the store: what lies above is unknown
            grown = self.rate + self._threshold * _STEP
        elif self.rate < _SAFE * self._refused:
            grown = self.rate + max(self._threshold * _STEP, (_SAFE * self._refused - self.rate) / 2)
        else:
            grown = self.rate + self._refused * _PROBE_STEP
        self.rate = min(self.max_rate, grown)

    def _new_round(self) -> None:
        self._round_answers = self._round_slow = self._round_held = 0

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
