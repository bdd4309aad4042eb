"""A data tile cut into RFC 6962 entries without building TileLeaf objects: the static-ct hot path.

ct.tiles.decode_data_tile parses every field into objects and TileLeaf.merkle_tree_leaf() encodes them
again; for a monitor reading millions of entries that is most of the client's CPU. Here the
TimestampedEntry bytes are sliced out as the log served them (the MerkleTreeLeaf is two zero bytes plus
exactly those), and the extra_data is assembled from a per-chain cache. Only lengths are walked, with
the same bounds ct.tiles checks; on any problem the tile goes through decode_data_tile, whose error
names the entry and offset, so both paths accept and reject the same tiles (see tests/test_logs_http.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from ctsentinel.bytecache import ByteCache
from ctsentinel.ct.errors import DecodeError
from ctsentinel.ct.tiles import TILE_WIDTH, decode_data_tile, decode_leaf_index_extension

_MERKLE_LEAF_PREFIX = b"\x00\x00"  # version v1, leaf_type timestamped_entry
_X509, _PRECERT = 0, 1
_FINGERPRINT = 32


class _Malformed(Exception):
    pass


ScannedLeaf = tuple[bytes, bytes | None, tuple[bytes, ...]]  # leaf_input, pre_certificate, fingerprints


def _scan(data: bytes) -> list[tuple[int, ScannedLeaf]]:
    """(leaf_index, leaf) for each entry; _Malformed on anything decode_data_tile would reject."""
    view = memoryview(data)
    end = len(data)
    pos = 0
    out: list[tuple[int, ScannedLeaf]] = []
    while pos < end:
        if len(out) == TILE_WIDTH:
            raise _Malformed
        start = pos
        if end - pos < 10:
            raise _Malformed
        entry_type = int.from_bytes(view[pos + 8 : pos + 10], "big")
        pos += 10
        if entry_type == _PRECERT:
            pos += 32  # issuer_key_hash
        elif entry_type != _X509:
            raise _Malformed
        if end - pos < 3:
            raise _Malformed
        length = int.from_bytes(view[pos : pos + 3], "big")
        pos += 3 + length
        if length == 0 or pos + 2 > end:
            raise _Malformed
        ext_length = int.from_bytes(view[pos : pos + 2], "big")
        ext_at = pos + 2
        pos = ext_at + ext_length
        if pos > end:
            raise _Malformed
        leaf_input = _MERKLE_LEAF_PREFIX + bytes(view[start:pos])
        try:
            leaf_index = decode_leaf_index_extension(bytes(view[ext_at:pos]))
        except DecodeError:
            raise _Malformed from None
        pre_certificate = None
        if entry_type == _PRECERT:
            if end - pos < 3:
                raise _Malformed
            length = int.from_bytes(view[pos : pos + 3], "big")
            if length == 0 or pos + 3 + length > end:
                raise _Malformed
            pre_certificate = bytes(view[pos + 3 : pos + 3 + length])
            pos += 3 + length
        if end - pos < 2:
            raise _Malformed
        length = int.from_bytes(view[pos : pos + 2], "big")
        pos += 2
        if length % _FINGERPRINT or pos + length > end:
            raise _Malformed
        chain = tuple(bytes(view[i : i + _FINGERPRINT]) for i in range(pos, pos + length, _FINGERPRINT))
        pos += length
        out.append((leaf_index, (leaf_input, pre_certificate, chain)))
    if not out:
        raise _Malformed
    return out


def scan_data_tile(data: bytes, first_entry: int, width: int, what: str) -> list[ScannedLeaf]:
    """The first `width` entries of a data tile whose first entry is `first_entry`, each checked to carry
    its own position as leaf_index; DecodeError (from ct.tiles where it applies) otherwise."""
    try:
        scanned = _scan(data)
    except _Malformed:
        decode_data_tile(data)  # raises the precise DecodeError
        raise DecodeError(f"{what}: malformed data tile") from None
    if len(scanned) < width:
        raise DecodeError(f"{what}: {len(scanned)} entries, expected {width}")
    kept = scanned[:width]
    for position, (leaf_index, _) in enumerate(kept, start=first_entry):
        if leaf_index != position:
            raise DecodeError(f"{what}: entry {position} has leaf_index {leaf_index}")
    return [leaf for _, leaf in kept]


def _opaque24(data: bytes) -> bytes:
    if not 0 < len(data) < 1 << 24:
        raise DecodeError(f"certificate of {len(data)} bytes does not fit an ASN.1Cert")
    return len(data).to_bytes(3, "big") + data


class ExtraDataBuilder:
    """RFC 6962 extra_data from a tile entry: the encoded chain is cached per distinct issuer chain."""

    def __init__(self, budget: int = 16 << 20) -> None:
        # Bytes, not a count: a chain of a hostile tile can be megabytes.
        self._chains: ByteCache[tuple[bytes, ...]] = ByteCache(budget)

    def build(self, leaf: ScannedLeaf, issuers: Mapping[bytes, bytes]) -> bytes:
        _, pre_certificate, fingerprints = leaf
        chain = self._chains.get(fingerprints)
        if chain is None:
            body = b"".join(_opaque24(issuers[fp]) for fp in fingerprints)
            if len(body) >= 1 << 24:
                raise DecodeError(f"issuer chain of {len(body)} bytes does not fit extra_data")
            chain = len(body).to_bytes(3, "big") + body
            self._chains.put(fingerprints, chain)
        if pre_certificate is None:
            return chain
        return _opaque24(pre_certificate) + chain


__all__ = ["ExtraDataBuilder", "ScannedLeaf", "scan_data_tile"]
