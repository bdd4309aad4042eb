"""Each HTTP fault of the test log (testlog/faults.py), met by the log clients over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ctsentinel.ct.errors import SignatureError
from ctsentinel.logs import HttpClient, LogBudget, LogClient, LogHTTPError, LogResponseError, make_client
from ctsentinel.testlog.server import BackgroundLog
from test_logs_clients import KINDS, log_infos, read_all, run, stored
from test_testlog_server import prefill
from testlog_client import set_faults
from testlog_pki import Pki, make_pki

SIZE = 300


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki("Faults")


@pytest.fixture
def log(tmp_path: Path, pki: Pki, testlog_factory: Callable[..., BackgroundLog]) -> BackgroundLog:
    prefill(tmp_path / "faulty", pki, n=SIZE)
    return testlog_factory(tmp_path / "faulty")


def fast_budget() -> LogBudget:
    # Small backoff so retries are quick; the rate limit is not what these tests are about.
    return LogBudget(requests_per_second=1000, backoff_base=0.05)


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_retry_after_is_obeyed(log: BackgroundLog, kind: str) -> None:
    info = log_infos(log)[kind]
    budget = fast_budget()
    set_faults(log.url, {"rate-limit": 1})
    started = time.monotonic()
    head = run(lambda http: make_client(info, http, budget).get_tree_head())
    waited = time.monotonic() - started
    assert head.tree_size == SIZE
    assert budget.stats.rate_limited == 1  # one 429, then it waited as told and got through
    assert 1.0 <= waited < 2.5
    assert budget.rate < budget.max_rate  # and slowed down


def test_rate_limit_without_retry_after_backs_off(log: BackgroundLog) -> None:
    info = log_infos(log)["rfc6962"]
    budget = LogBudget(requests_per_second=1000, backoff_base=0.2)
    set_faults(log.url, {"rate-limit-no-retry-after": 1})
    started = time.monotonic()
    head = run(lambda http: make_client(info, http, budget).get_tree_head())
    waited = time.monotonic() - started
    assert head.tree_size == SIZE
    # Backoffs of 0.1-0.2, 0.2-0.4, 0.4-0.8 s ...: several refusals before the 1 s window passes.
    assert budget.stats.rate_limited >= 2
    assert 1.0 <= waited < 4.0


@pytest.mark.parametrize("kind", KINDS)
def test_server_errors_are_retried_until_success(log: BackgroundLog, kind: str) -> None:
    info = log_infos(log)[kind]
    budget = fast_budget()
    set_faults(log.url, {"server-error": 3})
    head = run(lambda http: make_client(info, http, budget).get_tree_head(), max_tries=6)
    assert head.tree_size == SIZE
    assert budget.stats.server_errors == 3
    assert budget.stats.requests == 4


def test_too_many_server_errors_give_one_line(log: BackgroundLog) -> None:
    info = log_infos(log)["rfc6962"]
    budget = fast_budget()
    set_faults(log.url, {"server-error": 10})
    with pytest.raises(LogHTTPError) as caught:
        run(lambda http: make_client(info, http, budget).get_tree_head(), max_tries=4)
    message = one_line(caught.value)
    assert message == f"{log.url}ct/v1/get-sth: HTTP 503 after 4 tries"
    assert caught.value.status == 503
    assert budget.stats.requests == 4


@pytest.mark.parametrize("kind", KINDS)
def test_slow_log_times_out_with_one_line(log: BackgroundLog, kind: str) -> None:
    info = log_infos(log)[kind]
    set_faults(log.url, {"slow": 1.0})
    started = time.monotonic()
    with pytest.raises(LogHTTPError) as caught:
        run(
            lambda http: make_client(info, http, fast_budget()).get_tree_head(), read_timeout=0.3, max_tries=2
        )
    assert time.monotonic() - started < 1.5
    path = "ct/v1/get-sth" if kind == "rfc6962" else "checkpoint"
    assert one_line(caught.value) == f"{log.url}{path}: timed out after 2 tries (read timeout 0.3 s)"
    # Within the timeout the same slow log is fine.
    head = run(lambda http: make_client(info, http).get_tree_head(), read_timeout=3)
    assert head.tree_size == SIZE


def test_truncated_json_names_the_url(log: BackgroundLog) -> None:
    info = log_infos(log)["rfc6962"]
    set_faults(log.url, {"truncated-json": None})
    calls: list[tuple[Callable[[LogClient], Awaitable[object]], str]] = [
        (lambda client: client.get_tree_head(), "ct/v1/get-sth"),
        (lambda client: client.get_entries(0, 10), "ct/v1/get-entries?start=0&end=9"),
        (
            lambda client: client.get_consistency_proof(10, SIZE),
            f"ct/v1/get-sth-consistency?first=10&second={SIZE}",
        ),
    ]
    for call, path in calls:

        async def go(http: HttpClient, call: Callable[[LogClient], Awaitable[object]] = call) -> object:
            return await call(make_client(info, http, fast_budget()))

        with pytest.raises(LogResponseError) as caught:
            run(go)
        message = one_line(caught.value)
        assert message.startswith(f"{log.url}{path}: truncated JSON ("), message
    # The static API serves no JSON: it is unaffected.
    head = run(lambda http: make_client(log_infos(log)["static-ct"], http).get_tree_head())
    assert head.tree_size == SIZE


def test_short_entries_are_asked_for_again(log: BackgroundLog) -> None:
    info = log_infos(log)["rfc6962"]
    expected, _ = stored(log.directory)
    set_faults(log.url, {"short-entries": 7})
    budget = LogBudget(batch_size=100, requests_per_second=1000)

    async def go(http: HttpClient) -> tuple[int, list[bytes]]:
        client = make_client(info, http, budget)
        first = await client.get_entries(0, 100)
        entries = await read_all(client, SIZE)
        return len(first), [e.leaf_input for e in entries]

    first, leaves = run(go)
    assert first == 7
    assert leaves == [leaf for leaf, _ in expected]
    # It asks for what the log returns, probing twice that now and then (1 request in 9).
    assert budget.batch_size in (7, 14)
    assert budget.stats.requests <= 1 + 300 // 7 * 10 // 9 + 4


def test_short_entries_halving_does_not_shrink_the_batch_forever(log: BackgroundLog) -> None:
    """Default short-entries halves every answer; the learned size must not follow it down to 1."""
    info = log_infos(log)["rfc6962"]
    expected, _ = stored(log.directory)
    set_faults(log.url, {"short-entries": None})
    budget = LogBudget(batch_size=64, requests_per_second=1000)

    async def go(http: HttpClient) -> list[bytes]:
        return [e.leaf_input for e in await read_all(make_client(info, http, budget), SIZE)]

    assert run(go) == [leaf for leaf, _ in expected]
    assert budget.batch_size >= 16
    assert budget.stats.requests < 40


@pytest.mark.parametrize("kind", KINDS)
def test_bad_sth_signature_fails_verification(log: BackgroundLog, kind: str) -> None:
    info = log_infos(log)[kind]
    good = run(lambda http: make_client(info, http).get_tree_head())
    good.verify(info)
    set_faults(log.url, {"bad-sth-signature": None})
    bad = run(lambda http: make_client(info, http).get_tree_head())
    assert (bad.tree_size, bad.root_hash) == (good.tree_size, good.root_hash)
    with pytest.raises(SignatureError) as caught:
        bad.verify(info)
    assert "\n" not in str(caught.value)


def test_client_errors_are_not_retried(log: BackgroundLog) -> None:
    info = log_infos(log)["rfc6962"]
    budget = fast_budget()
    with pytest.raises(LogHTTPError) as caught:
        run(lambda http: make_client(info, http, budget).get_entries(SIZE + 5, SIZE + 10))
    assert caught.value.status == 400
    assert one_line(caught.value).startswith(f"{log.url}ct/v1/get-entries?start={SIZE + 5}&end=")
    assert budget.stats.requests == 1


def test_dead_server_gives_one_line(log: BackgroundLog) -> None:
    info = log_infos(log)["static-ct"]
    log.stop()
    with pytest.raises(LogHTTPError) as caught:
        run(lambda http: make_client(info, http, fast_budget()).get_tree_head(), max_tries=2)
    message = one_line(caught.value)
    assert message.startswith(f"{log.url}checkpoint: ") and message.endswith("(after 2 tries)")


@pytest.mark.parametrize("kind", KINDS)
def test_streaming_through_a_burst_of_server_errors_loses_nothing(log: BackgroundLog, kind: str) -> None:
    info = log_infos(log)[kind]
    expected, _ = stored(log.directory)
    budget = LogBudget(concurrency=4, batch_size=32, requests_per_second=1000, backoff_base=0.02)

    async def go(http: HttpClient) -> list[tuple[int, bytes, bytes]]:
        client = make_client(info, http, budget)
        head = await client.get_tree_head()
        set_faults(log.url, {"server-error": 7})  # hits requests in flight, several times each
        return [(e.index, e.leaf_input, e.extra_data) for e in await read_all(client, head.tree_size)]

    got = run(go, max_tries=6)
    assert [i for i, _, _ in got] == list(range(SIZE))
    assert [(leaf, extra) for _, leaf, extra in got] == expected
    assert budget.stats.server_errors == 7
