"""Tiles of C2SP tlog-tiles and static-ct-api: paths, data tiles, hash tiles, and which tiles to fetch.

A tile is 256 consecutive hashes at level L (each the root of a perfect subtree of 256**L leaves), or the
256 matching entries (a data tile). The rightmost tiles of a tree are partial: their width is
floor(size / 256**L) mod 256, and a tree size therefore fixes exactly which tiles exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ctsentinel.ct.errors import DecodeError
from ctsentinel.ct.merkle import HASH_SIZE, consistency_proof_ranges, perfect_subtrees, root_hash
from ctsentinel.ct.tls import LogEntryType, MerkleTreeLeaf, TimestampedEntry, decode_timestamped_entry

TILE_WIDTH = 256
TILE_HEIGHT = 8  # log2(TILE_WIDTH): tree levels spanned by one tile level
MAX_TILE_LEVEL = 63
FINGERPRINT_SIZE = 32
# Tree sizes are u64 in every signed structure, so no tile index reaches this.
_MAX_INDEX = 1 << 64

TileLevel = int | Literal["data"]

_LEVEL = re.compile("0|[1-9][0-9]?")
_WIDTH = re.compile("[1-9][0-9]{0,2}")
_GROUP = re.compile("x[0-9]{3}")
_LAST_GROUP = re.compile("[0-9]{3}")

LEAF_INDEX_EXTENSION = 0
_LEAF_INDEX_SIZE = 5  # uint40
_MAX_LEAF_INDEX = (1 << 40) - 1


# --- paths --------------------------------------------------------------------------------------------------


def encode_tile_index(index: int) -> str:
    """Index N as 3-digit path elements, all but the last prefixed with "x": 1234067 -> "x001/x234/067"."""
    if not 0 <= index < _MAX_INDEX:
        raise DecodeError(f"tile index {index} is outside [0, 2**64)")
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def _check_level(level: TileLevel) -> None:
    if level == "data":
        return
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= MAX_TILE_LEVEL:
        raise DecodeError(f"tile level {level!r} is neither 'data' nor an integer in [0, {MAX_TILE_LEVEL}]")


def tile_path(level: TileLevel, index: int, width: int = TILE_WIDTH) -> str:
    """ "tile/<L>/<N>[.p/<W>]" or "tile/data/<N>[.p/<W>]"; the suffix only for partial tiles (W < 256)."""
    _check_level(level)
    if not 1 <= width <= TILE_WIDTH:
        raise DecodeError(f"tile width {width} is outside [1, {TILE_WIDTH}]")
    path = f"tile/{level}/{encode_tile_index(index)}"
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


def parse_tile_path(path: str) -> tuple[TileLevel, int, int]:
    """(level, index, width) of a tile path; DecodeError unless it is exactly the canonical encoding."""
    what = f"tile path {path[:80]!r}"
    if len(path) > 200:
        raise DecodeError(f"{what}: too long")
    if not path.startswith("tile/"):
        raise DecodeError(f"{what}: does not start with 'tile/'")
    level_text, _, rest = path[len("tile/") :].partition("/")
    level: TileLevel
    if level_text == "data":
        level = "data"
    elif _LEVEL.fullmatch(level_text) and int(level_text) <= MAX_TILE_LEVEL:
        level = int(level_text)
    else:
        raise DecodeError(f"{what}: level {level_text!r} is not 'data' or a decimal in [0, {MAX_TILE_LEVEL}]")
    index_text, partial, width_text = rest.partition(".p/")
    width = TILE_WIDTH
    if partial:
        if not _WIDTH.fullmatch(width_text) or int(width_text) >= TILE_WIDTH:
            raise DecodeError(
                f"{what}: partial width {width_text!r} is not a decimal in [1, {TILE_WIDTH - 1}]"
            )
        width = int(width_text)
    groups = index_text.split("/")
    if not _LAST_GROUP.fullmatch(groups[-1]) or not all(_GROUP.fullmatch(g) for g in groups[:-1]):
        raise DecodeError(f"{what}: index is not 3-digit elements, 'x'-prefixed but for the last")
    if len(groups) > 1 and groups[0] == "x000":
        raise DecodeError(f"{what}: index has a leading all-zero element")
    index = int("".join(g[-3:] for g in groups))
    if index >= _MAX_INDEX:
        raise DecodeError(f"{what}: index does not fit in 64 bits")
    return level, index, width


# --- the leaf_index extension -------------------------------------------------------------------------------


def encode_leaf_index_extension(index: int) -> bytes:
    """CtExtensions holding only leaf_index: type 0, u16 length 5, uint40 index (8 bytes in all)."""
    if not 0 <= index <= _MAX_LEAF_INDEX:
        raise DecodeError(f"leaf_index {index} does not fit in 40 bits")
    return bytes([LEAF_INDEX_EXTENSION]) + _LEAF_INDEX_SIZE.to_bytes(2, "big") + index.to_bytes(5, "big")


def decode_leaf_index_extension(extensions: bytes) -> int:
    """The leaf_index in a CtExtensions list; other extension types are skipped, duplicates rejected."""
    seen: set[int] = set()
    index: int | None = None
    pos = 0
    while pos < len(extensions):
        if len(extensions) - pos < 3:
            raise DecodeError(f"CtExtensions: truncated extension header at offset {pos}")
        ext_type = extensions[pos]
        length = int.from_bytes(extensions[pos + 1 : pos + 3], "big")
        data_at = pos + 3
        if len(extensions) - data_at < length:
            raise DecodeError(f"CtExtensions: extension {ext_type} at offset {pos} runs past the end")
        if ext_type in seen:
            raise DecodeError(f"CtExtensions: duplicate extension type {ext_type} at offset {pos}")
        seen.add(ext_type)
        if ext_type == LEAF_INDEX_EXTENSION:
            if length != _LEAF_INDEX_SIZE:
                raise DecodeError(f"CtExtensions: leaf_index at offset {pos} has {length} bytes, not 5")
            index = int.from_bytes(extensions[data_at : data_at + length], "big")
        pos = data_at + length
    if index is None:
        raise DecodeError("CtExtensions: no leaf_index extension")
    return index


# --- data tiles ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TileLeaf:
    """One static-ct-api data tile entry: the TimestampedEntry plus what RFC 6962 puts in extra_data."""

    timestamped_entry: TimestampedEntry
    pre_certificate: bytes | None
    chain_fingerprints: tuple[bytes, ...]

    @property
    def leaf_index(self) -> int:
        return decode_leaf_index_extension(self.timestamped_entry.extensions)

    def merkle_tree_leaf(self) -> bytes:
        return MerkleTreeLeaf(self.timestamped_entry).encode()

    def encode(self) -> bytes:
        entry = self.timestamped_entry
        parts = [entry.encode()]
        if entry.entry_type == LogEntryType.PRECERT_ENTRY:
            if not self.pre_certificate or len(self.pre_certificate) >= 1 << 24:
                raise DecodeError("TileLeaf: a precert_entry needs a pre_certificate of 1 to 2**24-1 bytes")
            parts.append(len(self.pre_certificate).to_bytes(3, "big") + self.pre_certificate)
        elif self.pre_certificate is not None:
            raise DecodeError("TileLeaf: an x509_entry has no pre_certificate")
        if any(len(f) != FINGERPRINT_SIZE for f in self.chain_fingerprints):
            raise DecodeError("TileLeaf: every chain fingerprint must be 32 bytes")
        chain = b"".join(self.chain_fingerprints)
        if len(chain) >= 1 << 16:
            raise DecodeError(f"TileLeaf: {len(self.chain_fingerprints)} chain fingerprints do not fit")
        parts.append(len(chain).to_bytes(2, "big") + chain)
        return b"".join(parts)


def _decode_tile_leaf(data: bytes, pos: int, number: int) -> tuple[TileLeaf, int]:
    what = f"data tile entry {number}"
    try:
        entry, pos = decode_timestamped_entry(data, pos)
    except DecodeError as exc:
        raise DecodeError(f"{what}: {exc}") from None
    pre_certificate = None
    if entry.entry_type == LogEntryType.PRECERT_ENTRY:
        if len(data) - pos < 3:
            raise DecodeError(f"{what}: truncated at offset {pos}: need 3 bytes for pre_certificate length")
        length = int.from_bytes(data[pos : pos + 3], "big")
        if length == 0:
            raise DecodeError(f"{what}: empty pre_certificate at offset {pos}")
        if len(data) - pos - 3 < length:
            raise DecodeError(f"{what}: pre_certificate at offset {pos} runs past the end")
        pre_certificate = data[pos + 3 : pos + 3 + length]
        pos += 3 + length
    if len(data) - pos < 2:
        raise DecodeError(f"{what}: truncated at offset {pos}: need 2 bytes for certificate_chain length")
    length = int.from_bytes(data[pos : pos + 2], "big")
    if length % FINGERPRINT_SIZE:
        raise DecodeError(
            f"{what}: certificate_chain length {length} at offset {pos} is not a multiple of 32"
        )
    if len(data) - pos - 2 < length:
        raise DecodeError(f"{what}: certificate_chain at offset {pos} runs past the end")
    start = pos + 2
    fingerprints = tuple(
        data[i : i + FINGERPRINT_SIZE] for i in range(start, start + length, FINGERPRINT_SIZE)
    )
    return TileLeaf(entry, pre_certificate, fingerprints), start + length


def decode_data_tile(data: bytes) -> list[TileLeaf]:
    """Every TileLeaf of a data tile (1 to 256 of them); DecodeError naming the entry and offset."""
    data = bytes(data)
    leaves: list[TileLeaf] = []
    pos = 0
    while pos < len(data):
        if len(leaves) == TILE_WIDTH:
            raise DecodeError(f"data tile: more than {TILE_WIDTH} entries (extra bytes at offset {pos})")
        leaf, pos = _decode_tile_leaf(data, pos, len(leaves))
        leaves.append(leaf)
    if not leaves:
        raise DecodeError("data tile: empty")
    return leaves


def encode_data_tile(leaves: Sequence[TileLeaf]) -> bytes:
    if not 1 <= len(leaves) <= TILE_WIDTH:
        raise DecodeError(f"data tile: {len(leaves)} entries, must be 1 to {TILE_WIDTH}")
    return b"".join(leaf.encode() for leaf in leaves)


# --- hash tiles ---------------------------------------------------------------------------------------------


def decode_hash_tile(data: bytes) -> list[bytes]:
    """The 1 to 256 concatenated 32-byte hashes of a Merkle tree tile."""
    if not data or len(data) % HASH_SIZE or len(data) > TILE_WIDTH * HASH_SIZE:
        raise DecodeError(
            f"hash tile: {len(data)} bytes is not 1 to {TILE_WIDTH} hashes of {HASH_SIZE} bytes"
        )
    data = bytes(data)
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def encode_hash_tile(hashes: Sequence[bytes]) -> bytes:
    if not 1 <= len(hashes) <= TILE_WIDTH:
        raise DecodeError(f"hash tile: {len(hashes)} hashes, must be 1 to {TILE_WIDTH}")
    if any(len(h) != HASH_SIZE for h in hashes):
        raise DecodeError(f"hash tile: every hash must be {HASH_SIZE} bytes")
    return b"".join(hashes)


# --- which tiles to fetch -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TileRef:
    """A tile as it exists in a tree of some size: `width` is 256 for a full tile, less for a partial one."""

    level: TileLevel
    index: int
    width: int

    @property
    def path(self) -> str:
        return tile_path(self.level, self.index, self.width)

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    @property
    def first_entry(self) -> int:
        """Index of the first entry (or hash) of this tile within its own level."""
        return self.index * TILE_WIDTH


def tile_width(level: TileLevel, index: int, tree_size: int) -> int:
    """How many hashes (or entries) tile `index` of `level` holds in a tree of `tree_size` leaves: 0 if the
    tree has not reached it, TILE_WIDTH once it is full."""
    height = 0 if level == "data" else level
    entries = tree_size >> (TILE_HEIGHT * height)
    return max(0, min(TILE_WIDTH, entries - index * TILE_WIDTH))


def tile_at(level: TileLevel, index: int, tree_size: int) -> TileRef:
    """Tile `index` of `level` as a tree of `tree_size` leaves has it; DecodeError if it has none."""
    _check_level(level)
    if not 0 <= tree_size < _MAX_INDEX:
        raise DecodeError(f"tree size {tree_size} is outside [0, 2**64)")
    width = tile_width(level, index, tree_size)
    if index < 0 or width == 0:
        raise DecodeError(f"tile {level}/{index} does not exist in a tree of size {tree_size}")
    return TileRef(level, index, width)


def _tiles_for_range(level: Literal["data", 0], start: int, end: int, tree_size: int) -> list[TileRef]:
    if not 0 <= start <= end <= tree_size:
        raise DecodeError(f"entry range [{start}, {end}) is not within a tree of size {tree_size}")
    if start == end:
        return []
    first, last = start // TILE_WIDTH, (end - 1) // TILE_WIDTH
    return [tile_at(level, n, tree_size) for n in range(first, last + 1)]


def data_tiles_for_range(start: int, end: int, tree_size: int) -> list[TileRef]:
    """The data tiles holding entries [start, end) of a tree of `tree_size`, with that tree's widths.

    The first and last tiles may hold entries outside the range: skip entry i of tile t unless
    start <= t.first_entry + i < end.
    """
    return _tiles_for_range("data", start, end, tree_size)


def hash_tiles_for_range(start: int, end: int, tree_size: int) -> list[TileRef]:
    """The level-0 hash tiles matching data_tiles_for_range (the leaf hashes of the same entries)."""
    return _tiles_for_range(0, start, end, tree_size)


@dataclass(frozen=True, slots=True)
class SubtreeSource:
    """Where the root of the perfect subtree of leaves [start, end) is found in the hash tiles.

    Its root is the Merkle Tree Hash of the `count` hashes tile.hashes[first : first + count]
    (a power of two; with count == 1 the tile hash itself).
    """

    start: int
    end: int
    tile: TileRef
    first: int
    count: int


def subtree_source(start: int, end: int, tree_size: int) -> SubtreeSource:
    """Where the root of the perfect subtree of leaves [start, end) is in the hash tiles of a tree of
    `tree_size`; DecodeError unless [start, end) is a perfect subtree of that tree.

    A subtree of 2**k leaves with k = 8*l + r is 2**r consecutive hashes of level l, aligned, so it never
    straddles two tiles.
    """
    size = end - start
    if start < 0 or size <= 0 or size & (size - 1) or start % size or end > tree_size:
        raise DecodeError(f"[{start}, {end}) is not a perfect subtree of a tree of size {tree_size}")
    level, rest = divmod(size.bit_length() - 1, TILE_HEIGHT)
    position = start >> (TILE_HEIGHT * level)  # index of the first hash within its level
    tile = tile_at(level, position // TILE_WIDTH, tree_size)
    return SubtreeSource(start, end, tile, position % TILE_WIDTH, 1 << rest)


def subtree_root(source: SubtreeSource, tiles: Mapping[TileRef, Sequence[bytes]]) -> bytes:
    """The root of the subtree `source` locates, from `tiles` (which must hold its tile)."""
    hashes = tiles[source.tile]
    return root_hash(hashes[source.first : source.first + source.count])


def compact_range_sources(tree_size: int) -> list[SubtreeSource]:
    """For each perfect subtree of the compact range [0, tree_size), left to right, its tile source.

    All the subtrees read from level l lie in its rightmost tile, which is partial (width
    floor(size / 256**l) mod 256): the tiles read are the partial tiles of the size, exactly those a
    checkpoint of that size obliges the log to serve.
    """
    if not 0 <= tree_size < _MAX_INDEX:
        raise DecodeError(f"tree size {tree_size} is outside [0, 2**64)")
    return [subtree_source(start, end, tree_size) for start, end in perfect_subtrees(0, tree_size)]


def consistency_proof_sources(old_size: int, new_size: int) -> list[list[SubtreeSource]]:
    """For each hash of PROOF(old_size, D[new_size]), the perfect subtrees whose roots fold into it (with
    merkle.fold_subtree_roots), located in the hash tiles of new_size.

    A static-ct-api log serves no proofs, but every range of an RFC 9162 proof splits into perfect
    subtrees, and every perfect subtree's root is in the hash tiles.
    """
    return [
        [subtree_source(start, end, new_size) for start, end in perfect_subtrees(lo, hi)]
        for lo, hi in consistency_proof_ranges(old_size, new_size)
    ]


def compact_range_tiles(tree_size: int) -> list[TileRef]:
    """The distinct hash tiles compact_range_sources(tree_size) reads, in order of first use."""
    tiles: list[TileRef] = []
    for source in compact_range_sources(tree_size):
        if source.tile not in tiles:
            tiles.append(source.tile)
    return tiles


def compact_range_hashes(tree_size: int, tiles: Mapping[TileRef, Sequence[bytes]]) -> list[bytes]:
    """The perfect-subtree roots of [0, tree_size), left to right, read from its hash tiles.

    `tiles` maps each TileRef of compact_range_tiles(tree_size) to its decoded hashes; a tile may hold
    more than `width` hashes (a full tile fetched in place of a partial one that is gone), and only its
    first `width` are read. The result is what merkle.CompactRange(tree_size, ...) takes.
    """
    roots = []
    for source in compact_range_sources(tree_size):
        hashes = tiles.get(source.tile)
        if hashes is None:
            raise DecodeError(f"compact range of size {tree_size}: tile {source.tile.path} is missing")
        if len(hashes) < source.tile.width:
            raise DecodeError(
                f"compact range of size {tree_size}: tile {source.tile.path} has {len(hashes)} hashes"
            )
        roots.append(subtree_root(source, tiles))
    return roots


def check_data_tile(leaves: Sequence[TileLeaf], tile: TileRef) -> list[TileLeaf]:
    """The entries of data tile `tile`, after checking each carries its own position as leaf_index.

    The leaf_index is inside the hashed leaf, so a log could hash a wrong one consistently; this catches
    that. A full tile fetched in place of a partial one is accepted and cut to `tile.width` entries.
    """
    if tile.level != "data":
        raise DecodeError(f"tile {tile.path} is not a data tile")
    if len(leaves) < tile.width:
        raise DecodeError(f"data tile {tile.path}: {len(leaves)} entries, expected {tile.width}")
    kept = list(leaves[: tile.width])
    for position, leaf in enumerate(kept, start=tile.first_entry):
        if leaf.leaf_index != position:
            raise DecodeError(f"data tile {tile.path}: entry {position} has leaf_index {leaf.leaf_index}")
    return kept
