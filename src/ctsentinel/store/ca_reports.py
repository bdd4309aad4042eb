"""What the store holds of one CA (its issuing key): the counts a CA report and a disallow list are made of.

Everything counts issuances (a precertificate and its certificate once). Flags come from the ca_policy
alerts on its issuances (the union over CA watches), lint from the lint reports of its certificates,
revocation from the revocations table.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, distinct, func, select

from ctsentinel.store import revocations as revocations_mod
from ctsentinel.store.issuances import chunks
from ctsentinel.store.revocations import RevocationState
from ctsentinel.store.schema import (
    alerts,
    certificates,
    lint_findings,
    lint_reports,
    log_entries,
    revocations,
)

_ERRORS = ("error", "fatal")


@dataclass(frozen=True)
class IssuerKey:
    spki_sha256: str  # hex
    name: str | None  # the issuer DN its certificates carry (the most common one)
    certificates: int


@dataclass(frozen=True)
class FlaggedIssuance:
    """An issuance a CA watch flagged, with when it was first logged and its revocation status."""

    issuance: str
    serial: str | None
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    findings: tuple[str, ...]  # the union over the CA watches that flagged it
    not_before: str | None
    logged_at: datetime | None  # the earliest log entry of any of its certificates
    revocation: RevocationState | None

    @property
    def revoked_after(self) -> float | None:
        """Seconds from its first log entry to its revocation, when both are known."""
        state = self.revocation
        if state is None or state.status != "revoked" or state.revoked_at is None or self.logged_at is None:
            return None
        return (state.revoked_at - self.logged_at).total_seconds()


@dataclass(frozen=True)
class IssuerActivity:
    key: IssuerKey
    issuances: int
    by_month: dict[str, int]  # by notBefore, "2024-02" -> issuances
    flagged_by_month: dict[str, int]
    identifiers: dict[str, int]  # "dns" / "ip": issuances naming at least one
    flagged: tuple[FlaggedIssuance, ...]  # by notBefore
    lint: dict[str, int]  # error code -> issuances with it
    linted: int  # issuances with a lint report
    revocation: dict[str, int]  # revoked / good / unknown / unchecked


def _of(spki: bytes) -> Select[Any]:
    return select(certificates.c.issuance).where(certificates.c.issuer_spki_sha256 == spki)


def issuer_keys(conn: Connection, text: str) -> list[IssuerKey]:
    """Issuer keys whose certificates' issuer DN contains `text` (case-insensitive), most certificates
    first."""
    c = certificates.c
    rows = conn.execute(
        select(c.issuer_spki_sha256, c.issuer, func.count())
        .where(
            c.issuer_spki_sha256.is_not(None), func.lower(c.issuer).contains(text.lower(), autoescape=True)
        )
        .group_by(c.issuer_spki_sha256, c.issuer)
    ).all()
    found: dict[bytes, tuple[str | None, int, int]] = {}
    for spki, name, count in rows:
        best_name, best, total = found.get(spki, (None, -1, 0))
        found[spki] = (name, count, total + count) if count > best else (best_name, best, total + count)
    keys = [IssuerKey(spki.hex(), name, total) for spki, (name, _, total) in found.items()]
    return sorted(keys, key=lambda k: (-k.certificates, k.spki_sha256))


def issuer_key(conn: Connection, spki: bytes) -> IssuerKey | None:
    c = certificates.c
    rows = conn.execute(
        select(c.issuer, func.count()).where(c.issuer_spki_sha256 == spki).group_by(c.issuer)
    ).all()
    if not rows:
        return None
    name = max(rows, key=lambda r: (r[1], r[0] or ""))[0]
    return IssuerKey(spki.hex(), name, sum(int(r[1]) for r in rows))


def activity(conn: Connection, key: IssuerKey) -> IssuerActivity:
    spki = bytes.fromhex(key.spki_sha256)
    c = certificates.c
    mine = _of(spki).subquery()
    issuances = int(
        conn.execute(
            select(func.count(distinct(c.issuance))).where(c.issuer_spki_sha256 == spki)
        ).scalar_one()
    )
    month = func.substr(c.not_before, 1, 7)
    by_month = {
        str(m): int(n)
        for m, n in conn.execute(
            select(month, func.count(distinct(c.issuance)))
            .where(c.issuer_spki_sha256 == spki, c.not_before.is_not(None))
            .group_by(month)
            .order_by(month)
        )
    }
    identifiers = {
        kind: int(
            conn.execute(
                select(func.count(distinct(c.issuance))).where(c.issuer_spki_sha256 == spki, column != "[]")
            ).scalar_one()
        )
        for kind, column in (("dns", c.dns_names), ("ip", c.ip_addresses))
    }
    flagged = _flagged(conn, spki)
    flagged_by_month: dict[str, int] = defaultdict(int)
    for item in flagged:
        if item.not_before:
            flagged_by_month[item.not_before[:7]] += 1
    lint_rows = conn.execute(
        select(lint_findings.c.code, func.count(distinct(c.issuance)))
        .join(certificates, c.sha256 == lint_findings.c.cert_sha256)
        .where(c.issuer_spki_sha256 == spki, lint_findings.c.severity.in_(_ERRORS))
        .group_by(lint_findings.c.code)
        .order_by(func.count(distinct(c.issuance)).desc(), lint_findings.c.code)
    ).all()
    linted = int(
        conn.execute(
            select(func.count(distinct(c.issuance)))
            .join(lint_reports, lint_reports.c.cert_sha256 == c.sha256)
            .where(c.issuer_spki_sha256 == spki)
        ).scalar_one()
    )
    statuses = {
        str(status): int(n)
        for status, n in conn.execute(
            select(revocations.c.status, func.count())
            .where(revocations.c.issuance.in_(select(mine.c.issuance)), revocations.c.status.is_not(None))
            .group_by(revocations.c.status)
        )
    }
    counted = {s: statuses.get(s, 0) for s in ("revoked", "good", "unknown")}
    counted["unchecked"] = issuances - sum(counted.values())
    return IssuerActivity(
        key=key,
        issuances=issuances,
        by_month=by_month,
        flagged_by_month=dict(sorted(flagged_by_month.items())),
        identifiers=identifiers,
        flagged=flagged,
        lint={str(code): int(n) for code, n in lint_rows},
        linted=linted,
        revocation=counted,
    )


def _flagged(conn: Connection, spki: bytes) -> tuple[FlaggedIssuance, ...]:
    rows = conn.execute(
        select(alerts.c.issuance, alerts.c.findings)
        .where(alerts.c.reason == "ca_policy", alerts.c.issuance.in_(_of(spki)))
        .order_by(alerts.c.id)
    ).all()
    flags: dict[str, list[str]] = {}
    for issuance, found in rows:
        merged = flags.setdefault(issuance, [])
        merged.extend(f for f in json.loads(found) if f not in merged)
    if not flags:
        return ()
    keys = list(flags)
    names: dict[str, tuple[str | None, set[str], set[str], str | None]] = {}
    logged: dict[str, int] = {}
    c = certificates.c
    for part in chunks(keys):
        for row in conn.execute(
            select(c.issuance, c.serial, c.dns_names, c.ip_addresses, c.not_before).where(
                c.issuance.in_(list(part))
            )
        ):
            serial, dns, ips, not_before = names.get(row.issuance, (row.serial, set(), set(), row.not_before))
            dns.update(json.loads(row.dns_names))
            ips.update(json.loads(row.ip_addresses))
            names[row.issuance] = (serial, dns, ips, not_before)
        for issuance, first in conn.execute(
            select(c.issuance, func.min(log_entries.c.timestamp))
            .join(log_entries, log_entries.c.cert_sha256 == c.sha256)
            .where(c.issuance.in_(list(part)))
            .group_by(c.issuance)
        ):
            logged[issuance] = int(first)
    states = revocations_mod.states(conn, keys)
    out = []
    for issuance in keys:
        serial, dns, ips, not_before = names.get(issuance, (None, set(), set(), None))
        ms = logged.get(issuance)
        out.append(
            FlaggedIssuance(
                issuance=issuance,
                serial=serial,
                dns_names=tuple(sorted(dns)),
                ip_addresses=tuple(sorted(ips)),
                findings=tuple(flags[issuance]),
                not_before=not_before,
                logged_at=None if ms is None else datetime.fromtimestamp(ms / 1000, UTC),
                revocation=states.get(issuance),
            )
        )
    return tuple(sorted(out, key=lambda f: (f.not_before or "", f.issuance)))


@dataclass(frozen=True)
class DisallowedCertificate:
    """One certificate or precertificate to distrust, as `export disallow` lists it."""

    sha256: str
    der: bytes | None
    serial: str | None
    issuer: str | None
    issuer_spki_sha256: str | None
    not_before: str | None
    not_after: str | None
    precert: bool
    issuance: str


def certificates_of(
    conn: Connection, *, spki: bytes | None = None, issuances: Sequence[str] = ()
) -> list[DisallowedCertificate]:
    """Every stored certificate of an issuer key, or of the given issuances, by notBefore then serial."""
    c = certificates.c
    stmt = select(
        c.sha256,
        c.der,
        c.serial,
        c.issuer,
        c.issuer_spki_sha256,
        c.not_before,
        c.not_after,
        c.precert,
        c.issuance,
    )
    rows: list[Any] = []
    if spki is not None:
        rows = list(conn.execute(stmt.where(c.issuer_spki_sha256 == spki)))
    for part in chunks(list(issuances)):
        rows.extend(conn.execute(stmt.where(c.issuance.in_(list(part)))))
    found = {
        row.sha256: DisallowedCertificate(
            sha256=row.sha256.hex(),
            der=row.der,
            serial=row.serial,
            issuer=row.issuer,
            issuer_spki_sha256=None if row.issuer_spki_sha256 is None else row.issuer_spki_sha256.hex(),
            not_before=row.not_before,
            not_after=row.not_after,
            precert=bool(row.precert),
            issuance=row.issuance,
        )
        for row in rows
    }
    return sorted(found.values(), key=lambda d: (d.not_before or "", d.serial or "", d.precert, d.sha256))


def alert_issuances(conn: Connection, *, watch: str | None = None, ids: Sequence[int] = ()) -> list[str]:
    """The issuances of a watch's alerts, or of the alerts with these ids."""
    stmt = select(alerts.c.issuance).order_by(alerts.c.id)
    if watch is not None:
        stmt = stmt.where(alerts.c.watch == watch)
    else:
        stmt = stmt.where(alerts.c.id.in_(list(ids)))
    return list(dict.fromkeys(str(i) for i in conn.execute(stmt).scalars()))


def known_alert_ids(conn: Connection, ids: Sequence[int]) -> set[int]:
    return {int(i) for i in conn.execute(select(alerts.c.id).where(alerts.c.id.in_(list(ids)))).scalars()}
