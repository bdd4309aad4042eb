"""The one place where SQL differs by backend: INSERT … ON CONFLICT."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

from ctsentinel.store.errors import StoreError


def insert_ignoring(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], conflict: Sequence[str]
) -> None:
    """Insert rows (executemany), skipping those that collide on the `conflict` columns."""
    if not rows:
        return
    conn.execute(_on_conflict(conn, table).on_conflict_do_nothing(index_elements=list(conflict)), rows)


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


def _on_conflict(conn: Connection, table: Table) -> Any:
    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise StoreError(f"database dialect {name!r} is not supported (sqlite, postgresql)")
