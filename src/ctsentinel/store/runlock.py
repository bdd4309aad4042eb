"""One working process per SQLite database: an exclusive lock on a file beside it.

SQLite has one writer at a time and no row locks, so leases cannot spread the work of several processes
over it; a second `run` (or `backfill`) on the same file is refused in one line instead. The lock is an
flock(2) on `<database>.lock`, which the kernel drops when the process dies however it dies, so a killed
monitor never leaves a stale lock behind. The file holds the pid of the holder, for the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from ctsentinel.store.engine import normalise_url
from ctsentinel.store.errors import StoreError


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for PostgreSQL and for an in-memory database)."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


@contextlib.contextmanager
def exclusive_run(url: str, what: str = "ctsentinel run") -> Iterator[bool]:
    """Hold the lock of an SQLite database while the block runs; yields True when a lock is held (False
    for PostgreSQL, where processes share the work through leases). StoreError when another process
    holds it."""
    path = sqlite_path(url)
    if path is None:
        yield False
        return
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"{lock}: cannot open the lock file: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise StoreError(
                f"{path} is in use by another ctsentinel process (pid {holder}); one process at a time "
                "works an SQLite database (several share a PostgreSQL one)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield True
    finally:
        os.close(fd)  # closing drops the lock
