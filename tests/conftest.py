"""Shared fixtures. The test log ones start `ctsentinel testlog serve` on a free 127.0.0.1 port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ctsentinel.testlog.server import BackgroundLog


@pytest.fixture
def testlog_factory(tmp_path: Path) -> Iterator[Callable[..., BackgroundLog]]:
    """Start logs served in-process (in a thread); stopped at teardown.

    factory(directory=None, *, merge_delay=0.05, batch_size=256, faults=()) -> BackgroundLog, whose .url is
    the base URL (ending in "/testlog/"), .port the port and .directory the log's DIR.
    """
    started: list[BackgroundLog] = []

    def start(directory: Path | None = None, **kwargs: object) -> BackgroundLog:
        kwargs.setdefault("merge_delay", 0.05)
        log = BackgroundLog(directory or tmp_path / f"log{len(started)}", **kwargs)  # type: ignore[arg-type]
        started.append(log.start())
        return log

    yield start
    for log in started:
        log.stop()


@pytest.fixture
def testlog(testlog_factory: Callable[..., BackgroundLog]) -> BackgroundLog:
    """A fresh, empty test log served in-process; .url is its base URL, .directory its DIR."""
    return testlog_factory()


@dataclass
class TestLogProcess:
    __test__ = False
    url: str
    directory: Path
    process: subprocess.Popen[str]
    stderr_path: Path

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send sig (SIGTERM or SIGINT: the server shuts down cleanly on both), then the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=30)


@pytest.fixture
def testlog_process_factory(tmp_path: Path) -> Iterator[Callable[..., TestLogProcess]]:
    """Start `ctsentinel testlog serve --dir DIR --port 0 ...` as a subprocess: factory(directory=None,
    *extra_args) -> TestLogProcess. The URL is read from the server's "testlog: serving URL from DIR" line."""
    started: list[TestLogProcess] = []

    def start(directory: Path | None = None, *args: str) -> TestLogProcess:
        directory = directory or tmp_path / f"plog{len(started)}"
        cmd = [sys.executable, "-m", "ctsentinel.cli", "testlog", "serve", "--dir", str(directory), *args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        stderr_path = tmp_path / f"plog{len(started)}.stderr"
        stderr = open(stderr_path, "w+")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        assert process.stdout is not None
        line = process.stdout.readline()  # pytest-timeout bounds a server that never prints
        if not line.startswith("testlog: serving "):
            process.kill()
            process.wait()
            stderr.seek(0)
            raise RuntimeError(f"testlog serve did not start: {line!r} {stderr.read()[-2000:]}")
        url = line.split()[2]
        running = TestLogProcess(url, directory, process, stderr_path)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


def pytest_configure(config: pytest.Config) -> None:
    """In CI the PostgreSQL tests must run (.ci/run installs the server): a machine without it fails."""
    import pg_cluster

    missing = pg_cluster.available()
    if missing is not None and os.environ.get("CI") == "true":
        raise pytest.UsageError(f"CI: the PostgreSQL tests cannot run here ({missing}); .ci/run installs it")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    import pg_cluster

    missing = pg_cluster.available()
    if missing is not None:
        terminalreporter.write_line(
            f"NOTE: the PostgreSQL tests (several workers, leases, backfill, PostgreSQL gives what SQLite "
            f"gives) were SKIPPED: {missing}. Debian's postgresql package (.ci/run installs it) runs them.",
            yellow=True,
        )


@pytest.fixture(scope="session")
def web_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store filled from the fina-1.1.1.1 and hostile scenarios (plus one current Fina precertificate),
    and its config with a [web] token_file; built once per session."""
    from web_world import build

    return build(tmp_path_factory.mktemp("web"))
