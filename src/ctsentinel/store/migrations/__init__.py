"""Schema migrations: Alembic revisions shipped in versions/, applied at Store.open in its one transaction.

Revisions are append-only: once released, a revision's effect never changes, so each one declares the
tables it creates itself rather than reading schema.py (which is always the newest schema). SQLite and
PostgreSQL both roll DDL back, so an upgrade that fails leaves the database as it was.

Databases made before Alembic recorded their version in `schema_version` (1: the tables, 2: the
deliveries outbox). They are stamped with the matching revision and upgraded like any other. Revision
0003 leaves version 3 in that table, so a release from before Alembic refuses the database as "newer than
it knows" instead of writing to a schema it does not understand.

Alembic is imported only when there is something to do: every CLI command opens the store, and an
up-to-date database is recognised by reading one row.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, inspect, text

from ctsentinel.store.errors import StoreError

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

HEAD = "0007_browse"  # the newest revision in versions/ (a test holds the two together)
_MIGRATION_LOCK = 0x63747365  # "ctse": the advisory lock migrations are run under on PostgreSQL
_BEFORE_ALEMBIC = {1: "0001_initial", 2: "0002_deliveries"}  # schema_version -> the same schema's revision


def migrate(conn: Connection, where: str) -> None:
    """Bring the database up to HEAD inside the caller's transaction; `where` names it in errors."""
    if conn.dialect.name == "postgresql":
        # Several processes may open a new database at once: one migrates, the others wait and then find
        # it up to date. (SQLite's write transaction already holds the only write lock.)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    inspector = inspect(conn)
    if inspector.has_table("alembic_version"):
        current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if current == HEAD:
            return
        _upgrade(conn, where, current=current, stamp=None)
    elif inspector.has_table("schema_version"):
        version = conn.execute(text("SELECT max(version) FROM schema_version")).scalar()
        if version not in _BEFORE_ALEMBIC:
            raise _newer(where, f"version {version}")
        _upgrade(conn, where, current=None, stamp=_BEFORE_ALEMBIC[version])
    else:
        _upgrade(conn, where, current=None, stamp=None)


def _upgrade(conn: Connection, where: str, *, current: str | None, stamp: str | None) -> None:
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext

    script = scripts()
    if current is not None and current not in revisions(script):
        raise _newer(where, f"revision {current}")

    def upgrade(heads: Any, _context: Any) -> Any:
        # What `alembic upgrade head` runs: the steps from the database's revision to HEAD.
        return script._upgrade_revs(HEAD, heads)

    with EnvironmentContext(Config(), script, fn=upgrade, destination_rev=HEAD) as environment:
        environment.configure(connection=conn)
        if stamp is not None:
            environment.get_context().stamp(script, stamp)
        environment.run_migrations()


def scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(Path(__file__).parent))


def revisions(script: ScriptDirectory) -> set[str]:
    return {revision.revision for revision in script.walk_revisions()}


def _newer(where: str, found: str) -> StoreError:
    return StoreError(
        f"{where}: database schema {found} is newer than this ctsentinel knows ({HEAD}); upgrade ctsentinel"
    )
