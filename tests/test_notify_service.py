"""The Notifier as the monitor uses it: from the config, store calls on one store thread, alerts of a batch
commit delivered to a real webhook and a JSON-lines file; log-health events; `run --once` leftovers."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ctsentinel.config import parse_config
from ctsentinel.errors import UserError
from ctsentinel.notify import (
    Notifier,
    build_channels,
    lag_events,
    leftover_lines,
    misbehaviour_event,
)
from ctsentinel.retry import Backoff
from ctsentinel.store import PendingDelivery
from ctsentinel.timefmt import duration
from notify_helpers import HookReceiver, free_port
from notify_store import LOG_URL, Finding, commit, open_store


def config_text(tmp_path: Path, port: int, extra: str = "") -> str:
    return f"""
[[watch]]
name = "google"
domains = ["google.com"]

[[notify]]
kind = "webhook"
url = "http://127.0.0.1:{port}/hook"
secret = "s"
retry_base = 0.05
retry_cap = 0.2
{extra}

[[notify]]
kind = "jsonl"
path = "{tmp_path / "alerts.jsonl"}"
min_severity = "critical"
"""


def test_retry_options_are_validated(tmp_path: Path) -> None:
    config = parse_config(config_text(tmp_path, 9), tmp_path / "c.toml")
    hook, archive = build_channels(config.notify)
    assert (hook.retry_base, hook.retry_cap) == (0.05, 0.2)
    assert (archive.retry_base, archive.retry_cap) == (2.0, 600.0)
    bad = parse_config(
        config_text(tmp_path, 9).replace("retry_cap = 0.2", "retry_cap = 0.01"), tmp_path / "c.toml"
    )
    with pytest.raises(UserError, match=r"^\[\[notify\]\] #1 webhook: retry_cap must be at least 0\.05$"):
        build_channels(bad.notify)


def test_notifier_end_to_end_on_the_store_thread(tmp_path: Path) -> None:
    store = open_store(tmp_path / "ct.db")
    receiver = HookReceiver(secret="s", port=free_port())
    config = parse_config(config_text(tmp_path, receiver.port), tmp_path / "c.toml")
    store_thread = ThreadPoolExecutor(1, thread_name_prefix="store")
    threads: set[str] = set()

    async def go() -> list[PendingDelivery]:
        loop = asyncio.get_running_loop()

        def offload(call):  # what the monitor's StoreGateway does
            def traced():
                threads.add(threading.current_thread().name)
                return call()

            return loop.run_in_executor(store_thread, traced)

        notifier = Notifier.from_settings(store, config.notify, offload=offload)
        findings = [[Finding("google")], [Finding("google", severity="high")]]
        await offload(lambda: commit(store, findings, routes=notifier.routes))
        await notifier.report(*misbehaviour_event(LOG_URL, "fork", "two roots at size 5"))
        await notifier.report(*misbehaviour_event(LOG_URL, "fork", "two roots at size 5"))  # same: once
        # Receiver down: --once gives up at its deadline and says what is left.
        left = await notifier.drain(0.3)
        channel = notifier.channels[0]  # keyed by its destination
        assert sorted(item.channel for item in left) == [channel.key] * 3
        assert channel.key.startswith(f"webhook:http://127.0.0.1:{receiver.port}/…#")
        await receiver.start()
        try:
            stop = asyncio.Event()
            task = asyncio.create_task(notifier.run(stop))
            for _ in range(300):
                if len(receiver.accepted) == 3:
                    break
                await asyncio.sleep(0.02)
            stop.set()
            await task
            return await notifier.drain(1)
        finally:
            await notifier.close()
            await receiver.stop()

    try:
        assert asyncio.run(go()) == []
    finally:
        store_thread.shutdown()
    assert threads and all(name.startswith("store") for name in threads)  # never on the event loop
    bodies = sorted(
        (b.get("event", "alert"), b.get("id"), b.get("severity")) for _, b, _ in receiver.accepted
    )
    assert bodies == [("alert", 1, "critical"), ("alert", 2, "high"), ("log_health", None, "critical")]
    assert set(receiver.counts().values()) == {1}
    lines = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert sorted((line.get("event", "alert"), line.get("id")) for line in lines) == [
        ("alert", 1),
        ("log_health", None),
    ]  # min_severity = critical: the high alert is not written
    store.close()


def test_leftover_lines_name_the_channel_and_the_last_error() -> None:
    left = [
        PendingDelivery(1, "webhook#1", "k1", {}, 3, "webhook http://x/: HTTP 503"),
        PendingDelivery(2, "webhook#1", "k2", {}, 2, "webhook http://x/: HTTP 503"),
        PendingDelivery(3, "mail", "k3", {}, 0, None),
    ]
    assert leftover_lines(left) == [
        "ctsentinel: 1 delivery to mail still pending; kept in the outbox for the next run",
        "ctsentinel: 2 deliveries to webhook#1 still pending (last error: webhook http://x/: HTTP 503); "
        "kept in the outbox for the next run",
    ]
    assert leftover_lines([]) == []


@dataclass
class State:
    url: str = LOG_URL
    state: str = "usable"
    position: int | None = 100
    verified_size: int | None = 100
    verified_timestamp: int | None = None
    misbehaving: bool = False
    updated_at: datetime | None = None


def test_lag_events() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    ms = lambda when: int(when.timestamp() * 1000)  # noqa: E731
    fresh = State(verified_timestamp=ms(now - timedelta(minutes=5)), updated_at=now)
    stale = State(url="https://stale/", verified_timestamp=ms(now - timedelta(hours=3, minutes=7)))
    frozen = State(url="https://frozen/", state="readonly", verified_timestamp=ms(now - timedelta(days=300)))
    stuck = State(
        url="https://stuck/",
        position=40,
        verified_timestamp=ms(now - timedelta(minutes=1)),
        updated_at=(now - timedelta(hours=2)).replace(tzinfo=None),  # SQLite hands back naive UTC
    )
    bad = State(url="https://bad/", misbehaving=True, verified_timestamp=0)
    unstarted = State(url="https://new/", position=None, verified_timestamp=0)
    events = lag_events([fresh, stale, frozen, stuck, bad, unstarted], now, 3600)
    assert [(e.log, e.problem, e.detail, e.severity) for e, _ in events] == [
        ("https://stale/", "behind", "newest verified tree head is 3h 7m old (limit 1h 0m)", "high"),
        ("https://stuck/", "behind", "60 entries waiting, none processed for 2h 0m (limit 1h 0m)", "high"),
    ]
    assert events[0][1] != events[1][1]
    again = lag_events([stale], now + timedelta(minutes=30), 3600)
    assert again[0][1] == events[0][1]  # the same stale head: the same occurrence, reported once
    spaced = [duration(seconds, spaced=True) for seconds in (59, 61, 90000)]
    assert spaced == ["59s", "1m 1s", "1d 1h"]


def test_misbehaviour_event() -> None:
    event, identity = misbehaviour_event(
        LOG_URL, "bad_signature", "STH at size 9", datetime(2026, 1, 2, tzinfo=UTC)
    )
    assert event.to_json() == {
        "event": "log_health",
        "log": LOG_URL,
        "problem": "misbehaving",
        "detail": "bad_signature: STH at size 9",
        "severity": "critical",
        "time": "2026-01-02T00:00:00Z",
    }
    assert misbehaviour_event(LOG_URL, "bad_signature", "STH at size 9")[1] == identity


def test_sender_backoff_override_and_per_channel_backoff() -> None:
    from ctsentinel.notify import MemoryOutbox, Sender
    from ctsentinel.notify.stdout import StdoutChannel

    slow = StdoutChannel("slow")
    slow.retry_base, slow.retry_cap = 100.0, 100.0
    sender = Sender(MemoryOutbox(), [slow])
    assert sender._backoffs["slow"].cap == 100.0
    override = Backoff(base=0.1, cap=0.1, rng=random.Random(1))
    assert Sender(MemoryOutbox(), [slow], backoff=override)._backoffs["slow"] is override
