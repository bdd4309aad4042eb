"""HttpClient and LogBudget against small servers on 127.0.0.1, and the tile-hash proof planner."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsentinel.ct import merkle
from ctsentinel.ct.errors import DecodeError, ProofError
from ctsentinel.ct.signatures import LogSigner
from ctsentinel.ct.tiles import TILE_WIDTH, consistency_proof_sources, subtree_root, subtree_source
from ctsentinel.logs import HttpClient, LogBudget, LogHTTPError, LogInfo, LogResponseError
from ctsentinel.logs.http import parse_retry_after
from ctsentinel.logs.staticct import StaticCtClient

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def with_server(handler: Handler, test: Callable[[str], Awaitable[None]]) -> None:
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        await test(f"http://127.0.0.1:{runner.addresses[0][1]}/")
    finally:
        await runner.cleanup()


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    now = 1_800_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None


def test_retry_after_http_date_is_obeyed_and_capped() -> None:
    calls: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            when = email.utils.formatdate(time.time() + 2, usegmt=True)
            return web.Response(status=429, headers={"Retry-After": when})
        if len(calls) == 2:
            return web.Response(status=429, headers={"Retry-After": "3600"})
        return web.Response(body=b"ok")

    async def test(base: str) -> None:
        async with HttpClient(retry_after_cap=1.5) as http:
            budget = LogBudget(requests_per_second=1000)
            assert await http.get(base + "x", budget) == b"ok"
            assert budget.stats.rate_limited == 2

    asyncio.run(with_server(handler, test))
    assert len(calls) == 3
    # An HTTP date has one-second resolution: "now + 2 s" is 1 to 2 s away when it is read (cap 1.5 s).
    assert 0.9 <= calls[1] - calls[0] <= 1.7
    assert 1.45 <= calls[2] - calls[1] <= 2.0  # 3600 s capped at 1.5 s


def test_response_size_limit_with_and_without_content_length() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/sized":
            return web.Response(body=b"x" * 5000)
        response = web.StreamResponse()  # chunked: no Content-Length to refuse early
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"y" * 1000)
        await response.write_eof()
        return response

    async def test(base: str) -> None:
        async with HttpClient(max_response_bytes=4096) as http:
            for path in ("sized", "chunked"):
                with pytest.raises(LogResponseError) as caught:
                    await http.get(base + path)
                assert str(caught.value).startswith(f"{base}{path}: response ")
                assert "limit of 4096" in str(caught.value)

    asyncio.run(with_server(handler, test))


def test_concurrency_and_rate_are_bounded() -> None:
    in_flight = 0
    most = 0
    starts: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        nonlocal in_flight, most
        starts.append(time.monotonic())
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return web.Response(body=b"ok")

    async def test(base: str) -> None:
        async with HttpClient() as http:
            # Started at the ceiling: the two slots, not the rate, are what bounds this.
            budget = LogBudget(concurrency=2, requests_per_second=1000, initial_rate=1000)
            await asyncio.gather(*(http.get(f"{base}{i}", budget) for i in range(10)))
            assert budget.stats.requests == 10
            assert most == 2
            slow = LogBudget(concurrency=8, requests_per_second=20)
            began = time.monotonic()
            await asyncio.gather(*(http.get(f"{base}{i}", slow) for i in range(10)))
            assert time.monotonic() - began >= 9 / 20 - 0.02

    asyncio.run(with_server(handler, test))
    first = sorted(starts[:10])
    # With two slots and 50 ms per request, ten requests need at least five rounds.
    assert first[-1] - first[0] >= 4 * 0.05 - 0.01


def test_user_agent_and_gzip_content_encoding() -> None:
    seen: list[str] = []
    payload = b"\x00" * 3000

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers["User-Agent"])
        seen.append(request.headers["Accept-Encoding"])
        # Served compressed although the client asked for identity: it still gets the plain bytes.
        return web.Response(body=gzip.compress(payload), headers={"Content-Encoding": "gzip"})

    async def test(base: str) -> None:
        async with HttpClient() as http:
            assert await http.get(base + "tile") == payload

    asyncio.run(with_server(handler, test))
    # Over loopback there is no bandwidth to save: compression is not asked for.
    assert seen == ["ctsentinel/0.1.0 (+CT monitor)", "identity"]


def test_loopback_detection() -> None:
    from ctsentinel.logs.http import _is_loopback

    assert _is_loopback("http://127.0.0.1:8080/log/") and _is_loopback("http://localhost/x")
    assert _is_loopback("http://[::1]:1/") and _is_loopback("http://127.1.2.3/")
    assert not _is_loopback("https://ct.googleapis.com/logs/us1/argon2026h2/")
    assert not _is_loopback("https://127.example.com/")


def test_tiles_gzipped_without_content_encoding_are_decompressed_within_the_limit() -> None:
    client = StaticCtClient.__new__(StaticCtClient)
    client.http = HttpClient(max_response_bytes=100_000)
    tile = b"\x00\x00\x01\x8d" + bytes(range(256)) * 10
    assert client._gunzip("u", gzip.compress(tile)) == tile
    assert client._gunzip("u", tile) == tile
    with pytest.raises(LogResponseError, match=r"^u: tile exceeds the limit of 100000 bytes"):
        client._gunzip("u", gzip.compress(b"\x00" * 1_000_000))
    with pytest.raises(LogResponseError, match=r"^u: gzip-compressed tile does not decompress"):
        client._gunzip("u", b"\x1f\x8b" + b"junk" * 10)


def test_not_found_is_not_retried_and_keeps_the_status() -> None:
    count = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal count
        count += 1
        if request.path == "/evil":
            return web.Response(status=400, text="bad \x1b[2J\x1b[31mrequest\n\nsecond line")
        return web.Response(status=404, text="no such tile\n")

    async def test(base: str) -> None:
        async with HttpClient() as http:
            with pytest.raises(LogHTTPError) as caught:
                await http.get(base + "tile/0/000")
            assert caught.value.status == 404
            assert str(caught.value) == f"{base}tile/0/000: HTTP 404 (Not Found)"
            with pytest.raises(LogHTTPError) as caught:
                await http.get(base + "evil")
            # The log's text gets into no message: it cannot clear the operator's screen, add lines, or
            # carry what an internal service answered into the store.
            assert str(caught.value) == f"{base}evil: HTTP 400 (Bad Request)"

    asyncio.run(with_server(handler, test))
    assert count == 2


# --- LogBudget ----------------------------------------------------------------------------------------------


def test_budget_learns_the_cap_and_probes_above_it() -> None:
    budget = LogBudget(batch_size=1000)
    assert budget.batch_size == 1000
    budget.observe_batch(1000, 1000)
    assert budget.batch_size == 1000  # full answers teach nothing while none was short
    budget.observe_batch(1000, 256)
    assert budget.batch_size == 256
    budget.observe_batch(256, 128)  # a smaller answer does not lower what the log has shown it returns
    assert budget.batch_size == 256
    for _ in range(8):
        budget.observe_batch(256, 256)
    assert budget.batch_size == 512  # a probe
    budget.observe_batch(512, 256)
    assert budget.batch_size == 256
    for _ in range(8):
        budget.observe_batch(256, 256)
    budget.observe_batch(512, 512)  # the probe came back full: the log returns more than thought
    assert budget.batch_size == 512
    budget.observe_batch(1000, 0)
    assert budget.batch_size == 512



# --- proofs from hash tiles ---------------------------------------------------------------------------------


LEAVES = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(70_000)]


def _level_hashes(level: int, size: int) -> list[bytes]:
    """Hashes of level `level` (subtrees of 256**level leaves) of a tree of `size` leaves."""
    width = TILE_WIDTH**level
    return [merkle.root_hash(LEAVES[i : i + width]) for i in range(0, size - width + 1, width)]


LEVEL1 = _level_hashes(1, len(LEAVES))
LEVEL2 = merkle.root_hash(LEAVES[:65536])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_proof_from_tile_hashes_equals_the_rfc_proof(data: Any) -> None:
    new = data.draw(st.integers(1, 70_000), label="new")
    old = data.draw(st.integers(1, new), label="old")
    check_proof_from_tiles(old, new)


@pytest.mark.parametrize(
    ("old", "new"), [(65536, 70000), (1, 70000), (65537, 69999), (300, 65536), (256, 257), (1, 1)]
)
def test_proof_from_tile_hashes_at_tile_and_level_edges(old: int, new: int) -> None:
    check_proof_from_tiles(old, new)


def check_proof_from_tiles(old: int, new: int) -> None:
    proof = []
    for sources in consistency_proof_sources(old, new):
        hashes = []
        for source in sources:
            level = source.tile.level
            assert isinstance(level, int) and level <= 2
            assert source.tile.width == min(TILE_WIDTH, (new >> (8 * level)) - source.tile.index * TILE_WIDTH)
            tile_hashes = {0: LEAVES, 1: LEVEL1, 2: [LEVEL2]}[level][source.tile.first_entry :][
                : source.tile.width
            ]
            hashes.append(subtree_root(source, {source.tile: tile_hashes}))
            assert hashes[-1] == merkle.root_hash(tile_hashes[source.first : source.first + source.count])
            assert hashes[-1] == merkle.root_hash(LEAVES[source.start : source.end])
        proof.append(merkle.fold_subtree_roots(hashes))
    assert proof == merkle.consistency_proof(LEAVES[:new], old)


def test_perfect_subtrees_and_bad_ranges() -> None:
    assert merkle.perfect_subtrees(0, 7) == [(0, 4), (4, 6), (6, 7)]
    assert merkle.perfect_subtrees(512, 1030) == [(512, 1024), (1024, 1028), (1028, 1030)]
    with pytest.raises(ProofError):
        merkle.perfect_subtrees(1, 5)
    with pytest.raises(DecodeError):
        subtree_source(0, 4, 3)
    assert consistency_proof_sources(4, 4) == []


def test_a_hash_tile_that_starts_like_gzip_is_not_decompressed() -> None:
    looks_gzipped = b"\x1f\x8b" + hashlib.sha256(b"x").digest()[2:]

    async def handler(request: web.Request) -> web.Response:
        if request.path.endswith("tile/0/000.p/1"):
            return web.Response(body=looks_gzipped)
        return web.Response(status=404)

    result: list[merkle.CompactRange] = []

    async def test(base: str) -> None:
        key = LogSigner.generate().public_key
        info = LogInfo(base, "static-ct", key.log_id, key, "t", "t", "usable", 60)
        async with HttpClient() as http:
            result.append(await StaticCtClient(info, http, LogBudget()).get_compact_range(1))

    asyncio.run(with_server(handler, test))
    assert result[0].hashes == (looks_gzipped,)
