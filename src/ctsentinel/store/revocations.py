"""Revocation status per issuance: which issuances to check and when, what each check learned, and the
alerts it concerns.

An issuance is checked once it is alerted (any watch) or a CA watch asks for every certificate of its CAs.
The checker (ctsentinel.oversight) asks for what is due, works it out over HTTP, and hands each outcome
back; recording it copies the status into the alerts of the issuance (their `revoked`) and, when it
changed in a way someone must hear of (revoked; a responder contradicting its CRL), queues an event per
alert in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from ctsentinel.certs.record import CertRecord
from ctsentinel.store.database import aware
from ctsentinel.store.dialect import bulk_insert_tuples
from ctsentinel.store.models import Alert
from ctsentinel.store.rows import record_from_row
from ctsentinel.store.schema import alerts, ca_certificates, certificates, revocations
from ctsentinel.timefmt import rfc3339

_REQUEST_COLUMNS = ("issuance", "cert_sha256", "requested_at", "next_check_at", "failures", "contradiction")


class RevocationChange(StrEnum):
    """What a check found that is worth telling: the events it queues."""

    REVOKED = "revoked"  # the issuance is revoked (and was not known to be)
    CONTRADICTION = "contradiction"  # the OCSP responder says good for what the CRL lists as revoked


@dataclass(frozen=True)
class SourceWord:
    """One source's last word on an issuance: an answer, or why there was none."""

    source: str  # "crl" | "ocsp"
    url: str | None
    status: str  # good | revoked | unknown (an answer); unreachable | invalid | absent (none)
    detail: str | None = None  # why there is no answer, or "stale" for an answer past its nextUpdate
    reason: str | None = None
    revoked_at: datetime | None = None
    this_update: datetime | None = None
    next_update: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "url": self.url,
            "status": self.status,
            "detail": self.detail,
            "reason": self.reason,
            "revoked_at": None if self.revoked_at is None else rfc3339(self.revoked_at),
            "this_update": None if self.this_update is None else rfc3339(self.this_update),
            "next_update": None if self.next_update is None else rfc3339(self.next_update),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourceWord:
        def when(key: str) -> datetime | None:
            value = data.get(key)
            return None if value is None else datetime.fromisoformat(str(value).replace("Z", "+00:00"))

        return cls(
            source=str(data["source"]),
            url=data.get("url"),
            status=str(data["status"]),
            detail=data.get("detail"),
            reason=data.get("reason"),
            revoked_at=when("revoked_at"),
            this_update=when("this_update"),
            next_update=when("next_update"),
        )


@dataclass(frozen=True)
class RevocationCheck:
    """What one check of one issuance learned, as the checker hands it to the store."""

    issuance: str
    status: str | None  # good | revoked | unknown; None: nothing new learned, the known status stands
    reason: str | None
    revoked_at: datetime | None
    source: str | None  # "crl" | "ocsp": whose word the status is
    words: tuple[SourceWord, ...]  # each source's word, this check
    contradiction: bool
    checked_at: datetime
    next_check_at: datetime | None  # None: no more checks (revoked is final; an expired certificate)
    answered: bool = True  # some source answered (else the check counts as a failure)


@dataclass(frozen=True)
class RevocationState:
    """An issuance's revocation status as the store knows it."""

    issuance: str
    status: str | None
    reason: str | None
    revoked_at: datetime | None
    source: str | None
    checked_at: datetime | None
    changed_at: datetime | None
    words: tuple[SourceWord, ...]
    contradiction: bool
    failures: int
    next_check_at: datetime | None

    def to_json(self) -> dict[str, Any] | None:
        """The alert JSON's `revoked`: null until a status is known."""
        if self.status is None:
            return None
        return {
            "status": self.status,
            "reason": self.reason,
            "revoked_at": None if self.revoked_at is None else rfc3339(self.revoked_at),
            "source": self.source,
            "checked_at": None if self.checked_at is None else rfc3339(self.checked_at),
        }


@dataclass(frozen=True)
class RevocationDue:
    """An issuance whose revocation status is to be checked now."""

    issuance: str
    record: CertRecord  # the certificate asked about (serial, issuer key)
    der: bytes | None
    issuers: tuple[bytes, ...]  # candidate issuer certificates (DER) logs named for this issuer key
    status: str | None  # what is known so far
    contradiction: bool
    failures: int


def request_checks(conn: Connection, items: Sequence[tuple[str, bytes]], now: datetime) -> None:
    """Ask for the revocation status of (issuance, certificate SHA-256) pairs; one already asked for (or
    done with) is left as it is."""
    rows = [(issuance, sha, now, now, 0, False) for issuance, sha in dict(items).items()]
    bulk_insert_tuples(conn, revocations, _REQUEST_COLUMNS, rows, ["issuance"])


def _state(row: Any) -> RevocationState:
    words = [SourceWord.from_json(json.loads(text)) for text in (row.crl, row.ocsp) if text is not None]
    return RevocationState(
        issuance=row.issuance,
        status=row.status,
        reason=row.reason,
        revoked_at=None if row.revoked_at is None else aware(row.revoked_at),
        source=row.source,
        checked_at=None if row.checked_at is None else aware(row.checked_at),
        changed_at=None if row.changed_at is None else aware(row.changed_at),
        words=tuple(words),
        contradiction=bool(row.contradiction),
        failures=int(row.failures),
        next_check_at=None if row.next_check_at is None else aware(row.next_check_at),
    )


def state(conn: Connection, issuance: str) -> RevocationState | None:
    row = conn.execute(select(revocations).where(revocations.c.issuance == issuance)).first()
    return None if row is None else _state(row)


def states(conn: Connection, issuances: Sequence[str]) -> dict[str, RevocationState]:
    stmt = select(revocations).where(revocations.c.issuance.in_(bindparam("keys", expanding=True)))
    out: dict[str, RevocationState] = {}
    for start in range(0, len(issuances), 500):
        for row in conn.execute(stmt, {"keys": list(issuances[start : start + 500])}):
            out[row.issuance] = _state(row)
    return out


def revoked_json(conn: Connection, issuance: str) -> str | None:
    known = state(conn, issuance)
    value = None if known is None else known.to_json()
    return None if value is None else json.dumps(value)


def due(conn: Connection, now: datetime, limit: int) -> list[RevocationDue]:
    """Issuances whose next check is due, the longest overdue first."""
    r = revocations.c
    rows = conn.execute(
        select(r.issuance, r.status, r.contradiction, r.failures, certificates)
        .join(certificates, certificates.c.sha256 == r.cert_sha256)
        .where(r.next_check_at.is_not(None), r.next_check_at <= now)
        .order_by(r.next_check_at, r.issuance)
        .limit(limit)
    ).all()
    keys = {row.issuer_spki_sha256 for row in rows if row.issuer_spki_sha256 is not None}
    candidates: dict[bytes, list[bytes]] = {}
    if keys:
        for spki, der in conn.execute(
            select(ca_certificates.c.spki_sha256, ca_certificates.c.der)
            .where(ca_certificates.c.spki_sha256.in_(list(keys)))
            .order_by(ca_certificates.c.first_seen, ca_certificates.c.sha256)
        ):
            candidates.setdefault(spki, []).append(der)
    return [
        RevocationDue(
            issuance=row.issuance,
            record=record_from_row(row),
            der=row.der,
            issuers=tuple(candidates.get(row.issuer_spki_sha256, ())),
            status=row.status,
            contradiction=bool(row.contradiction),
            failures=int(row.failures),
        )
        for row in rows
    ]


def record_check(
    conn: Connection,
    check: RevocationCheck,
    alerts_of: Callable[[Connection, str], list[Alert]],
) -> list[tuple[Alert, RevocationChange]]:
    """Record a check; returns each alert of the issuance with each change to tell about."""
    r = revocations.c
    row = conn.execute(select(revocations).where(r.issuance == check.issuance)).first()
    if row is None:
        return []
    before = _state(row)
    values: dict[str, Any] = {
        "next_check_at": check.next_check_at,
        "contradiction": before.contradiction or check.contradiction,
    }
    for word in check.words:
        values[word.source] = json.dumps(word.to_json())
    values["failures"] = 0 if check.answered else before.failures + 1
    if check.status is not None:
        values.update(
            status=check.status,
            reason=check.reason,
            revoked_at=check.revoked_at,
            source=check.source,
            checked_at=check.checked_at,
        )
        if check.status != before.status:
            values["changed_at"] = check.checked_at
    conn.execute(update(revocations).where(r.issuance == check.issuance).values(**values))
    changes = []
    if check.status == "revoked" and before.status != "revoked":
        changes.append(RevocationChange.REVOKED)
    if check.contradiction and not before.contradiction:
        changes.append(RevocationChange.CONTRADICTION)
    after = state(conn, check.issuance)
    assert after is not None
    revoked = after.to_json()
    conn.execute(
        update(alerts)
        .where(alerts.c.issuance == check.issuance)
        .values(revoked=None if revoked is None else json.dumps(revoked))
    )
    if not changes:
        return []
    return [(alert, change) for alert in alerts_of(conn, check.issuance) for change in changes]
