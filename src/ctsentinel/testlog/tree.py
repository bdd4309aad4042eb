"""The log's Merkle tree, kept as tlog-tiles hash tiles so that any hash or proof costs O(log n) tile reads.

Tile (L, N) holds, at position i, MTH of the 256**L leaves starting at (N*256 + i) * 256**L; the rightmost
tile of each level is stored partial. This is exactly what static-ct-api serves, so the same rows answer
RFC 6962 proofs and /tile/ requests. The tree never changes under an index once it is appended: a tile
read for an older tree size is a prefix of the stored one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ctsentinel.ct.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    consistency_proof_ranges,
    inclusion_proof_ranges,
    largest_power_of_two_below,
    node_hash,
    root_hash,
)
from ctsentinel.ct.tiles import TILE_HEIGHT, TILE_WIDTH, decode_hash_tile

FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE

TileReader = Callable[[int, int], bytes]  # (level, index) -> stored bytes, b"" if absent
TileWriter = Callable[[int, int, bytes], None]


def append_leaf_hashes(read: TileReader, write: TileWriter, start: int, leaf_hashes: Sequence[bytes]) -> None:
    """Store leaf_hashes as leaves start, start+1, … and every tile hash above them that they complete."""
    level, position, hashes = 0, start, list(leaf_hashes)
    while hashes:
        completed: list[bytes] = []
        first_tile = position // TILE_WIDTH
        i = 0
        while i < len(hashes):
            tile, offset = divmod(position, TILE_WIDTH)
            stored = read(level, tile) if offset else b""
            if len(stored) != offset * HASH_SIZE:
                # A gap here would silently corrupt every later root: refuse rather than guess.
                raise RuntimeError(
                    f"hash tile {level}/{tile} holds {len(stored) // HASH_SIZE} hashes, expected {offset}"
                )
            take = min(TILE_WIDTH - offset, len(hashes) - i)
            blob = stored + b"".join(hashes[i : i + take])
            write(level, tile, blob)
            if len(blob) == FULL_TILE_BYTES:
                completed.append(root_hash(decode_hash_tile(blob)))
            position += take
            i += take
        level, position, hashes = level + 1, first_tile, completed


class TreeReader:
    """Hashes and proofs over the stored tiles, for any tree size up to the stored one.

    Keeps the tiles it read for the lifetime of one request-sized job: create a new reader per job.
    """

    def __init__(self, read: TileReader) -> None:
        self._read = read
        self._cache: dict[tuple[int, int], bytes] = {}

    def _tile(self, level: int, index: int) -> bytes:
        key = (level, index)
        blob = self._cache.get(key)
        if blob is None:
            blob = self._read(level, index)
            self._cache[key] = blob
        return blob

    def _level_hash(self, level: int, index: int) -> bytes:
        tile, offset = divmod(index, TILE_WIDTH)
        blob = self._tile(level, tile)
        h = blob[offset * HASH_SIZE : (offset + 1) * HASH_SIZE]
        if len(h) != HASH_SIZE:
            raise RuntimeError(f"hash tile {level}/{tile} lacks entry {offset}")
        return h

    def perfect_hash(self, start: int, height: int) -> bytes:
        """MTH of the 2**height leaves from start (which is a multiple of 2**height)."""
        level, rest = divmod(height, TILE_HEIGHT)
        first = start >> (level * TILE_HEIGHT)
        if rest == 0:
            return self._level_hash(level, first)
        return root_hash([self._level_hash(level, first + i) for i in range(1 << rest)])

    def range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a subtree as RFC 6962 splits it: start aligned to the split below it."""
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:
            return self.perfect_hash(start, n.bit_length() - 1)
        k = largest_power_of_two_below(n)
        return node_hash(self.range_hash(start, start + k), self.range_hash(start + k, end))

    def root(self, size: int) -> bytes:
        return self.range_hash(0, size)

    def leaf_hash(self, index: int) -> bytes:
        return self._level_hash(0, index)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 section 2.1.1 PATH(index, D[0:size]), leaf-side first."""
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} outside tree of size {size}")
        return [self.range_hash(start, end) for start, end in inclusion_proof_ranges(index, size)]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 6962 section 2.1.2 PROOF(old_size, D[0:new_size])."""
        if not 0 < old_size <= new_size:
            raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
        return [self.range_hash(start, end) for start, end in consistency_proof_ranges(old_size, new_size)]
