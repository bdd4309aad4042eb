"""Which perfect subtrees make up a consistency proof, and where each is found in the hash tiles.

A static-ct-api log serves no proofs, but every perfect subtree's root is in its hash tiles: a subtree of
2**(8*l + r) leaves is 2**r consecutive hashes of a level-l tile. The RFC 9162 proof (section 2.1.4.1)
is a list of Merkle Tree Hashes of ranges [lo, hi) of the new tree; each such range splits into perfect
subtrees of decreasing size, whose roots fold into the range's hash.
"""

from __future__ import annotations

from ctsentinel.ct.tiles import TILE_HEIGHT, TILE_WIDTH, SubtreeSource, tile_at

Span = tuple[int, int]  # [start, end) of leaves


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_spans(lo: int, hi: int) -> list[Span]:
    """[lo, hi) as perfect subtrees, largest first; lo must be aligned as RFC 6962's ranges are."""
    spans = []
    while lo < hi:
        size = 1 << ((hi - lo).bit_length() - 1)
        if lo % size:
            raise ValueError(f"range [{lo}, {hi}) is not a subtree range of a Merkle tree")
        spans.append((lo, lo + size))
        lo += size
    return spans


def consistency_proof_ranges(old_size: int, new_size: int) -> list[Span]:
    """The ranges whose hashes form PROOF(old_size, D[new_size]), in proof order."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size}")
    ranges: list[Span] = []
    lo, hi, m = 0, new_size, old_size
    whole = True  # SUBPROOF's b: the old tree is a complete subtree seen so far
    while m != hi - lo:
        k = _split(hi - lo)
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


def consistency_proof_spans(old_size: int, new_size: int) -> list[list[Span]]:
    """For each proof element, the perfect subtrees whose roots fold (right to left) into it."""
    return [perfect_spans(lo, hi) for lo, hi in consistency_proof_ranges(old_size, new_size)]


def span_source(span: Span, tree_size: int) -> SubtreeSource:
    """Where the root of the perfect subtree `span` is in the hash tiles of a tree of tree_size."""
    start, end = span
    height = (end - start).bit_length() - 1
    if end - start != 1 << height or start % (1 << height) or end > tree_size:
        raise ValueError(f"[{start}, {end}) is not a perfect subtree of a tree of size {tree_size}")
    level, rest = divmod(height, TILE_HEIGHT)
    position = start >> (TILE_HEIGHT * level)
    tile = tile_at(level, position // TILE_WIDTH, tree_size)
    return SubtreeSource(start, end, tile, position % TILE_WIDTH, 1 << rest)
