"""Static-ct issuer certificates cannot exhaust the monitor's memory: one over 64 KiB is an error for its
log, the cache is bounded in bytes, and an issuer evicted from it is fetched again when a tile needs it."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ctsentinel.bytecache import ByteCache
from ctsentinel.logs import HttpClient, LogBudget, parse_log_list
from ctsentinel.logs.rfc6962 import Rfc6962Client
from ctsentinel.logs.staticct import StaticCtClient
from ctsentinel.testlog.server import BackgroundLog
from hostile_helpers import one_api_list, run_once, wait_for_size, write_config
from testlog_client import set_faults, submit
from testlog_pki import make_leaf, make_pki


def test_an_issuer_over_64_kib_is_an_error_for_its_log(
    tmp_path: Path, testlog_factory: Callable[..., BackgroundLog], capsys: pytest.CaptureFixture[str],
) -> None:
    pki = make_pki("Issuers")
    log = testlog_factory()
    submit(log.url, pki.chain(make_leaf(pki.intermediate, ["i.example"])))
    wait_for_size(log, 1)
    set_faults(log.url, {"huge-issuer": 8 << 20})  # 8 MiB, first in every chain
    config = write_config(tmp_path, one_api_list(log, "static-ct"))
    code, _, err = run_once(capsys, config)
    assert code == 1
    pattern = (
        rf"ctsentinel: log {re.escape(log.url)} not caught up: {re.escape(log.url)}issuer/[0-9a-f]{{64}}: "
        r"response of 838860\d bytes exceeds the limit of 65536"
    )
    assert re.fullmatch(pattern, err.strip()), err


def test_the_issuer_cache_is_bounded_in_bytes_and_refetches(
    testlog_factory: Callable[..., BackgroundLog],
) -> None:
    log = testlog_factory()
    pkis = [make_pki(f"CA {n}") for n in range(6)]  # six issuing CAs: six intermediates, six roots
    for n, pki in enumerate(pkis):
        submit(log.url, pki.chain(make_leaf(pki.intermediate, [f"c{n}.example"])))
    wait_for_size(log, len(pkis))
    path = log.directory / "log_list.json"
    infos = {i.kind: i for i in parse_log_list(path.read_bytes(), str(path), internal_hosts=True)}
    one_chain = len(pkis[0].intermediate.der) + len(pkis[0].root.der)

    async def main() -> None:
        async with HttpClient() as http:
            expected = await Rfc6962Client(infos["rfc6962"], http, LogBudget()).fetch_range(0, len(pkis))
            client = StaticCtClient(infos["static-ct"], http, LogBudget(), issuer_cache_bytes=one_chain)
            for _ in range(2):  # the second pass finds most issuers evicted, and fetches them again
                got = await client.fetch_range(0, len(pkis))
                assert [(e.leaf_input, e.extra_data) for e in got] == [
                    (e.leaf_input, e.extra_data) for e in expected
                ]
                assert client.issuer_cache.size <= one_chain and len(client.issuer_cache) <= 2

    asyncio.run(main())


def test_byte_cache() -> None:
    cache: ByteCache[str] = ByteCache(10)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache["a"] == b"1234"  # now the most recently used
    cache.put("c", b"1234")  # evicts b, the least recently used
    assert sorted(cache) == ["a", "c"] and cache.size == 8
    cache.put("huge", b"x" * 11)  # larger than the whole budget: not kept, nothing evicted for it
    assert "huge" not in cache and sorted(cache) == ["a", "c"]
    cache.put("a", b"123456")
    assert cache.size == 10 and sorted(cache) == ["a", "c"]
    assert cache.get("b") is None and hashlib.sha256(cache["c"]).digest()
