"""What `db stats` and `db migrate` report of a database: its schema revision, its size, rows per table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, func, inspect, select, text

from ctsentinel.store.database import Database
from ctsentinel.store.engine import display_url, make_engine
from ctsentinel.store.runlock import sqlite_path
from ctsentinel.store.schema import metadata

_SQLITE_SIDE_FILES = ("", "-wal", "-shm")


@dataclass(frozen=True)
class DatabaseStats:
    where: str  # the URL, password masked
    revision: str | None
    size_bytes: int | None
    rows: dict[str, int]  # per table of the schema


def revision_of(url: str) -> str | None:
    """The schema revision a database is at, without migrating it (None: a new, empty database)."""
    db = Database(make_engine(url), display_url(url))
    try:
        with db.read() as conn:
            return _revision(conn)
    finally:
        db.close()


def _revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)


def database_stats(db: Database, url: str) -> DatabaseStats:
    with db.read() as conn:
        rows = {
            name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in sorted(metadata.tables.items())
        }
        revision = _revision(conn)
        size: int | None = None
        if conn.dialect.name == "postgresql":
            size = int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    path = sqlite_path(url)
    if path is not None:
        size = sum(_file_size(path.with_name(path.name + suffix)) for suffix in _SQLITE_SIDE_FILES)
    return DatabaseStats(db.where, revision, size, rows)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
