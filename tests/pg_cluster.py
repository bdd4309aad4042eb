"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl into a temporary folder, on 127.0.0.1 only.

PostgreSQL refuses to run as root, and this machine runs us as root, so the server then runs as the
unprivileged `postgres` (or `nobody`) user through runuser. The cluster trusts local connections: it
listens on 127.0.0.1 on a free port and lives only as long as the test session.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(command: list[str]) -> tuple[list[str], str | None]:
    if os.geteuid() != 0:
        return command, None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--", *command], user
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL")


def _tool(name: str) -> str | None:
    """A PostgreSQL server program: on the PATH, or where Debian's postgresql package puts it (off the PATH,
    /usr/lib/postgresql/VERSION/bin), the newest version first."""
    found = shutil.which(name)
    if found:
        return found
    folders = Path("/usr/lib/postgresql").glob("*/bin")
    versions = sorted((f for f in folders if f.parent.name.isdigit()), key=lambda f: -int(f.parent.name))
    return next((str(folder / name) for folder in versions if (folder / name).exists()), None)


def available() -> str | None:
    """None when a cluster can be started here, else why not."""
    missing = [tool for tool in ("initdb", "pg_ctl") if _tool(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed"
    return None


@contextmanager
def cluster() -> Iterator[str]:
    """Starts a cluster in a fresh temporary folder and yields a SQLAlchemy URL of its `postgres` database."""
    # Not under pytest's tmp_path: its parents are private to root, and the server user must reach the data.
    base = Path(tempfile.mkdtemp(prefix="ctsentinel-pg-"))
    data, port = base / "data", _free_port()
    _, user = _as_server_user(["true"])
    if user is not None:
        shutil.chown(base, user)

    def run(command: list[str]) -> None:
        full, _ = _as_server_user([_tool(command[0]) or command[0], *command[1:]])
        result = subprocess.run(full, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {(result.stderr or result.stdout).strip()[-500:]}")

    try:
        run(["initdb", "-D", str(data), "-A", "trust", "-U", "ctsentinel", "--no-sync", "-E", "UTF8"])
        options = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off"
        run(["pg_ctl", "-D", str(data), "-o", options, "-l", str(base / "server.log"), "-w", "start"])
        try:
            yield f"postgresql://ctsentinel@127.0.0.1:{port}/postgres"
        finally:
            run(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(base, ignore_errors=True)


KINDS = ("sqlite", "postgresql")


@contextmanager
def database(kind: str, directory: Path) -> Iterator[str]:
    """A fresh database of `kind` (one of KINDS) for a test parametrized over both: an SQLite file in
    `directory`, or a throwaway cluster; the test is skipped when no cluster can be started here."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'ct.db'}"
        return
    missing = available()
    if missing is not None:
        pytest.skip(f"PostgreSQL: {missing}")
    with cluster() as url:
        yield url
