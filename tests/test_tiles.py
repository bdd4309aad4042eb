"""Tiles (c2sp.org/tlog-tiles, static-ct-api): paths, data and hash tiles, and which tiles to fetch."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsentinel.ct.errors import DecodeError
from ctsentinel.ct.note import parse_note
from ctsentinel.ct.tiles import (
    TILE_WIDTH,
    TileLeaf,
    TileRef,
    check_data_tile,
    compact_range_hashes,
    compact_range_sources,
    compact_range_tiles,
    data_tiles_for_range,
    decode_data_tile,
    decode_hash_tile,
    decode_leaf_index_extension,
    encode_data_tile,
    encode_hash_tile,
    encode_leaf_index_extension,
    encode_tile_index,
    hash_tiles_for_range,
    parse_tile_path,
    tile_at,
    tile_path,
)
from ctsentinel.ct.tls import LogEntryType, TimestampedEntry

DATA = Path(__file__).parent / "data"
NAVIGLI = DATA / "static-ct" / "sunlight-navigli2025h2" / "tile"
TESSERA = DATA / "tlog" / "tessera-testdata" / "log"
# From the ctdata README: RFC 6962 roots of Navigli2025h2's first 1024 and first 778 entries.
NAVIGLI_ROOT_1024 = "EMfGG85uIddeOXt5/wdQGP3IQd0COCqoLg9Q6CsPLJA="
NAVIGLI_ROOT_778 = "+WnHOMRZl/LG1669oeskbdK9bcO4nkrY1cfVyknC52U="


# A reference Merkle tree hash, written out plainly so that these tests do not rest on ct.merkle.
def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _mth(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    split = 1 << ((len(hashes) - 1).bit_length() - 1)
    return _node(_mth(hashes[:split]), _mth(hashes[split:]))


def _fold(subtree_roots: Sequence[bytes]) -> bytes:
    root = subtree_roots[-1]
    for left in reversed(subtree_roots[:-1]):
        root = _node(left, root)
    return root


def _leaf_hash(leaf: TileLeaf) -> bytes:
    return hashlib.sha256(b"\x00" + leaf.merkle_tree_leaf()).digest()


@functools.cache
def _navigli_data(name: str) -> bytes:
    return (NAVIGLI / "data" / name).read_bytes()


@functools.cache
def _navigli_hashes(name: str) -> list[bytes]:
    return decode_hash_tile((NAVIGLI / "0" / name).read_bytes())


def _navigli_leaf_hashes() -> list[bytes]:
    return [h for n in range(4) for h in _navigli_hashes(f"{n:03d}")]


# --- paths --------------------------------------------------------------------------------------------------

PATHS = [
    (0, 0, 256, "tile/0/000"),
    ("data", 0, 256, "tile/data/000"),
    (0, 1234067, 256, "tile/0/x001/x234/067"),
    ("data", 1234067, 256, "tile/data/x001/x234/067"),
    (0, 999, 256, "tile/0/999"),
    (1, 1000, 256, "tile/1/x001/000"),
    (5, 1000000, 256, "tile/5/x001/x000/000"),
    (2, 3, 10, "tile/2/003.p/10"),
    ("data", 3, 10, "tile/data/003.p/10"),
    (0, 273, 112, "tile/0/273.p/112"),
    (1, 1, 17, "tile/1/001.p/17"),
    (2, 0, 1, "tile/2/000.p/1"),
    (0, 0, 255, "tile/0/000.p/255"),
    (63, 2**64 - 1, 256, "tile/63/x018/x446/x744/x073/x709/x551/615"),
]


@pytest.mark.parametrize(("level", "index", "width", "path"), PATHS)
def test_known_tile_paths(level: int | str, index: int, width: int, path: str) -> None:
    assert tile_path(level, index, width) == path  # type: ignore[arg-type]
    assert parse_tile_path(path) == (level, index, width)


def test_encode_tile_index() -> None:
    assert encode_tile_index(0) == "000"
    assert encode_tile_index(7) == "007"
    assert encode_tile_index(1000) == "x001/000"
    assert encode_tile_index(1234067) == "x001/x234/067"
    with pytest.raises(DecodeError):
        encode_tile_index(-1)
    with pytest.raises(DecodeError):
        encode_tile_index(2**64)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "tile/",
        "tile/0",
        "tile/0/",
        "/tile/0/000",
        "tiles/0/000",
        "tile/0/1",
        "tile/0/01",
        "tile/0/0001",
        "tile/0/00a",
        "tile/0/\u0660\u0660\u0660",
        "tile/0/x000/001",
        "tile/0/x000/x001/002",
        "tile/0/x001",
        "tile/0/001/002",
        "tile/0/001/x002",
        "tile/0/X001/002",
        "tile/0/x01/002",
        "tile/0/x0001/002",
        "tile/0/000/",
        "tile/0/000 ",
        "tile/0//000",
        "tile/00/000",
        "tile/01/000",
        "tile/64/000",
        "tile/-1/000",
        "tile/entries/000",
        "tile/DATA/000",
        "tile/data/000/",
        "tile/0/000.p/0",
        "tile/0/000.p/00",
        "tile/0/000.p/010",
        "tile/0/000.p/256",
        "tile/0/000.p/300",
        "tile/0/000.p/",
        "tile/0/000.p/10/",
        "tile/0/000.p/1.p/2",
        "tile/0/000.p/+1",
        "tile/0/000.q/10",
        "tile/0/000.p10",
        "tile/0/x018/x446/x744/x073/x709/x551/616",  # 2**64
        "tile/0/" + "x999/" * 60 + "999",
    ],
)
def test_malformed_tile_paths_rejected(path: str) -> None:
    with pytest.raises(DecodeError):
        parse_tile_path(path)


def test_tile_path_argument_errors() -> None:
    for level, index, width in [(64, 0, 256), (-1, 0, 256), ("entries", 0, 256), (True, 0, 256),
                                (0, -1, 256), (0, 0, 0), (0, 0, 257)]:  # fmt: skip
        with pytest.raises(DecodeError):
            tile_path(level, index, width)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.just("data"), st.integers(0, 63)),
    st.one_of(st.integers(0, 2000), st.integers(0, 2**64 - 1)),
    st.integers(1, 256),
)
def test_tile_path_round_trip(level: int | str, index: int, width: int) -> None:
    path = tile_path(level, index, width)  # type: ignore[arg-type]
    assert parse_tile_path(path) == (level, index, width)
    assert path.endswith(encode_tile_index(index) + ("" if width == 256 else f".p/{width}"))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="tile/datx0123456789.p", max_size=40))
def test_random_paths_parse_canonically_or_fail(path: str) -> None:
    try:
        level, index, width = parse_tile_path(path)
    except DecodeError:
        return
    assert tile_path(level, index, width) == path


# --- Navigli2025h2: real data and hash tiles ----------------------------------------------------------------


@pytest.mark.parametrize("n", range(4))
def test_navigli_full_data_tiles(n: int) -> None:
    raw = _navigli_data(f"{n:03d}")
    leaves = decode_data_tile(raw)
    assert len(leaves) == 256
    assert [leaf.leaf_index for leaf in leaves] == list(range(256 * n, 256 * n + 256))
    for leaf in leaves:
        entry = leaf.timestamped_entry
        assert entry.entry_type == LogEntryType.PRECERT_ENTRY
        assert entry.issuer_key_hash is not None and len(entry.issuer_key_hash) == 32
        assert entry.extensions == encode_leaf_index_extension(leaf.leaf_index)
        assert leaf.pre_certificate is not None and leaf.pre_certificate[:1] == b"\x30"  # DER SEQUENCE
        assert leaf.chain_fingerprints and all(len(f) == 32 for f in leaf.chain_fingerprints)
        assert leaf.merkle_tree_leaf()[:2] == b"\x00\x00"  # v1, timestamped_entry
    assert [_leaf_hash(leaf) for leaf in leaves] == _navigli_hashes(f"{n:03d}")
    assert encode_data_tile(leaves) == raw


def test_navigli_partial_tiles_are_prefixes_of_the_full_ones() -> None:
    partial = decode_data_tile(_navigli_data("003.p/10"))
    assert [leaf.leaf_index for leaf in partial] == list(range(768, 778))
    full = decode_data_tile(_navigli_data("003"))
    assert partial == full[:10]
    assert encode_data_tile(partial) == _navigli_data("003.p/10")
    partial_hashes = _navigli_hashes("003.p/10")
    assert partial_hashes == _navigli_hashes("003")[:10]
    assert [_leaf_hash(leaf) for leaf in partial] == partial_hashes


def test_navigli_roots() -> None:
    leaf_hashes = _navigli_leaf_hashes()
    assert base64.b64encode(_mth(leaf_hashes)).decode() == NAVIGLI_ROOT_1024
    assert base64.b64encode(_mth(leaf_hashes[:778])).decode() == NAVIGLI_ROOT_778


def test_navigli_flipped_certificate_byte_breaks_the_leaf_hash() -> None:
    raw = bytearray(_navigli_data("003.p/10"))
    leaves = decode_data_tile(bytes(raw))
    # Flip a byte inside entry 0's TBSCertificate (8 timestamp + 2 type + 32 key hash + 3 length in).
    raw[8 + 2 + 32 + 3 + 100] ^= 0x01
    tampered = decode_data_tile(bytes(raw))
    assert _leaf_hash(tampered[0]) != _navigli_hashes("003.p/10")[0]
    assert tampered[1:] == leaves[1:]


def test_compact_range_from_navigli_tiles() -> None:
    # The level-1 tile is not in the sample, but its hashes are by definition the roots of the full
    # level-0 tiles: build it, then rebuild both roots the README gives from the tiles alone.
    level0 = {n: _navigli_hashes(f"{n:03d}") for n in range(4)}
    level1 = [_mth(level0[n]) for n in range(4)]
    at_778 = {
        TileRef(1, 0, 3): level1[:3],
        TileRef(0, 3, 10): _navigli_hashes("003.p/10"),
    }
    assert compact_range_tiles(778) == list(at_778)
    assert base64.b64encode(_fold(compact_range_hashes(778, at_778))).decode() == NAVIGLI_ROOT_778
    # Full tiles in place of the partial ones give the same roots.
    full = {TileRef(1, 0, 3): level1, TileRef(0, 3, 10): level0[3]}
    assert compact_range_hashes(778, full) == compact_range_hashes(778, at_778)
    at_1024 = {TileRef(1, 0, 4): level1}
    assert compact_range_tiles(1024) == list(at_1024)
    (root,) = compact_range_hashes(1024, at_1024)
    assert base64.b64encode(root).decode() == NAVIGLI_ROOT_1024
    with pytest.raises(DecodeError, match="missing"):
        compact_range_hashes(778, {TileRef(1, 0, 3): level1[:3]})
    with pytest.raises(DecodeError, match="has 2 hashes"):
        compact_range_hashes(778, {**at_778, TileRef(1, 0, 3): level1[:2]})


# --- tessera: a tlog-tiles log with a checkpoint at every size ----------------------------------------------


@pytest.mark.parametrize("size", range(1, 16))
def test_tessera_hash_tile_matches_checkpoint(size: int) -> None:
    lines = parse_note((TESSERA / f"checkpoint.{size}").read_bytes()).text.splitlines()
    assert int(lines[1]) == size
    (tile,) = compact_range_tiles(size)
    assert tile == TileRef(0, 0, size) == tile_at(0, 0, size)
    assert tile.path == f"tile/0/000.p/{size}"
    hashes = decode_hash_tile((TESSERA / tile.path).read_bytes())
    assert len(hashes) == size
    roots = compact_range_hashes(size, {tile: hashes})
    assert base64.b64encode(_fold(roots)).decode() == lines[2]
    assert _fold(roots) == _mth(hashes)


# --- which tiles exist and which to fetch -------------------------------------------------------------------


def test_spec_examples_of_tiles_at_a_size() -> None:
    # tlog-tiles: "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level
    # 0 tile of width 112, one full level 1 tile, one partial level 1 tile of width 17, and one partial
    # level 2 tile of width 1".
    assert compact_range_tiles(70000) == [TileRef(2, 0, 1), TileRef(1, 1, 17), TileRef(0, 273, 112)]
    assert tile_at(0, 272, 70000) == TileRef(0, 272, 256)
    assert tile_at(1, 0, 70000) == TileRef(1, 0, 256)
    for level, index in [(0, 274), (1, 2), (2, 1), (3, 0)]:
        with pytest.raises(DecodeError, match="does not exist"):
            tile_at(level, index, 70000)
    # "a tree of size 256 will be represented by a full level 0 tile and a partial level 1 tile of width 1"
    assert tile_at(0, 0, 256) == TileRef(0, 0, 256)
    assert compact_range_tiles(256) == [TileRef(1, 0, 1)]
    assert compact_range_tiles(0) == []
    assert TileRef(1, 1, 17).path == "tile/1/001.p/17"
    assert TileRef(0, 2, 256).first_entry == 512 and not TileRef(0, 2, 256).is_partial


def test_compact_range_sources_at_778() -> None:
    sources = [(s.start, s.end, s.tile, s.first, s.count) for s in compact_range_sources(778)]
    assert sources == [
        (0, 512, TileRef(1, 0, 3), 0, 2),
        (512, 768, TileRef(1, 0, 3), 2, 1),
        (768, 776, TileRef(0, 3, 10), 0, 8),
        (776, 778, TileRef(0, 3, 10), 8, 2),
    ]


def test_data_tiles_for_range() -> None:
    assert data_tiles_for_range(0, 0, 10) == []
    assert data_tiles_for_range(0, 1, 1) == [TileRef("data", 0, 1)]
    assert data_tiles_for_range(768, 778, 778) == [TileRef("data", 3, 10)]
    assert data_tiles_for_range(700, 1030, 1030) == [
        TileRef("data", 2, 256),
        TileRef("data", 3, 256),
        TileRef("data", 4, 6),
    ]
    assert [t.path for t in data_tiles_for_range(700, 1030, 1030)] == [
        "tile/data/002",
        "tile/data/003",
        "tile/data/004.p/6",
    ]
    assert hash_tiles_for_range(700, 1030, 1030) == [TileRef(0, 2, 256), TileRef(0, 3, 256), TileRef(0, 4, 6)]
    # Entries of an old size inside a grown tree come from the full tile of the new size.
    assert data_tiles_for_range(770, 778, 2000) == [TileRef("data", 3, 256)]
    for start, end, size in [(0, 11, 10), (5, 4, 10), (-1, 3, 10)]:
        with pytest.raises(DecodeError):
            data_tiles_for_range(start, end, size)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_data_tiles_cover_exactly_the_range(data: st.DataObject) -> None:
    size = data.draw(st.integers(0, 3 * 256**2))
    start = data.draw(st.integers(0, size))
    end = data.draw(st.integers(start, min(size, start + 5000)))
    tiles = data_tiles_for_range(start, end, size)
    covered = [t.first_entry + i for t in tiles for i in range(t.width)]
    assert covered == list(range(covered[0], covered[-1] + 1)) if covered else start == end
    if covered:
        assert covered[0] <= start < covered[0] + TILE_WIDTH and end <= covered[-1] + 1
        assert covered[-1] < size
        assert all(t == tile_at("data", t.index, size) for t in tiles)


class _SyntheticTree:
    """Leaf i hashes to SHA-256(i); perfect-subtree roots are memoized so each size is cheap to check."""

    @staticmethod
    @functools.cache
    def leaf(i: int) -> bytes:
        return hashlib.sha256(i.to_bytes(8, "big")).digest()

    @staticmethod
    @functools.cache
    def perfect(start: int, height: int) -> bytes:
        if height == 0:
            return _SyntheticTree.leaf(start)
        half = 1 << (height - 1)
        return _node(
            _SyntheticTree.perfect(start, height - 1), _SyntheticTree.perfect(start + half, height - 1)
        )

    @staticmethod
    def root(size: int) -> bytes:
        roots, start = [], 0
        for height in range(size.bit_length() - 1, -1, -1):
            if size >> height & 1:
                roots.append(_SyntheticTree.perfect(start, height))
                start += 1 << height
        return _fold(roots)

    @staticmethod
    def tile(ref: TileRef) -> list[bytes]:
        assert ref.level != "data"
        span = 256**ref.level
        return [_SyntheticTree.perfect((ref.first_entry + i) * span, 8 * ref.level) for i in range(ref.width)]


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.integers(1, 1100), st.integers(1, 3 * 256**2 + 5000)))
def test_compact_range_from_tiles_gives_the_root(size: int) -> None:
    tiles = {ref: _SyntheticTree.tile(ref) for ref in compact_range_tiles(size)}
    assert _fold(compact_range_hashes(size, tiles)) == _SyntheticTree.root(size)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(1, 256**3), st.integers(1, 2**64 - 1)))
def test_compact_range_sources_shape(size: int) -> None:
    sources = compact_range_sources(size)
    assert [(s.start, s.end) for s in sources] == _subtree_spans(size)
    for s in sources:
        level = s.tile.level
        assert isinstance(level, int)
        assert s.count * 256**level == s.end - s.start
        assert s.count & (s.count - 1) == 0 and s.first % s.count == 0
        assert s.first + s.count <= s.tile.width
        assert s.start == (s.tile.first_entry + s.first) * 256**level
    tiles = compact_range_tiles(size)
    # Exactly the partial tiles of the size, one per level with a non-zero width.
    expected = [
        TileRef(level, size // 256 ** (level + 1), size // 256**level % 256)
        for level in range(7, -1, -1)
        if size // 256**level % 256
    ]
    assert tiles == expected


def _subtree_spans(size: int) -> list[tuple[int, int]]:
    spans, start = [], 0
    for height in range(size.bit_length() - 1, -1, -1):
        if size >> height & 1:
            spans.append((start, start + (1 << height)))
            start += 1 << height
    return spans


# --- leaf_index extension -----------------------------------------------------------------------------------


def test_leaf_index_extension_encoding() -> None:
    assert encode_leaf_index_extension(0) == bytes.fromhex("00 0005 0000000000")
    assert encode_leaf_index_extension(777) == bytes.fromhex("00 0005 0000000309")
    assert encode_leaf_index_extension(2**40 - 1) == bytes.fromhex("00 0005 ffffffffff")
    for bad in (-1, 2**40):
        with pytest.raises(DecodeError):
            encode_leaf_index_extension(bad)


def test_leaf_index_extension_decoding() -> None:
    assert decode_leaf_index_extension(bytes.fromhex("00 0005 0000000309")) == 777
    # Other extension types are skipped, in any order.
    assert decode_leaf_index_extension(bytes.fromhex("07 0002 abcd 00 0005 0000000309 09 0000")) == 777
    for bad, message in [
        (b"", "no leaf_index"),
        (bytes.fromhex("07 0002 abcd"), "no leaf_index"),
        (bytes.fromhex("00 0004 00000003"), "4 bytes, not 5"),
        (bytes.fromhex("00 0006 000000000309"), "6 bytes, not 5"),
        (bytes.fromhex("00 0005 00000003"), "runs past the end"),
        (bytes.fromhex("00 0005 0000000309 00"), "truncated extension header at offset 8"),
        (bytes.fromhex("00 0005 0000000309 00 0005 0000000309"), "duplicate extension type 0 at offset 8"),
        (bytes.fromhex("07 0000 07 0000 00 0005 0000000309"), "duplicate extension type 7 at offset 3"),
    ]:
        with pytest.raises(DecodeError, match=message):
            decode_leaf_index_extension(bad)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**40 - 1))
def test_leaf_index_round_trip(index: int) -> None:
    assert decode_leaf_index_extension(encode_leaf_index_extension(index)) == index


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_random_extensions_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_leaf_index_extension(data)


# --- synthetic tile leaves and encoders ---------------------------------------------------------------------


def _x509_leaf(index: int, chain: tuple[bytes, ...] = ()) -> TileLeaf:
    entry = TimestampedEntry(
        timestamp=1700000000000 + index,
        entry_type=LogEntryType.X509_ENTRY,
        signed_entry=b"\x30\x03\x02\x01" + bytes([index % 256]),
        issuer_key_hash=None,
        extensions=encode_leaf_index_extension(index),
    )
    return TileLeaf(entry, None, chain)


def test_x509_leaves_round_trip() -> None:
    fingerprints = (hashlib.sha256(b"issuer").digest(), hashlib.sha256(b"root").digest())
    leaves = [_x509_leaf(i, fingerprints[: i % 3]) for i in range(256)]
    raw = encode_data_tile(leaves)
    assert decode_data_tile(raw) == leaves
    assert [leaf.leaf_index for leaf in decode_data_tile(raw)] == list(range(256))
    first = leaves[0]
    assert first.merkle_tree_leaf() == b"\x00\x00" + first.timestamped_entry.encode()
    # TimestampedEntry, then no pre_certificate, then the u16-prefixed fingerprint list.
    assert first.encode() == first.timestamped_entry.encode() + b"\x00\x00"


def test_tile_leaf_encode_errors() -> None:
    x509 = _x509_leaf(1)
    precert_entry = TimestampedEntry(1, LogEntryType.PRECERT_ENTRY, b"\x30\x00", bytes(32), b"")
    for bad in [
        TileLeaf(x509.timestamped_entry, b"\x30\x00", ()),
        TileLeaf(precert_entry, None, ()),
        TileLeaf(precert_entry, b"", ()),
        TileLeaf(x509.timestamped_entry, None, (bytes(31),)),
        TileLeaf(x509.timestamped_entry, None, (bytes(32),) * 2048),
    ]:
        with pytest.raises(DecodeError):
            bad.encode()
    with pytest.raises(DecodeError, match="no leaf_index"):
        _ = TileLeaf(precert_entry, b"\x30\x00", ()).leaf_index
    with pytest.raises(DecodeError):
        encode_data_tile([])
    with pytest.raises(DecodeError):
        encode_data_tile([x509] * 257)


def test_data_tile_limits_and_errors() -> None:
    one = _x509_leaf(0).encode()
    with pytest.raises(DecodeError, match="empty"):
        decode_data_tile(b"")
    with pytest.raises(DecodeError, match="more than 256 entries"):
        decode_data_tile(one * 257)
    with pytest.raises(DecodeError, match=r"entry 1: .*truncated"):
        decode_data_tile(one + one[:-1])
    bad_chain = one[:-2] + b"\x00\x1f" + bytes(31)
    with pytest.raises(DecodeError, match="not a multiple of 32"):
        decode_data_tile(bad_chain)


def test_hash_tile_limits() -> None:
    hashes = [hashlib.sha256(bytes([i])).digest() for i in range(256)]
    raw = encode_hash_tile(hashes)
    assert len(raw) == 8192
    assert decode_hash_tile(raw) == hashes
    for length in (0, 31, 33, 8192 + 32):
        with pytest.raises(DecodeError):
            decode_hash_tile(bytes(length))
    with pytest.raises(DecodeError):
        encode_hash_tile([])
    with pytest.raises(DecodeError):
        encode_hash_tile([*hashes, hashes[0]])
    with pytest.raises(DecodeError):
        encode_hash_tile([bytes(31)])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=256))
def test_hash_tile_round_trip(hashes: list[bytes]) -> None:
    assert decode_hash_tile(encode_hash_tile(hashes)) == hashes


# --- robustness ---------------------------------------------------------------------------------------------


@st.composite
def _mutated_tile(draw: st.DrawFn) -> bytes:
    data = bytearray(_navigli_data("003.p/10")[: draw(st.integers(1, 4000))])
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if action == "flip":
            data[position] ^= draw(st.integers(1, 255))
        elif action == "delete":
            del data[position]
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        else:
            del data[position:]
    return bytes(data)


def _decode_everything(data: bytes) -> None:
    for leaf in decode_data_tile(data):
        leaf.merkle_tree_leaf()
        assert leaf.encode()  # a decoded leaf always re-encodes
        with contextlib.suppress(DecodeError):
            _ = leaf.leaf_index


@settings(max_examples=300, deadline=None)
@given(_mutated_tile())
def test_mutated_data_tiles_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        _decode_everything(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        _decode_everything(data)
    with contextlib.suppress(DecodeError):
        decode_hash_tile(data)


def test_every_truncation_of_a_real_tile() -> None:
    raw = _navigli_data("003.p/10")
    ends = {0}
    pos = 0
    for leaf in decode_data_tile(raw):
        pos += len(leaf.encode())
        ends.add(pos)
    for cut in range(0, len(raw), 7):
        if cut in ends and cut:
            assert len(decode_data_tile(raw[:cut])) == sorted(ends).index(cut)
        else:
            with pytest.raises(DecodeError):
                decode_data_tile(raw[:cut])


def test_check_data_tile() -> None:
    full = decode_data_tile(_navigli_data("003"))
    partial = decode_data_tile(_navigli_data("003.p/10"))
    (ref,) = data_tiles_for_range(768, 778, 778)
    assert check_data_tile(partial, ref) == partial
    assert check_data_tile(full, ref) == partial  # a full tile in place of a vanished partial one
    assert check_data_tile(full, TileRef("data", 3, 256)) == full
    with pytest.raises(DecodeError, match="entry 512 has leaf_index 768"):
        check_data_tile(full, TileRef("data", 2, 256))
    with pytest.raises(DecodeError, match="10 entries, expected 256"):
        check_data_tile(partial, TileRef("data", 3, 256))
    with pytest.raises(DecodeError, match="not a data tile"):
        check_data_tile(partial, TileRef(0, 3, 10))
    swapped = [partial[1], partial[0], *partial[2:]]
    with pytest.raises(DecodeError, match="entry 768 has leaf_index 769"):
        check_data_tile(swapped, ref)
