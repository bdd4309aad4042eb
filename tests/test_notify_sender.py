"""The sender over an outbox: retries with full-jitter backoff until the channel accepts, marks a delivery
done only then, and `drain` stops at its deadline leaving the rest pending. Real webhook receiver on
127.0.0.1 (failing on demand, or down and then back)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsentinel.notify import Channel, DeliveryError, MemoryOutbox, Sender
from ctsentinel.notify.webhook import WebhookChannel
from ctsentinel.retry import Backoff
from ctsentinel.store import PendingDelivery
from notify_helpers import HookReceiver, alert_event, free_port

FAST = Backoff(base=0.02, cap=0.2, rng=random.Random(6))


class Flaky(Channel):
    """Fails the first `failures` attempts of every key; records the order of attempts."""

    kind = "flaky"

    def __init__(self, key: str, failures: int = 0, crash: bool = False) -> None:
        super().__init__(key)
        self.failures, self.crash = failures, crash
        self.attempts: Counter[str] = Counter()
        self.accepted: list[str] = []

    async def deliver(self, event: dict, idempotency_key: str) -> None:
        self.attempts[idempotency_key] += 1
        if self.crash:
            raise RuntimeError("bug\nwith two lines")
        if self.attempts[idempotency_key] <= self.failures:
            raise DeliveryError(f"{self.key}: try {self.attempts[idempotency_key]} refused")
        self.accepted.append(idempotency_key)


def fill(outbox: MemoryOutbox, channel: str, count: int) -> None:
    for n in range(count):
        assert outbox.enqueue(channel, f"alert-{n}:{channel}", alert_event(alert_id=n))


def test_enqueue_is_idempotent() -> None:
    outbox = MemoryOutbox()
    assert outbox.enqueue("c", "k", alert_event())
    assert not outbox.enqueue("c", "k", alert_event())
    assert len(outbox.rows) == 1


def test_retries_until_accepted_and_marks_once() -> None:
    outbox = MemoryOutbox()
    flaky = Flaky("f", failures=3)
    fill(outbox, "f", 5)
    left = asyncio.run(Sender(outbox, [flaky], backoff=FAST).drain(10))
    assert left == []
    assert sorted(flaky.accepted) == sorted(f"alert-{n}:f" for n in range(5))
    assert all(count == 4 for count in flaky.attempts.values())
    assert {row.status for row in outbox.rows.values()} == {"delivered"}
    assert all(row.item.attempts == 3 for row in outbox.rows.values())
    assert outbox.rows[1].last_error == "f: try 3 refused"


def test_drain_deadline_leaves_failures_pending() -> None:
    outbox = MemoryOutbox()
    never = Flaky("never", failures=10**9)
    fine = Flaky("fine")
    fill(outbox, "never", 3)
    fill(outbox, "fine", 2)
    started = time.monotonic()
    left = asyncio.run(Sender(outbox, [never, fine], backoff=FAST).drain(0.5))
    assert time.monotonic() - started < 2
    assert sorted(item.idempotency_key for item in left) == [f"alert-{n}:never" for n in range(3)]
    assert sorted(fine.accepted) == ["alert-0:fine", "alert-1:fine"]
    assert all(never.attempts[item.idempotency_key] >= 2 for item in left)  # retried within the window
    # Nothing of the failed ones was marked delivered; the next run picks them up.
    assert [r.status for r in outbox.rows.values() if r.item.channel == "never"] == ["pending"] * 3


def test_unknown_channel_fails_for_good_and_a_crashing_channel_is_contained() -> None:
    outbox = MemoryOutbox()
    outbox.enqueue("gone#3", "a:gone", alert_event())
    outbox.enqueue("crash", "b:crash", alert_event())
    left = asyncio.run(Sender(outbox, [Flaky("crash", crash=True)], backoff=FAST).drain(0.3))
    assert outbox.rows[1].status == "failed"
    assert outbox.rows[1].last_error == "channel gone#3 is no longer configured"
    assert (
        outbox.rows[2].status == "pending"
        and outbox.rows[2].last_error == "crash: RuntimeError: bug with two lines"
    )
    assert [item.idempotency_key for item in left] == ["b:crash"]


def test_receiver_failing_then_down_then_back_gets_each_key_once() -> None:
    async def go() -> HookReceiver:
        receiver = HookReceiver(secret="k3y", port=free_port())
        hook = WebhookChannel("hook", receiver.url, secret="k3y", timeout=2)
        outbox = MemoryOutbox()
        fill(outbox, "hook", 40)
        sender = Sender(outbox, [hook], backoff=Backoff(base=0.05, cap=0.3, rng=random.Random(1)))
        # Down (nothing listens on the port) for the first pass...
        first = await sender.deliver_due()
        assert first.delivered == 0 and first.failed == 40
        # ...then up but answering 500 to the next 25 requests, then healthy.
        receiver.fail_next = 25
        await receiver.start()
        try:
            left = await sender.drain(15)
        finally:
            await sender.close()
            await receiver.stop()
        assert left == []
        return receiver

    receiver = asyncio.run(go())
    counts = receiver.counts()
    assert sorted(counts) == sorted(f"alert-{n}:hook" for n in range(40))
    assert set(counts.values()) == {1}
    assert receiver.requests == 40 + 25  # every refused request was retried, and only those
    assert {body["id"] for _, body, _ in receiver.accepted} == set(range(40))


def test_run_loop_delivers_new_items_when_woken_and_stops() -> None:
    async def go() -> Flaky:
        outbox = MemoryOutbox()
        chan = Flaky("f", failures=1)
        sender = Sender(outbox, [chan], backoff=FAST)
        stop = asyncio.Event()
        task = asyncio.create_task(sender.run(stop, idle=5.0))
        await asyncio.sleep(0.05)
        fill(outbox, "f", 3)
        sender.wake()
        for _ in range(200):
            if len(chan.accepted) == 3:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 2)
        return chan

    chan = asyncio.run(go())
    assert sorted(chan.accepted) == ["alert-0:f", "alert-1:f", "alert-2:f"]


@settings(max_examples=60, deadline=None)
@given(
    base=st.floats(0.001, 10),
    cap=st.floats(0.01, 1000),
    failures=st.integers(1, 200),
    seed=st.integers(0, 2**32),
)
def test_full_jitter_bounds(base: float, cap: float, failures: int, seed: int) -> None:
    """After the n-th failure the wait is within [0, min(cap, base * 2**(n-1))]."""
    backoff = Backoff(base=base, cap=cap, rng=random.Random(seed))
    delay = backoff.delay(failures)
    assert 0.0 <= delay <= min(cap, base * 2 ** (failures - 1))


def test_full_jitter_spreads_and_grows() -> None:
    backoff = Backoff(base=1.0, cap=64.0, rng=random.Random(7))
    early = [backoff.delay(1) for _ in range(2000)]
    late = [backoff.delay(11) for _ in range(2000)]
    assert max(early) <= 1.0 and 0.45 < sum(early) / len(early) < 0.55
    assert max(late) <= 64.0 and 29 < sum(late) / len(late) < 35  # capped at 64, mean ~32
    assert len({round(d, 3) for d in late}) > 1500  # jitter: no herd of identical retry times


def test_pending_delivery_protocol_shape() -> None:
    item = PendingDelivery(1, "c", "k", {"id": 1})
    assert item.attempts == 0
    assert isinstance(MemoryOutbox().next_due(), type(None))
    outbox = MemoryOutbox()
    outbox.enqueue("c", "k", alert_event())
    assert isinstance(outbox.next_due(), datetime)


@pytest.mark.parametrize("concurrency", [1, 8])
def test_channel_concurrency_is_respected(concurrency: int) -> None:
    class Slow(Channel):
        kind = "slow"

        def __init__(self) -> None:
            super().__init__("slow")
            self.concurrency = concurrency
            self.active = self.peak = 0

        async def deliver(self, event: dict, idempotency_key: str) -> None:
            self.active += 1
            self.peak = max(self.peak, self.active)
            await asyncio.sleep(0.01)
            self.active -= 1

    outbox = MemoryOutbox()
    fill(outbox, "slow", 30)
    slow = Slow()
    assert asyncio.run(Sender(outbox, [slow]).drain(5)) == []
    assert slow.peak == concurrency


class Hanging(Channel):
    kind = "hanging"

    def __init__(self) -> None:
        super().__init__("hang")
        self.started = 0

    async def deliver(self, event: dict, idempotency_key: str) -> None:
        self.started += 1
        await asyncio.sleep(3600)


def test_drain_is_bounded_even_when_a_receiver_hangs() -> None:
    outbox = MemoryOutbox()
    fill(outbox, "hang", 2)
    hanging = Hanging()
    started = time.monotonic()
    left = asyncio.run(Sender(outbox, [hanging], backoff=FAST).drain(0.3))
    assert time.monotonic() - started < 1.5
    assert hanging.started == 1 and len(left) == 2  # concurrency 1: the second waited its turn
    assert all(row.status == "pending" and row.item.attempts == 0 for row in outbox.rows.values())


def test_run_stops_at_once_when_a_receiver_hangs() -> None:
    async def go() -> float:
        outbox = MemoryOutbox()
        fill(outbox, "hang", 1)
        sender = Sender(outbox, [Hanging()], backoff=FAST)
        stop = asyncio.Event()
        task = asyncio.create_task(sender.run(stop))
        await asyncio.sleep(0.1)
        began = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 2)
        assert outbox.rows[1].status == "pending"  # abandoned, not marked: the next run sends it
        return time.monotonic() - began

    assert asyncio.run(go()) < 0.5


class Scripted(Channel):
    """Fails each key a given number of times (some with a bug-like exception), then accepts it."""

    kind = "scripted"

    def __init__(self, key: str, failures: dict[str, int], concurrency: int) -> None:
        super().__init__(key)
        self.failures, self.concurrency = failures, concurrency
        self.calls: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()

    async def deliver(self, event: dict, idempotency_key: str) -> None:
        self.calls[idempotency_key] += 1
        await asyncio.sleep(0)
        if self.calls[idempotency_key] <= self.failures.get(idempotency_key, 0):
            if self.calls[idempotency_key] % 2:
                raise DeliveryError("refused")
            raise ValueError("a bug")
        self.accepted[idempotency_key] += 1


@settings(max_examples=25, deadline=None)
@given(failures=st.lists(st.integers(0, 4), min_size=1, max_size=30), concurrency=st.integers(1, 6))
def test_every_key_accepted_exactly_once_whatever_fails(failures: list[int], concurrency: int) -> None:
    outbox = MemoryOutbox()
    for number in range(len(failures)):
        outbox.enqueue("c", f"k{number}", alert_event(alert_id=number))
    chan = Scripted("c", {f"k{n}": count for n, count in enumerate(failures)}, concurrency)
    backoff = Backoff(base=0.001, cap=0.004, rng=random.Random(len(failures)))
    assert asyncio.run(Sender(outbox, [chan], backoff=backoff).drain(20)) == []
    assert chan.accepted == Counter({f"k{n}": 1 for n in range(len(failures))})
    assert all(chan.calls[f"k{n}"] == count + 1 for n, count in enumerate(failures))
    assert all(row.status == "delivered" for row in outbox.rows.values())
