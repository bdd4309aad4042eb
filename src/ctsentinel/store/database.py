"""One engine, one name for messages, and the two kinds of transaction every store call runs in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from ctsentinel.store.engine import IMMEDIATE
from ctsentinel.store.errors import StoreError


class Database:
    def __init__(self, engine: Engine, where: str) -> None:
        self.engine = engine
        self.where = where  # the URL with any password masked

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction; every database failure becomes a one-line StoreError, and rolls back."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{IMMEDIATE: True})
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.where}: {db_message(exc)}") from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"{self.where}: {db_message(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()


def db_message(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def aware(when: datetime) -> datetime:
    """A stored time as written, in UTC: SQLite hands datetimes back naive."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
