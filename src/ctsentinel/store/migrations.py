"""Ordered schema migrations, recorded in `schema_version` and applied in one transaction at open.

A step runs on a Connection inside the open transaction; SQLite and PostgreSQL both roll DDL back, so a
failed upgrade leaves the previous version intact. Steps are append-only: once released, a step's effect
never changes (when schema.py moves on, step 1 must keep creating the version-1 tables).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, func, inspect, select

from ctsentinel.store import schema
from ctsentinel.store.errors import StoreError

Step = Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    later = {"schema_version", "deliveries"}
    tables = [t for name, t in schema.metadata.tables.items() if name not in later]
    schema.metadata.create_all(conn, tables=tables)


def _v2_deliveries(conn: Connection) -> None:
    schema.deliveries.create(conn, checkfirst=True)


MIGRATIONS: list[Step] = [_v1_initial, _v2_deliveries]
LATEST = len(MIGRATIONS)


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    version = conn.execute(select(func.max(schema.schema_version.c.version))).scalar()
    return int(version or 0)


def migrate(conn: Connection, where: str) -> int:
    """Bring the database up to LATEST; returns the version found. `where` names it in errors."""
    schema.schema_version.create(conn, checkfirst=True)
    found = current_version(conn)
    if found > LATEST:
        raise StoreError(
            f"{where}: database schema version {found} is newer than this ctsentinel knows ({LATEST}); "
            "upgrade ctsentinel"
        )
    for version in range(found + 1, LATEST + 1):
        MIGRATIONS[version - 1](conn)
        conn.execute(schema.schema_version.insert().values(version=version, applied_at=datetime.now(UTC)))
    return found
