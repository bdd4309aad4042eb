"""Reads under a time limit, for browsing: an expensive query is stopped, not waited for.

SQLite: a progress handler on the connection aborts the statement once the deadline passes (the driver
raises "interrupted"). PostgreSQL: `SET LOCAL statement_timeout` for the transaction. Either way the caller
gets a QueryTimeout (one line), and the connection goes back to the pool unharmed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ctsentinel.store.database import Database, db_message
from ctsentinel.store.errors import StoreError

_SQLITE_CHECK_EVERY = 2000  # virtual machine instructions between deadline checks (~0.1 ms)


class QueryTimeout(StoreError):
    """A read that went over its time limit and was stopped."""


class TimeLimitedDatabase(Database):
    """A Database whose reads each get `limit` seconds; meant for a read-only engine."""

    def __init__(self, engine: Engine, where: str, limit: float) -> None:
        super().__init__(engine, where)
        self.limit = limit

    @contextmanager
    def read(self) -> Iterator[Connection]:
        deadline = time.monotonic() + self.limit
        try:
            with self.engine.connect() as conn:
                raw = _sqlite_connection(conn)
                if raw is not None:
                    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), _SQLITE_CHECK_EVERY)
                try:
                    with conn.begin():
                        if raw is None:
                            milliseconds = max(1, int(self.limit * 1000))
                            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
                        yield conn
                finally:
                    if raw is not None:
                        raw.set_progress_handler(None, 0)
        except SQLAlchemyError as exc:
            if _timed_out(exc) or time.monotonic() > deadline:
                raise QueryTimeout(
                    f"the query took longer than {self.limit:g} s and was stopped; narrow it down"
                ) from None
            raise StoreError(f"{self.where}: {db_message(exc)}") from None


def _sqlite_connection(conn: Connection) -> Any:
    if conn.dialect.name != "sqlite":
        return None
    return conn.connection.driver_connection


def _timed_out(exc: SQLAlchemyError) -> bool:
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    if getattr(orig, "sqlstate", None) == "57014":  # PostgreSQL query_canceled
        return True
    return "interrupted" in str(orig)
