"""Engine creation: SQLite tuned for one writer and concurrent readers, PostgreSQL as SQLAlchemy makes it."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from ctsentinel.redact import redact_url
from ctsentinel.store.errors import StoreError
from ctsentinel.store.identity import process_name

BUSY_TIMEOUT_MS = 30_000
IDLE_IN_TRANSACTION_MS = 10_000
CACHE_KIB = 8 * 1024
PAGE_SIZE = 16384
# Write transactions ask for the lock up front: a deferred transaction that reads and then writes fails
# at once with SQLITE_BUSY if another writer committed in between, whatever the busy timeout.
IMMEDIATE = "ctsentinel_immediate"


def normalise_url(url: str) -> str:
    """A bare path means an SQLite file."""
    return url if "://" in url else f"sqlite:///{url}"


def display_url(url: str) -> str:
    """The URL for messages: a password in it is masked, and its query (which may carry one too, or a
    key file's passphrase) is shown as "?…"."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        return redact_url(url)
    shown = parsed.set(query={}).render_as_string(hide_password=True)
    return f"{shown}?…" if parsed.query else shown


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for `url`; read_only: every connection refuses to write (for browsing)."""
    if not url.strip():
        raise StoreError("database: empty URL (e.g. sqlite:///ctsentinel.db)")
    url = normalise_url(url)
    try:
        parsed = make_url(url)
        if parsed.drivername == "postgresql":
            # The driver ctsentinel ships with (psycopg 3), not SQLAlchemy's historical default (psycopg2).
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "postgresql":
            # A process paused inside a transaction (SIGSTOP, a long GC pause) would hold its row locks,
            # and so the leases others wait for, for as long as it stays paused; the server ends such a
            # session instead. Every transaction of the store is short and never waits on the network.
            # Its sessions carry the process's name, by which others end them once its leases expired
            # (store/leases.py: a session paused in the middle of a pipelined statement is not "idle").
            options = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
            if read_only:
                options += " -c default_transaction_read_only=on"
            kwargs["connect_args"] = {"options": options, "application_name": process_name()}
        if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
            kwargs["poolclass"] = StaticPool  # one connection, or every checkout is a new empty database
            kwargs["connect_args"] = {"check_same_thread": False}
        elif parsed.get_backend_name() == "sqlite" and not parsed.query and not read_only:
            _create_private(parsed.database)
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"database {display_url(url)!r}: {_first_line(exc)}") from None
    if engine.dialect.name == "sqlite":
        _tune_sqlite(engine, read_only)
    elif engine.dialect.name != "postgresql":
        raise StoreError(f"database {display_url(url)!r}: only sqlite and postgresql are supported")
    return engine


def _create_private(path: str | None) -> None:
    """Create a missing SQLite file 0600 (an empty file is an empty database). The database holds every
    alert and the outbox's payloads; SQLite would create it under the umask (0644, world-readable), and
    gives its -wal and -shm files the database's own mode. An existing file's mode is the owner's choice
    and is left alone."""
    if not path:
        return
    # It exists, or its folder does not (SQLite's own open then says what is wrong).
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600))


def _tune_sqlite(engine: Engine, read_only: bool) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # The driver's own transaction handling skips DDL and defers BEGIN; we issue BEGIN ourselves
        # (SQLAlchemy's documented recipe) so that migrations and batches are real transactions.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Only a new, empty database takes it (before WAL): rows carry ~1 KB of DER, and 16 KB pages halve
        # the per-frame cost of WAL commits and checkpoints against the 4 KB default (bench/store_bench.py).
        cursor.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # Enough for the indexes' upper levels; a larger cache only held pages the operating system caches
        # anyway: at 64 MB, store = "all" grew the process by 140 MB over 100,000 entries and ran no faster
        # (bench/monitor_bench.py). SQLite's default is 2 MB.
        cursor.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        if read_only:
            cursor.execute("PRAGMA query_only = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
