"""Databases made before the migrations moved to Alembic open, upgrade in place and keep every row; the
same upgrade on a real PostgreSQL server (a throwaway cluster on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import pg_cluster
from ctsentinel.notify import AlertEvent, HealthEvent, Sender, event_from_payload
from ctsentinel.notify.stdout import StdoutChannel
from ctsentinel.store import Store, migrations

BEFORE_ALEMBIC = Path(__file__).parent / "data" / "store" / "before-alembic-v2.sqlite"
TABLES = ("logs", "tree_heads", "misbehaviour", "certificates", "log_entries", "cert_names", "cert_ips",
          "alerts", "findings", "deliveries")  # fmt: skip


def _rows(db: Path, widths: dict[str, int] | None = None) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the old tables; with `widths`, only the columns each table had then (later revisions
    add columns at the end)."""
    with sqlite3.connect(db) as conn:
        return {
            table: sorted(
                (row[: (widths or {}).get(table)] for row in conn.execute(f"SELECT * FROM {table}")), key=repr
            )
            for table in TABLES
        }


def _widths(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {table: len(conn.execute(f"SELECT * FROM {table}").description) for table in TABLES}


def _schema(db: Path) -> set[str]:
    """Every table and index as SQLite keeps its DDL, the version records aside."""
    with sqlite3.connect(db) as conn:
        return {
            sql
            for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
            if name not in ("alembic_version", "schema_version")
        }


@pytest.fixture
def before(tmp_path: Path) -> Path:
    db = tmp_path / "before.sqlite"
    shutil.copyfile(BEFORE_ALEMBIC, db)
    return db


def test_a_version_2_database_upgrades_in_place_and_keeps_its_rows(before: Path, tmp_path: Path) -> None:
    rows, widths = _rows(before), _widths(before)
    assert sum(len(r) for r in rows.values()) > 20 and rows["deliveries"]
    with Store.open(str(before)) as store:
        (alert,) = store.list_alerts()
        assert (alert.watch, alert.serial, alert.severity) == ("legacy", "0a1b", "critical")
        assert alert.entries[0].to_json()["type"] == "precert"
        [state] = store.log_states()
        assert (state.position, state.errors, state.misbehaving) == (7, 1, True)
        [found] = store.search("www.legacy.example")
        assert len(found.fingerprints) == 2
        pending = store.outbox.pending(10)
        events = [event_from_payload(item.payload) for item in pending]
        assert sorted(type(e).__name__ for e in events) == ["AlertEvent", "HealthEvent"]
        alert_event = next(e for e in events if isinstance(e, AlertEvent))
        assert alert_event.to_json() == alert.to_json()  # queued by the old code, sent as the new shows it
        assert alert_event.certificate is not None and alert_event.certificate.pem
        assert next(e for e in events if isinstance(e, HealthEvent)).problem == "misbehaving"
    assert _rows(before, widths) == rows  # nothing lost, nothing changed
    with sqlite3.connect(before) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrations.HEAD,)]
        versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert versions == [(1,), (2,), (3,)]
    fresh = tmp_path / "fresh.sqlite"
    Store.open(str(fresh)).close()
    assert _schema(before) == _schema(fresh)  # the revisions make exactly what the old steps made


def test_the_pending_deliveries_of_the_old_code_are_delivered(before: Path) -> None:
    store = Store.open(str(before))
    try:
        sender = Sender(store.outbox, [StdoutChannel("webhook#1")])  # the channel key the old rows name
        assert asyncio.run(sender.drain(5)) == []
        assert store.outbox.counts() == {"pending": 0, "delivered": 2, "failed": 0}
    finally:
        store.close()


def test_a_version_1_database_gets_the_outbox(before: Path) -> None:
    with sqlite3.connect(before) as conn:
        conn.execute("DROP TABLE deliveries")
        conn.execute("DELETE FROM schema_version WHERE version = 2")
    with Store.open(str(before)) as store:
        assert store.outbox.counts() == {"pending": 0, "delivered": 0, "failed": 0}
        assert len(store.list_alerts()) == 1
    with sqlite3.connect(before) as conn:
        assert [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 3]


# -- PostgreSQL ---------------------------------------------------------------------------------------------

needs_postgres = pytest.mark.skipif(pg_cluster.available() is not None, reason=str(pg_cluster.available()))


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with pg_cluster.cluster() as url:
        yield url


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://")


def _database(server: str, name: str) -> str:
    """A new, empty database on the cluster; its URL."""
    engine = create_engine(_psycopg(server), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


@needs_postgres
def test_postgresql_creates_and_reopens(postgres: str) -> None:
    url = _database(postgres, "fresh")
    Store.open(url).close()
    with Store.open(url) as store:
        assert store.counts()["alerts"] == 0 and store.outbox.counts()["pending"] == 0
    engine = create_engine(_psycopg(url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == migrations.HEAD
        assert conn.execute(text("SELECT version FROM schema_version")).scalars().all() == [3]
        collations = conn.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND collation_name = 'C'"
            )
        ).all()
        assert sorted(collations) == [  # range scans
            ("cert_names", "name_rev"),
            ("certificates", "issuance"),
            ("issuances", "issuance"),
        ]
    engine.dispose()


@needs_postgres
def test_postgresql_version_2_database_upgrades_in_place(postgres: str) -> None:
    """The state the old code left on PostgreSQL: its tables (the same DDL as revisions 0001 and 0002, see
    the SQLite test above), a row in them, and schema_version 1 and 2 without Alembic's table."""
    url = _database(postgres, "before")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(migrations, "HEAD", "0002_deliveries")  # the schema version 2 had
        Store.open(url).close()
    engine = create_engine(_psycopg(url))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(
            text("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
        )
        conn.execute(text("INSERT INTO schema_version VALUES (1, now()), (2, now())"))
        conn.execute(
            text(
                "INSERT INTO alerts (id, watch, issuance, reason, severity, matched, first_seen) "
                "VALUES (7, 'w', 'i', 'r', 'high', '[]', now())"
            )
        )
    with Store.open(url) as store:
        assert store.counts()["alerts"] == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == migrations.HEAD
        versions = conn.execute(text("SELECT version FROM schema_version ORDER BY 1")).scalars().all()
        assert versions == [1, 2, 3]
        assert conn.execute(text("SELECT watch FROM alerts WHERE id = 7")).scalar() == "w"
    engine.dispose()


@needs_postgres
def test_postgresql_failed_migration_rolls_back_everything(
    postgres: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic.script import ScriptDirectory

    versions = tmp_path / "migrations" / "versions"
    shutil.copytree(Path(migrations.__file__).parent / "versions", versions)
    (versions / "v9999_broken.py").write_text(
        f"revision = '9999_broken'\ndown_revision = {migrations.HEAD!r}\n\n"
        "def upgrade():\n    raise RuntimeError('step failed')\n"
    )
    monkeypatch.setattr(migrations, "HEAD", "9999_broken")
    monkeypatch.setattr(migrations, "scripts", lambda: ScriptDirectory(str(versions.parent)))
    url = _database(postgres, "broken")
    with pytest.raises(RuntimeError, match="step failed"):
        Store.open(url)
    engine = create_engine(_psycopg(url))
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).all()
    engine.dispose()
    assert tables == []
