"""Findings and alerts (DESIGN.md section 5): one alert per issuance and watch, written with the batch.

A precertificate and its final certificate, or one certificate logged several times, are one issuance:
the first sighting creates the alert, later ones attach to it through their finding. Authorized sightings
(Severity.NONE) are kept as findings and raise no alert. A ca_policy alert also keeps the flags its
sightings tripped (`findings`, their union). Every new alert asks for its issuance's revocation status.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, select

from ctsentinel.store.database import aware
from ctsentinel.store.errors import StoreError
from ctsentinel.store.issuances import (
    certificates_by_sha,
    chunks,
    entries_by_sha,
    in_sighting_order,
    merged_entries,
    representative,
    union,
)
from ctsentinel.store.keys import issuance_key
from ctsentinel.store.models import Alert, AlertState
from ctsentinel.store.revocations import request_checks, revoked_json
from ctsentinel.store.schema import alerts, findings
from ctsentinel.store.types import FindingLike, StoredEntry
from ctsentinel.watch.finding import Reason
from ctsentinel.watch.severity import Severity


def write_findings(conn: Connection, entries: Sequence[StoredEntry], now: datetime) -> list[int]:
    """Store each new (certificate, watch) finding and its alert; returns the ids of alerts created or
    grown (whose deliveries the caller queues in this same transaction)."""
    touched: list[int] = []
    for entry in entries:
        sha = bytes.fromhex(entry.record.sha256)
        issuance = issuance_key(entry.record)
        for finding in entry.findings:
            alert_id = write_finding(conn, sha, issuance, finding, now, where=f"entry {entry.index}")
            if alert_id is not None:
                touched.append(alert_id)
    return list(dict.fromkeys(touched))


def write_finding(
    conn: Connection,
    sha: bytes,
    issuance: str,
    finding: FindingLike,
    now: datetime,
    *,
    where: str,
    again: bool = False,
) -> int | None:
    """One (certificate, watch) finding and its alert; the alert's id when it alerts. A certificate already
    seen for the watch (in another log) adds nothing, unless `again`: a second look at it (the linter's)
    may add flags to its alert, or make one."""
    try:
        severity = Severity(finding.severity)
    except ValueError:
        raise StoreError(f"{where}: finding severity {str(finding.severity)!r} is unknown") from None
    known = conn.execute(
        select(findings.c.severity).where(findings.c.cert_sha256 == sha, findings.c.watch == finding.watch)
    ).first()
    if known is not None and not again:
        return None
    matched = list(finding.matched)
    alert_id = None
    if severity.is_alert:
        flags = list(finding.findings)
        alert_id = _alert_for(conn, finding.watch, issuance, finding.reason, severity, matched, flags, now)
        request_checks(conn, [(issuance, sha)], now)
    values = {
        "reason": finding.reason,
        "severity": severity.value,
        "matched": json.dumps(matched),
        "alert": alert_id,
    }
    if known is None:
        conn.execute(findings.insert().values(cert_sha256=sha, watch=finding.watch, first_seen=now, **values))
    elif severity.rank > Severity(known.severity).rank:
        conn.execute(
            findings.update()
            .where(findings.c.cert_sha256 == sha, findings.c.watch == finding.watch)
            .values(**values)
        )
    return alert_id


def _alert_for(
    conn: Connection,
    watch: str,
    issuance: str,
    reason: str,
    severity: Severity,
    matched: list[str],
    flags: list[str],
    now: datetime,
) -> int:
    row = conn.execute(
        select(alerts.c.id, alerts.c.severity, alerts.c.matched, alerts.c.findings).where(
            alerts.c.watch == watch, alerts.c.issuance == issuance
        )
    ).first()
    if row is None:
        result = conn.execute(
            alerts.insert().values(
                watch=watch,
                issuance=issuance,
                reason=reason,
                severity=severity.value,
                matched=json.dumps(matched),
                findings=json.dumps(flags),
                first_seen=now,
                revoked=revoked_json(conn, issuance),  # known already when another watch asked first
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])
    changes: dict[str, object] = {}
    if severity.rank > Severity(row.severity).rank:
        changes.update(severity=severity.value, reason=reason)
    grown = union([json.loads(row.matched), matched])
    if len(grown) != len(json.loads(row.matched)):
        changes["matched"] = json.dumps(grown)
    more = union([json.loads(row.findings), flags])
    if len(more) != len(json.loads(row.findings)):
        changes["findings"] = json.dumps(more)
    if changes:
        conn.execute(alerts.update().where(alerts.c.id == row.id).values(**changes))
    return int(row.id)


def list_alerts(conn: Connection, limit: int | None = None, ids: Sequence[int] | None = None) -> list[Alert]:
    """Alerts newest first; only `ids` when given (the outbox builds its events with this, so they are
    exactly what `alerts --json` shows)."""
    stmt = select(alerts).order_by(alerts.c.first_seen.desc(), alerts.c.id.desc())
    if ids is not None:
        stmt = stmt.where(alerts.c.id.in_(list(ids)))
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = conn.execute(stmt).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    shas_of: dict[int, list[bytes]] = {i: [] for i in ids}
    stmt = (
        select(findings.c.alert, findings.c.cert_sha256)
        .where(findings.c.alert.in_(bindparam("ids", expanding=True)))
        .order_by(findings.c.first_seen, findings.c.cert_sha256)
    )
    for part in chunks(ids):
        for f in conn.execute(stmt, {"ids": list(part)}):
            shas_of[f.alert].append(f.cert_sha256)
    every = [sha for shas in shas_of.values() for sha in shas]
    records = certificates_by_sha(conn, every)
    entries = entries_by_sha(conn, every)
    out: list[Alert] = []
    for row in rows:
        order = in_sighting_order([sha for sha in shas_of[row.id] if sha in records], entries)
        seen = [records[sha] for sha in order]
        if not seen:
            continue
        rep = representative(seen)
        out.append(
            Alert(
                id=row.id,
                watch=row.watch,
                reason=Reason(row.reason),
                severity=Severity(row.severity),
                issuer=rep.issuer,
                issuer_spki_sha256=rep.issuer_spki_sha256,
                serial=rep.serial,
                dns_names=tuple(union([r.dns_names for r in seen])),
                ip_addresses=tuple(union([r.ip_addresses for r in seen])),
                matched=tuple(json.loads(row.matched)),
                not_before=rep.not_before,
                not_after=rep.not_after,
                sha256=tuple(r.sha256 for r in seen),
                entries=merged_entries(order, entries),
                first_seen=aware(row.first_seen),
                revoked=None if row.revoked is None else json.loads(row.revoked),
                findings=tuple(json.loads(row.findings)),
                state=AlertState(row.state),
            )
        )
    return out
