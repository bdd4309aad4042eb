"""Store: the monitor's persistence, one transaction per call, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ctsentinel.ct.errors import DecodeError
from ctsentinel.ct.merkle import CompactRange
from ctsentinel.ct.misbehaviour import MisbehaviourKind
from ctsentinel.store import alerts as alerts_mod
from ctsentinel.store import ca_reports
from ctsentinel.store import leases as leases_mod
from ctsentinel.store import lint as lint_mod
from ctsentinel.store import revocations as revocations_mod
from ctsentinel.store import search as search_mod
from ctsentinel.store.alert_states import AlertStates
from ctsentinel.store.browse import Browse
from ctsentinel.store.ca_reports import DisallowedCertificate, IssuerActivity, IssuerKey
from ctsentinel.store.catalog import add_issuances
from ctsentinel.store.database import Database, aware
from ctsentinel.store.dialect import bulk_insert_tuples, serialize_on, upsert
from ctsentinel.store.engine import display_url, make_engine
from ctsentinel.store.errors import StoreError
from ctsentinel.store.keys import issuance_key
from ctsentinel.store.lint import LintDue, LintResult, StoredLint
from ctsentinel.store.migrations import migrate
from ctsentinel.store.models import Alert, MisbehaviourRecord, SearchResult, StoredTreeHead
from ctsentinel.store.outbox import Outbox, OutboxEvent, Route, enqueue_alert_events, enqueue_alerts
from ctsentinel.store.rematch import Rematch
from ctsentinel.store.revocations import RevocationChange, RevocationCheck, RevocationDue, RevocationState
from ctsentinel.store.rows import (
    CA_CERTIFICATE_COLUMNS,
    CERT_COLUMNS,
    ENTRY_COLUMNS,
    IP_COLUMNS,
    NAME_COLUMNS,
    BatchRows,
)
from ctsentinel.store.schema import (
    alerts,
    ca_certificates,
    cert_ips,
    cert_names,
    certificates,
    findings,
    log_entries,
    logs,
    misbehaviour,
    tree_heads,
)
from ctsentinel.store.stats import DatabaseStats, database_stats
from ctsentinel.store.timelimit import TimeLimitedDatabase
from ctsentinel.store.types import RAW_HEAD_LIMIT, CommitBatch, LogInfoLike, LogState, TreeHeadLike
from ctsentinel.timefmt import rfc3339

HEADS_KEPT = 256  # a log's latest tree heads kept (besides its first and its verified one)
_HEADS_SLACK = 64
STREAK_SECONDS = 86400.0  # one report per log and kind of misbehaviour at most this often
_OCCURRENCES = "occurrences"  # in a streak's latest record: how many times it was seen since the first


def _json(evidence: Mapping[str, object]) -> str:
    return json.dumps(evidence, sort_keys=True)


def _now() -> datetime:
    return datetime.now(UTC)


def _evidence_default(value: object) -> object:
    """Evidence is whatever proves the misbehaviour; bytes become hex so nothing is lost."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return rfc3339(value)
    return repr(value)


class Store:
    def __init__(self, db: Database) -> None:
        self._db = db
        # The deliveries of alerts are queued by commit_batch; the outbox's own calls drain them.
        self.outbox = Outbox(db)
        # Which process works which log and range, when several share the database.
        self.leases = leases_mod.Leases(db)
        # A watch added later, matched against what is stored (backfill --watch).
        self.rematch = Rematch(db)
        self.browse = Browse(db)  # the web's queries: pages of issuances, one certificate, a CA, a watch
        self.alert_states = AlertStates(db)  # acknowledge and resolve

    @classmethod
    def open(cls, url: str) -> Store:
        """Open (creating or migrating) the database at an SQLAlchemy URL or an SQLite file path."""
        where = display_url(url)
        db = Database(make_engine(url), where)
        try:
            with db.write() as conn:
                migrate(conn, where)
        except BaseException:
            db.close()
            raise
        return cls(db)

    @classmethod
    def open_for_browsing(cls, url: str, *, time_limit: float) -> Store:
        """A read-only Store whose every read is stopped after `time_limit` seconds (QueryTimeout). It
        neither creates nor migrates: open the database with Store.open first."""
        return cls(TimeLimitedDatabase(make_engine(url, read_only=True), display_url(url), time_limit))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- logs --------------------------------------------------------------------------------------------

    def sync_logs(self, infos: Sequence[LogInfoLike]) -> None:
        """Insert logs not seen before; refresh url, kind, state, description, operator, key and MMD of the
        others. Logs missing from the list are kept (with their history)."""
        now = _now()
        with self._db.write() as conn:
            for info in infos:
                if len(info.log_id) != 32:
                    raise StoreError(f"log {info.url}: log_id must be 32 bytes, got {len(info.log_id)}")
                values = {
                    "url": info.url,
                    "kind": info.kind,
                    "description": info.description,
                    "operator": info.operator,
                    "state": info.state,
                    "public_key": info.key.spki_der,
                    "mmd": info.mmd,
                }
                upsert(
                    conn,
                    logs,
                    {"log_id": info.log_id, **values, "updated_at": now},
                    ["log_id"],
                    _refresh_from,
                )

    def log_states(self) -> list[LogState]:
        with self._db.read() as conn:
            return [_state(row) for row in conn.execute(select(logs).order_by(logs.c.url))]

    def log_state(self, log_id: bytes) -> LogState | None:
        with self._db.read() as conn:
            row = conn.execute(select(logs).where(logs.c.log_id == log_id)).first()
        return _state(row) if row is not None else None

    def record_tree_head(self, log_id: bytes, head: TreeHeadLike, *, verified: bool) -> None:
        """Keep an observed head as evidence (idempotent per size and root, its raw body cut at
        RAW_HEAD_LIMIT bytes); a verified one also becomes the log's verified head when it is newer. A log
        keeps its first head, its verified head and its latest HEADS_KEPT heads: polling an honest log for
        years, or a log signing a new lie every minute, does not grow the table without bound."""
        with self._db.write() as conn:
            log = self._log_id(conn, log_id)
            self._put_head(conn, log, head, verified)
            self._prune_heads(conn, log)

    def record_misbehaviour(
        self, log_id: bytes, kind: MisbehaviourKind, detail: str, evidence: Mapping[str, object]
    ) -> bool:
        """Record misbehaviour, bounded: per log and kind, a streak keeps its first occurrence and its latest
        (updated in place, its evidence counting the "occurrences" since the first). A streak lasts
        STREAK_SECONDS from its first occurrence; the next one after that starts a new streak. Returns True
        when this occurrence starts a streak: the one to report (at most one report per log, kind and day,
        however many different lies a log tells)."""
        now = _now()
        kind = MisbehaviourKind(kind)
        record = json.loads(json.dumps(dict(evidence), default=_evidence_default))
        m = misbehaviour.c
        with self._db.write() as conn:
            log = self._log_id(conn, log_id)
            conn.execute(update(logs).where(logs.c.id == log).values(misbehaving=True, updated_at=now))
            # The last two records of this kind: (latest, first) of the current streak, or its first alone.
            recent = conn.execute(
                select(m.id, m.evidence, m.time)
                .where(m.log == log, m.kind == kind.value)
                .order_by(m.id.desc())
                .limit(2)
            ).all()
            latest = recent[0] if recent else None
            seen = int(json.loads(latest.evidence).get(_OCCURRENCES, 0)) if latest is not None else 0
            first = recent[1] if seen and len(recent) > 1 else latest
            if first is None or (now - aware(first.time)).total_seconds() >= STREAK_SECONDS:
                row = {"detail": detail, "evidence": _json(record), "time": now}
                conn.execute(misbehaviour.insert().values(log=log, kind=kind.value, **row))
                return True
            row = {"detail": detail, "evidence": _json({**record, _OCCURRENCES: seen + 1}), "time": now}
            if seen and latest is not None:
                conn.execute(update(misbehaviour).where(m.id == latest.id).values(**row))
            else:
                conn.execute(misbehaviour.insert().values(log=log, kind=kind.value, **row))
            return False

    def misbehaviour(self, log_id: bytes) -> list[MisbehaviourRecord]:
        """The recorded misbehaviour of a log, oldest first."""
        with self._db.read() as conn:
            log = self._log_id(conn, log_id)
            rows = conn.execute(
                select(misbehaviour).where(misbehaviour.c.log == log).order_by(misbehaviour.c.id)
            ).all()
        return [
            MisbehaviourRecord(MisbehaviourKind(r.kind), r.detail, json.loads(r.evidence), aware(r.time))
            for r in rows
        ]

    def tree_heads(self, log_id: bytes) -> list[StoredTreeHead]:
        """Every distinct head observed for a log, by size then first sighting."""
        with self._db.read() as conn:
            log = self._log_id(conn, log_id)
            rows = conn.execute(
                select(tree_heads)
                .where(tree_heads.c.log == log)
                .order_by(tree_heads.c.tree_size, tree_heads.c.id)
            ).all()
        return [
            StoredTreeHead(
                r.tree_size, r.timestamp, r.root_hash, r.raw, bool(r.verified), aware(r.first_seen)
            )
            for r in rows
        ]

    def record_error(self, log_id: bytes, message: str) -> None:
        line = " ".join(message.split())[:1000]
        with self._db.write() as conn:
            log = self._log_id(conn, log_id)
            conn.execute(
                update(logs)
                .where(logs.c.id == log)
                .values(errors=logs.c.errors + 1, last_error=line, updated_at=_now())
            )

    def record_request_rate(self, log_id: bytes, rate: float) -> None:
        """Remember the request rate (requests/s) the log tolerated, for the next run's budget."""
        with self._db.write() as conn:
            conn.execute(update(logs).where(logs.c.log_id == log_id).values(request_rate=float(rate)))

    def start_log(self, log_id: bytes, start_index: int, compact_range: bytes, head: TreeHeadLike) -> None:
        """Set a new log's starting point: position = start_index, with the compact range at that size."""
        _check_range(compact_range, start_index, f"start_log at {start_index}")
        with self._db.write() as conn:
            row = conn.execute(
                select(logs.c.id, logs.c.url, logs.c.position).where(logs.c.log_id == log_id)
            ).first()
            if row is None:
                raise StoreError(f"log {log_id.hex()}: not in the store (sync_logs first)")
            if row.position is not None:
                raise StoreError(f"log {row.url}: already started (position {row.position}); not restarted")
            self._put_head(conn, row.id, head, True)
            conn.execute(
                update(logs)
                .where(logs.c.id == row.id)
                .values(
                    position=start_index,
                    start_index=start_index,
                    compact_range=compact_range,
                    updated_at=_now(),
                )
            )

    # -- the batch ---------------------------------------------------------------------------------------

    def commit_batch(self, batch: CommitBatch, routes: Sequence[Route]) -> None:
        """Store a proven batch in ONE transaction: certificates (deduplicated), log entries, names and
        addresses, findings and alerts with their deliveries to `routes` (the configured channels; an
        empty tuple when there are none), the head, the new position and compact range. A batch that does
        not start at the stored position is refused and changes nothing, so a retry cannot commit twice."""
        if batch.end < batch.start:
            raise StoreError(f"batch [{batch.start}, {batch.end}): end before start")
        _check_range(batch.compact_range, batch.end, f"batch [{batch.start}, {batch.end})")
        now = _now()
        fence = batch.fence
        with self._db.write() as conn:
            row = conn.execute(
                select(logs.c.id, logs.c.url, logs.c.position).where(logs.c.log_id == batch.log_id)
            ).first()
            if row is None:
                raise StoreError(f"log {batch.log_id.hex()}: not in the store (sync_logs first)")
            # Under a lease the lease is checked first, in this transaction (leases.py: fencing).
            ranged = None
            position = row.position
            if fence is not None and fence.range_id is not None:
                ranged = leases_mod.fenced_range(conn, row.url, fence)
                position = ranged.position
            elif fence is not None:
                leases_mod.check_log_fence(conn, row.id, row.url, fence)
            if position != batch.start:
                where = "not started" if position is None else f"at position {position}"
                raise StoreError(
                    f"log {row.url}: batch [{batch.start}, {batch.end}) refused: the log is {where}; "
                    "nothing committed"
                )
            if batch.head.tree_size < batch.end:
                raise StoreError(
                    f"log {row.url}: batch [{batch.start}, {batch.end}) is beyond its head of size "
                    f"{batch.head.tree_size}"
                )
            rows = BatchRows(row.id, batch.start, batch.end, batch.entries, now)
            bulk_insert_tuples(conn, certificates, CERT_COLUMNS, rows.certificates, ["sha256"])
            rescan = ranged is not None and ranged.watch != leases_mod.OWN_BACKLOG
            if rows.entries and rescan:
                # A rescan for one watch passes entries already stored for other watches.
                bulk_insert_tuples(conn, log_entries, ENTRY_COLUMNS, rows.entries, ["log", "idx"])
            elif rows.entries:
                try:
                    bulk_insert_tuples(conn, log_entries, ENTRY_COLUMNS, rows.entries)
                except IntegrityError:
                    raise StoreError(
                        f"log {row.url}: batch [{batch.start}, {batch.end}) repeats stored entries; "
                        "nothing committed"
                    ) from None
            bulk_insert_tuples(conn, cert_names, NAME_COLUMNS, rows.names, ["name_rev", "cert_sha256"])
            bulk_insert_tuples(conn, cert_ips, IP_COLUMNS, rows.ips, ["ip", "cert_sha256"])
            bulk_insert_tuples(
                conn, ca_certificates, CA_CERTIFICATE_COLUMNS, rows.ca_certificates, ["sha256"]
            )
            lint_mod.queue(conn, rows.lint, now)
            revocations_mod.request_checks(conn, rows.revocation, now)
            # One issuance seen by two processes at once (a precertificate here, its certificate in another
            # log): one alert, not two.
            serialize_on(conn, (issuance_key(e.record) for e in rows.with_findings))
            add_issuances(conn, batch.entries, now)
            touched = alerts_mod.write_findings(conn, rows.with_findings, now)
            enqueue_alerts(conn, touched, routes, now)
            self._put_head(conn, row.id, batch.head, True)
            if ranged is not None:
                leases_mod.range_committed(conn, ranged, batch.end, batch.compact_range, now)
                return
            moved = conn.execute(
                update(logs)
                .where(logs.c.id == row.id, logs.c.position == batch.start)
                .values(
                    position=batch.end,
                    compact_range=batch.compact_range,
                    entries_processed=logs.c.entries_processed + (batch.end - batch.start),
                    updated_at=now,
                )
            )
            if moved.rowcount != 1:
                raise StoreError(f"log {row.url}: position moved during the batch commit; nothing committed")

    # -- CA oversight: lint and revocation ---------------------------------------------------------------

    def lint_due(self, limit: int) -> list[LintDue]:
        """Certificates queued for the linter, the oldest first."""
        with self._db.write() as conn:
            return lint_mod.due(conn, limit)

    def lint_pending(self) -> int:
        with self._db.read() as conn:
            return lint_mod.pending(conn)

    def record_lint(self, results: Sequence[LintResult], routes: Sequence[Route]) -> list[int]:
        """Linter reports, with the CA watches' findings they make, in one transaction: findings that make
        a new alert queue its deliveries to `routes`; one that grows an alert does not send it again.
        Returns the ids of the alerts made or grown."""
        now = _now()
        touched: list[int] = []
        with self._db.write() as conn:
            for result in results:
                lint_mod.record(conn, result, now)
                issuance = lint_mod.issuance_of(conn, result.sha256)
                if issuance is None:
                    continue
                for finding in result.policy:
                    where = f"lint of {result.sha256.hex()}"
                    alert_id = alerts_mod.write_finding(
                        conn, result.sha256, issuance, finding, now, where=where, again=True
                    )
                    if alert_id is not None:
                        touched.append(alert_id)
            touched = list(dict.fromkeys(touched))
            enqueue_alerts(conn, touched, routes, now)
        return touched

    def lint_reports(self, shas: Sequence[bytes]) -> dict[bytes, StoredLint]:
        with self._db.read() as conn:
            return lint_mod.reports(conn, shas)

    def revocations_due(self, now: datetime, limit: int) -> list[RevocationDue]:
        with self._db.read() as conn:
            return revocations_mod.due(conn, now, limit)

    def record_revocation(
        self,
        check: RevocationCheck,
        routes: Sequence[Route],
        event_for: Callable[[Alert, RevocationChange], OutboxEvent],
    ) -> int:
        """A revocation check, copied into the issuance's alerts, and an event per alert for each change
        worth telling (built by `event_for`), queued in the same transaction. Returns how many deliveries
        were queued."""
        with self._db.write() as conn:
            told = revocations_mod.record_check(conn, check, _alerts_of_issuance)
            events = [
                (alert, event_for(alert, change), f"{alert.watch}\x00{check.issuance}\x00{change}")
                for alert, change in told
            ]
            return enqueue_alert_events(conn, events, routes, _now())

    def revocation_states(self, issuances: Sequence[str]) -> dict[str, RevocationState]:
        with self._db.read() as conn:
            return revocations_mod.states(conn, issuances)

    def ca_certificates(self, spki_sha256: bytes) -> list[bytes]:
        """The DER of every CA certificate logs named with this key, the earliest seen first."""
        with self._db.read() as conn:
            return list(
                conn.execute(
                    select(ca_certificates.c.der)
                    .where(ca_certificates.c.spki_sha256 == spki_sha256)
                    .order_by(ca_certificates.c.first_seen, ca_certificates.c.sha256)
                ).scalars()
            )

    # -- a CA's report and disallow list --------------------------------------------------------------

    def issuer_keys(self, text: str) -> list[IssuerKey]:
        """Issuer keys whose issuer DN contains `text` (case-insensitive), most certificates first."""
        with self._db.read() as conn:
            return ca_reports.issuer_keys(conn, text)

    def issuer_key(self, spki_sha256: bytes) -> IssuerKey | None:
        with self._db.read() as conn:
            return ca_reports.issuer_key(conn, spki_sha256)

    def issuer_activity(self, key: IssuerKey) -> IssuerActivity:
        """What the store holds of one CA: issuances per month, identifiers, flags, lint, revocation."""
        with self._db.read() as conn:
            return ca_reports.activity(conn, key)

    def disallowed(
        self, *, spki_sha256: bytes | None = None, issuances: Sequence[str] = ()
    ) -> list[DisallowedCertificate]:
        """Every stored certificate of an issuer key, or of these issuances."""
        with self._db.read() as conn:
            return ca_reports.certificates_of(conn, spki=spki_sha256, issuances=issuances)

    def alert_issuances(self, *, watch: str | None = None, ids: Sequence[int] = ()) -> list[str]:
        """The issuances of a watch's alerts, or of the alerts with these ids (unknown ids are left out)."""
        with self._db.read() as conn:
            return ca_reports.alert_issuances(conn, watch=watch, ids=ids)

    def known_alert_ids(self, ids: Sequence[int]) -> set[int]:
        with self._db.read() as conn:
            return ca_reports.known_alert_ids(conn, ids)

    # -- read side ---------------------------------------------------------------------------------------

    def list_alerts(self, limit: int | None = None) -> list[Alert]:
        """Alerts newest first."""
        with self._db.read() as conn:
            return alerts_mod.list_alerts(conn, limit)

    def search(self, query: str | search_mod.Query, limit: int = 100) -> list[SearchResult]:
        """Issuances matching a QUERY (see search.py), newest first."""
        parsed = search_mod.parse_query(query) if isinstance(query, str) else query
        with self._db.read() as conn:
            return search_mod.search(conn, parsed, limit)

    def certificate_der(self, sha256: bytes) -> bytes | None:
        with self._db.read() as conn:
            return conn.execute(select(certificates.c.der).where(certificates.c.sha256 == sha256)).scalar()

    def counts(self) -> dict[str, int]:
        """Row counts per table (for `logs`, tests and benchmarks)."""
        tables = {
            "certificates": certificates,
            "log_entries": log_entries,
            "cert_names": cert_names,
            "cert_ips": cert_ips,
            "tree_heads": tree_heads,
            "misbehaviour": misbehaviour,
            "alerts": alerts,
            "findings": findings,
        }
        with self._db.read() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for name, t in tables.items()
            }

    def stats(self, url: str) -> DatabaseStats:
        """Rows per table, size and schema revision (`db stats`); `url` is the one it was opened with."""
        return database_stats(self._db, url)

    # -- helpers -----------------------------------------------------------------------------------------

    @staticmethod
    def _log_id(conn: Connection, log_id: bytes) -> int:
        found = conn.execute(select(logs.c.id).where(logs.c.log_id == log_id)).scalar()
        if found is None:
            raise StoreError(f"log {log_id.hex()}: not in the store (sync_logs first)")
        return int(found)

    @staticmethod
    def _prune_heads(conn: Connection, log: int) -> None:
        t = tree_heads.c
        count = conn.execute(select(func.count()).select_from(tree_heads).where(t.log == log)).scalar_one()
        if count <= HEADS_KEPT + _HEADS_SLACK:  # pruned in batches, not at every head
            return
        ids = select(t.id).where(t.log == log)
        cutoff = conn.execute(ids.order_by(t.id.desc()).offset(HEADS_KEPT).limit(1)).scalar_one()
        oldest = conn.execute(select(func.min(t.id)).where(t.log == log)).scalar_one()
        state = conn.execute(select(logs.c.verified_size, logs.c.verified_root).where(logs.c.id == log)).one()
        verified = and_(t.tree_size == state.verified_size, t.root_hash == state.verified_root)
        conn.execute(
            tree_heads.delete().where(t.log == log, t.id <= cutoff, t.id != oldest, ~verified)
        )

    @staticmethod
    def _put_head(conn: Connection, log: int, head: TreeHeadLike, verified: bool) -> None:
        row = {
            "log": log,
            "tree_size": head.tree_size,
            "timestamp": head.timestamp,
            "root_hash": head.root_hash,
            "raw": head.raw[:RAW_HEAD_LIMIT],
            "verified": verified,
            "first_seen": _now(),
        }
        upsert(
            conn,
            tree_heads,
            row,
            ["log", "tree_size", "root_hash"],
            lambda excluded: {"verified": or_(tree_heads.c.verified, excluded.verified)},
        )
        c = logs.c
        newer_seen = or_(
            c.latest_size.is_(None),
            c.latest_size < head.tree_size,
            and_(c.latest_size == head.tree_size, c.latest_timestamp < head.timestamp),
        )
        conn.execute(
            update(logs)
            .where(c.id == log, newer_seen)
            .values(latest_size=head.tree_size, latest_timestamp=head.timestamp)
        )
        if not verified:
            return
        # Only forward: a verified head replaces the last one when larger, or when it re-signs the same tree
        # later (its timestamp gives the head's age).
        newer = or_(
            c.verified_size.is_(None),
            c.verified_size < head.tree_size,
            and_(
                c.verified_size == head.tree_size,
                c.verified_root == head.root_hash,
                c.verified_timestamp < head.timestamp,
            ),
        )
        conn.execute(
            update(logs)
            .where(c.id == log, newer)
            .values(
                verified_size=head.tree_size, verified_root=head.root_hash, verified_timestamp=head.timestamp
            )
        )


def _alerts_of_issuance(conn: Connection, issuance: str) -> list[Alert]:
    ids = list(conn.execute(select(alerts.c.id).where(alerts.c.issuance == issuance)).scalars())
    return alerts_mod.list_alerts(conn, ids=ids) if ids else []


_REFRESHED = ("url", "kind", "description", "operator", "state", "public_key", "mmd")


def _refresh_from(excluded: Any) -> dict[str, Any]:
    return {name: getattr(excluded, name) for name in _REFRESHED}


def _check_range(data: bytes, size: int, what: str) -> None:
    try:
        found = CompactRange.from_bytes(data).size
    except DecodeError as exc:
        raise StoreError(f"{what}: compact range does not decode: {exc}") from None
    if found != size:
        raise StoreError(f"{what}: compact range has size {found}, expected {size}")


def _state(row: Any) -> LogState:
    return LogState(
        log_id=row.log_id,
        url=row.url,
        kind=row.kind,
        description=row.description,
        state=row.state,
        position=row.position,
        start_index=row.start_index,
        compact_range=row.compact_range,
        verified_size=row.verified_size,
        verified_root=row.verified_root,
        verified_timestamp=row.verified_timestamp,
        misbehaving=bool(row.misbehaving),
        errors=row.errors,
        last_error=row.last_error,
        entries_processed=row.entries_processed,
        updated_at=None if row.updated_at is None else aware(row.updated_at),
        operator=row.operator,
        latest_size=row.latest_size,
        latest_timestamp=row.latest_timestamp,
        mmd=row.mmd,
        request_rate=row.request_rate,
    )
