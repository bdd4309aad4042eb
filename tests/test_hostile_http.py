"""A log cannot stall ctsentinel or point it at what it should not touch: every request has a deadline,
redirects stay on the log's host, a downloaded list cannot name internal hosts, and no response body gets
into an error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from ctsentinel.logs import HttpClient, LogHTTPError
from ctsentinel.logs.urls import same_origin, url_problem
from ctsentinel.testlog.hostile import INTERNAL_SECRET
from ctsentinel.testlog.server import BackgroundLog
from hostile_helpers import logs_json, one_api_list, run_once, table_rows, wait_for_size, write_config
from testlog_client import set_faults, submit
from testlog_pki import make_leaf, make_pki


def _small_log(testlog_factory: Callable[..., BackgroundLog], entries: int = 3) -> BackgroundLog:
    pki = make_pki("Http")
    log = testlog_factory()
    for n in range(entries):
        submit(log.url, pki.chain(make_leaf(pki.intermediate, [f"h{n}.example"])))
    wait_for_size(log, entries)
    return log


@pytest.mark.parametrize("kind", ["rfc6962", "static-ct"])
def test_a_log_trickling_its_head_is_an_error_and_run_once_ends(
    kind: str, tmp_path: Path, testlog_factory: Callable[..., BackgroundLog],
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = _small_log(testlog_factory)
    set_faults(log.url, {"trickle-sth": 2})  # one byte every 2 s: no read timeout ever fires
    config = write_config(tmp_path, one_api_list(log, kind), logs="request_timeout = 3\n")
    started = time.monotonic()
    code, _, err = run_once(capsys, config)
    assert time.monotonic() - started < 60
    endpoint = "ct/v1/get-sth" if kind == "rfc6962" else "checkpoint"
    problem = f"{log.url}{endpoint}: no complete answer within the request deadline of 3 s (1 try)"
    assert code == 1
    assert err == f"ctsentinel: log {log.url} not caught up: {problem}\n"
    (status,) = logs_json(capsys, config)
    assert status["last_error"] == problem and status["errors"] == 3


@pytest.mark.parametrize(
    ("fault", "target"), [("redirect-host", "http://localhost:{port}/internal/secret"),
                          ("redirect-file", "file:///etc/passwd")],
)
def test_redirects_off_the_log_host_are_not_followed(
    fault: str, target: str, tmp_path: Path, testlog_factory: Callable[..., BackgroundLog],
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = _small_log(testlog_factory)
    set_faults(log.url, {fault: True})
    config = write_config(tmp_path, one_api_list(log, "rfc6962"))
    started = time.monotonic()
    code, out, err = run_once(capsys, config)
    assert time.monotonic() - started < 30  # refused at once, not retried
    shown = target.format(port=log.port)
    problem = f"{log.url}ct/v1/get-sth: HTTP 302 (Found) redirect to {shown} not followed: another host"
    assert (code, err) == (1, f"ctsentinel: log {log.url} not caught up: {problem}\n")
    (status,) = logs_json(capsys, config)
    assert status["last_error"] == problem
    assert INTERNAL_SECRET not in out + err + str(status)


def test_a_downloaded_list_naming_internal_hosts_is_refused(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog], capsys: pytest.CaptureFixture[str],
) -> None:
    log = _small_log(testlog_factory)
    listed = f"{log.url}log_list.json"  # the log publishes its own list: it names 127.0.0.1
    config = write_config(tmp_path, listed)
    code, _, err = run_once(capsys, config)
    assert code == 1
    lines = err.splitlines()
    assert lines[-1] == f"ctsentinel: log list {listed}: no log to monitor after selection"
    assert len(lines) == 3 and all("names host 127.0.0.1, not a public address" in x for x in lines[:-1])
    assert table_rows(config, "tree_heads") == 0  # nothing was asked of the internal host


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://ct.example.com/log/", None),
        ("http://ct.example.com:8080/2025h1/", None),
        ("ftp://ct.example.com/", "is not an http(s) URL"),
        ("file:///etc/passwd", "is not an http(s) URL"),
        ("https://user:pw@ct.example.com/", "carries credentials"),
        ("https://ct.example.com/log/?token=1", "has a query string"),
        ("https://ct.example.com/log/#x", "has a fragment"),
        ("https:///log/", "names no host"),
        ("https://ct.example.com/a b/", "holds spaces, control characters or backslashes"),
        ("http://127.0.0.1:8080/testlog/", "names host 127.0.0.1, not a public address"),
        ("http://169.254.169.254/latest/", "names host 169.254.169.254, not a public address"),
        ("http://10.1.2.3/", "names host 10.1.2.3, not a public address"),
        ("http://100.64.0.1/", "names host 100.64.0.1, not a public address"),
        ("http://[::1]/", "names host ::1, not a public address"),
        ("http://[fe80::1]/", "names host fe80::1, not a public address"),
        ("http://[::ffff:10.0.0.1]/", "names host ::ffff:10.0.0.1, not a public address"),
        ("http://0.0.0.0/", "names host 0.0.0.0, not a public address"),
        ("http://240.0.0.1/", "names host 240.0.0.1, not a public address"),
        ("http://localhost:8080/", "names host localhost, a local name"),
        ("http://ct.localhost/", "names host ct.localhost, a local name"),
        ("http://metadata.google.internal/", "names host metadata.google.internal, a local name"),
        ("http://printer.local/", "names host printer.local, a local name"),
        ("http://ctlog/", "names host ctlog, not a fully qualified name"),
    ],
)
def test_what_a_downloaded_list_may_name(url: str, problem: str | None) -> None:
    assert url_problem(url, internal_hosts=False) == problem
    if problem is not None and problem.startswith("names host "):
        assert url_problem(url, internal_hosts=True) is None  # a list given by path may


def test_same_origin() -> None:
    assert same_origin("https://a.example/x", "https://a.example/y")
    assert same_origin("http://a.example/x", "https://a.example/y")  # an upgrade
    assert same_origin("http://A.example:80/x", "http://a.example/y")
    assert not same_origin("https://a.example/x", "http://a.example/y")  # a downgrade
    assert not same_origin("https://a.example/x", "https://b.example/y")
    assert not same_origin("https://a.example/x", "https://a.example:8443/y")
    assert not same_origin("https://a.example/x", "https://u@a.example/y")
    assert not same_origin("https://a.example/x", "file:///etc/passwd")


def test_public_only_refuses_a_name_resolving_to_this_machine() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="should never be read")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with HttpClient(public_only=True, max_tries=1) as http:
                with pytest.raises(LogHTTPError, match="localhost resolves to no public address"):
                    await http.get(f"http://localhost:{port}/ct/v1/get-sth")
                with pytest.raises(LogHTTPError, match=r"host 127\.0\.0\.1 is not a public address"):
                    await http.get(f"http://127.0.0.1:{port}/ct/v1/get-sth")
            async with HttpClient(max_tries=1) as http:
                assert await http.get(f"http://localhost:{port}/x") == b"should never be read"
        finally:
            await runner.cleanup()

    asyncio.run(main())
