"""RFC 6962 / RFC 9162 Merkle trees: hashing, proof generation and verification, compact ranges.

Edge conventions follow transparency-dev/merkle (whose test vectors we check against): a consistency
proof from size 0 is an error, equal sizes need an empty proof and identical roots (compared as given,
no hashing happens), and every hash that enters a computation must be exactly HASH_SIZE bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from hashlib import sha256
from itertools import chain

from ctsentinel.ct.errors import DecodeError, ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "Span",
    "consistency_proof",
    "consistency_proof_ranges",
    "fold_subtree_roots",
    "inclusion_proof",
    "inclusion_proof_ranges",
    "largest_power_of_two_below",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "perfect_subtrees",
    "root_from_inclusion_proof",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT: bytes = sha256(b"").digest()

Span = tuple[int, int]  # [start, end) of leaves

# Copying a hash state that has already absorbed the prefix is cheaper than building the
# concatenated input (no bytes objects to allocate): about 15-20% more hashes per second, measured.
_LEAF_SEED = sha256(b"\x00")
_NODE_SEED = sha256(b"\x01")
_U64 = struct.Struct(">Q")
_MAX_SIZE = (1 << 64) - 1


def leaf_hash(leaf_input: bytes) -> bytes:
    """SHA-256(0x00 || leaf_input)."""
    h = _LEAF_SEED.copy()
    h.update(leaf_input)
    return h.digest()


def leaf_hashes(leaf_inputs: Iterable[bytes]) -> list[bytes]:
    """[leaf_hash(x) for x in leaf_inputs], with the call per leaf inlined: a monitor hashes every entry."""
    copy = _LEAF_SEED.copy
    hashes: list[bytes] = []
    append = hashes.append
    for leaf_input in leaf_inputs:
        h = copy()
        h.update(leaf_input)
        append(h.digest())
    return hashes


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    h = _NODE_SEED.copy()
    h.update(left)
    h.update(right)
    return h.digest()


# ---------------------------------------------------------------------------------------------------------
# validation helpers


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} has {len(value)} bytes, expected {HASH_SIZE}")


def _check_hashes(values: Sequence[bytes], what: str) -> None:
    # One C-level pass over the lengths; the index is only looked up when something is wrong.
    if values and set(map(len, values)) != {HASH_SIZE}:
        for i, value in enumerate(values):
            _check_hash(value, f"{what} {i}")


def _hex(value: bytes) -> str:
    return value.hex() if value else "<empty>"


# ---------------------------------------------------------------------------------------------------------
# building trees


def _pair_up(nodes: Iterable[bytes]) -> list[bytes]:
    """Parents of consecutive pairs; an odd trailing node is dropped (the caller keeps it)."""
    # node_hash inlined: this loop is where a monitor spends its Merkle time (bench/merkle_bench.py).
    seed = _NODE_SEED
    parents: list[bytes] = []
    append = parents.append
    it = iter(nodes)
    for left, right in zip(it, it, strict=False):
        h = seed.copy()
        h.update(left)
        h.update(right)
        append(h.digest())
    return parents


def _absorb(size: int, roots: Sequence[bytes], new: Sequence[bytes]) -> list[bytes]:
    """Roots of the compact range [0, size + len(new)), given those of [0, size) and new leaf hashes.

    Works a whole level at a time, so the Python overhead is one tight loop step per hash computed
    (n - 1 node hashes for n leaves, amortized), not a loop iteration with bit tests per leaf.
    """
    remaining = list(roots)
    finished: list[bytes] = []  # lone right-edge nodes, lowest level first
    cur = new
    pos = size  # index, at the current level, of the first node in `cur`
    while cur:
        level: Iterable[bytes] = cur
        count = len(cur)
        if pos & 1:
            # The existing perfect subtree at this level is the left sibling of our first node;
            # lower levels have already consumed every smaller root, so it is the last one.
            level = chain((remaining.pop(),), cur)
            count += 1
            pos -= 1
        if count & 1:
            finished.append(cur[-1])
        cur = _pair_up(level)
        pos >>= 1
    finished.reverse()
    return remaining + finished


def fold_subtree_roots(roots: Sequence[bytes]) -> bytes:
    """MTH of consecutive perfect subtrees of decreasing size, from their roots left to right (EMPTY_ROOT
    for none). MTH splits off the largest power of two on the left at every level, so the smaller
    subtrees on the right combine first."""
    if not roots:
        return EMPTY_ROOT
    acc = roots[-1]
    for left in reversed(roots[:-1]):
        acc = node_hash(left, acc)
    return acc


def _mth(leaf_hashes: Sequence[bytes]) -> bytes:
    return fold_subtree_roots(_absorb(0, (), leaf_hashes))


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (EMPTY_ROOT for none); O(n)."""
    _check_hashes(leaf_hashes, "leaf hash")
    return _mth(leaf_hashes)


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): RFC 9162's k, where MTH splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_subtrees(start: int, end: int) -> list[Span]:
    """[start, end) as perfect subtrees, largest first; ProofError unless start is aligned as MTH aligns the
    ranges it splits (to the largest power of two not above end - start)."""
    spans: list[Span] = []
    while start < end:
        size = 1 << ((end - start).bit_length() - 1)
        if start % size:
            raise ProofError(f"range [{start}, {end}) is not a subtree range of a Merkle tree")
        spans.append((start, start + size))
        start += size
    return spans


def inclusion_proof_ranges(index: int, tree_size: int) -> list[Span]:
    """The leaf ranges whose MTH form PATH(index, D[tree_size]) (RFC 9162 2.1.3.1), lowest sibling first."""
    if not 0 <= index < tree_size:
        raise ProofError(f"inclusion proof: index {index} is outside tree size {tree_size}")
    ranges: list[Span] = []
    lo, hi = 0, tree_size
    while hi - lo > 1:
        mid = lo + largest_power_of_two_below(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


def consistency_proof_ranges(old_size: int, new_size: int) -> list[Span]:
    """The leaf ranges whose MTH form PROOF(old_size, D[new_size]) (RFC 9162 2.1.4.1), in proof order.

    old_size == new_size gives no ranges; old_size 0 is refused because no proof from the empty tree
    is defined (and the verifier rejects it).
    """
    if not 0 < old_size <= new_size:
        raise ProofError(f"consistency proof: old size {old_size} is not in 1..{new_size}")
    ranges: list[Span] = []
    lo, hi, m = 0, new_size, old_size
    whole = True  # SUBPROOF's b: the old tree is a complete subtree seen so far, so its root is known
    while m != hi - lo:
        k = largest_power_of_two_below(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            m -= k
            whole = False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 2.1.3.1 for n = len(leaf_hashes), lowest sibling first.

    Each sibling subtree is hashed once and they are disjoint, so the total work is O(n).
    """
    ranges = inclusion_proof_ranges(index, len(leaf_hashes))
    _check_hashes(leaf_hashes, "leaf hash")
    return [_mth(leaf_hashes[lo:hi]) for lo, hi in ranges]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) of RFC 9162 2.1.4.1 for n = len(leaf_hashes); O(n)."""
    ranges = consistency_proof_ranges(old_size, len(leaf_hashes))
    _check_hashes(leaf_hashes, "leaf hash")
    return [_mth(leaf_hashes[lo:hi]) for lo, hi in ranges]


# ---------------------------------------------------------------------------------------------------------
# verifying proofs


def _inclusion_shape(index: int, tree_size: int) -> tuple[int, int]:
    """(inner, border): proof hashes below and above the point where the paths to index and to the last
    leaf meet. Inner ones may be left or right siblings; border ones are all left siblings."""
    inner = (index ^ (tree_size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, sibling in enumerate(proof):
        # A set bit means our node is a right child, so the sibling goes on the left.
        seed = node_hash(sibling, seed) if (index >> i) & 1 else node_hash(seed, sibling)
    return seed


def _chain_inner_left_only(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    # Only left siblings existed in the older, smaller tree; right ones were added later.
    for i, sibling in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed


def root_from_inclusion_proof(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes]) -> bytes:
    """The root that proof implies for leaf_hash at index in a tree of tree_size (RFC 9162 2.1.3.2)."""
    if not 0 <= index < tree_size:
        raise ProofError(f"inclusion proof: index {index} is outside tree size {tree_size}")
    _check_hash(leaf_hash, "inclusion proof: leaf hash")
    inner, border = _inclusion_shape(index, tree_size)
    if len(proof) != inner + border:
        raise ProofError(
            f"inclusion proof has {len(proof)} hashes, expected {inner + border} "
            f"for index {index} in tree size {tree_size}"
        )
    _check_hashes(proof, "inclusion proof: hash")
    return _chain_border(_chain_inner(leaf_hash, proof[:inner], index), proof[inner:])


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless proof shows leaf_hash at index in the tree of tree_size with this root."""
    computed = root_from_inclusion_proof(leaf_hash, index, tree_size, proof)
    _check_hash(root, "inclusion proof: root")
    if computed != root:
        raise ProofError(
            f"inclusion proof root mismatch for index {index} in tree size {tree_size}: "
            f"computed {computed.hex()}, expected {root.hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Raise ProofError unless proof shows the tree (old_size, old_root) is a prefix of (new_size, new_root).

    RFC 9162 2.1.4.2, with the transparency-dev/merkle edge cases: old_size 0 is an error (nothing
    can be proven about the empty tree, and a monitor should never need it), and equal sizes need an
    empty proof and identical roots (compared as given, like the reference verifier).
    """
    if old_size < 0 or new_size < old_size:
        raise ProofError(f"consistency proof: sizes {old_size} -> {new_size} go backwards or are negative")
    if old_size == 0:
        raise ProofError(f"consistency proof from tree size 0 (to {new_size}) is meaningless")
    if old_size == new_size:
        if proof:
            raise ProofError(
                f"consistency proof has {len(proof)} hashes, expected 0 for sizes {old_size} -> {new_size}"
            )
        if old_root != new_root:
            raise ProofError(
                f"consistency root mismatch at equal size {old_size}: {_hex(old_root)} != {_hex(new_root)}"
            )
        return
    _check_hash(old_root, "consistency proof: old root")
    _check_hash(new_root, "consistency proof: new root")

    inner, border = _inclusion_shape(old_size - 1, new_size)
    # The proof is the path of leaf old_size-1 with its lowest `shift` levels collapsed into one
    # node: the perfect subtree of size 2**shift that ends the old tree.
    shift = ((old_size & -old_size).bit_length()) - 1
    inner -= shift
    old_is_perfect = old_size == 1 << shift
    expected = inner + border + (0 if old_is_perfect else 1)
    if len(proof) != expected:
        raise ProofError(
            f"consistency proof has {len(proof)} hashes, expected {expected} "
            f"for sizes {old_size} -> {new_size}"
        )
    _check_hashes(proof, "consistency proof: hash")
    if old_is_perfect:
        seed, path = old_root, proof
    else:
        seed, path = proof[0], proof[1:]
    mask = (old_size - 1) >> shift

    old_computed = _chain_border(_chain_inner_left_only(seed, path[:inner], mask), path[inner:])
    if old_computed != old_root:
        raise ProofError(
            f"consistency proof old root mismatch for sizes {old_size} -> {new_size}: "
            f"computed {old_computed.hex()}, expected {old_root.hex()}"
        )
    new_computed = _chain_border(_chain_inner(seed, path[:inner], mask), path[inner:])
    if new_computed != new_root:
        raise ProofError(
            f"consistency proof new root mismatch for sizes {old_size} -> {new_size}: "
            f"computed {new_computed.hex()}, expected {new_root.hex()}"
        )


# ---------------------------------------------------------------------------------------------------------
# compact ranges


class CompactRange:
    """The collapsed tree of leaves [0, size): the roots of its perfect subtrees, left to right.

    Subtree i covers subtree_spans(size)[i]; sizes are the set bits of `size`, largest first.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if not 0 <= size <= _MAX_SIZE:
            raise ProofError(f"compact range: size {size} is outside 0..2**64-1")
        if len(hashes) != size.bit_count():
            raise ProofError(
                f"compact range: {len(hashes)} hashes for size {size}, expected {size.bit_count()}"
            )
        _check_hashes(hashes, "compact range: hash")
        self._size = size
        self._hashes = [bytes(h) for h in hashes]

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        _check_hash(leaf_hash, "compact range: leaf hash")
        hashes = self._hashes
        size = self._size
        node = leaf_hash
        # Adding one to a binary counter: every trailing one bit is a subtree of equal size to merge.
        while size & 1:
            node = node_hash(hashes.pop(), node)
            size >>= 1
        hashes.append(node)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        batch = leaf_hashes if isinstance(leaf_hashes, list) else list(leaf_hashes)
        if not batch:
            return
        _check_hashes(batch, "compact range: leaf hash")
        if self._size + len(batch) > _MAX_SIZE:
            raise ProofError(f"compact range: size {self._size} + {len(batch)} overflows 2**64-1")
        self._hashes = _absorb(self._size, self._hashes, batch)
        self._size += len(batch)

    def root(self) -> bytes:
        return fold_subtree_roots(self._hashes)

    def verify_root(self, tree_size: int, root: bytes) -> None:
        """Raise ProofError unless this range is the tree of tree_size with that root hash."""
        if tree_size != self._size:
            raise ProofError(f"compact range has size {self._size}, tree head has size {tree_size}")
        computed = self.root()
        if computed != root:
            raise ProofError(
                f"compact range root mismatch at size {tree_size}: "
                f"computed {computed.hex()}, expected {_hex(root)}"
            )

    def copy(self) -> CompactRange:
        clone = CompactRange.__new__(CompactRange)
        clone._size = self._size
        clone._hashes = list(self._hashes)
        return clone

    def to_bytes(self) -> bytes:
        """State record: u64 big-endian size, then the subtree roots left to right."""
        return _U64.pack(self._size) + b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactRange:
        if len(data) < _U64.size:
            raise DecodeError(f"compact range record: {len(data)} bytes, truncated in the size at offset 0")
        (size,) = _U64.unpack_from(data, 0)
        expected = _U64.size + HASH_SIZE * size.bit_count()
        if len(data) != expected:
            raise DecodeError(
                f"compact range record for size {size}: {len(data)} bytes, expected {expected} "
                f"(mismatch from offset {min(len(data), expected)})"
            )
        view = bytes(data)
        hashes = [view[off : off + HASH_SIZE] for off in range(_U64.size, expected, HASH_SIZE)]
        clone = cls.__new__(cls)
        clone._size = size
        clone._hashes = hashes
        return clone

    @staticmethod
    def subtree_spans(size: int) -> list[Span]:
        """[start, end) of each perfect subtree of [0, size), left to right."""
        if size < 0:
            raise ProofError(f"compact range: negative size {size}")
        return perfect_subtrees(0, size)

    @classmethod
    def from_last_leaf_proof(cls, size: int, last_leaf_hash: bytes, proof: Sequence[bytes]) -> CompactRange:
        """The range at `size` from the inclusion proof of leaf size-1 in the tree of that size.

        Every sibling on the last leaf's path is a left one, one per set bit of size-1, lowest first.
        The trailing one bits of size-1 are the subtrees that merge with the leaf into the last perfect
        subtree of `size`; the higher ones are the other perfect subtrees unchanged. The caller must
        still compare root() with a trusted root: the proof alone proves nothing.
        """
        if not 1 <= size <= _MAX_SIZE:
            raise ProofError(f"last-leaf proof: tree size {size} is outside 1..2**64-1")
        _check_hash(last_leaf_hash, "last-leaf proof: leaf hash")
        expected = (size - 1).bit_count()
        if len(proof) != expected:
            raise ProofError(
                f"last-leaf proof has {len(proof)} hashes, expected {expected} for tree size {size}"
            )
        _check_hashes(proof, "last-leaf proof: hash")
        merged = ((size & -size).bit_length()) - 1  # trailing zeros of size = trailing ones of size-1
        node = _chain_border(last_leaf_hash, proof[:merged])
        clone = cls.__new__(cls)
        clone._size = size
        clone._hashes = [*(bytes(h) for h in reversed(proof[merged:])), node]
        return clone

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"
