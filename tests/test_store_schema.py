"""Store.open on real SQLite files: migrations from empty, re-open, a too-new database, pragmas, bad URLs."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from ctsentinel.cli import main
from ctsentinel.store import Store, StoreError, migrations
from ctsentinel.store.engine import make_engine

TABLES = {
    "alembic_version",
    "schema_version",
    "logs",
    "tree_heads",
    "misbehaviour",
    "certificates",
    "log_entries",
    "cert_names",
    "cert_ips",
    "alerts",
    "findings",
    "deliveries",
    "ca_certificates",
    "lint_queue",
    "lint_reports",
    "lint_findings",
    "revocations",
    "log_leases",
    "log_ranges",
    "issuances",
    "issuers",
    "alert_actions",
}


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _revision(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]


def _legacy_versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]


def test_head_is_the_newest_revision() -> None:
    assert migrations.scripts().get_current_head() == migrations.HEAD


def test_open_creates_every_table_and_records_its_revision(tmp_path: Path) -> None:
    db = tmp_path / "ct.db"
    Store.open(f"sqlite:///{db}").close()
    assert _tables(db) == TABLES
    assert _revision(db) == [migrations.HEAD]
    assert _legacy_versions(db) == [3]  # what a release from before Alembic reads, and refuses


def test_reopen_applies_nothing_and_keeps_data(tmp_path: Path) -> None:
    db = tmp_path / "ct.db"
    Store.open(str(db)).close()  # a bare path is an SQLite file
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO logs (log_id, url, kind, description, operator, state, misbehaving, errors,"
            " entries_processed) VALUES (x'00', 'https://kept/', 'rfc6962', '', '', 'usable', 0, 0, 0)"
        )
    with Store.open(str(db)) as store:
        assert [s.url for s in store.log_states()] == ["https://kept/"]
    assert _revision(db) == [migrations.HEAD] and _legacy_versions(db) == [3]


def test_migration_from_an_older_revision_adds_only_later_steps(tmp_path: Path) -> None:
    """A database at revision 0001 is brought up to date without touching what 0001 made."""
    db = tmp_path / "ct.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(migrations, "HEAD", "0001_initial")
        Store.open(str(db)).close()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO alerts VALUES (7, 'w', 'i', 'r', 'high', '[]', '2026-01-01', null)")
    Store.open(str(db)).close()
    assert _tables(db) == TABLES and _revision(db) == [migrations.HEAD]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT id, watch, state FROM alerts").fetchall() == [(7, "w", "open")]


@pytest.mark.parametrize(
    ("table", "value", "found"),
    [("alembic_version", "'9999_future'", "revision 9999_future"), ("schema_version", "7", "version 7")],
)
def test_newer_database_is_a_one_line_error_and_untouched(
    tmp_path: Path, table: str, value: str, found: str
) -> None:
    db = tmp_path / "ct.db"
    Store.open(str(db)).close()
    with sqlite3.connect(db) as conn:
        if table == "alembic_version":
            conn.execute(f"UPDATE alembic_version SET version_num = {value}")
        else:  # as a release from before Alembic would have left a newer one
            conn.execute("DROP TABLE alembic_version")
            conn.execute(f"INSERT INTO schema_version VALUES ({value}, '2030-01-01 00:00:00')")
    before = db.read_bytes()
    with pytest.raises(StoreError) as err:
        Store.open(str(db))
    message = str(err.value)
    assert "\n" not in message
    assert f"schema {found} is newer than this ctsentinel knows" in message and str(db) in message
    assert db.read_bytes() == before


def test_failed_migration_rolls_back_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The revisions run in one transaction: one that fails leaves no table and no revision behind."""
    versions = tmp_path / "migrations" / "versions"
    shutil.copytree(Path(migrations.__file__).parent / "versions", versions)
    (versions / "v9999_broken.py").write_text(
        f"revision = '9999_broken'\ndown_revision = {migrations.HEAD!r}\n\n"
        "def upgrade():\n    raise RuntimeError('step failed')\n"
    )
    monkeypatch.setattr(migrations, "HEAD", "9999_broken")
    monkeypatch.setattr(migrations, "scripts", lambda: ScriptDirectory(str(versions.parent)))
    db = tmp_path / "ct.db"
    with pytest.raises(RuntimeError, match="step failed"):
        Store.open(str(db))
    assert _tables(db) == set()


def test_sqlite_is_wal_with_foreign_keys(tmp_path: Path) -> None:
    db = tmp_path / "ct.db"
    Store.open(str(db)).close()
    engine = make_engine(str(db))  # the engine every Store connection comes from
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("mysql://user@127.0.0.1/db", "database"),
        ("nosuchdialect://x", "database"),
        ("sqlite:////nonexistent-dir/sub/ct.db", "unable to open"),
        ("", "empty URL"),
    ],
)
def test_bad_database_is_one_line(url: str, needle: str) -> None:
    with pytest.raises(StoreError) as err:
        Store.open(url)
    assert "\n" not in str(err.value)
    assert needle in str(err.value)


def test_memory_database_keeps_one_connection() -> None:
    with Store.open("sqlite://") as store:
        assert store.log_states() == []
        assert store.counts()["certificates"] == 0


def test_not_a_database_is_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(StoreError) as err:
        Store.open(str(junk))
    assert str(err.value) == f"sqlite:///{junk}: file is not a database"
    assert junk.read_bytes() == bytes(range(256)) * 20


def test_password_is_not_shown() -> None:
    with pytest.raises(StoreError) as err:
        Store.open("postgresql://monitor:s3cret@127.0.0.1:1/ct")
    assert "s3cret" not in str(err.value) and "monitor:***@127.0.0.1" in str(err.value)


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual umask, under which files are created 0644
    yield
    os.umask(previous)


def _modes(db: Path) -> dict[str, int]:
    return {
        path.name: stat.S_IMODE(path.stat().st_mode)
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))
        if path.exists()
    }


def test_a_new_database_is_private(tmp_path: Path, umask_022: None) -> None:
    """The database holds every alert and the outbox's payloads: created 0600, and so are its -wal and
    -shm (SQLite gives them the database's mode)."""
    config = tmp_path / "ctsentinel.toml"
    config.write_text('database = "sqlite:///ct.db"\n')
    assert main(["-c", str(config), "alerts"]) == 0  # opens (creates) the database
    db = tmp_path / "ct.db"
    assert _modes(db) == {"ct.db": 0o600}
    with Store.open(str(db)) as store:
        store.sync_logs([])
        assert _modes(db) == {"ct.db": 0o600, "ct.db-wal": 0o600, "ct.db-shm": 0o600}


def test_an_existing_database_keeps_its_mode(tmp_path: Path, umask_022: None) -> None:
    db = tmp_path / "ct.db"
    Store.open(str(db)).close()
    db.chmod(0o640)  # shared with a reporting group on purpose
    with Store.open(str(db)) as store:
        store.sync_logs([])
        assert _modes(db) == {"ct.db": 0o640, "ct.db-wal": 0o640, "ct.db-shm": 0o640}
