"""A watch added later, matched against the certificates already stored (`backfill --watch` with
store = "all"): the stored certificates page by page, and the findings of one page written with their
alerts and deliveries in one transaction, exactly as a batch commit writes them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select

from ctsentinel.certs.record import CertRecord
from ctsentinel.store import alerts as alerts_mod
from ctsentinel.store.database import Database
from ctsentinel.store.dialect import serialize_on
from ctsentinel.store.keys import issuance_key
from ctsentinel.store.outbox import Route, enqueue_alerts
from ctsentinel.store.rows import record_from_row
from ctsentinel.store.schema import certificates
from ctsentinel.store.types import StoredEntry


class Rematch:
    def __init__(self, db: Database) -> None:
        self._db = db

    def certificates(self, after: bytes, limit: int) -> list[CertRecord]:
        """Stored certificates in SHA-256 order, the first `limit` past `after` (b"" to start)."""
        with self._db.read() as conn:
            rows = conn.execute(
                select(certificates)
                .where(certificates.c.sha256 > after)
                .order_by(certificates.c.sha256)
                .limit(limit)
            ).all()
        return [record_from_row(row) for row in rows]

    def record_findings(self, entries: Sequence[StoredEntry], routes: Sequence[Route]) -> list[int]:
        """Write the entries' findings (those not recorded before) with their alerts and deliveries, in one
        transaction; the ids of the alerts created or grown."""
        with_findings = [entry for entry in entries if entry.findings]
        if not with_findings:
            return []
        now = datetime.now(UTC)
        with self._db.write() as conn:
            serialize_on(conn, (issuance_key(e.record) for e in with_findings))
            touched = alerts_mod.write_findings(conn, with_findings, now)
            enqueue_alerts(conn, touched, routes, now)
        return touched
