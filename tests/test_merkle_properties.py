"""Properties of ctsentinel.ct.merkle over random trees, cross-checked against a direct transcription of
the recursive RFC 9162 definitions (MTH, PATH, SUBPROOF) written here for the purpose."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsentinel.ct.errors import DecodeError, ProofError
from ctsentinel.ct.merkle import (
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

MAX_LEAVES = 300
SETTINGS = settings(max_examples=60, deadline=None)


def leaves_for(n: int, salt: int) -> list[bytes]:
    # Distinct leaf inputs: with duplicate leaves some tampering would be undetectable by construction.
    return [leaf_hash(b"%d:%d" % (salt, i)) for i in range(n)]


# ---------------------------------------------------------------------------------------------------------
# the RFC, recursively and naively (quadratic; only for small trees)


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + rfc_mth(d[:k]) + rfc_mth(d[k:])).digest()


def rfc_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*rfc_path(m, d[:k]), rfc_mth(d[k:])]
    return [*rfc_path(m - k, d[k:]), rfc_mth(d[:k])]


def rfc_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [rfc_mth(d)]
    k = _k(n)
    if m <= k:
        return [*rfc_subproof(m, d[:k], b), rfc_mth(d[k:])]
    return [*rfc_subproof(m - k, d[k:], False), rfc_mth(d[:k])]


def _h(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def rfc_verify_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2, step by step."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _h(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _h(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def rfc_verify_consistency(
    first: int, second: int, path: list[bytes], first_hash: bytes, second_hash: bytes
) -> bool:
    """RFC 9162 2.1.4.2, step by step, for 0 < first < second."""
    assert 0 < first < second
    if not path:
        return False
    if first & (first - 1) == 0:
        path = [first_hash, *path]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _h(c, fr)
            sr = _h(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _h(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


def our_verdict_inclusion(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    try:
        verify_inclusion(leaf, index, size, path, root)
    except ProofError:
        return False
    return True


def our_verdict_consistency(first: int, second: int, path: list[bytes], r1: bytes, r2: bytes) -> bool:
    try:
        verify_consistency(first, second, path, r1, r2)
    except ProofError:
        return False
    return True


def test_against_rfc_definitions_exhaustively() -> None:
    d = leaves_for(130, 7)
    for n in range(131):
        assert root_hash(d[:n]) == rfc_mth(d[:n]), n
    for n in range(1, 34):
        for m in range(n):
            assert inclusion_proof(d[:n], m) == rfc_path(m, d[:n]), (m, n)
            assert rfc_verify_inclusion(d[m], m, n, rfc_path(m, d[:n]), rfc_mth(d[:n]))
        for m in range(1, n + 1):
            assert consistency_proof(d[:n], m) == rfc_subproof(m, d[:n], True), (m, n)
            proof = consistency_proof(d[:n], m)
            verify_consistency(m, n, proof, rfc_mth(d[:m]), rfc_mth(d[:n]))
            if m < n:
                assert rfc_verify_consistency(m, n, proof, rfc_mth(d[:m]), rfc_mth(d[:n]))


# ---------------------------------------------------------------------------------------------------------
# inclusion


def flip(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    out = list(proof)
    out[i] = out[i][: bit // 8] + bytes([out[i][bit // 8] ^ (1 << bit % 8)]) + out[i][bit // 8 + 1 :]
    return out


@SETTINGS
@given(n=st.integers(1, MAX_LEAVES), salt=st.integers(0, 2**16), data=st.data())
def test_inclusion_proofs_verify_and_tampering_fails(n: int, salt: int, data: st.DataObject) -> None:
    d = leaves_for(n, salt)
    root = root_hash(d)
    index = data.draw(st.integers(0, n - 1), label="index")
    proof = inclusion_proof(d, index)
    verify_inclusion(d[index], index, n, proof, root)

    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="node")
        bit = data.draw(st.integers(0, 255), label="bit")
        with pytest.raises(ProofError):
            verify_inclusion(d[index], index, n, flip(proof, i, bit), root)
        with pytest.raises(ProofError, match="hashes, expected"):
            verify_inclusion(d[index], index, n, proof[:-1], root)
        with pytest.raises(ProofError, match="hashes, expected"):
            verify_inclusion(d[index], index, n, proof[1:], root)
    with pytest.raises(ProofError, match="hashes, expected"):
        verify_inclusion(d[index], index, n, [*proof, root], root)
    with pytest.raises(ProofError):
        verify_inclusion(d[index], index, n, proof, leaf_hash(b"other"))

    if n > 1:
        other = data.draw(st.integers(0, n - 1).filter(lambda j: j != index), label="other index")
        with pytest.raises(ProofError):
            verify_inclusion(d[index], other, n, proof, root)
        with pytest.raises(ProofError):
            verify_inclusion(d[other], index, n, proof, root)

    # The tree size is bound by the signed tree head, not by the proof: a proof carries over to another
    # size whose path to this index has the same shape (index 0 in sizes 3 and 4, say). There our
    # verdict must be the RFC algorithm's, and an accepted proof must really compute that root.
    for size in {n - 1, n + 1, 2 * n, n // 2, data.draw(st.integers(1, 4 * MAX_LEAVES), label="size")}:
        if size == n or size <= index:
            continue
        accepted = our_verdict_inclusion(d[index], index, size, proof, root)
        assert accepted == rfc_verify_inclusion(d[index], index, size, proof, root)
        if accepted:
            assert root_from_inclusion_proof(d[index], index, size, proof) == root


# ---------------------------------------------------------------------------------------------------------
# consistency


@SETTINGS
@given(n=st.integers(2, MAX_LEAVES), salt=st.integers(0, 2**16), data=st.data())
def test_consistency_proofs_verify_and_tampering_fails(n: int, salt: int, data: st.DataObject) -> None:
    d = leaves_for(n, salt)
    m = data.draw(st.integers(1, n - 1), label="m")
    old_root, new_root = root_hash(d[:m]), root_hash(d)
    proof = consistency_proof(d, m)
    verify_consistency(m, n, proof, old_root, new_root)

    i = data.draw(st.integers(0, len(proof) - 1), label="node")
    bit = data.draw(st.integers(0, 255), label="bit")
    with pytest.raises(ProofError):
        verify_consistency(m, n, flip(proof, i, bit), old_root, new_root)
    for bad in (proof[:-1], proof[1:], [*proof, new_root], [old_root, *proof], []):
        with pytest.raises(ProofError):
            verify_consistency(m, n, bad, old_root, new_root)
    with pytest.raises(ProofError):
        verify_consistency(m, n, proof, new_root, old_root)
    for m2 in {m - 1, m + 1, m ^ 2, n} - {m}:
        with pytest.raises(ProofError):
            verify_consistency(m2, n, proof, old_root, new_root)
    with pytest.raises(ProofError):
        verify_consistency(n, m, proof, old_root, new_root)
    # Like an inclusion proof, a consistency proof does not bind the new size (the STH signature
    # does): n +- 1 can share the proof's shape. Then our verdict must be the RFC algorithm's.
    for n2 in {n - 1, n + 1, 2 * n} - {m, n}:
        assert our_verdict_consistency(m, n2, proof, old_root, new_root) == rfc_verify_consistency(
            m, n2, proof, old_root, new_root
        )


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 64), salt=st.integers(0, 2**16))
def test_every_consistency_pair_verifies(n: int, salt: int) -> None:
    d = leaves_for(n, salt)
    roots = [root_hash(d[:m]) for m in range(n + 1)]
    for m in range(1, n + 1):
        verify_consistency(m, n, consistency_proof(d, m), roots[m], roots[n])


# ---------------------------------------------------------------------------------------------------------
# compact ranges


@SETTINGS
@given(n=st.integers(0, MAX_LEAVES), salt=st.integers(0, 2**16), data=st.data())
def test_compact_range_constructions_agree(n: int, salt: int, data: st.DataObject) -> None:
    d = leaves_for(n, salt)
    by_append = CompactRange()
    for h in d:
        by_append.append(h)
    assert by_append.root() == root_hash(d)
    assert len(by_append.hashes) == n.bit_count()

    chunked = CompactRange()
    pos = 0
    while pos < n:
        step = data.draw(st.integers(1, max(1, n - pos)), label="chunk")
        chunked.extend(iter(d[pos : pos + step]) if step % 2 else d[pos : pos + step])
        pos += step
        assert chunked.root() == root_hash(d[:pos])
        restored = CompactRange.from_bytes(chunked.to_bytes())
        assert restored == chunked
        assert CompactRange(chunked.size, chunked.hashes) == chunked
        assert chunked.hashes == tuple(root_hash(d[a:b]) for a, b in CompactRange.subtree_spans(pos))
    assert chunked == by_append


@SETTINGS
@given(n=st.integers(1, MAX_LEAVES), extra=st.integers(0, 200), salt=st.integers(0, 2**16))
def test_from_last_leaf_proof_matches_appending(n: int, extra: int, salt: int) -> None:
    d = leaves_for(n + extra, salt)
    start = CompactRange.from_last_leaf_proof(n, d[n - 1], inclusion_proof(d[:n], n - 1))
    expected = CompactRange()
    expected.extend(d[:n])
    assert start == expected
    start.extend(d[n:])
    assert start.root() == root_hash(d)


# ---------------------------------------------------------------------------------------------------------
# garbage in: only ProofError comes out

hash_like = st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40))
sizes = st.one_of(st.integers(-3, 40), st.integers(-(2**70), 2**70))


@settings(max_examples=300, deadline=None)
@given(leaf=hash_like, index=sizes, size=sizes, proof=st.lists(hash_like, max_size=12), root=hash_like)
def test_inclusion_verifier_only_raises_proof_error(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> None:
    try:
        verify_inclusion(leaf, index, size, proof, root)
    except ProofError:
        return
    # Random bytes essentially never verify; if they do, the computation must really agree.
    assert root_from_inclusion_proof(leaf, index, size, proof) == root


@settings(max_examples=300, deadline=None)
@given(old=sizes, new=sizes, proof=st.lists(hash_like, max_size=12), old_root=hash_like, new_root=hash_like)
def test_consistency_verifier_only_raises_proof_error(
    old: int, new: int, proof: list[bytes], old_root: bytes, new_root: bytes
) -> None:
    try:
        verify_consistency(old, new, proof, old_root, new_root)
    except ProofError:
        return
    assert old == new and not proof and old_root == new_root


@settings(max_examples=200, deadline=None)
@given(size=sizes, leaf=hash_like, proof=st.lists(hash_like, max_size=12), record=st.binary(max_size=120))
def test_compact_range_constructors_only_raise_own_errors(
    size: int, leaf: bytes, proof: list[bytes], record: bytes
) -> None:
    with contextlib.suppress(ProofError):
        CompactRange.from_last_leaf_proof(size, leaf, proof)
    with contextlib.suppress(DecodeError):
        CompactRange.from_bytes(record)
