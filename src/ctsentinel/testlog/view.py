"""What the log shows its clients: the stored tree, or the lie an active fault tells about it.

Both APIs read through one LogView per request, so a fault lies the same way on the RFC 6962 and the
static-ct side (a forked log forks its tiles and its checkpoint too).
"""

from __future__ import annotations

import dataclasses
import hashlib

from ctsentinel.certs.der import SEQUENCE, wrap
from ctsentinel.ct.merkle import HASH_SIZE, leaf_hash, node_hash
from ctsentinel.ct.sth import SignedTreeHead
from ctsentinel.ct.tiles import TILE_HEIGHT, TILE_WIDTH, tile_width
from ctsentinel.ct.tls import DigitallySigned, MerkleTreeLeaf, decode_merkle_tree_leaf
from ctsentinel.testlog.faults import Faults
from ctsentinel.testlog.storage import LogStorage, StoredEntry, now_ms
from ctsentinel.testlog.tree import TileReader, TreeReader

FORK_TIMESTAMP_SHIFT = 1000  # the forked leaf claims to have been logged one second later
BAD_ENTRY_TIMESTAMP_BIT = 1  # bad-entries flips the lowest bit of the leaf timestamp


def huge_issuer(faults: Faults) -> bytes | None:
    """The oversized "issuer certificate" huge-issuer puts first in every chain (None: the fault is off):
    a DER SEQUENCE of zeros, the same bytes for the same size."""
    value = faults.value("huge-issuer") if "huge-issuer" in faults else None
    if value is None:
        return None
    return wrap(SEQUENCE, bytes(max(0, int(value) - 5)))


def _shift_timestamp(leaf_input: bytes, change: int, xor: bool = False) -> bytes:
    entry = decode_merkle_tree_leaf(leaf_input).timestamped_entry
    timestamp = entry.timestamp ^ change if xor else entry.timestamp + change
    return MerkleTreeLeaf(dataclasses.replace(entry, timestamp=timestamp)).encode()


def corrupt_signature(sth: SignedTreeHead) -> SignedTreeHead:
    """The same tree head with one bit of the signature flipped: still well-formed, no longer valid."""
    sig = sth.signature.signature
    bad = DigitallySigned(
        sth.signature.hash_algorithm, sth.signature.signature_algorithm, sig[:-1] + bytes([sig[-1] ^ 0x01])
    )
    return dataclasses.replace(sth, signature=bad)


class ForkedTree(TreeReader):
    """The stored tree with one leaf replaced: only the hashes on that leaf's path change."""

    def __init__(self, read: TileReader, index: int, forked_leaf_hash: bytes) -> None:
        super().__init__(read)
        self.index = index
        self._forked_leaf = forked_leaf_hash
        self._memo: dict[tuple[int, int], bytes] = {}

    def perfect_hash(self, start: int, height: int) -> bytes:
        if not start <= self.index < start + (1 << height):
            return super().perfect_hash(start, height)
        if height == 0:
            return self._forked_leaf
        key = (start, height)
        h = self._memo.get(key)
        if h is None:
            half = 1 << (height - 1)
            h = node_hash(self.perfect_hash(start, height - 1), self.perfect_hash(start + half, height - 1))
            self._memo[key] = h
        return h

    def leaf_hash(self, index: int) -> bytes:
        return self._forked_leaf if index == self.index else super().leaf_hash(index)


class LogView:
    """One request's view of the log: the tree head to publish, its size, its tree and its entries."""

    def __init__(
        self, storage: LogStorage, faults: Faults, signed_cache: dict[tuple[int, bytes], SignedTreeHead]
    ):
        self.storage = storage
        self.faults = faults
        real = storage.latest_sth()
        self.tree: TreeReader = storage.tree()
        self.fork_index: int | None = None
        self._forked_leaf_input: bytes | None = None
        sth = real
        if "fork" in faults and real.tree_size > max(faults.fork_base, faults.fork_index):
            self.fork_index = faults.fork_index
            (stored,) = storage.entries(self.fork_index, self.fork_index + 1)
            self._forked_leaf_input = _shift_timestamp(stored.leaf_input, FORK_TIMESTAMP_SHIFT)
            self.tree = ForkedTree(storage.tile_bytes, self.fork_index, leaf_hash(self._forked_leaf_input))
            sth = self._signed(signed_cache, real.tree_size, self.tree.root(real.tree_size), real.timestamp)
        if "shrink" in faults and sth.tree_size > 0:
            drop = faults.value("shrink")
            size = max(0, sth.tree_size - (1 if drop is None else int(drop)))
            sth = self._signed(signed_cache, size, self.tree.root(size), real.timestamp)
        if "bad-sth-signature" in faults:
            sth = corrupt_signature(sth)
        self.sth = sth
        self.size = sth.tree_size
        self._forged_issuer = self._forged_chain_head()
        self._huge_issuer = huge_issuer(faults)

    def _forged_chain_head(self) -> bytes | None:
        """The issuer fingerprint forged-chain puts first in every chain (None: the fault is off)."""
        if "forged-chain" not in self.faults:
            return None
        value = self.faults.value("forged-chain")
        index = 0 if value is None else int(value)
        source = self.storage.entries(index, index + 1)
        if not source or not source[0].chain_fingerprints:
            return None
        return source[0].chain_fingerprints[0]

    def _signed(
        self, cache: dict[tuple[int, bytes], SignedTreeHead], size: int, root: bytes, after: int
    ) -> SignedTreeHead:
        # Sign each lie once: a fault's tree head must stay put between polls, like a real one.
        sth = cache.get((size, root))
        if sth is None:
            sth = self.storage.sign_tree_head(size, max(now_ms(), after + 1), root)
            cache[(size, root)] = sth
        return sth

    def leaf_input(self, index: int, stored: bytes) -> bytes:
        if index == self.fork_index and self._forked_leaf_input is not None:
            stored = self._forked_leaf_input
        if "bad-entries" in self.faults:
            only = self.faults.value("bad-entries")
            if only is None or int(only) == index:
                stored = _shift_timestamp(stored, BAD_ENTRY_TIMESTAMP_BIT, xor=True)
        return stored

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        """Entries [start, end) as this view serves them (end exclusive, clipped to the view's size)."""
        stored = self.storage.entries(start, min(end, self.size))
        forged = () if self._forged_issuer is None else (self._forged_issuer,)
        if self._huge_issuer is not None:
            forged = (hashlib.sha256(self._huge_issuer).digest(), *forged)
        served = []
        for e in stored:
            leaf_input = self.leaf_input(e.index, e.leaf_input)
            if forged or leaf_input is not e.leaf_input:
                chain = forged + e.chain_fingerprints
                e = dataclasses.replace(e, leaf_input=leaf_input, chain_fingerprints=chain)
            served.append(e)
        return served

    def issuer(self, fingerprint: bytes) -> bytes | None:
        """The issuer certificate served at issuer/<fingerprint>, the huge-issuer blob included."""
        blob = self._huge_issuer
        if blob is not None and fingerprint == hashlib.sha256(blob).digest():
            return blob
        return self.storage.issuer(fingerprint)

    def extra_data(self, entry: StoredEntry) -> bytes:
        return self.storage.extra_data(entry, self.issuer)

    def find_leaf(self, hash_value: bytes, tree_size: int) -> int | None:
        forked = self.fork_index is not None and self.fork_index < tree_size
        if forked and hash_value == self.tree.leaf_hash(self.fork_index or 0):
            return self.fork_index
        index = self.storage.find_leaf(hash_value, tree_size)
        if index is not None and index == self.fork_index:
            return None  # the forked tree does not hold the original leaf any more
        return index

    def hash_tile(self, level: int, index: int, width: int) -> bytes | None:
        if width > tile_width(level, index, self.size):
            return None
        blob = self.storage.tile_bytes(level, index)[: width * HASH_SIZE]
        if len(blob) != width * HASH_SIZE:
            return None
        if self.fork_index is not None:
            position = self.fork_index >> (level * TILE_HEIGHT)
            offset = position - index * TILE_WIDTH
            if 0 <= offset < width:
                forked = self.tree.perfect_hash(position << (level * TILE_HEIGHT), level * TILE_HEIGHT)
                blob = blob[: offset * HASH_SIZE] + forked + blob[(offset + 1) * HASH_SIZE :]
        return blob

    def data_tile(self, index: int, width: int) -> bytes | None:
        if width > tile_width(0, index, self.size):
            return None
        start = index * TILE_WIDTH
        # TileLeaf.encode of each entry, from the stored bytes: the MerkleTreeLeaf is two bytes (version,
        # leaf type) and the TimestampedEntry the tile carries; then the precertificate and the chain.
        parts: list[bytes] = []
        for e in self.entries(start, start + width):
            chain = b"".join(e.chain_fingerprints)
            pre = e.pre_certificate
            parts += (
                e.leaf_input[2:],
                b"" if pre is None else len(pre).to_bytes(3, "big") + pre,
                len(chain).to_bytes(2, "big"),
                chain,
            )
        return b"".join(parts)
