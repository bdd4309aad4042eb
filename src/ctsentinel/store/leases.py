"""Leases: which process works each log, and each range of a long backlog, when several share a database.

A process claims a free or expired lease with `SELECT … FOR UPDATE SKIP LOCKED` (two claimers never wait
on each other, and never both win), renews it while it works, and gives it back when it stops. Every claim
raises the lease's `token`; every commit made under a lease carries the token it was claimed with
(types.Fence) and checks it in the commit's own transaction, with the lease row locked, so a process that
was paused past its lease (SIGSTOP, a long GC pause, a network partition) finds a larger token and commits
nothing over its successor's work. Expiry is decided by the database's clock, so processes on several
machines need not agree on the time.

Ranges: the backlog of a log is cut into ranges proven independently against one verified head (the
*target*). They commit in any order; each commit also moves the log's position over the contiguous prefix
of committed entries (`advance`), with the compact range the range reached. A rescan for one watch added
later (`backfill --watch`) uses ranges too, with the watch's name; those never move the log's position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, text, update

from ctsentinel.ct.merkle import CompactRange
from ctsentinel.store.database import Database, aware
from ctsentinel.store.dialect import bulk_insert_tuples
from ctsentinel.store.errors import LeaseLost, StoreError
from ctsentinel.store.schema import log_leases, log_ranges, logs
from ctsentinel.store.types import Fence, TreeHeadLike

OWN_BACKLOG = ""  # the `watch` of ranges of a log's own backlog
_END_SESSIONS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE application_name = :name AND datname = current_database() AND pid <> pg_backend_pid()"
)
_EMPTY = CompactRange().to_bytes()


@dataclass(frozen=True)
class RangeTarget:
    """The verified head a range is proven against (its raw body is in tree_heads)."""

    tree_size: int
    timestamp: int
    root_hash: bytes
    raw: bytes = b""


@dataclass(frozen=True)
class RangeClaim:
    """A range this process now holds: entries [position, end) are left to prove and commit."""

    id: int
    log_id: bytes
    watch: str  # OWN_BACKLOG, or the watch a rescan is for
    start: int
    end: int
    position: int
    compact_range: bytes | None  # at `position`; None when the log must provide it (a range's start)
    target: RangeTarget
    fence: Fence


@dataclass(frozen=True)
class Held:
    """What a process still holds after renewing."""

    logs: frozenset[bytes]
    ranges: frozenset[int]


@dataclass(frozen=True)
class LeaseInfo:
    """One lease as `db stats` and `logs --json` show it."""

    log_id: bytes
    url: str
    watch: str | None  # None: the log's lease; OWN_BACKLOG or a watch: a range
    start: int | None
    end: int | None
    position: int | None
    holder: str | None  # None, or a holder whose lease expired: free to claim
    expires_at: datetime | None
    live: bool  # held and not expired


def database_now(conn: Connection) -> datetime:
    """The database's clock on PostgreSQL (one clock for every machine); this machine's on SQLite, where
    every process is on this machine."""
    if conn.dialect.name == "postgresql":
        value: datetime = conn.execute(select(func.now())).scalar_one()
        return aware(value)
    return datetime.now(UTC)


def _free(table: Any, now: datetime) -> Any:
    return or_(table.c.holder.is_(None), table.c.expires_at.is_(None), table.c.expires_at < now)


def _wait_at_most(conn: Connection, seconds: float) -> None:
    """PostgreSQL: this transaction gives up on a row lock after `seconds` (a renewal that cannot be made
    now is tried again, rather than waiting behind a stalled session)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SET LOCAL lock_timeout = {max(100, int(seconds * 1000))}"))


def _log_pk(conn: Connection, log_id: bytes) -> int:
    found = conn.execute(select(logs.c.id).where(logs.c.log_id == log_id)).scalar()
    if found is None:
        raise StoreError(f"log {log_id.hex()}: not in the store (sync_logs first)")
    return int(found)


# --- inside a commit's transaction -------------------------------------------------------------------------


def check_log_fence(conn: Connection, log: int, url: str, fence: Fence) -> None:
    """LeaseLost unless `fence` still holds the log's lease; the lease row stays locked until the commit."""
    row = conn.execute(
        select(log_leases.c.holder, log_leases.c.token).where(log_leases.c.log == log).with_for_update()
    ).first()
    if row is None or row.holder != fence.holder or row.token != fence.token:
        who = "nobody" if row is None or row.holder is None else row.holder
        raise LeaseLost(f"log {url}: lease lost (now held by {who}); nothing committed")
    busy = conn.execute(
        select(log_ranges.c.start).where(log_ranges.c.log == log, log_ranges.c.watch == OWN_BACKLOG).limit(1)
    ).first()
    if busy is not None:
        raise StoreError(f"log {url}: its backlog is being worked in ranges; nothing committed")


def fenced_range(conn: Connection, url: str, fence: Fence) -> Any:
    """The range row a batch commits to, locked; LeaseLost unless `fence` still holds it."""
    row = conn.execute(select(log_ranges).where(log_ranges.c.id == fence.range_id).with_for_update()).first()
    if row is None or row.holder != fence.holder or row.token != fence.token:
        who = "nobody" if row is None or row.holder is None else row.holder
        raise LeaseLost(f"log {url}: range lease lost (now held by {who}); nothing committed")
    return row


def range_committed(conn: Connection, row: Any, end: int, compact_range: bytes, now: datetime) -> None:
    """A range's entries up to `end` are committed: remember where it stands, and for a log's own backlog
    move the log's position over the contiguous prefix."""
    conn.execute(
        update(log_ranges).where(log_ranges.c.id == row.id).values(position=end, compact_range=compact_range)
    )
    if row.watch != OWN_BACKLOG:
        return
    conn.execute(
        update(logs)
        .where(logs.c.id == row.log)
        .values(entries_processed=logs.c.entries_processed + (end - row.position), updated_at=now)
    )
    advance(conn, row.log)


def advance(conn: Connection, log: int) -> int:
    """Move the log's position over committed ranges that start at it (the log row locked), dropping the
    ranges it passed; returns the position. Safe to call at any time: it only follows committed work."""
    position = conn.execute(select(logs.c.position).where(logs.c.id == log).with_for_update()).scalar()
    if position is None:
        return 0
    start = position
    compact: bytes | None = None
    r = log_ranges.c
    while True:
        row = conn.execute(
            select(r.id, r.end, r.position, r.compact_range).where(
                r.log == log, r.watch == OWN_BACKLOG, r.start <= position, r.end > position
            )
        ).first()
        if row is None or row.position <= position or row.compact_range is None:
            break
        position, compact = row.position, row.compact_range
        if row.position < row.end:
            break
    if compact is not None and position > start:
        conn.execute(update(logs).where(logs.c.id == log).values(position=position, compact_range=compact))
    conn.execute(delete(log_ranges).where(r.log == log, r.watch == OWN_BACKLOG, r.end <= position))
    return int(position)


# --- the API processes use ---------------------------------------------------------------------------------


class Leases:
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim_log(self, log_id: bytes, holder: str, ttl: float) -> Fence | None:
        """The log's lease for `holder` (a new token), or None while another process holds it."""
        with self._db.write() as conn:
            log = _log_pk(conn, log_id)
            now = database_now(conn)
            # Two processes meeting a new log at once both add its lease row: the second one's is skipped.
            bulk_insert_tuples(conn, log_leases, ("log", "token"), [(log, 0)], ["log"])
            row = conn.execute(
                select(log_leases.c.token, log_leases.c.holder)
                .where(log_leases.c.log == log, or_(_free(log_leases, now), log_leases.c.holder == holder))
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            if row.holder == holder:  # already ours: renewing keeps the token
                token = int(row.token)
                values: dict[str, Any] = {"expires_at": now + timedelta(seconds=ttl)}
            else:
                token = int(row.token) + 1
                values = {"holder": holder, "token": token, "claimed_at": now}
                values["expires_at"] = now + timedelta(seconds=ttl)
            conn.execute(update(log_leases).where(log_leases.c.log == log).values(**values))
            return Fence(holder, token)

    def renew(self, holder: str, ttl: float) -> Held:
        """Extend every lease `holder` still holds; what it holds afterwards (a lease taken over by another
        process is missing: its work is to be abandoned)."""
        with self._db.write() as conn:
            _wait_at_most(conn, ttl / 3)
            now = database_now(conn)
            until = now + timedelta(seconds=ttl)
            conn.execute(update(log_ranges).where(log_ranges.c.holder == holder).values(expires_at=until))
            conn.execute(update(log_leases).where(log_leases.c.holder == holder).values(expires_at=until))
            ranges = conn.execute(select(log_ranges.c.id).where(log_ranges.c.holder == holder)).scalars()
            held_logs = conn.execute(
                select(logs.c.log_id)
                .join(log_leases, log_leases.c.log == logs.c.id)
                .where(log_leases.c.holder == holder)
            ).scalars()
            return Held(frozenset(bytes(x) for x in held_logs), frozenset(int(x) for x in ranges))

    def release(self, holder: str, *, log_id: bytes | None = None, range_id: int | None = None) -> None:
        """Give leases back at once (all of them unless one is named), so another process can go on
        without waiting for them to expire. The token stays: the next claim raises it."""
        with self._db.write() as conn:
            free = {"holder": None, "expires_at": None}
            if log_id is None and range_id is None:
                conn.execute(update(log_ranges).where(log_ranges.c.holder == holder).values(**free))
                conn.execute(update(log_leases).where(log_leases.c.holder == holder).values(**free))
            if range_id is not None:
                conn.execute(
                    update(log_ranges)
                    .where(log_ranges.c.id == range_id, log_ranges.c.holder == holder)
                    .values(**free)
                )
            if log_id is not None:
                log = _log_pk(conn, log_id)
                conn.execute(
                    update(log_leases)
                    .where(log_leases.c.log == log, log_leases.c.holder == holder)
                    .values(**free)
                )

    def end_sessions_of_lapsed(self, holder: str, grace: float) -> int:
        """PostgreSQL: end the database sessions of every process whose leases expired more than `grace`
        seconds ago (found by their application_name, identity.py), and return how many were ended. A
        process paused in the middle of a transaction holds its row locks for as long as it is paused
        (the server's idle timeout does not see a session stopped between two messages of a pipelined
        statement); ending its sessions rolls that transaction back and frees them. Its leases are
        another's by now, so it could not commit anything anyway."""
        if self._db.engine.dialect.name != "postgresql":
            return 0
        with self._db.write() as conn:
            before = database_now(conn) - timedelta(seconds=grace)
            lapsed: set[str] = set()
            for table in (log_leases, log_ranges):
                lapsed.update(
                    conn.execute(
                        select(table.c.holder)
                        .where(
                            table.c.holder.is_not(None), table.c.holder != holder, table.c.expires_at < before
                        )
                        .distinct()
                    ).scalars()
                )
            ended = 0
            for name in sorted(lapsed):
                ended += len(
                    conn.execute(
                        text(_END_SESSIONS),
                        {"name": name},
                    ).all()
                )
        return ended

    def release_everyone(self) -> None:
        """Free every lease: only for a process that knows it is the only one (it holds the SQLite
        database's lock, runlock.py), so every holder recorded is a process that is gone."""
        with self._db.write() as conn:
            free = {"holder": None, "expires_at": None}
            conn.execute(update(log_ranges).values(**free))
            conn.execute(update(log_leases).values(**free))

    def plan_ranges(
        self,
        log_id: bytes,
        fence: Fence | None,
        target: TreeHeadLike,
        bounds: Sequence[tuple[int, int]],
        watch: str = OWN_BACKLOG,
    ) -> int:
        """Cut work into ranges [start, end) proven against `target`, in one transaction. The log's own
        backlog needs the log's lease (`fence`) and must start at its position; a rescan for a watch starts
        anywhere below it. Returns how many ranges were added (none when the same ranges exist)."""
        if not bounds:
            return 0
        with self._db.write() as conn:
            row = conn.execute(
                select(logs.c.id, logs.c.url, logs.c.position, logs.c.compact_range).where(
                    logs.c.log_id == log_id
                )
            ).first()
            if row is None:
                raise StoreError(f"log {log_id.hex()}: not in the store (sync_logs first)")
            now = database_now(conn)
            first_compact: bytes | None = None
            if watch == OWN_BACKLOG:
                if fence is None:
                    raise StoreError(f"log {row.url}: its backlog is cut into ranges under its lease only")
                check_log_fence(conn, row.id, row.url, fence)
                if row.position != bounds[0][0]:
                    raise StoreError(
                        f"log {row.url}: ranges from {bounds[0][0]} planned, but the log is at {row.position}"
                    )
                first_compact = row.compact_range
            elif row.position is None or bounds[-1][1] > row.position:
                raise StoreError(f"log {row.url}: a rescan must stay below the log's position")
            existing = conn.execute(
                select(log_ranges.c.start).where(log_ranges.c.log == row.id, log_ranges.c.watch == watch)
            ).first()
            if existing is not None:
                return 0
            conn.execute(
                insert(log_ranges),
                [
                    {
                        "log": row.id,
                        "watch": watch,
                        "start": start,
                        "end": end,
                        "position": start,
                        "compact_range": _EMPTY if start == 0 else (first_compact if i == 0 else None),
                        "target_size": target.tree_size,
                        "target_timestamp": target.timestamp,
                        "target_root": target.root_hash,
                        "token": 0,
                        "created_at": now,
                    }
                    for i, (start, end) in enumerate(bounds)
                ],
            )
            return len(bounds)

    def open_ranges(self, log_id: bytes, watch: str = OWN_BACKLOG) -> int:
        """How many ranges of the log (its own backlog, or a rescan for `watch`) are not finished."""
        r = log_ranges.c
        with self._db.read() as conn:
            count = conn.execute(
                select(func.count())
                .select_from(log_ranges.join(logs, logs.c.id == r.log))
                .where(logs.c.log_id == log_id, r.watch == watch, r.position < r.end)
            ).scalar_one()
        return int(count)

    def claim_range(
        self,
        holder: str,
        ttl: float,
        log_ids: Sequence[bytes],
        watch: str = OWN_BACKLOG,
        exclude: Sequence[int] = (),
    ) -> RangeClaim | None:
        """The lowest unfinished free range of one of `log_ids` (for `watch`), now held by `holder`."""
        if not log_ids:
            return None
        r = log_ranges.c
        with self._db.write() as conn:
            now = database_now(conn)
            row = conn.execute(
                select(log_ranges, logs.c.log_id)
                .join(logs, logs.c.id == r.log)
                .where(
                    logs.c.log_id.in_(list(log_ids)),
                    r.watch == watch,
                    r.position < r.end,
                    _free(log_ranges, now),
                    r.id.not_in(list(exclude)),
                )
                .order_by(r.start, r.log)
                .limit(1)
                .with_for_update(of=log_ranges, skip_locked=True)
            ).first()
            if row is None:
                return None
            token = int(row.token) + 1
            conn.execute(
                update(log_ranges)
                .where(r.id == row.id)
                .values(holder=holder, token=token, expires_at=now + timedelta(seconds=ttl))
            )
        return RangeClaim(
            id=int(row.id),
            log_id=bytes(row.log_id),
            watch=row.watch,
            start=int(row.start),
            end=int(row.end),
            position=int(row.position),
            compact_range=None if row.compact_range is None else bytes(row.compact_range),
            target=RangeTarget(int(row.target_size), int(row.target_timestamp), bytes(row.target_root)),
            fence=Fence(holder, token, int(row.id)),
        )

    def advance(self, log_id: bytes) -> int:
        """Move the log's position over its committed ranges (commits do it too); the position."""
        with self._db.write() as conn:
            return advance(conn, _log_pk(conn, log_id))

    def leases(self) -> list[LeaseInfo]:
        """Every log lease and every unfinished range, by log URL then range start."""
        r = log_ranges.c
        with self._db.read() as conn:
            now = database_now(conn)
            held = conn.execute(
                select(logs.c.log_id, logs.c.url, log_leases.c.holder, log_leases.c.expires_at)
                .join(log_leases, log_leases.c.log == logs.c.id)
                .order_by(logs.c.url)
            )
            out = [_info(row, now) for row in held]
            ranges = conn.execute(
                select(logs.c.log_id, logs.c.url, r.watch, r.start, r.end, r.position, r.holder, r.expires_at)
                .join(logs, logs.c.id == r.log)
                .where(r.position < r.end)
                .order_by(logs.c.url, r.watch, r.start)
            )
            out.extend(_info(row, now, ranged=True) for row in ranges)
        return out


def _info(row: Any, now: datetime, *, ranged: bool = False) -> LeaseInfo:
    expires = None if row.expires_at is None else aware(row.expires_at)
    return LeaseInfo(
        log_id=bytes(row.log_id),
        url=row.url,
        watch=row.watch if ranged else None,
        start=int(row.start) if ranged else None,
        end=int(row.end) if ranged else None,
        position=int(row.position) if ranged else None,
        holder=row.holder,
        expires_at=expires,
        live=row.holder is not None and expires is not None and expires >= now,
    )


__all__ = [
    "OWN_BACKLOG",
    "Held",
    "LeaseInfo",
    "Leases",
    "RangeClaim",
    "RangeTarget",
    "advance",
    "check_log_fence",
    "database_now",
    "fenced_range",
    "range_committed",
]
