"""The static-ct-api monitoring API (c2sp.org/static-ct-api): checkpoint, data and hash tiles, issuers.

Entries come from data tiles and are handed over in the RFC 6962 shape (MerkleTreeLeaf + extra_data
rebuilt from the issuer certificates), so the monitor has one code path for both APIs. Consistency proofs,
which static logs do not serve, are computed from hash tiles (ct.tiles.consistency_proof_sources); like a
get-sth-consistency answer they are only a claim until ct.merkle verifies them against two signed heads.
"""

from __future__ import annotations

import asyncio
import hashlib
import zlib
from collections.abc import Iterable

from ctsentinel.bytecache import ByteCache
from ctsentinel.ct.checkpoint import parse_checkpoint_text
from ctsentinel.ct.entries import EntryApi, EntryBody
from ctsentinel.ct.errors import CTError
from ctsentinel.ct.merkle import CompactRange, fold_subtree_roots
from ctsentinel.ct.note import parse_note, rfc6962_key_id
from ctsentinel.ct.tiles import (
    TILE_WIDTH,
    TileRef,
    compact_range_hashes,
    compact_range_tiles,
    consistency_proof_sources,
    data_tiles_for_range,
    decode_hash_tile,
    subtree_root,
    tile_at,
    tile_path,
)
from ctsentinel.logs.budget import LogBudget
from ctsentinel.logs.client import LogClient, TreeHead
from ctsentinel.logs.http import TREE_HEAD_BYTES, HttpClient, LogHTTPError, LogResponseError
from ctsentinel.logs.loglist import LogInfo

_GZIP_MAGIC = b"\x1f\x8b"
# An issuer certificate is a few KB (an RSA-4096 CA with long policies about 2); 64 KiB is twenty times
# the largest in the Web PKI, and a response past it is no certificate. A log has a few hundred issuers:
# 4 MiB keeps all of them for any real log, and no more than that for a hostile one.
ISSUER_BYTES = 64 << 10
ISSUER_CACHE_BYTES = 4 << 20
# Distinct issuers one tile may name (its 256 entries have chains of two or three, nearly all shared).
_ISSUERS_PER_TILE = 1024
# Hash tiles cached for the proofs the monitor asks at every chunk: tiles (partial ones too) are immutable.
_MAX_HASH_TILES = 512


class StaticCtClient(LogClient):
    def __init__(
        self,
        info: LogInfo,
        http: HttpClient,
        budget: LogBudget,
        *,
        issuer_cache_bytes: int = ISSUER_CACHE_BYTES,
    ) -> None:
        super().__init__(info, http, budget)
        self._latest_size = 0  # largest checkpoint size seen: tiles below it are full, not partial
        # The issuer certificates kept, by SHA-256: bounded in bytes; one evicted is fetched again.
        self.issuer_cache: ByteCache[bytes] = ByteCache(issuer_cache_bytes)
        self._issuer_fetches: dict[bytes, asyncio.Task[bytes]] = {}
        self._tile_cache: dict[tuple[int, int, int], list[bytes]] = {}  # (level, index, width)

    @property
    def chunk_size(self) -> int:
        return TILE_WIDTH

    # --- checkpoint --------------------------------------------------------------------------------------

    async def get_tree_head(self) -> TreeHead:
        url = self.info.url + "checkpoint"
        raw = await self.http.get(url, self.budget, max_bytes=TREE_HEAD_BYTES)
        try:
            note = parse_note(raw)
            checkpoint = parse_checkpoint_text(note.text)
        except CTError as exc:
            raise LogResponseError(url, str(exc)) from None
        key_id = rfc6962_key_id(checkpoint.origin, self.info.key)
        # Timestamp 0 when no line is the log's: TreeHead.verify then reports the missing signature.
        timestamp = 0
        for sig in note.signatures:
            if sig.name == checkpoint.origin and sig.key_id == key_id and len(sig.signature) >= 8:
                timestamp = int.from_bytes(sig.signature[:8], "big")
                break
        self._latest_size = max(self._latest_size, checkpoint.tree_size)
        return TreeHead(checkpoint.tree_size, timestamp, checkpoint.root_hash, raw)

    # --- tiles -------------------------------------------------------------------------------------------

    async def _fetch_tile(self, ref: TileRef) -> tuple[str, bytes]:
        """(url, body) of tile `ref`, or of its full version: once the tree has grown past a partial tile
        the log may delete it, and a partial is a prefix of the full tile."""
        full = tile_path(ref.level, ref.index)
        paths = [ref.path]
        if ref.is_partial:
            try:
                grown = tile_at(ref.level, ref.index, self._latest_size).width == TILE_WIDTH
            except CTError:
                grown = False
            paths = [full, ref.path] if grown else [ref.path, full]
        for number, path in enumerate(paths):
            url = self.info.url + path
            try:
                body = await self.http.get(url, self.budget)
            except LogHTTPError as exc:
                if exc.status == 404 and number + 1 < len(paths):
                    continue
                raise
            return url, self._gunzip(url, body) if ref.level == "data" else body
        raise AssertionError("unreachable")

    def _gunzip(self, url: str, body: bytes) -> bytes:
        # Data tiles served gzipped without Content-Encoding (as some buckets do) reach us compressed. A
        # data tile starts with a u64 millisecond timestamp, which 0x1f8b would put some 70 million years
        # ahead. (Not for hash tiles: a hash starts with those bytes once in 65536.)
        if body[:2] != _GZIP_MAGIC:
            return body
        try:
            decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            data = decompressor.decompress(body, self.http.max_response_bytes)
        except zlib.error as exc:
            raise LogResponseError(url, f"gzip-compressed tile does not decompress ({exc})") from None
        if decompressor.unconsumed_tail:
            raise LogResponseError(url, f"tile exceeds the limit of {self.http.max_response_bytes} bytes")
        return data

    async def _hash_tile(self, ref: TileRef) -> list[bytes]:
        assert ref.level != "data"
        for width in (ref.width, TILE_WIDTH):
            cached = self._tile_cache.get((ref.level, ref.index, width))
            if cached is not None:
                return cached
        url, body = await self._fetch_tile(ref)
        try:
            hashes = decode_hash_tile(body)
        except CTError as exc:
            raise LogResponseError(url, str(exc)) from None
        if len(hashes) < ref.width:
            raise LogResponseError(url, f"hash tile has {len(hashes)} hashes, expected {ref.width}")
        if len(self._tile_cache) >= _MAX_HASH_TILES:
            self._tile_cache.pop(next(iter(self._tile_cache)))
        self._tile_cache[(ref.level, ref.index, len(hashes))] = hashes
        return hashes

    async def _hash_tiles(self, refs: Iterable[TileRef]) -> dict[TileRef, list[bytes]]:
        unique = list(dict.fromkeys(refs))
        tiles = await asyncio.gather(*(self._hash_tile(ref) for ref in unique))
        return dict(zip(unique, tiles, strict=True))

    # --- entries -----------------------------------------------------------------------------------------

    async def fetch_entries(self, start: int, end: int) -> EntryBody:
        """The data tile holding `start`, for the entries of [start, end) in it (the rest of the range is for
        the next call)."""
        if not 0 <= start < end:
            raise ValueError(f"entry range [{start}, {end}) is empty or negative")
        # The tile as a tree of size `end` has it; _fetch_tile reads the full one if the tree has grown.
        ref = data_tiles_for_range(start, end, end)[0]
        url, body = await self._fetch_tile(ref)
        asked = min(end, ref.first_entry + ref.width) - start
        return EntryBody(EntryApi.STATIC_CT, url, start, asked, body, ref.first_entry, ref.width, ref.path)

    async def issuers(self, fingerprints: Iterable[bytes]) -> dict[bytes, bytes]:
        unique = list(dict.fromkeys(fingerprints))
        if len(unique) > _ISSUERS_PER_TILE:
            raise LogResponseError(
                self.info.url + "tile/data/", f"a tile names {len(unique)} issuer certificates"
            )

        async def one(fingerprint: bytes) -> bytes:
            known = self.issuer_cache.get(fingerprint)
            return known if known is not None else await self._issuer(fingerprint)

        return dict(zip(unique, await asyncio.gather(*(one(fp) for fp in unique)), strict=True))

    async def _issuer(self, fingerprint: bytes) -> bytes:
        task = self._issuer_fetches.get(fingerprint)
        if task is None:
            # One fetch per issuer even when many tiles in flight need it at once.
            task = asyncio.ensure_future(self._fetch_issuer(fingerprint))
            self._issuer_fetches[fingerprint] = task
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._issuer_fetches.pop(fingerprint, None)

    async def _fetch_issuer(self, fingerprint: bytes) -> bytes:
        url = f"{self.info.url}issuer/{fingerprint.hex()}"
        der = await self.http.get(url, self.budget, max_bytes=ISSUER_BYTES)
        if hashlib.sha256(der).digest() != fingerprint:
            raise LogResponseError(url, "served certificate does not have the SHA-256 fingerprint asked for")
        self.issuer_cache.put(fingerprint, der)
        return der

    # --- proofs and compact ranges -----------------------------------------------------------------------

    async def get_consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The RFC 9162 consistency proof from old_size to new_size, read from the hash tiles of new_size."""
        if not 0 <= old_size <= new_size:
            raise ValueError(f"consistency proof from {old_size} to {new_size}")
        if old_size == 0 or old_size == new_size:
            return []
        element_sources = consistency_proof_sources(old_size, new_size)
        tiles = await self._hash_tiles(source.tile for sources in element_sources for source in sources)
        return [fold_subtree_roots([subtree_root(s, tiles) for s in sources]) for sources in element_sources]

    async def get_compact_range(self, size: int) -> CompactRange:
        if size == 0:
            return CompactRange()
        tiles = await self._hash_tiles(compact_range_tiles(size))
        try:
            return CompactRange(size, compact_range_hashes(size, tiles))
        except CTError as exc:
            raise LogResponseError(self.info.url + "tile/", str(exc)) from None
