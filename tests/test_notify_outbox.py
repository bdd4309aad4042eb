"""The durable outbox: deliveries commit with their alert in Store.commit_batch, survive a kill -9 of the
process between commit and delivery (or in the middle of one), and reach a receiver that was down for a
while exactly once per idempotency key."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ctsentinel.notify import DeliveryError, HealthEvent, Sender, health_event, undelivered_lines
from ctsentinel.notify.jsonl import JsonlChannel
from ctsentinel.notify.stdout import StdoutChannel
from ctsentinel.notify.webhook import WebhookChannel
from ctsentinel.retry import Backoff
from ctsentinel.store import CommitBatch, Route, Store, StoredEntry, StoreError, migrations
from ctsentinel.store.keys import issuance_key
from ctsentinel.store.outbox import idempotency_key
from ctsentinel.watch.severity import Severity
from notify_helpers import (
    GOOGLE_PEM,
    GOOGLE_SHA256,
    GOOGLE_TBS,
    BackgroundReceiver,
    HookReceiver,
    free_port,
    record_from_der,
)
from notify_store import GOOGLE_DER, LOG_ID, LOG_URL, Finding, Head, commit, fake_record, open_store

TESTS = Path(__file__).parent
FAST = Backoff(base=0.05, cap=0.3, rng=random.Random(6))


def keys_in(db: Path) -> dict[str, str]:
    """Every delivery's idempotency key and status, straight from the database file."""
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT idempotency_key, status FROM deliveries").fetchall())


def queue(store: Store, event: HealthEvent, identity: str, routes: Sequence[Route]) -> int:
    return store.outbox.enqueue_event(event, identity, routes)


def test_deliveries_commit_with_their_alert_and_follow_the_filters(tmp_path: Path) -> None:
    db = tmp_path / "ct.db"
    store = open_store(db)
    everything = JsonlChannel("archive", str(tmp_path / "a.jsonl"))
    critical_only = StdoutChannel("stdout#1", min_severity=Severity.CRITICAL)
    other_watch = StdoutChannel("stdout#2", watches=("cloudflare",))
    routes = [everything, critical_only, other_watch]
    outbox = store.outbox
    commit(store, [[Finding("google")], [Finding("google", severity="high")], []], routes=routes)
    alerts = {a.id: a.to_json() for a in store.list_alerts()}
    assert sorted(alerts) == [1, 2]
    pending = {(d.channel, d.payload["id"]): d for d in outbox.pending(100)}
    assert sorted(pending) == [("archive", 1), ("archive", 2), ("stdout#1", 1)]
    first = pending[("archive", 1)]
    # The payload is the alert exactly as `alerts --json` shows it, plus the private fields.
    assert {k: v for k, v in first.payload.items() if not k.startswith("_")} == alerts[1]
    assert first.payload["_pem"].replace("\n", "") == GOOGLE_PEM.replace("\n", "")
    assert first.payload["_tbs_sha256"] == GOOGLE_TBS and alerts[1]["sha256"] == [GOOGLE_SHA256]
    assert first.payload["_subject"].startswith("CN=www.google.com,")
    assert first.idempotency_key.startswith("ctsentinel-alert-") and len(set(pending.values())) == 3
    # The same certificate seen again (another log entry) grows the alert but queues nothing new.
    before = keys_in(db)
    commit(store, [[Finding("google")]], real_at=None, routes=routes)
    commit_again = store.list_alerts()
    assert len(commit_again) == 3  # entry 3 is a new (made-up) certificate: one more alert
    assert len(keys_in(db)) == len(before) + 2  # archive + stdout#1 for it, nothing for the old ones
    store.close()


def test_no_routes_no_deliveries_and_a_failed_batch_queues_nothing(tmp_path: Path) -> None:
    db = tmp_path / "ct.db"
    store = open_store(db)
    commit(store, [[Finding("google")]], routes=())
    assert keys_in(db) == {}
    # A batch at a stale position (a retry of the committed one) is refused whole: no alert, no delivery.
    state = store.log_state(LOG_ID)
    assert state is not None and state.compact_range is not None
    stale = StoredEntry(0, "x509", 0, fake_record(99), None, [Finding("google")])  # type: ignore[list-item]
    with pytest.raises(StoreError, match="refused"):
        store.commit_batch(
            CommitBatch(LOG_ID, 0, 1, state.compact_range, Head(1), [stale]), [StdoutChannel("s")]
        )
    assert len(store.list_alerts()) == 1
    assert store.outbox.pending(10) == []
    store.close()


def test_idempotency_keys_are_stable_across_databases(tmp_path: Path) -> None:
    a, b = open_store(tmp_path / "a.db"), open_store(tmp_path / "b.db")
    routes = [StdoutChannel("s")]
    commit(a, [[Finding("google")]], routes=routes)
    # In `b` the same certificate arrives later, at another position and as another alert id.
    commit(b, [[Finding("google")], [Finding("google")]], real_at=None, routes=routes)
    b_only = set(keys_in(tmp_path / "b.db"))
    commit(b, [[Finding("google")]], real_at=2, routes=routes)
    store_b_state = b.log_state(LOG_ID)
    assert store_b_state is not None and store_b_state.position == 3
    (key_a,) = keys_in(tmp_path / "a.db")
    issuance = issuance_key(record_from_der(GOOGLE_DER))
    assert key_a == idempotency_key("alert", f"google\x00{issuance}", "s")
    assert (
        key_a
        == "ctsentinel-alert-"
        + hashlib.sha256(f"alert\x00google\x00{issuance}\x00s".encode()).hexdigest()[:40]
    )
    assert key_a not in b_only and key_a in keys_in(tmp_path / "b.db")
    assert [a.id for a in b.list_alerts() if a.sha256 == (GOOGLE_SHA256,)] == [3]
    # Another channel, another key; the same alert for another watch, another key.
    assert idempotency_key("alert", f"google\x00{issuance}", "t") != key_a
    assert idempotency_key("alert", f"other\x00{issuance}", "s") != key_a
    a.close()
    b.close()


def test_receiver_down_then_back_gets_every_alert_once(tmp_path: Path) -> None:
    db = tmp_path / "ct.db"
    store = open_store(db)
    port = free_port()
    hook = WebhookChannel("hook", f"http://127.0.0.1:{port}/hook", secret="k", timeout=2)
    outbox = store.outbox
    commit(store, [[Finding("google")]] + [[Finding("google")] for _ in range(24)], routes=[hook])

    async def go() -> HookReceiver:
        receiver = HookReceiver(secret="k", port=port)
        sender = Sender(outbox, [hook], backoff=FAST)
        down = await sender.drain(0.4)  # nobody listens: every attempt fails, all stay pending
        assert len(down) == 25
        assert {d.status for d in outbox.undelivered()} == {"pending"}
        assert all(
            d.attempts >= 1 and ": cannot connect: " in str(d.last_error) for d in outbox.undelivered()
        )
        receiver.fail_next = 10  # back, but failing a while longer
        await receiver.start()
        try:
            assert await sender.drain(15) == []
        finally:
            await sender.close()
            await receiver.stop()
        return receiver

    receiver = asyncio.run(go())
    counts = receiver.counts()
    assert set(counts) == set(keys_in(db)) and set(counts.values()) == {1}
    assert sorted(body["id"] for _, body, _ in receiver.accepted) == list(range(1, 26))
    assert outbox.counts() == {"pending": 0, "delivered": 25, "failed": 0}
    assert outbox.undelivered() == []
    status = outbox.delivery_status([1])[1]
    assert status[0].channel == "hook" and status[0].status == "delivered" and status[0].attempts >= 1
    store.close()


def test_health_events_are_queued_once_per_occurrence(tmp_path: Path) -> None:
    store = open_store(tmp_path / "ct.db")
    routes = [StdoutChannel("loud"), StdoutChannel("quiet", min_severity=Severity.CRITICAL)]
    event = health_event(LOG_URL, "misbehaving", "fork at tree size 5", severity=Severity.CRITICAL)
    assert queue(store, event, f"{LOG_URL} fork 5", routes) == 2
    assert queue(store, event, f"{LOG_URL} fork 5", routes) == 0
    behind = health_event(LOG_URL, "behind", "3h behind", severity=Severity.HIGH)
    assert queue(store, behind, f"{LOG_URL} behind 2026-11-27T06", routes) == 1
    assert sorted((d.channel, d.payload["problem"]) for d in store.outbox.pending(10)) == [
        ("loud", "behind"),
        ("loud", "misbehaving"),
        ("quiet", "misbehaving"),
    ]
    store.close()


def test_unconfigured_channel_fails_visibly(tmp_path: Path) -> None:
    store = open_store(tmp_path / "ct.db")
    commit(store, [[Finding("google")]], routes=[StdoutChannel("removed-later")])
    outbox = store.outbox  # the next run's config no longer has that channel
    left = asyncio.run(Sender(outbox, [StdoutChannel("stdout#1")], backoff=FAST).drain(2))
    assert left == []
    (row,) = outbox.undelivered()
    assert row.status == "failed" and row.alert == 1
    assert row.last_error == "channel removed-later is no longer configured"
    assert outbox.counts()["failed"] == 1
    store.close()


def test_undelivered_lines_and_prune(tmp_path: Path) -> None:
    store = open_store(tmp_path / "ct.db")
    routes = [StdoutChannel("ok"), StdoutChannel("gone\x1b[2J")]
    outbox = store.outbox
    commit(store, [[Finding("google")]], routes=routes)
    queue(store, health_event(LOG_URL, "behind", "3h"), "x", routes)

    class Refusing(StdoutChannel):
        async def deliver(self, event: dict, idempotency_key: str) -> None:
            raise DeliveryError("webhook http://h/: HTTP 503")

    sender = Sender(store.outbox, [StdoutChannel("ok"), Refusing("gone\x1b[2J")], backoff=FAST)
    asyncio.run(sender.deliver_due())
    rows = outbox.undelivered()
    assert [(r.alert, r.status, r.attempts) for r in rows] == [
        (1, "pending", 1),
        (None, "pending", 1),
    ]
    lines = undelivered_lines(rows)
    assert lines[0].startswith("delivery of alert #1 to gone\\x1b[2J pending, next try 20")
    assert lines[0].endswith("(1 failed attempt): webhook http://h/: HTTP 503")
    assert lines[1].startswith("delivery of log-health event to gone")
    assert outbox.counts() == {"pending": 2, "delivered": 2, "failed": 0}
    assert outbox.prune(datetime.now(UTC) - timedelta(days=1)) == 0
    assert outbox.prune(datetime.now(UTC) + timedelta(seconds=1)) == 2
    assert outbox.counts() == {"pending": 2, "delivered": 0, "failed": 0}
    store.close()


def test_migration_from_version_1_adds_the_outbox(tmp_path: Path) -> None:
    """A database of schema version 1 (made before Alembic and before the outbox) gets the outbox."""
    path = tmp_path / "v1.db"
    shutil.copyfile(TESTS / "data" / "store" / "before-alembic-v2.sqlite", path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE deliveries")
        conn.execute("DELETE FROM schema_version WHERE version = 2")
    store = open_store(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrations.HEAD,)]
        assert keys_in(path) == {}
    commit(store, [[Finding("google")]], routes=[StdoutChannel("s")])
    assert len(keys_in(path)) == 1
    store.close()


CHILD = """
import asyncio, sys, time
sys.path.insert(0, {tests!r})
from notify_store import Finding, commit, open_store
from ctsentinel.notify import Sender
from ctsentinel.notify.webhook import WebhookChannel
from ctsentinel.retry import Backoff

store = open_store({db!r})
hook = WebhookChannel("hook", {url!r}, secret="k", timeout=60)
commit(store, [[Finding("google")], [Finding("google")], [Finding("google")]], routes=[hook])
print("committed", flush=True)
if {send!r}:
    asyncio.run(Sender(store.outbox, [hook], backoff=Backoff(base=0.05, cap=0.1)).drain(60))
time.sleep(60)
"""


@pytest.mark.parametrize("moment", ["before-delivery", "during-delivery"])
def test_kill_9_loses_nothing(tmp_path: Path, moment: str) -> None:
    db = tmp_path / "ct.db"
    with BackgroundReceiver(secret="k") as receiver:
        send = moment == "during-delivery"
        if send:
            receiver.delay = 30.0  # the receiver takes the request, the sender waits for the answer
        script = CHILD.format(tests=str(TESTS), db=str(db), url=receiver.url, send=send)
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "committed"
            if send:
                for _ in range(200):  # all three in flight (the webhook sends up to 8 at once)
                    if receiver.requests >= 3:
                        break
                    time.sleep(0.05)
                assert receiver.requests == 3
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        assert child.returncode == -signal.SIGKILL
        assert receiver.accepted == []
        in_flight = list(receiver.received)
        receiver.delay = 0.0

        # The next process: same database, same config.
        store = open_store(db)
        hook = WebhookChannel("hook", receiver.url, secret="k", timeout=5)
        outbox = store.outbox
        assert len(outbox.pending(10)) == 3
        sender = Sender(outbox, [hook], backoff=FAST)

        async def deliver() -> list:
            try:
                return await sender.drain(10)
            finally:
                await sender.close()

        assert asyncio.run(deliver()) == []
        for _ in range(100):  # the abandoned requests finish in the receiver's thread
            if len(receiver.accepted) == (6 if send else 3):
                break
            time.sleep(0.02)
        counts = receiver.counts()
        assert set(counts) == set(keys_in(db)) and len(counts) == 3
        if send:
            # The requests in flight at the kill were completed by the receiver after the sender died, and
            # came again from the next process with the same key (and body): the receiver drops the repeat.
            assert sorted(in_flight) == sorted(counts) and set(counts.values()) == {2}
            for key in counts:
                assert len({json.dumps(b, sort_keys=True) for k, b, _ in receiver.accepted if k == key}) == 1
        else:
            assert set(counts.values()) == {1}
        assert outbox.counts() == {"pending": 0, "delivered": 3, "failed": 0}
        assert sorted({b["id"] for _, b, _ in receiver.accepted}) == [1, 2, 3]
        store.close()
