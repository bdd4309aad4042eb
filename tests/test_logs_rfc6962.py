"""The RFC 6962 client against a small scripted log on 127.0.0.1: answers the test log never gives
(too many or no entries, no get-entry-and-proof, a duplicated last leaf)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from ctsentinel.ct import merkle
from ctsentinel.ct.signatures import LogSigner
from ctsentinel.logs import HttpClient, LogBudget, LogInfo, LogResponseError, Rfc6962Client

LEAVES = [b"\x00\x00" + f"leaf {i}".encode() for i in range(13)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class ScriptedLog:
    """get-entries, get-entry-and-proof and get-proof-by-hash over LEAVES, with switches for bad answers."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
        self.extra = 0  # entries added beyond what was asked
        self.empty = False
        self.entry_and_proof = True
        self.asked: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.asked.append(request.path_qs)
        q = {k: int(v) for k, v in request.query.items() if k != "hash"}
        endpoint = request.path.rsplit("/", 1)[1]
        if endpoint == "get-entries":
            end = min(q["end"] + 1 + self.extra, len(self.leaves))
            chosen = [] if self.empty else self.leaves[q["start"] : end]
            body: object = {"entries": [{"leaf_input": b64(x), "extra_data": ""} for x in chosen]}
        elif endpoint == "get-entry-and-proof" and self.entry_and_proof:
            index, size = q["leaf_index"], q["tree_size"]
            proof = merkle.inclusion_proof(self.hashes[:size], index)
            body = {
                "leaf_input": b64(self.leaves[index]),
                "extra_data": "",
                "audit_path": [b64(h) for h in proof],
            }
        elif endpoint == "get-proof-by-hash":
            wanted = base64.b64decode(request.query["hash"])
            size = q["tree_size"]
            index = self.hashes[:size].index(wanted)  # the first copy, as logs answer
            proof = merkle.inclusion_proof(self.hashes[:size], index)
            body = {"leaf_index": index, "audit_path": [b64(h) for h in proof]}
        else:
            return web.Response(status=404, text="404 page not found")
        return web.Response(body=json.dumps(body).encode(), content_type="application/json")


async def with_log(log: ScriptedLog, test: Callable[[Rfc6962Client], Awaitable[None]]) -> None:
    app = web.Application()
    app.router.add_get("/ct/v1/{endpoint}", log.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    key = LogSigner.generate().public_key
    info = LogInfo(
        url=f"http://127.0.0.1:{runner.addresses[0][1]}/",
        kind="rfc6962",
        log_id=key.log_id,
        key=key,
        description="scripted",
        operator="tests",
        state="usable",
        mmd=60,
    )
    try:
        async with HttpClient(max_tries=1) as http:
            await test(Rfc6962Client(info, http, LogBudget(batch_size=4, requests_per_second=1000)))
    finally:
        await runner.cleanup()


def run(log: ScriptedLog, test: Callable[[Rfc6962Client], Awaitable[Any]]) -> None:
    asyncio.run(with_log(log, test))


def test_more_entries_than_asked_is_an_error() -> None:
    log = ScriptedLog(LEAVES)
    log.extra = 1

    async def test(client: Rfc6962Client) -> None:
        with pytest.raises(LogResponseError) as caught:
            await client.get_entries(0, 10)
        assert (
            str(caught.value)
            == f"{client.info.url}ct/v1/get-entries?start=0&end=3: 5 entries returned for 4 asked"
        )

    run(log, test)


def test_no_entries_is_an_error() -> None:
    log = ScriptedLog(LEAVES)
    log.empty = True

    async def test(client: Rfc6962Client) -> None:
        with pytest.raises(LogResponseError, match=r"get-entries\?start=2&end=3: no entries for \[2, 4\)"):
            await client.get_entries(2, 4)

    run(log, test)


@pytest.mark.parametrize("entry_and_proof", [True, False])
def test_compact_range_from_the_last_leaf(entry_and_proof: bool) -> None:
    log = ScriptedLog(LEAVES)
    log.entry_and_proof = entry_and_proof
    ranges: dict[int, merkle.CompactRange] = {}

    async def test(client: Rfc6962Client) -> None:
        for size in (1, 2, 7, 8, 13):
            ranges[size] = await client.get_compact_range(size)

    run(log, test)
    for size, compact in ranges.items():
        assert compact.root() == merkle.root_hash(log.hashes[:size])
        assert compact == merkle.CompactRange(
            size, [merkle.root_hash(log.hashes[a:b]) for a, b in merkle.CompactRange.subtree_spans(size)]
        )
    used = {path.split("?")[0].rsplit("/", 1)[1] for path in log.asked}
    assert used == (
        {"get-entry-and-proof"}
        if entry_and_proof
        else {"get-entry-and-proof", "get-entries", "get-proof-by-hash"}
    )


def test_duplicated_last_leaf_without_entry_and_proof_is_an_error() -> None:
    log = ScriptedLog([*LEAVES[:5], LEAVES[2]])  # leaf 5 repeats leaf 2
    log.entry_and_proof = False

    async def test(client: Rfc6962Client) -> None:
        with pytest.raises(LogResponseError, match="proof is for leaf 2, not the last leaf 5"):
            await client.get_compact_range(6)

    run(log, test)


def test_consistency_from_zero_or_to_the_same_size_asks_nothing() -> None:
    log = ScriptedLog(LEAVES)

    async def test(client: Rfc6962Client) -> None:
        assert await client.get_consistency_proof(0, 13) == []
        assert await client.get_consistency_proof(13, 13) == []
        with pytest.raises(ValueError):
            await client.get_consistency_proof(5, 4)

    run(log, test)
    assert log.asked == []
