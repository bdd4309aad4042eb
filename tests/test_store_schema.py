"""Store.open on real SQLite files: migrations from empty, re-open, a too-new database, pragmas, bad URLs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ctsentinel.store import Store, StoreError
from ctsentinel.store.engine import make_engine
from ctsentinel.store.migrations import LATEST

TABLES = {
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
}


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]


def test_open_creates_every_table_and_records_each_step(tmp_path: Path) -> None:
    db = tmp_path / "ct.db"
    Store.open(f"sqlite:///{db}").close()
    assert _tables(db) >= TABLES
    assert _versions(db) == list(range(1, LATEST + 1))


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
    assert _versions(db) == list(range(1, LATEST + 1))


def test_migration_from_version_one_adds_only_later_steps(tmp_path: Path) -> None:
    """A database left at version 1 is brought up to date without touching what version 1 made."""
    db = tmp_path / "ct.db"
    Store.open(str(db)).close()
    if LATEST == 1:
        pytest.skip("no step after version 1 yet")
    later = _tables(db) - TABLES
    with sqlite3.connect(db) as conn:
        for table in later:
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM schema_version WHERE version > 1")
    Store.open(str(db)).close()
    assert _versions(db) == list(range(1, LATEST + 1))
    assert later <= _tables(db)


def test_newer_database_is_a_one_line_error_and_untouched(tmp_path: Path) -> None:
    db = tmp_path / "ct.db"
    Store.open(str(db)).close()
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?, '2030-01-01 00:00:00')",
            (LATEST + 5,),
        )
    with pytest.raises(StoreError) as err:
        Store.open(str(db))
    message = str(err.value)
    assert "\n" not in message
    assert f"version {LATEST + 5} is newer" in message and str(db) in message
    assert _versions(db)[-1] == LATEST + 5


def test_failed_migration_rolls_back_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps run in one transaction: a step that fails leaves no table and no version behind."""
    from ctsentinel.store import migrations

    def broken(conn: object) -> None:
        raise RuntimeError("step failed")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, broken])
    monkeypatch.setattr(migrations, "LATEST", len(migrations.MIGRATIONS))
    db = tmp_path / "ct.db"
    with pytest.raises(RuntimeError):
        Store.open(str(db))
    assert _tables(db) <= {"schema_version"}
    assert not _tables(db) or _versions(db) == []


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
