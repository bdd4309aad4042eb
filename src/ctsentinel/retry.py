"""The one backoff rule for everything ctsentinel retries: log requests, deliveries, a log's next attempt.

Hand-written rather than taken from a retry library because two of its three users do not retry in a loop
around one call: the sender persists the next attempt's time in the outbox (a retry may happen after a
restart), and a log's budget turns a refusal into a pause shared by every request to that log. What they
share is the delay, and that is what this module owns.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum


class Jitter(Enum):
    NONE = "none"  # exactly the exponential delay: predictable, for one client retrying alone
    EQUAL = "equal"  # uniform in [d/2, d]: spread out, yet never an immediate retry
    FULL = "full"  # uniform in [0, d): spreads many retriers furthest (AWS, "Exponential Backoff And Jitter")


@dataclass
class Backoff:
    """After the n-th consecutive failure (n >= 1) wait about min(cap, base * 2**(n-1)) seconds."""

    base: float
    cap: float
    jitter: Jitter = Jitter.FULL
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def ceiling(self, failures: int) -> float:
        return min(self.cap, self.base * 2.0 ** min(max(failures, 1) - 1, 62))

    def delay(self, failures: int) -> float:
        ceiling = self.ceiling(failures)
        if self.jitter is Jitter.NONE:
            return ceiling
        if self.jitter is Jitter.EQUAL:
            return ceiling / 2 + self.rng.random() * ceiling / 2
        return self.rng.uniform(0.0, ceiling)
