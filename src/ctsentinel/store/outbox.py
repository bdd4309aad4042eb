"""The delivery outbox (issue 6): one row per (event, channel), written in the transaction that creates the
alert, and worked off by ctsentinel.notify.Sender.

Because the deliveries of an alert commit together with the alert, a crash can lose neither: after a kill
the next process finds them pending. Each row carries an idempotency key that stays the same across
retries and restarts, so a receiver that got a delivery twice (a crash between its "accepted" and our
mark) can tell. Rows are never deleted by the sender: delivered ones record when, failing ones their
attempts and last error, which `alerts`/`logs` (and later the web API) show.

The event is stored as the JSON it is sent as (plus the private fields channels use: the PEM, subject and
key hashes), so a retry sends exactly what the first attempt sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    bindparam,
    func,
    select,
    update,
)

from ctsentinel.store import alerts as alerts_mod
from ctsentinel.store.issuances import iso_z
from ctsentinel.store.schema import alerts, certificates

if TYPE_CHECKING:
    from ctsentinel.store.store import Store

# Its own MetaData: schema migration step 1 creates every table of schema.metadata, and must keep creating
# exactly the version-1 tables; this table arrives with step 2.
metadata = MetaData()

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("alert", Integer, ForeignKey(alerts.c.id)),  # null for log-health events
    Column("channel", Text, nullable=False),  # the channel's key: its `name`, or "<kind>#<position>"
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("payload", Text, nullable=False),  # the event's JSON, private fields included
    Column("status", Text, nullable=False),  # pending | delivered | failed (for good)
    Column("attempts", Integer, nullable=False, default=0),  # failed attempts
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
    Index("ix_deliveries_alert", "alert"),
)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def migrate_v2(conn: Connection) -> None:
    """Schema step 2: the deliveries outbox."""
    deliveries.create(conn, checkfirst=True)


class Route(Protocol):
    """What the outbox needs of a notify.Channel: its key and its filter."""

    @property
    def key(self) -> str: ...

    def accepts(self, event: Mapping[str, Any]) -> bool: ...


def idempotency_key(kind: str, identity: str, channel: str) -> str:
    """Stable across retries, restarts and even a rebuilt database: it names what is reported (a watch's
    issuance, a log's problem) and where to, not a row id."""
    digest = hashlib.sha256(f"{kind}\x00{identity}\x00{channel}".encode()).hexdigest()
    return f"ctsentinel-{kind}-{digest[:40]}"


def _pem(der: bytes) -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def _private_fields(conn: Connection, event: Mapping[str, Any]) -> dict[str, Any]:
    """The representative certificate's PEM, subject and hashes, for mail attachments and hook variables."""
    shas = [bytes.fromhex(str(s)) for s in event.get("sha256") or [] if isinstance(s, str)]
    if not shas:
        return {}
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
        return {}
    rep = next((row for row in seen if not row.precert), seen[0])  # the deployed certificate if seen
    return {
        "_pem": _pem(rep.der) if rep.der else None,
        "_subject": rep.subject,
        "_tbs_sha256": rep.tbs_sha256.hex() if rep.tbs_sha256 else None,
        "_subject_spki_sha256": rep.subject_spki_sha256.hex() if rep.subject_spki_sha256 else None,
    }


def enqueue_alerts(conn: Connection, alert_ids: Sequence[int], routes: Sequence[Route], now: datetime) -> int:
    """In the caller's transaction: a pending delivery for every (alert, channel) the channel's filters
    accept, unless that pair was queued before (an alert that grew is not sent again). Returns how many
    were added."""
    if not alert_ids or not routes:
        return 0
    events = alerts_mod.list_alerts(conn, ids=list(alert_ids))
    issuance = dict(
        conn.execute(select(alerts.c.id, alerts.c.issuance).where(alerts.c.id.in_(list(alert_ids)))).all()
    )
    rows = []
    for event in events:
        accepting = [route.key for route in routes if route.accepts(event)]
        if not accepting:
            continue
        full = {**event, **_private_fields(conn, event)}
        payload = json.dumps(full, ensure_ascii=False)
        identity = f"{event['watch']}\x00{issuance[event['id']]}"
        for channel in accepting:
            rows.append(
                _row(
                    int(str(event["id"])), channel, idempotency_key("alert", identity, channel), payload, now
                )
            )
    return _insert_new(conn, rows)


def enqueue_event(
    conn: Connection, event: Mapping[str, Any], identity: str, routes: Sequence[Route], now: datetime
) -> int:
    """A non-alert event (log health) for every accepting channel; `identity` names the occurrence (e.g.
    "<log url> misbehaving <time>") so that reporting the same occurrence twice queues it once."""
    payload = json.dumps(dict(event), ensure_ascii=False)
    kind = str(event.get("event", "event"))
    rows = [
        _row(None, route.key, idempotency_key(kind, identity, route.key), payload, now)
        for route in routes
        if route.accepts(event)
    ]
    return _insert_new(conn, rows)


def _row(alert: int | None, channel: str, key: str, payload: str, now: datetime) -> dict[str, Any]:
    return {
        "alert": alert,
        "channel": channel,
        "idempotency_key": key,
        "payload": payload,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def _insert_new(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose idempotency key is new. Writes run in an immediate transaction (one writer),
    so nothing can slip in between the look-up and the insert."""
    if not rows:
        return 0
    keys = [row["idempotency_key"] for row in rows]
    known = set(
        conn.execute(
            select(deliveries.c.idempotency_key).where(
                deliveries.c.idempotency_key.in_(bindparam("keys", expanding=True))
            ),
            {"keys": keys},
        ).scalars()
    )
    fresh = list(
        {row["idempotency_key"]: row for row in rows if row["idempotency_key"] not in known}.values()
    )
    if fresh:
        conn.execute(deliveries.insert(), fresh)
    return len(fresh)


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


class StoreOutbox:
    """The durable Outbox of ctsentinel.notify.sender over a Store's database; each call is one
    transaction, so a mark is on disk before the next delivery starts.

    With `routes` (the configured channels), it hooks into Store.commit_batch: every alert a batch creates
    gets its deliveries in that same transaction.
    """

    def __init__(self, store: Store, routes: Sequence[Route] = ()) -> None:
        self.store = store
        self.routes = tuple(routes)
        if self.routes:
            store.alert_hooks.append(self._on_alerts)

    def _on_alerts(self, conn: Connection, alert_ids: list[int], now: datetime) -> None:
        enqueue_alerts(conn, alert_ids, self.routes, now)

    def detach(self) -> None:
        """Stop queueing deliveries for new alerts (the channels were replaced by a config reload). Call it
        on the thread that commits, so no batch is half-way through the hooks."""
        if self._on_alerts in self.store.alert_hooks:
            self.store.alert_hooks.remove(self._on_alerts)

    def enqueue_event(self, event: Mapping[str, Any], identity: str) -> int:
        """Queue a log-health event for the accepting channels, in its own transaction; `identity` names
        the occurrence (e.g. "<log url> misbehaving fork <time>"), so reporting it twice queues it once."""
        with self.store._write() as conn:
            return enqueue_event(conn, event, identity, self.routes, datetime.now(UTC))

    def due(self, now: datetime, limit: int) -> list[Any]:
        from ctsentinel.notify.sender import PendingDelivery

        d = deliveries.c
        with self.store._read() as conn:
            rows = conn.execute(
                select(d.id, d.channel, d.idempotency_key, d.payload, d.attempts, d.last_error)
                .where(d.status == PENDING, d.next_attempt_at <= now)
                .order_by(d.next_attempt_at, d.id)
                .limit(limit)
            ).all()
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
        with self.store._write() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == id, deliveries.c.status == PENDING)
                .values(status=DELIVERED, delivered_at=datetime.now(UTC))
            )

    def mark_failed(self, id: int, error: str, next_attempt_at: datetime | None) -> None:
        values: dict[str, Any] = {"attempts": deliveries.c.attempts + 1, "last_error": error}
        if next_attempt_at is None:
            values["status"] = FAILED
        else:
            values["next_attempt_at"] = next_attempt_at
        with self.store._write() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == id, deliveries.c.status == PENDING)
                .values(**values)
            )

    def next_due(self) -> datetime | None:
        with self.store._read() as conn:
            when = conn.execute(
                select(func.min(deliveries.c.next_attempt_at)).where(deliveries.c.status == PENDING)
            ).scalar()
        return None if when is None else _utc(when)

    def pending(self, limit: int) -> list[Any]:
        return self.due(datetime.max.replace(tzinfo=UTC), limit)

    def prune(self, older_than: datetime) -> int:
        """Forget deliveries delivered before `older_than` (their alerts stay); returns how many. Pending
        and failed ones are never pruned: they are what an operator must still see."""
        with self.store._write() as conn:
            result = conn.execute(
                deliveries.delete().where(
                    deliveries.c.status == DELIVERED, deliveries.c.delivered_at < older_than
                )
            )
        return int(result.rowcount or 0)

    # -- for `alerts`, `logs` and the web API -------------------------------------------------------------

    def undelivered(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Deliveries not (yet) accepted, failing or failed for good, oldest first: what an operator must
        see, since an alert that never reached anyone is the failure this project guards against."""
        d = deliveries.c
        with self.store._read() as conn:
            rows = conn.execute(
                select(
                    d.id,
                    d.alert,
                    d.channel,
                    d.status,
                    d.attempts,
                    d.last_error,
                    d.next_attempt_at,
                    d.created_at,
                )
                .where(d.status != DELIVERED)
                .order_by(d.created_at, d.id)
                .limit(limit)
            ).all()
        return [
            {
                "id": row.id,
                "alert": row.alert,
                "channel": row.channel,
                "status": row.status,
                "attempts": row.attempts,
                "last_error": row.last_error,
                "next_attempt": iso_z(row.next_attempt_at) if row.status == PENDING else None,
                "created": iso_z(row.created_at),
            }
            for row in rows
        ]

    def counts(self) -> dict[str, int]:
        """Deliveries per status, e.g. {"pending": 2, "delivered": 40, "failed": 0}."""
        with self.store._read() as conn:
            found: dict[str, int] = dict(
                conn.execute(select(deliveries.c.status, func.count()).group_by(deliveries.c.status)).all()
            )
        return {status: int(found.get(status, 0)) for status in (PENDING, DELIVERED, FAILED)}

    def delivery_status(self, alert_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """Per alert, its deliveries: channel, status, attempts, last error (for `alerts --json`)."""
        d = deliveries.c
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in alert_ids}
        if not alert_ids:
            return out
        stmt = (
            select(d.alert, d.channel, d.status, d.attempts, d.last_error, d.delivered_at)
            .where(d.alert.in_(bindparam("ids", expanding=True)))
            .order_by(d.alert, d.id)
        )
        with self.store._read() as conn:
            for row in conn.execute(stmt, {"ids": list(alert_ids)}):
                out[row.alert].append(
                    {
                        "channel": row.channel,
                        "status": row.status,
                        "attempts": row.attempts,
                        "last_error": row.last_error,
                        "delivered": iso_z(row.delivered_at),
                    }
                )
        return out
