"""Real Navigli2025h2 tiles: the static-ct fast tile scanner against ct.tiles, and compact ranges and
consistency proofs computed from hash tiles served on 127.0.0.1, checked against the log's published roots."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsentinel.ct import merkle
from ctsentinel.ct.errors import DecodeError, ProofError
from ctsentinel.ct.signatures import LogSigner
from ctsentinel.ct.tiles import TileRef, check_data_tile, decode_data_tile, decode_hash_tile, encode_hash_tile
from ctsentinel.ct.tilescan import scan_data_tile
from ctsentinel.logs import HttpClient, LogBudget, LogInfo, StaticCtClient

TILES = Path(__file__).parent / "data" / "logs" / "navigli2025h2" / "tile"
ROOT_1024 = base64.b64decode("EMfGG85uIddeOXt5/wdQGP3IQd0COCqoLg9Q6CsPLJA=")
ROOT_778 = base64.b64decode("+WnHOMRZl/LG1669oeskbdK9bcO4nkrY1cfVyknC52U=")
FULL = (TILES / "data" / "003").read_bytes()
PARTIAL = (TILES / "data" / "003.p" / "10").read_bytes()
LEAF_HASHES = [h for n in range(4) for h in decode_hash_tile((TILES / "0" / f"{n:03d}").read_bytes())]


def core_view(data: bytes, ref: TileRef) -> list[tuple[bytes, bytes | None, tuple[bytes, ...]]]:
    return [
        (leaf.merkle_tree_leaf(), leaf.pre_certificate, leaf.chain_fingerprints)
        for leaf in check_data_tile(decode_data_tile(data), ref)
    ]


def test_scanner_reads_a_real_tile_as_the_core_does() -> None:
    scanned = scan_data_tile(FULL, 768, 256, "data tile 003")
    assert len(scanned) == 256
    assert scanned == core_view(FULL, TileRef("data", 3, 256))
    assert [merkle.leaf_hash(leaf) for leaf, _, _ in scanned] == LEAF_HASHES[768:1024]
    assert all(pre is not None for _, pre, _ in scanned)  # every entry of this sample is a precert
    assert merkle.root_hash(LEAF_HASHES) == ROOT_1024
    assert merkle.root_hash(LEAF_HASHES[:778]) == ROOT_778

    partial = scan_data_tile(PARTIAL, 768, 10, "data tile 003.p/10")
    assert partial == scanned[:10]
    assert scan_data_tile(FULL, 768, 10, "cut") == scanned[:10]  # a full tile read in place of a partial


def test_scanner_rejects_what_the_core_rejects() -> None:
    with pytest.raises(DecodeError, match="entry 512 has leaf_index 768"):
        scan_data_tile(FULL, 512, 256, "data tile 002")
    with pytest.raises(DecodeError, match="10 entries, expected 11"):
        scan_data_tile(PARTIAL, 768, 11, "data tile 003.p/11")
    with pytest.raises(DecodeError, match=r"^data tile entry 9: "):
        scan_data_tile(PARTIAL[:-1], 768, 10, "x")
    with pytest.raises(DecodeError):
        scan_data_tile(b"", 0, 1, "x")


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_scanner_and_core_agree_on_damaged_tiles(data: Any) -> None:
    tile = bytearray(PARTIAL)
    how = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if how == "flip":
        # Bias towards the structure: the first 64 bytes of an entry hold type and length fields.
        position = data.draw(st.one_of(st.integers(0, 64), st.integers(0, len(tile) - 1)))
        tile[position] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        del tile[data.draw(st.integers(0, len(tile) - 1)) :]
    else:
        tile += data.draw(st.binary(min_size=1, max_size=40))
    damaged = bytes(tile)
    ref = TileRef("data", 3, 10)
    try:
        expected: object = core_view(damaged, ref)
    except DecodeError:
        expected = DecodeError
    try:
        got: object = scan_data_tile(damaged, 768, 10, "x")
    except DecodeError:
        got = DecodeError
    assert got == expected


# --- hash tiles served over HTTP ----------------------------------------------------------------------------


def level1_tile(size: int) -> bytes:
    """Level-1 hashes (roots of 256-leaf subtrees) derived from the real level-0 tiles."""
    return encode_hash_tile(
        [merkle.root_hash(LEAF_HASHES[i : i + 256]) for i in range(0, size // 256 * 256, 256)]
    )


async def serve_tiles(test: Any) -> list[str]:
    served = {
        **{f"tile/0/{n:03d}": (TILES / "0" / f"{n:03d}").read_bytes() for n in range(4)},
        "tile/0/003.p/10": (TILES / "0" / "003.p" / "10").read_bytes(),
        **{f"tile/1/000.p/{width}": level1_tile(width * 256) for width in range(1, 5)},
    }
    asked: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        path = request.match_info["path"]
        asked.append(path)
        if path not in served:
            return web.Response(status=404, text="no such tile")
        return web.Response(body=served[path], content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/log/{path:.+}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    key = LogSigner.generate().public_key
    info = LogInfo(
        url=f"http://127.0.0.1:{runner.addresses[0][1]}/log/",
        kind="static-ct",
        log_id=key.log_id,
        key=key,
        description="Navigli2025h2 tiles",
        operator="Geomys",
        state="usable",
        mmd=60,
    )
    try:
        async with HttpClient() as http:
            await test(StaticCtClient(info, http, LogBudget(requests_per_second=1000)))
    finally:
        await runner.cleanup()
    return asked


def test_compact_ranges_from_real_hash_tiles_give_the_published_roots() -> None:
    results: dict[int, merkle.CompactRange] = {}

    async def test(client: StaticCtClient) -> None:
        for size in (778, 1024, 256, 10):
            results[size] = await client.get_compact_range(size)

    asked = asyncio.run(serve_tiles(test))
    assert results[778].root() == ROOT_778
    assert results[1024].root() == ROOT_1024
    assert results[256].root() == merkle.root_hash(LEAF_HASHES[:256])
    assert results[10].root() == merkle.root_hash(LEAF_HASHES[:10])
    # Size 778 reads the partial tiles of that size; 10 reads 000.p/10, which this log no longer serves,
    # so the client fell back to the full tile.
    assert "tile/0/003.p/10" in asked and "tile/1/000.p/3" in asked
    assert asked.count("tile/0/000.p/10") == 1 and "tile/0/000" in asked


def test_consistency_proofs_from_real_hash_tiles_verify() -> None:
    proofs: dict[tuple[int, int], list[bytes]] = {}
    pairs = [(778, 1024), (1, 1024), (256, 1024), (777, 778), (300, 778), (512, 1024), (1023, 1024)]

    async def test(client: StaticCtClient) -> None:
        for old, new in pairs:
            proofs[(old, new)] = await client.get_consistency_proof(old, new)

    asked = asyncio.run(serve_tiles(test))
    assert sorted(asked) == sorted(set(asked))  # tiles are immutable: each is fetched once
    merkle.verify_consistency(778, 1024, proofs[(778, 1024)], ROOT_778, ROOT_1024)
    for (old, new), proof in proofs.items():
        assert proof == merkle.consistency_proof(LEAF_HASHES[:new], old)
        merkle.verify_consistency(
            old, new, proof, merkle.root_hash(LEAF_HASHES[:old]), merkle.root_hash(LEAF_HASHES[:new])
        )
    bad = list(proofs[(778, 1024)])
    bad[0] = bytes([bad[0][0] ^ 1]) + bad[0][1:]
    with pytest.raises(ProofError):
        merkle.verify_consistency(778, 1024, bad, ROOT_778, ROOT_1024)
