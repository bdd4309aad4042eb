"""The one place where SQL differs by backend: INSERT … ON CONFLICT, and the bulk-insert fast path."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, LargeBinary, Table, text
from sqlalchemy.dialects import postgresql, sqlite

from ctsentinel.store.errors import StoreError


def upsert(
    conn: Connection,
    table: Table,
    row: Mapping[str, Any],
    conflict: Sequence[str],
    update: Callable[[Any], Mapping[str, Any]],
) -> None:
    """Insert one row, or on a collision set update(excluded): values or expressions over the existing
    row's columns and `excluded` (the row that was not inserted)."""
    stmt = _on_conflict(conn, table).values(**row)
    conn.execute(stmt.on_conflict_do_update(index_elements=list(conflict), set_=dict(update(stmt.excluded))))


def serialize_on(conn: Connection, keys: Iterable[str]) -> None:
    """Hold a transaction-scoped lock on each key (PostgreSQL advisory locks, taken in sorted order so two
    transactions cannot deadlock on them): what two processes check-then-insert under the same key is
    done one after the other. SQLite's write transaction already excludes every other writer."""
    if conn.dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


def _on_conflict(conn: Connection, table: Table) -> Any:
    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise StoreError(f"database dialect {name!r} is not supported (sqlite, postgresql)")


@dataclass(frozen=True)
class _Bulk:
    sql: str
    order: tuple[int, ...] | None  # positions of the driver's parameters in a row tuple
    names: tuple[str, ...]  # named paramstyles: the parameter names, in row order
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position in the row, bind processor)


COPY_MIN_ROWS = 64  # below it, one pipelined executemany costs less than COPY's extra round trips
_COMPILED: dict[tuple[str, str, tuple[str, ...], tuple[str, ...] | None], _Bulk] = {}


def bulk_insert(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], conflict: Sequence[str] | None = None
) -> None:
    """executemany of row mappings that all have the same keys (see bulk_insert_tuples)."""
    if rows:
        columns = tuple(rows[0])
        bulk_insert_tuples(conn, table, columns, [tuple(row[c] for c in columns) for row in rows], conflict)


def bulk_insert_tuples(
    conn: Connection,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    conflict: Sequence[str] | None = None,
) -> None:
    """executemany of row tuples (values for `columns`, in that order); with `conflict`, rows colliding on
    those columns are skipped.

    The statement is compiled once per dialect by SQLAlchemy and handed to the driver with the column
    types' bind processors applied, skipping the per-row, per-parameter machinery of Connection.execute,
    which costs more than the database work itself at thousands of rows per batch. Binary columns go to the
    driver as bytes, which every DB-API 2 driver accepts; a value repeated across rows (the batch's
    timestamp) is processed once.
    """
    if not rows:
        return
    key = (conn.dialect.name, table.name, columns, tuple(conflict) if conflict is not None else None)
    bulk = _COMPILED.get(key)
    if bulk is None:
        bulk = _COMPILED[key] = _compile(conn, table, columns, conflict)
    params: list[Any] = list(rows)
    if bulk.processors:
        processors = [(position, _memo(process)) for position, process in bulk.processors]

        def processed(row: tuple[Any, ...]) -> tuple[Any, ...]:
            values = list(row)
            for position, process in processors:
                values[position] = process(values[position])
            return tuple(values)

        params = list(map(processed, params))
    if conn.dialect.name == "postgresql" and len(params) >= COPY_MIN_ROWS:
        _copy(conn, table, columns, params, conflict)
        return
    if bulk.order is not None:
        order = bulk.order
        params = [tuple(r[i] for i in order) for r in params]
    elif bulk.names:
        names = bulk.names
        params = [dict(zip(names, r, strict=True)) for r in params]
    conn.exec_driver_sql(bulk.sql, params)


def _copy(
    conn: Connection,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    conflict: Sequence[str] | None,
) -> None:
    """PostgreSQL's own bulk path: COPY … FROM STDIN, in the transaction the store opened. COPY cannot skip
    a row that collides, so with `conflict` the rows go to a temporary table of those columns first, then
    INSERT … SELECT … ON CONFLICT DO NOTHING (which also skips repeats within the rows)."""
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    driver = conn.connection.driver_connection  # psycopg 3, the one driver behind postgresql:// URLs
    assert driver is not None
    with driver.cursor() as cursor:
        target = quote(table.name)
        if conflict is not None:
            suffix = hashlib.sha256(" ".join(columns).encode()).hexdigest()[:8]
            target = quote(f"ctsentinel_copy_{table.name}_{suffix}")
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {target} AS SELECT {names} FROM {quote(table.name)} "
                "WITH NO DATA"
            )
        with cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        if conflict is not None:
            keys = ", ".join(quote(name) for name in conflict)
            cursor.execute(
                f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} FROM {target} "
                f"ON CONFLICT ({keys}) DO NOTHING"
            )
            cursor.execute(f"TRUNCATE {target}")


def _compile(
    conn: Connection, table: Table, columns: tuple[str, ...], conflict: Sequence[str] | None
) -> _Bulk:
    dialect = conn.dialect
    stmt = (
        table.insert()
        if conflict is None
        else _on_conflict(conn, table).on_conflict_do_nothing(index_elements=list(conflict))
    )
    compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
    order: tuple[int, ...] | None = None
    names: tuple[str, ...] = ()
    if compiled.positional:
        order = tuple(columns.index(name) for name in compiled.positiontup or ())
        if order == tuple(range(len(columns))):
            order = None  # already in the driver's order: rows pass through untouched
    else:
        names = columns
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for position, name in enumerate(columns):
        column_type = table.c[name].type
        if isinstance(column_type, LargeBinary):
            continue
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((position, process))
    return _Bulk(str(compiled), order, names, tuple(processors))


def _memo(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    last: list[Any] = [object(), None]

    def cached(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, process(value)
        return last[1]

    return cached
