"""Browsing the store: issuances by any query kind a page at a time, one certificate with everything known
of it, alerts by state and watch, a watch's timeline, a CA's report.

Searches page by issuance number (issuances.id): newest first for people, oldest first for Cert Spotter's
"discovered after" polling. A page is the ids that match, one more to know whether another page follows,
then the certificates of those ids only; so a page costs what its matches cost to find, never more than
the page to load. Meant for a Store opened for browsing, whose reads run under a time limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, case, exists, func, or_, select, union

from ctsentinel.store import alerts as alerts_mod
from ctsentinel.store import lint as lint_mod
from ctsentinel.store import revocations as revocations_mod
from ctsentinel.store.browse_models import (
    CAReport,
    CertificateView,
    Issuance,
    IssuerInfo,
    Page,
    SearchFilters,
    Sibling,
    TimelineBar,
)
from ctsentinel.store.database import Database, aware
from ctsentinel.store.issuances import entries_by_sha, issuance_records
from ctsentinel.store.keys import issuance_key, name_key
from ctsentinel.store.models import Alert, AlertState
from ctsentinel.store.rows import record_from_row
from ctsentinel.store.schema import (
    alerts,
    cert_ips,
    cert_names,
    certificates,
    findings,
    issuances,
    issuers,
    lint_findings,
    revocations,
)
from ctsentinel.store.search import Query, QueryError, QueryKind, serial_condition

NO_FILTERS = SearchFilters()
_MAX_ISSUER_KEYS = 500  # `issuer:TEXT` matching more issuing keys than this is too vague to search


@dataclass(frozen=True)
class NameMatch:
    """Names as the crt.sh and Cert Spotter APIs ask for them: these exact names, and every name below
    these domains (A-labels, lower case; "*.example.com" is a name like any other)."""

    exact: tuple[str, ...] = ()
    below: tuple[str, ...] = ()


Match = Query | NameMatch


def _names(exact: Sequence[str], below: Sequence[str]) -> Select[Any]:
    i, c, n = issuances.c, certificates.c, cert_names.c
    conditions: list[ColumnElement[bool]] = (
        [n.name_rev.in_([name_key(name) for name in exact])] if exact else []
    )
    for domain in below:
        rev = name_key(domain)
        # "com.example." .. "com.example/" ("/" follows "."): exactly the names below the domain.
        conditions.append(and_(n.name_rev >= rev + ".", n.name_rev < rev + "/"))
    joined = cert_names.join(certificates, c.sha256 == n.cert_sha256).join(
        issuances, i.issuance == c.issuance
    )
    return select(i.id).select_from(joined).where(or_(*conditions))


def _issuer_keys(conn: Connection, text: str) -> list[bytes]:
    needle = text.lower()
    stmt = (
        select(issuers.c.spki_sha256)
        .where(func.lower(issuers.c.name).contains(needle, autoescape=True))
        .limit(_MAX_ISSUER_KEYS + 1)
    )
    keys = [bytes(key) for key in conn.execute(stmt).scalars()]
    if len(keys) > _MAX_ISSUER_KEYS:
        raise QueryError(f"search: issuer:{text} matches more than {_MAX_ISSUER_KEYS} issuers; say more")
    return keys


def _matching(conn: Connection, match: Match) -> Select[Any] | None:
    """The ids of the issuances `match` selects (with repeats); None when nothing can match."""
    i, c = issuances.c, certificates.c
    if isinstance(match, NameMatch):
        return _names(match.exact, match.below) if (match.exact or match.below) else None
    kind = match.kind
    if kind is QueryKind.DOMAIN:
        return _names([match.value], [match.value])
    if kind is QueryKind.SUBDOMAINS:
        return _names([], [match.value])
    if kind in (QueryKind.IP, QueryKind.CIDR):
        assert match.low is not None and match.high is not None
        joined = cert_ips.join(certificates, c.sha256 == cert_ips.c.cert_sha256).join(
            issuances, i.issuance == c.issuance
        )
        return select(i.id).select_from(joined).where(cert_ips.c.ip >= match.low, cert_ips.c.ip <= match.high)
    if kind is QueryKind.SHA256:
        digest = bytes.fromhex(match.value)
        joined = certificates.join(issuances, i.issuance == c.issuance)
        return select(i.id).select_from(joined).where(or_(c.sha256 == digest, c.tbs_sha256 == digest))
    if kind is QueryKind.SERIAL:
        joined = certificates.join(issuances, i.issuance == c.issuance)
        return select(i.id).select_from(joined).where(serial_condition(c.issuance, c.serial, match.value))
    if kind is QueryKind.ISSUER:
        keys = _issuer_keys(conn, match.value)
        return select(i.id).where(i.issuer_spki_sha256.in_(keys)) if keys else None
    raise AssertionError(f"query kind {kind!r}")


def _filtered(stmt: Select[Any], filters: SearchFilters) -> Select[Any]:
    i = issuances.c
    if filters.unexpired_at is not None:
        stmt = stmt.where(i.not_after >= filters.unexpired_at)
    if filters.issuer_spki_sha256 is not None:
        stmt = stmt.where(i.issuer_spki_sha256 == bytes.fromhex(filters.issuer_spki_sha256))
    if filters.watch is not None:
        c2 = certificates.alias("watched")
        stmt = stmt.where(
            exists(
                select(findings.c.watch)
                .select_from(findings.join(c2, c2.c.sha256 == findings.c.cert_sha256))
                .where(c2.c.issuance == i.issuance, findings.c.watch == filters.watch)
            )
        )
    return stmt


class Browse:
    """Store.browse: read-only queries for the web pages and APIs."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- issuances ---------------------------------------------------------------------------------------

    def search(
        self,
        match: Match,
        filters: SearchFilters = NO_FILTERS,
        *,
        limit: int,
        after: int | None = None,
        oldest_first: bool = False,
    ) -> Page[Issuance]:
        """Issuances matching, newest first (or oldest first), after the issuance numbered `after`."""
        with self._db.read() as conn:
            stmt = _matching(conn, match)
            if stmt is None or limit <= 0:
                return Page([], False)
            i = issuances.c
            stmt = _filtered(stmt, filters)
            if after is not None:
                stmt = stmt.where(i.id > after if oldest_first else i.id < after)
            order = i.id.asc() if oldest_first else i.id.desc()
            ids = [
                int(x) for x in conn.execute(stmt.group_by(i.id).order_by(order).limit(limit + 1)).scalars()
            ]
            more = len(ids) > limit
            return Page(self._load(conn, ids[:limit]), more)

    @staticmethod
    def _load(conn: Connection, ids: Sequence[int]) -> list[Issuance]:
        if not ids:
            return []
        i = issuances.c
        joined = issuances.outerjoin(issuers, issuers.c.spki_sha256 == i.issuer_spki_sha256)
        rows = conn.execute(
            select(i.id, i.issuance, i.first_seen, issuers.c.id.label("issuer_id"))
            .select_from(joined)
            .where(i.id.in_(ids))
        ).all()
        by_id = {row.id: row for row in rows}
        keys = [by_id[n].issuance for n in ids if n in by_id]
        found = {issuance_key(result.record): result for result in issuance_records(conn, keys)}
        revoked = {key: state.to_json() for key, state in revocations_mod.states(conn, keys).items()}
        return [
            Issuance(
                n,
                aware(by_id[n].first_seen),
                found[by_id[n].issuance],
                by_id[n].issuer_id,
                revoked.get(by_id[n].issuance),
            )
            for n in ids
            if n in by_id and by_id[n].issuance in found
        ]

    # -- one certificate ---------------------------------------------------------------------------------

    def certificate(self, sha256: bytes) -> CertificateView | None:
        with self._db.read() as conn:
            row = conn.execute(select(certificates).where(certificates.c.sha256 == sha256)).first()
            if row is None:
                return None
            record = record_from_row(row)
            sightings = entries_by_sha(conn, [sha256]).get(sha256, [])
            issuance_id = conn.execute(
                select(issuances.c.id).where(issuances.c.issuance == row.issuance)
            ).scalar()
            siblings = [
                Sibling(bytes(r.sha256).hex(), bool(r.precert))
                for r in conn.execute(
                    select(certificates.c.sha256, certificates.c.precert)
                    .where(certificates.c.issuance == row.issuance, certificates.c.sha256 != sha256)
                    .order_by(certificates.c.first_seen)
                )
            ]
            shas = [sha256, *(bytes.fromhex(s.sha256) for s in siblings)]
            alert_ids = [
                int(a)
                for a in conn.execute(
                    select(findings.c.alert)
                    .where(findings.c.cert_sha256.in_(shas), findings.c.alert.is_not(None))
                    .distinct()
                ).scalars()
            ]
            on_it = alerts_mod.list_alerts(conn, ids=alert_ids) if alert_ids else []
            revocation = revocations_mod.state(conn, row.issuance)
            linted = lint_mod.reports(conn, [sha256]).get(sha256)
        return CertificateView(
            record=record,
            der=bytes(row.der) if row.der is not None else None,
            entries=tuple(s.sighting for s in sightings),
            issuance_id=int(issuance_id) if issuance_id is not None else None,
            siblings=tuple(siblings),
            alerts=tuple(on_it),
            first_seen=aware(row.first_seen),
            revoked=revocation.to_json() if revocation is not None else None,
            lint=tuple(f.to_json() for f in linted.findings) if linted is not None else None,
        )

    # -- alerts ------------------------------------------------------------------------------------------

    def alerts(
        self,
        *,
        state: AlertState | None = None,
        watch: str | None = None,
        limit: int | None,
        after: int | None = None,
    ) -> Page[Alert]:
        """Alerts newest first (by number), filtered; every one when limit is None."""
        stmt = select(alerts.c.id)
        if state is not None:
            stmt = stmt.where(alerts.c.state == state.value)
        if watch is not None:
            stmt = stmt.where(alerts.c.watch == watch)
        if after is not None:
            stmt = stmt.where(alerts.c.id < after)
        stmt = stmt.order_by(alerts.c.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit + 1)
        with self._db.read() as conn:
            ids = [int(x) for x in conn.execute(stmt).scalars()]
            more = limit is not None and len(ids) > limit
            ids = ids[:limit] if limit is not None else ids
            found = alerts_mod.list_alerts(conn, ids=ids) if ids else []
        return Page(sorted(found, key=lambda a: -a.id), more)

    def alert(self, alert_id: int) -> Alert | None:
        with self._db.read() as conn:
            found = alerts_mod.list_alerts(conn, ids=[alert_id])
        return found[0] if found else None

    def alert_counts(self) -> dict[AlertState, int]:
        """How many alerts are in each state (every state listed)."""
        with self._db.read() as conn:
            rows = conn.execute(select(alerts.c.state, func.count()).group_by(alerts.c.state)).all()
        counts = dict.fromkeys(AlertState, 0)
        for state, count in rows:
            counts[AlertState(state)] = int(count)
        return counts

    # -- watches and CAs ---------------------------------------------------------------------------------

    def timeline(self, matches: Sequence[Match]) -> list[TimelineBar]:
        """Issuances matching any of `matches` per month of notBefore and issuer, oldest month first."""
        with self._db.read() as conn:
            selects = [s for m in matches if (s := _matching(conn, m)) is not None]
            if not selects:
                return []
            ids = union(*selects).subquery()
            i = issuances.c
            month = func.substr(i.not_before, 1, 7)
            rows = conn.execute(
                select(month.label("month"), i.issuer_spki_sha256, func.count().label("n"))
                .select_from(ids.join(issuances, i.id == ids.c.id))
                .group_by(month, i.issuer_spki_sha256)
                .order_by(month)
            ).all()
            known = self._issuers(conn, [bytes(r.issuer_spki_sha256) for r in rows if r.issuer_spki_sha256])
        return [
            TimelineBar(
                str(r.month or "unknown"),
                known.get(bytes(r.issuer_spki_sha256)) if r.issuer_spki_sha256 else None,
                int(r.n),
            )
            for r in rows
        ]

    @staticmethod
    def _issuers(conn: Connection, keys: Sequence[bytes]) -> dict[bytes, IssuerInfo]:
        if not keys:
            return {}
        rows = conn.execute(select(issuers).where(issuers.c.spki_sha256.in_(list(set(keys))))).all()
        return {bytes(r.spki_sha256): _issuer(r) for r in rows}

    def issuers(self, *, limit: int, after: int | None = None) -> Page[IssuerInfo]:
        """Every issuing key seen, in the order first seen."""
        stmt = select(issuers).order_by(issuers.c.id).limit(limit + 1)
        if after is not None:
            stmt = stmt.where(issuers.c.id > after)
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return Page([_issuer(r) for r in rows[:limit]], len(rows) > limit)

    def ca_report(self, spki_sha256: bytes) -> CAReport | None:
        i = issuances.c
        month = func.substr(i.not_before, 1, 7)
        with self._db.read() as conn:
            row = conn.execute(select(issuers).where(issuers.c.spki_sha256 == spki_sha256)).first()
            if row is None:
                return None
            rows = conn.execute(
                select(
                    month.label("month"),
                    func.count().label("n"),
                    func.sum(case((i.dns_names > 0, 1), else_=0)).label("dns"),
                    func.sum(case((i.ip_addresses > 0, 1), else_=0)).label("ip"),
                )
                .where(i.issuer_spki_sha256 == spki_sha256)
                .group_by(month)
                .order_by(month)
            ).all()
            alert_ids = [
                int(x)
                for x in conn.execute(
                    select(alerts.c.id).where(alerts.c.issuance.endswith(":" + spki_sha256.hex()))
                ).scalars()
            ]
            on_it = alerts_mod.list_alerts(conn, ids=alert_ids) if alert_ids else []
            statuses = conn.execute(
                select(revocations.c.status, func.count())
                .select_from(issuances.join(revocations, revocations.c.issuance == i.issuance))
                .where(i.issuer_spki_sha256 == spki_sha256, revocations.c.status.is_not(None))
                .group_by(revocations.c.status)
            ).all()
            lint_codes = conn.execute(
                select(lint_findings.c.code, func.count(func.distinct(certificates.c.issuance)))
                .select_from(
                    issuances.join(certificates, certificates.c.issuance == i.issuance).join(
                        lint_findings, lint_findings.c.cert_sha256 == certificates.c.sha256
                    )
                )
                .where(i.issuer_spki_sha256 == spki_sha256, lint_findings.c.severity.in_(("error", "fatal")))
                .group_by(lint_findings.c.code)
            ).all()
        total = sum(int(r.n) for r in rows)
        revocation = {"revoked": 0, "good": 0, "unknown": 0}
        for status, count in statuses:
            revocation[str(status)] = revocation.get(str(status), 0) + int(count)
        revocation["unchecked"] = total - sum(revocation.values())
        flags: dict[str, int] = {}
        for alert in on_it:
            for flag in alert.findings:
                flags[flag] = flags.get(flag, 0) + 1
        return CAReport(
            issuer=_issuer(row),
            issuances=total,
            by_month={str(r.month or "unknown"): int(r.n) for r in rows},
            identifiers={"dns": sum(int(r.dns or 0) for r in rows), "ip": sum(int(r.ip or 0) for r in rows)},
            findings=dict(sorted(flags.items())),
            lint={str(code): int(n) for code, n in sorted(lint_codes)},
            revocation=revocation,
            alerts=tuple(on_it),
        )


def _issuer(row: Any) -> IssuerInfo:
    return IssuerInfo(
        id=int(row.id),
        spki_sha256=bytes(row.spki_sha256).hex(),
        name=row.name,
        first_seen=aware(row.first_seen),
    )
