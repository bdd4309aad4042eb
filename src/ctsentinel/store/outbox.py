"""The delivery outbox: one row per (event, channel), worked off by a sender (ctsentinel.notify.Sender).

The deliveries of an alert are written by Store.commit_batch in the transaction that creates the alert,
so a crash can lose neither: after a kill the next process finds them pending. commit_batch takes the
delivery routes as a required argument, so no caller can commit an alert and forget its deliveries; a
monitor without channels says so by passing an empty tuple.

Each row carries an idempotency key that stays the same across retries, restarts and even a rebuilt
database (it names what is reported and where to, not a row id), so a receiver that got a delivery twice
(a crash between its "accepted" and our mark) can tell. The sender never deletes rows: delivered ones
record when, failing ones their attempts and last error, which `alerts` and `logs` show.

The payload is the event as sent, as JSON (an alert with its certificate details, see
CertificateDetails), so a retry sends exactly what the first attempt sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, func, select, update

from ctsentinel.store import alerts as alerts_mod
from ctsentinel.store.database import Database, aware
from ctsentinel.store.models import (
    Alert,
    AlertDelivery,
    CertificateDetails,
    DeliveryStatus,
    PendingDelivery,
    Undelivered,
    alert_payload,
)
from ctsentinel.store.schema import alerts, certificates, deliveries
from ctsentinel.watch.severity import Severity

CLAIM_SECONDS = 120.0  # PostgreSQL: how long a delivery taken by one process is left to it
PENDING, DELIVERED, FAILED = DeliveryStatus.PENDING, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED


class Route(Protocol):
    """Where deliveries go (a notify.Channel): its key in the outbox and its filter."""

    @property
    def key(self) -> str: ...

    @property
    def aliases(self) -> tuple[str, ...]:
        """Keys the route had before (a channel keyed by its position in older versions): an event queued
        under one of them counts as queued for this route."""
        ...

    def accepts(self, severity: Severity, watch: str | None) -> bool:
        """`watch` is None for an event that concerns every watch (a log's health)."""
        ...


class OutboxEvent(Protocol):
    """An event other than an alert (a log's health), as the outbox queues it."""

    @property
    def kind(self) -> str:
        """Names the kind of event in its idempotency key."""
        ...

    @property
    def severity(self) -> Severity: ...

    def to_payload(self) -> dict[str, Any]:
        """The JSON object kept in the outbox, from which the sender rebuilds the event."""
        ...


def idempotency_key(kind: str, identity: str, channel: str) -> str:
    """Stable across retries, restarts and even a rebuilt database: it names what is reported (a watch's
    issuance, a log's problem) and where to, not a row id."""
    digest = hashlib.sha256(f"{kind}\x00{identity}\x00{channel}".encode()).hexdigest()
    return f"ctsentinel-{kind}-{digest[:40]}"


def kind_of(key: str) -> str:
    """The kind of event an idempotency key names (idempotency_key writes "ctsentinel-<kind>-<digest>")."""
    return key.removeprefix("ctsentinel-").rsplit("-", 1)[0]


def _pem(der: bytes) -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def _certificate_details(conn: Connection, alert: Alert) -> CertificateDetails | None:
    """The representative certificate's PEM, subject and hashes, for mail attachments and hook variables."""
    shas = [bytes.fromhex(s) for s in alert.sha256]
    if not shas:
        return None
    rows = {
        row.sha256: row
        for row in conn.execute(
            select(
                certificates.c.sha256,
                certificates.c.precert,
                certificates.c.der,
                certificates.c.subject,
                certificates.c.tbs_sha256,
                certificates.c.subject_spki_sha256,
            ).where(certificates.c.sha256.in_(shas))
        )
    }
    seen = [rows[s] for s in shas if s in rows]
    if not seen:
        return None
    rep = next((row for row in seen if not row.precert), seen[0])  # the deployed certificate if seen
    return CertificateDetails(
        pem=_pem(rep.der) if rep.der else None,
        subject=rep.subject,
        tbs_sha256=rep.tbs_sha256.hex() if rep.tbs_sha256 else None,
        subject_spki_sha256=rep.subject_spki_sha256.hex() if rep.subject_spki_sha256 else None,
    )


def enqueue_alerts(conn: Connection, alert_ids: Sequence[int], routes: Sequence[Route], now: datetime) -> int:
    """In the caller's transaction: a pending delivery for every (alert, channel) the channel's filters
    accept, unless that pair was queued before (an alert that grew is not sent again). Returns how many
    were added."""
    if not alert_ids or not routes:
        return 0
    issuance = dict(
        conn.execute(select(alerts.c.id, alerts.c.issuance).where(alerts.c.id.in_(list(alert_ids)))).all()
    )
    rows = []
    earlier: dict[str, list[str]] = {}
    for alert in alerts_mod.list_alerts(conn, ids=list(alert_ids)):
        accepting = [route for route in routes if route.accepts(alert.severity, alert.watch)]
        if not accepting:
            continue
        payload = json.dumps(alert_payload(alert, _certificate_details(conn, alert)), ensure_ascii=False)
        identity = f"{alert.watch}\x00{issuance[alert.id]}"
        for route in accepting:
            key = idempotency_key("alert", identity, route.key)
            rows.append(_row(alert.id, route.key, key, payload, now))
            earlier[key] = [idempotency_key("alert", identity, alias) for alias in route.aliases]
    return _insert_new(conn, rows, earlier)


def enqueue_alert_events(
    conn: Connection,
    events: Sequence[tuple[Alert, OutboxEvent, str]],
    routes: Sequence[Route],
    now: datetime,
) -> int:
    """In the caller's transaction: an event about an alert (its revocation) for every channel that takes
    that alert's watch and the event's severity; `identity` (third) names the occurrence, so it is queued
    once however often it is reported. Returns how many deliveries were added."""
    rows = []
    for alert, event, identity in events:
        payload = json.dumps(event.to_payload(), ensure_ascii=False)
        for route in routes:
            if route.accepts(event.severity, alert.watch):
                key = idempotency_key(event.kind, identity, route.key)
                rows.append(_row(alert.id, route.key, key, payload, now))
    return _insert_new(conn, rows)


def _row(alert: int | None, channel: str, key: str, payload: str, now: datetime) -> dict[str, Any]:
    return {
        "alert": alert,
        "channel": channel,
        "idempotency_key": key,
        "payload": payload,
        "status": PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def _insert_new(
    conn: Connection, rows: list[dict[str, Any]], earlier: dict[str, list[str]] | None = None
) -> int:
    """Insert the rows whose idempotency key is new, and none of the keys `earlier` lists for it (the same
    event queued for the same channel under one of its old keys). Writes run in an immediate transaction
    (one writer), so nothing can slip in between the look-up and the insert."""
    if not rows:
        return 0
    earlier = earlier or {}
    keys = [row["idempotency_key"] for row in rows]
    keys += [old for row in rows for old in earlier.get(row["idempotency_key"], ())]
    known = set(
        conn.execute(
            select(deliveries.c.idempotency_key).where(
                deliveries.c.idempotency_key.in_(bindparam("keys", expanding=True))
            ),
            {"keys": keys},
        ).scalars()
    )
    fresh = list(
        {
            row["idempotency_key"]: row
            for row in rows
            if row["idempotency_key"] not in known
            and not known.intersection(earlier.get(row["idempotency_key"], ()))
        }.values()
    )
    if fresh:
        conn.execute(deliveries.insert(), fresh)
    return len(fresh)


class Outbox:
    """The deliveries table of one database (Store.outbox); each call is one transaction, so a mark is on
    disk before the next delivery starts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def enqueue_event(self, event: OutboxEvent, identity: str, routes: Sequence[Route]) -> int:
        """Queue an event for the routes that accept it; `identity` names the occurrence (e.g. "<log url>
        misbehaving fork <time>"), so reporting it twice queues it once. Returns how many were queued."""
        now = datetime.now(UTC)
        payload = json.dumps(event.to_payload(), ensure_ascii=False)
        rows, earlier = [], {}
        for route in routes:
            if route.accepts(event.severity, None):
                key = idempotency_key(event.kind, identity, route.key)
                rows.append(_row(None, route.key, key, payload, now))
                earlier[key] = [idempotency_key(event.kind, identity, alias) for alias in route.aliases]
        with self._db.write() as conn:
            return _insert_new(conn, rows, earlier)

    def due(self, now: datetime, limit: int) -> list[PendingDelivery]:
        """Pending deliveries whose next attempt is at or before `now`, the earliest first, to attempt now
        (on PostgreSQL they are this process's to attempt for a while, see below)."""
        return self._pending(now, limit, take=True)

    def _pending(self, now: datetime, limit: int, *, take: bool) -> list[PendingDelivery]:
        d = deliveries.c
        query = (
            select(d.id, d.channel, d.idempotency_key, d.payload, d.attempts, d.last_error)
            .where(d.status == PENDING.value, d.next_attempt_at <= now)
            .order_by(d.next_attempt_at, d.id)
            .limit(limit)
        )
        if take and self._db.engine.dialect.name == "postgresql":
            # Several processes may drain one outbox: each takes the rows it will attempt (skipping those
            # another is taking) and moves them out of everyone's `due` for a while, so a delivery is
            # attempted by one process at a time. One left unmarked (a process died mid-attempt) is due again
            # when that while is over. On SQLite one process runs at a time.
            with self._db.write() as conn:
                rows = conn.execute(query.with_for_update(skip_locked=True)).all()
                if rows:
                    conn.execute(
                        update(deliveries)
                        .where(d.id.in_([row.id for row in rows]))
                        .values(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
                    )
        else:
            with self._db.read() as conn:
                rows = conn.execute(query).all()
        return [
            PendingDelivery(
                row.id,
                row.channel,
                row.idempotency_key,
                json.loads(row.payload),
                row.attempts,
                row.last_error,
            )
            for row in rows
        ]

    def mark_delivered(self, id: int) -> None:
        with self._db.write() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == id, deliveries.c.status == PENDING.value)
                .values(status=DELIVERED.value, delivered_at=datetime.now(UTC))
            )

    def mark_failed(self, id: int, error: str, next_attempt_at: datetime | None) -> None:
        """Record a failed attempt; `next_attempt_at` None gives up (failed for good)."""
        values: dict[str, Any] = {"attempts": deliveries.c.attempts + 1, "last_error": error}
        if next_attempt_at is None:
            values["status"] = FAILED.value
        else:
            values["next_attempt_at"] = next_attempt_at
        with self._db.write() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == id, deliveries.c.status == PENDING.value)
                .values(**values)
            )

    def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due; None when nothing is pending."""
        with self._db.read() as conn:
            when = conn.execute(
                select(func.min(deliveries.c.next_attempt_at)).where(deliveries.c.status == PENDING.value)
            ).scalar()
        return None if when is None else aware(when)

    def pending(self, limit: int) -> list[PendingDelivery]:
        """Every delivery still pending, due or not, the earliest first (to show, not to attempt)."""
        return self._pending(datetime.max.replace(tzinfo=UTC), limit, take=False)

    def prune(self, older_than: datetime) -> int:
        """Forget deliveries delivered before `older_than` (their alerts stay); returns how many. Pending
        and failed ones are never pruned: they are what an operator must still see."""
        with self._db.write() as conn:
            result = conn.execute(
                deliveries.delete().where(
                    deliveries.c.status == DELIVERED.value, deliveries.c.delivered_at < older_than
                )
            )
        return int(result.rowcount or 0)

    def undelivered(self, limit: int = 1000) -> list[Undelivered]:
        """Deliveries not (yet) accepted, failing or failed for good, oldest first: what an operator must
        see, since an alert that never reached anyone is the failure this project guards against."""
        d = deliveries.c
        with self._db.read() as conn:
            rows = conn.execute(
                select(
                    d.id,
                    d.alert,
                    d.idempotency_key,
                    d.channel,
                    d.status,
                    d.attempts,
                    d.last_error,
                    d.next_attempt_at,
                    d.created_at,
                )
                .where(d.status != DELIVERED.value)
                .order_by(d.created_at, d.id)
                .limit(limit)
            ).all()
        return [
            Undelivered(
                id=row.id,
                alert=row.alert,
                channel=row.channel,
                status=DeliveryStatus(row.status),
                attempts=row.attempts,
                last_error=row.last_error,
                next_attempt=aware(row.next_attempt_at) if row.status == PENDING.value else None,
                created=aware(row.created_at),
                kind=kind_of(row.idempotency_key),
            )
            for row in rows
        ]

    def counts(self) -> dict[DeliveryStatus, int]:
        """Deliveries per status, every status present."""
        with self._db.read() as conn:
            found: dict[str, int] = {
                status: int(count)
                for status, count in conn.execute(
                    select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
                )
            }
        return {status: found.get(status.value, 0) for status in DeliveryStatus}

    def delivery_status(self, alert_ids: Sequence[int]) -> dict[int, list[AlertDelivery]]:
        """Per alert, its deliveries, in the order they were queued."""
        d = deliveries.c
        out: dict[int, list[AlertDelivery]] = {i: [] for i in alert_ids}
        if not alert_ids:
            return out
        stmt = (
            select(d.alert, d.channel, d.status, d.attempts, d.last_error, d.delivered_at)
            .where(d.alert.in_(bindparam("ids", expanding=True)))
            .order_by(d.alert, d.id)
        )
        with self._db.read() as conn:
            for row in conn.execute(stmt, {"ids": list(alert_ids)}):
                out[row.alert].append(
                    AlertDelivery(
                        channel=row.channel,
                        status=DeliveryStatus(row.status),
                        attempts=row.attempts,
                        last_error=row.last_error,
                        delivered=None if row.delivered_at is None else aware(row.delivered_at),
                    )
                )
        return out
