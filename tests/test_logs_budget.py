"""The adaptive request budget (logs/budget.py): growth on a fast log, convergence under a 429 limit,
Retry-After obeyed, and the tolerated rate kept across restarts. Over real HTTP against the test log where
the log's answers matter; nothing here is timed to a tight bound (the machine may be busy).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ctsentinel import cli
from ctsentinel.logs import HttpClient, LogBudget, make_client
from ctsentinel.logs.budget import START_RATE
from ctsentinel.store import Store
from ctsentinel.testlog.server import BackgroundLog
from test_logs_clients import log_infos
from test_monitor_run import log_list
from test_testlog_server import prefill, wait_for_size
from testlog_client import get_json, set_faults, submit
from testlog_pki import Pki, make_leaf, make_pki

LIMIT = 20  # requests a second the rate-limited log serves


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki("Budget")


@pytest.fixture
def log(tmp_path: Path, pki: Pki, testlog_factory: Callable[..., BackgroundLog]) -> BackgroundLog:
    prefill(tmp_path / "budget", pki, n=64)
    return testlog_factory(tmp_path / "budget")


def hammer(url: str, budget: LogBudget, seconds: float, callers: int = 8) -> list[tuple[float, int]]:
    """`callers` tasks GET url in a loop within the budget for `seconds`; (time, budget.rate) samples."""
    samples: list[tuple[float, int]] = []

    async def main() -> None:
        async with HttpClient() as http:
            stop = time.monotonic() + seconds

            async def caller() -> None:
                while time.monotonic() < stop:
                    await http.get(url, budget)

            async def sampler() -> None:
                while time.monotonic() < stop:
                    samples.append((time.monotonic(), round(budget.rate)))
                    await asyncio.sleep(0.1)

            await asyncio.gather(sampler(), *(caller() for _ in range(callers)))

    asyncio.run(main())
    return samples


def fault_state(log: BackgroundLog) -> dict[str, int]:
    state: dict[str, int] = get_json(log.url + "admin/faults")["faults"]["rate-limit-rps"]
    return state


# --- the rules, without a log -------------------------------------------------------------------------------


def test_a_refusal_halves_the_rate_once_per_episode_within_bounds() -> None:
    budget = LogBudget(requests_per_second=16, initial_rate=16, backoff_base=0.5, backoff_cap=4)
    for attempt in range(1, 10):
        delay = budget.backoff(attempt)
        full = min(4.0, 0.5 * 2 ** (attempt - 1))
        assert full / 2 <= delay <= full
    budget.rate_limited(None, 1)
    assert budget.rate == 8 and budget.stats.cuts == 1
    budget.rate_limited(1.0, 1)  # another request refused during the same pause: the same episode
    budget.overloaded(None, 1)  # a 503 too
    assert budget.rate == 8 and budget.stats.rate_limited == 2 and budget.stats.cuts == 1
    assert 0.9 < budget.paused_for <= 1.0  # Retry-After pauses every request to the log
    time.sleep(budget.paused_for + 0.01)
    budget.timed_out(1)  # the pause is over: a timeout is a new episode
    assert budget.rate == 4 and budget.stats.cuts == 2 and budget.stats.timeouts == 1
    floor = LogBudget(initial_rate=0.3)
    for _ in range(5):
        time.sleep(0.11)  # an episode lasts at least a tenth of a second
        floor.rate_limited(0.0, 1)
    assert floor.rate == floor.min_rate == 0.2
    assert LogBudget(requests_per_second=5).rate == 5  # the start never exceeds a ceiling
    assert LogBudget().rate == START_RATE
    with pytest.raises(ValueError):
        LogBudget(concurrency=0)
    with pytest.raises(ValueError):
        LogBudget(requests_per_second=float("nan"))


def test_growth_needs_the_budget_to_hold_requests_back_and_fast_answers() -> None:
    async def use(budget: LogBudget, answers: int, answer_time: float) -> None:
        for _ in range(answers):
            async with budget.slot():
                pass
            budget.succeeded(answer_time, 1000)

    # Answers arriving without the budget holding anything back (the pipeline is the bottleneck): no growth.
    idle = LogBudget(initial_rate=100)
    for _ in range(500):
        idle.succeeded(0.001, 1000)
    assert idle.rate == 100
    # Requests held back by the rate, answered quickly: the rate doubles every round (half a second's worth
    # of answers): 10 answers at 20/s, then 20 at 40/s.
    busy = LogBudget(initial_rate=20)
    asyncio.run(use(busy, 31, 0.001))
    assert busy.rate == 80
    # The same, but the log answers far slower than it did: no growth.
    slowed = LogBudget(initial_rate=20)
    slowed.succeeded(0.001, 1000)
    asyncio.run(use(slowed, 31, 0.5))
    assert slowed.rate == 20
    # Up to a configured ceiling and no further.
    capped = LogBudget(requests_per_second=30, initial_rate=20)
    asyncio.run(use(capped, 31, 0.001))
    assert capped.rate == 30


def test_in_flight_requests_follow_the_rate_and_the_answer_time() -> None:
    budget = LogBudget()
    assert budget.concurrency == 4  # until an answer time is known
    budget.succeeded(0.2, 1000)
    assert budget.concurrency == 4  # 10/s at 0.2 s: 2 in flight, 1.5x headroom, plus one
    budget.rate = 200
    assert budget.concurrency == 61
    budget.rate = 10_000
    assert budget.concurrency == 64
    assert LogBudget(concurrency=3).concurrency == 3


# --- against the test log -----------------------------------------------------------------------------------


def test_the_rate_grows_on_a_fast_log(log: BackgroundLog) -> None:
    url = log_infos(log)["rfc6962"].url + "ct/v1/get-sth"
    budget = LogBudget()
    samples = hammer(url, budget, seconds=3.0)
    assert samples[0][1] == START_RATE
    # Doubling each half second of answers: 10, 20, 40, 80 ... (3 s leave room for a busy machine).
    assert budget.rate >= 8 * START_RATE
    assert budget.stats.rate_limited == 0 and budget.stats.cuts == 0
    capped = LogBudget(requests_per_second=25)
    hammer(url, capped, seconds=1.5)
    assert capped.rate == 25


def test_the_rate_converges_under_a_429_limit_without_a_storm(log: BackgroundLog) -> None:
    url = log_infos(log)["rfc6962"].url + "ct/v1/get-sth"
    set_faults(log.url, {"rate-limit-rps": LIMIT})
    budget = LogBudget(backoff_base=0.2)
    hammer(url, budget, seconds=4.0)  # finds the limit
    before = fault_state(log)
    hammer(url, budget, seconds=6.0)
    after = fault_state(log)
    served = (after["served"] - before["served"]) / 6.0
    refused = after["refused"] - before["refused"]
    # Near the limit: at least half of it on average, pauses included (it cannot be above it).
    assert LIMIT / 2 <= served <= LIMIT, (served, after)
    # No storm: a few refusals per episode, each episode seconds apart.
    assert refused <= 0.15 * (after["served"] - before["served"]), after
    # Retry-After obeyed: nothing sent again within the second the log asked for.
    assert after["refused_early"] == 0, after
    assert budget.stats.cuts >= 1 and budget.rate <= 2 * LIMIT


def test_retry_after_pauses_every_request_to_the_log(log: BackgroundLog) -> None:
    info = log_infos(log)["static-ct"]
    set_faults(log.url, {"rate-limit-rps": 2})
    budget = LogBudget(initial_rate=50)

    async def main() -> float:
        async with HttpClient() as http:
            client = make_client(info, http, budget)
            began = time.monotonic()
            await asyncio.gather(*(client.get_tree_head() for _ in range(6)))
            return time.monotonic() - began

    took = asyncio.run(main())
    state = fault_state(log)
    assert state["served"] == 6 and state["refused"] >= 1 and state["refused_early"] == 0
    assert took >= 2.0  # two a second: six take at least two seconds whatever the budget believed
    assert budget.rate < 50


def test_the_tolerated_rate_is_kept_across_restarts(
    log: BackgroundLog, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_faults(log.url, {"rate-limit-rps": LIMIT})
    database = tmp_path / "ct.db"
    config = tmp_path / "ctsentinel.toml"
    config.write_text(
        f'database = "sqlite:///{database}"\n[logs]\nlist = "{log_list(log, "rfc6962")}"\n'
        'start = "beginning"\nbatch_size = 1\n'
    )
    log_id = log_infos(log)["rfc6962"].log_id

    def run_once() -> tuple[float | None, int | None, float]:
        began = time.monotonic()
        assert cli.main(["-c", str(config), "run", "--once"]) == 0, capsys.readouterr().err
        took = time.monotonic() - began
        with Store.open(str(database)) as store:
            (state,) = store.log_states()
        return state.request_rate, state.position, took

    rate, position, _ = run_once()  # 64 requests of one entry each: from 10/s up to the limit
    assert position == 64
    assert rate is not None and 1 <= rate <= 2 * LIMIT
    # What the log tolerated is what the next run starts from: remembered as 2/s, twelve new entries take
    # the restarted monitor several seconds (from 10/s, doubling, they would take about one).
    with Store.open(str(database)) as store:
        store.record_request_rate(log_id, 2.0)
    set_faults(log.url, clear=["rate-limit-rps"])
    for n in range(12):
        submit(log.url, pki.chain(make_leaf(pki.intermediate, [f"later{n}.example.org"])))
    wait_for_size(log.url, 64 + 12)
    rate, position, took = run_once()
    assert position == 64 + 12
    assert took >= 2.5
    assert rate is not None and rate >= 2.0  # a log that refused nothing let it grow
