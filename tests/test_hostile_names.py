"""A certificate built to be slow cannot stall the monitor: a name longer than any DNS name is flagged and
matched on nothing (in time linear in its length), and a decode batch that runs too long is given up."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ctsentinel import cli
from ctsentinel.certs.decode import record_from_der
from ctsentinel.config import WatchConfig
from ctsentinel.testlog.malform import add_dns_name, long_dns_name
from ctsentinel.testlog.server import BackgroundLog
from ctsentinel.watch import Watchlist
from ctsentinel.watch.names import DomainIndex
from hostile_helpers import (
    StallingMatcher,
    alerts,
    one_api_list,
    run_monitor_once,
    run_once,
    wait_for_size,
    write_config,
)
from testlog_client import set_faults, submit
from testlog_pki import make_leaf, make_pki

HUGE = 300_000  # octets: on a matcher copying a suffix at every dot, ~10 s; 253 is the most a name has


def test_a_huge_name_is_flagged_and_matched_on_nothing(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog], capsys: pytest.CaptureFixture[str],
) -> None:
    rogue = make_pki("Rogue")
    log = testlog_factory()
    set_faults(log.url, {"huge-name": HUGE})
    submit(log.url, rogue.chain(make_leaf(rogue.intermediate, ["r.example"], ["1.1.1.1"])))
    wait_for_size(log, 1)
    watch = '[[watch]]\nname = "w"\ndomains = ["a.example"]\nips = ["1.1.1.1"]\n'
    config = write_config(tmp_path, one_api_list(log, "rfc6962"), extra=watch)
    started = time.monotonic()
    code, _, err = run_once(capsys, config)
    assert (code, err) == (0, "")
    assert time.monotonic() - started < 60
    (alert,) = alerts(capsys, config)
    # The address still alerts; the huge name (which ends in the watched a.example) matches nothing, and
    # is kept as the certificate wrote it.
    assert alert["matched"] == ["1.1.1.1"]
    assert alert["dns_names"] == ["r.example", long_dns_name(HUGE)]
    assert cli.main(["-c", str(config), "search", "1.1.1.1", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert "dNSName at offset" in record["error"]
    assert f"{HUGE} octets, over 253: not a DNS name, not matched" in record["error"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        (long_dns_name(254), "254 octets, over 253"),
        ("x" * 64 + ".one.one.one.one", "a label of 64 octets, over 63"),
        ("ü" * 58 + ".one.one.one.one", "a label of 64 octets, over 63"),  # as an A-label
        ("a" * 57 + "ü" + ".one.one.one.one", "a label of 65 octets, over 63"),
    ],
)
def test_names_over_the_dns_limits_are_flagged(name: str, problem: str) -> None:
    pki = make_pki("Limits")
    longest = long_dns_name(253)[: -len("example")] + "one.one"  # 253 octets: still a DNS name
    record = record_from_der(add_dns_name(make_leaf(pki.intermediate, ["one.one.one.one", longest]), name))
    assert record.error is not None and problem + ": not a DNS name, not matched" in record.error
    assert record.dns_names[:2] == ["one.one.one.one", longest] and len(record.dns_names) == 3
    matched = Watchlist.from_config([WatchConfig(name="w", domains=("one.one.one.one",))]).match(record)
    assert [f.matched for f in matched] == [("one.one.one.one",)]  # the longest name is still matched
    assert Watchlist.from_config([WatchConfig(name="w", domains=("one.one",))]).match(record)[0].matched == (
        "one.one.one.one", longest
    )


def test_matching_is_linear_in_the_name() -> None:
    index = DomainIndex()
    index.add("one.one.one.one", 0)
    index.add("*.example", 1)
    for octets in (10_000, 1_000_000):
        started = time.process_time()
        assert list(index.match(long_dns_name(octets))) == []
        assert time.process_time() - started < 0.05
    assert list(index.match(long_dns_name(253))) == [1]
    assert sorted(index.match("a.b.c.one.one.one.one")) == [0]


def test_a_decode_batch_that_runs_too_long_is_an_error_for_its_log(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog],
) -> None:
    pki = make_pki("Stall")
    log = testlog_factory()
    submit(log.url, pki.chain(make_leaf(pki.intermediate, ["stall.example"])))
    wait_for_size(log, 1)
    config = write_config(tmp_path, one_api_list(log, "rfc6962"), monitor="decode_timeout = 2\n")
    started = time.monotonic()
    report = run_monitor_once(config, StallingMatcher(600))
    assert time.monotonic() - started < 60
    assert report.exit_code() == 1
    (result,) = report.incomplete
    assert result.error == "decoding entries 0-0 took longer than 2 s; the decode processes were restarted"
