"""ctsentinel.ct.merkle against independent data: transparency-dev/merkle vectors, the RFC 6962 reference
tree, a real Google Pilot consistency proof and real static-ct hash tiles (Navigli2025h2)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ctsentinel.ct.errors import DecodeError, ProofError
from ctsentinel.ct.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    leaf_hashes,
    node_hash,
    root_from_inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

DATA = Path(__file__).parent / "data" / "merkle"
VECTORS = DATA / "transparency-dev-merkle" / "testdata"


def b64(text: str | None) -> bytes:
    return base64.b64decode(text or "")


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------------------------
# hashing primitives


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_hash([]) == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT
    assert HASH_SIZE == 32


def test_leaf_and_node_hash_domain_separation() -> None:
    # Known answers from the RFC 6962 reference tree: the empty leaf and the 2-leaf root.
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert (
        node_hash(leaf_hash(b""), leaf_hash(b"\x00")).hex()
        == "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
    )
    assert leaf_hash(b"\x01" * 64) != node_hash(b"\x01" * 32, b"\x01" * 32)


def test_leaf_hashes_is_leaf_hash_of_each_input() -> None:
    inputs = [b"", b"\x00", bytes(range(256)) * 8]
    assert leaf_hashes(inputs) == [leaf_hash(x) for x in inputs]
    assert leaf_hashes(x for x in inputs) == [leaf_hash(x) for x in inputs]
    assert leaf_hashes([]) == []


# ---------------------------------------------------------------------------------------------------------
# RFC 6962 reference tree (8 leaves)

REFERENCE = load_json(DATA / "rfc6962-reference-tree.json")
REF_LEAVES = [leaf_hash(bytes.fromhex(x)) for x in REFERENCE["leaf_inputs_hex"]]
REF_ROOTS = [bytes.fromhex(x) for x in REFERENCE["root_hashes_hex"]]


@pytest.mark.parametrize("size", range(len(REF_ROOTS)))
def test_reference_tree_roots(size: int) -> None:
    assert root_hash(REF_LEAVES[:size]) == REF_ROOTS[size]
    built = CompactRange()
    for h in REF_LEAVES[:size]:
        built.append(h)
    assert built.root() == REF_ROOTS[size]
    extended = CompactRange()
    extended.extend(REF_LEAVES[:size])
    assert extended == built


def test_reference_tree_all_inclusion_proofs_verify() -> None:
    for size in range(1, 9):
        for index in range(size):
            proof = inclusion_proof(REF_LEAVES[:size], index)
            verify_inclusion(REF_LEAVES[index], index, size, proof, REF_ROOTS[size])
            assert root_from_inclusion_proof(REF_LEAVES[index], index, size, proof) == REF_ROOTS[size]
            if size > 1:
                with pytest.raises(ProofError):
                    verify_inclusion(REF_LEAVES[index], index, size, proof, REF_ROOTS[size - 1])


def test_reference_tree_all_consistency_proofs_verify() -> None:
    for new in range(1, 9):
        for old in range(1, new + 1):
            proof = consistency_proof(REF_LEAVES[:new], old)
            verify_consistency(old, new, proof, REF_ROOTS[old], REF_ROOTS[new])
            if old < new:
                with pytest.raises(ProofError):
                    verify_consistency(
                        old, new, proof, REF_ROOTS[old - 1] if old > 1 else EMPTY_ROOT, REF_ROOTS[new]
                    )


def _happy_paths(kind: str) -> list[Path]:
    return sorted(VECTORS.glob(f"{kind}/*/happy-path.json"))


@pytest.mark.parametrize("path", _happy_paths("inclusion"), ids=lambda p: p.parent.name)
def test_generated_inclusion_proofs_equal_reference_vectors(path: Path) -> None:
    # The happy-path vectors are proofs over the same reference tree, produced by the Go implementation.
    vec = load_json(path)
    size, index = vec["treeSize"], vec["leafIdx"]
    assert b64(vec["leafHash"]) == REF_LEAVES[index]
    assert b64(vec["root"]) == REF_ROOTS[size]
    assert inclusion_proof(REF_LEAVES[:size], index) == [b64(p) for p in vec["proof"] or []]


@pytest.mark.parametrize("path", _happy_paths("consistency"), ids=lambda p: p.parent.name)
def test_generated_consistency_proofs_equal_reference_vectors(path: Path) -> None:
    vec = load_json(path)
    old, new = vec["size1"], vec["size2"]
    assert (b64(vec["root1"]), b64(vec["root2"])) == (REF_ROOTS[old], REF_ROOTS[new])
    assert consistency_proof(REF_LEAVES[:new], old) == [b64(p) for p in vec["proof"] or []]


# ---------------------------------------------------------------------------------------------------------
# transparency-dev/merkle verdict vectors: every file, wantErr must match


def _vector_ids(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


INCLUSION_VECTORS = _vector_ids("inclusion")
CONSISTENCY_VECTORS = _vector_ids("consistency")


def test_vector_sets_are_complete() -> None:
    # 196 files: a lost copy must not silently shrink the suite.
    assert (len(INCLUSION_VECTORS), len(CONSISTENCY_VECTORS)) == (98, 98)


@pytest.mark.parametrize("path", INCLUSION_VECTORS, ids=lambda p: str(p.relative_to(VECTORS)))
def test_inclusion_vector(path: Path) -> None:
    vec = load_json(path)
    proof = [b64(p) for p in vec["proof"] or []]
    args = (b64(vec["leafHash"]), vec["leafIdx"], vec["treeSize"], proof, b64(vec["root"]))
    if vec["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY_VECTORS, ids=lambda p: str(p.relative_to(VECTORS)))
def test_consistency_vector(path: Path) -> None:
    vec = load_json(path)
    proof = [b64(p) for p in vec["proof"] or []]
    args = (vec["size1"], vec["size2"], proof, b64(vec["root1"]), b64(vec["root2"]))
    if vec["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


# ---------------------------------------------------------------------------------------------------------
# error messages and edge conventions


def test_messages_name_the_expected_shape() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(8)]
    proof = consistency_proof(leaves, 5)
    assert len(proof) == 4
    with pytest.raises(ProofError, match=r"^consistency proof has 3 hashes, expected 4 for sizes 5 -> 8$"):
        verify_consistency(5, 8, proof[:3], root_hash(leaves[:5]), root_hash(leaves))
    with pytest.raises(
        ProofError, match=r"inclusion proof has 2 hashes, expected 3 for index 5 in tree size 8"
    ):
        verify_inclusion(leaves[5], 5, 8, inclusion_proof(leaves, 5)[:2], root_hash(leaves))
    wrong = root_hash(leaves[:7])
    with pytest.raises(ProofError, match=f"computed {root_hash(leaves).hex()}, expected {wrong.hex()}"):
        verify_inclusion(leaves[5], 5, 8, inclusion_proof(leaves, 5), wrong)
    with pytest.raises(ProofError, match="old root mismatch"):
        verify_consistency(5, 8, proof, wrong, root_hash(leaves))
    with pytest.raises(ProofError, match="new root mismatch"):
        verify_consistency(5, 8, proof, root_hash(leaves[:5]), wrong)
    with pytest.raises(ProofError, match="leaf hash has 31 bytes, expected 32"):
        verify_inclusion(leaves[5][:31], 5, 8, inclusion_proof(leaves, 5), root_hash(leaves))
    with pytest.raises(ProofError, match="hash 1 has 33 bytes"):
        p = inclusion_proof(leaves, 5)
        verify_inclusion(leaves[5], 5, 8, [p[0], p[1] + b"\x00", p[2]], root_hash(leaves))
    for message in ("index 8 is outside tree size 8", "index -1 is outside tree size 8"):
        with pytest.raises(ProofError, match=message):
            verify_inclusion(leaves[0], int(message.split()[1]), 8, [], root_hash(leaves))


def test_consistency_edge_conventions() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(4)]
    r2, r4 = root_hash(leaves[:2]), root_hash(leaves)
    verify_consistency(4, 4, [], r4, r4)
    with pytest.raises(ProofError, match="expected 0"):
        verify_consistency(4, 4, [r4], r4, r4)
    with pytest.raises(ProofError, match="equal size"):
        verify_consistency(4, 4, [], r2, r4)
    for old, new in ((0, 0), (0, 4)):
        with pytest.raises(ProofError, match="from tree size 0"):
            verify_consistency(old, new, [], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(ProofError, match="backwards"):
        verify_consistency(4, 2, [], r4, r2)
    assert consistency_proof(leaves, 4) == []
    for bad in (0, 5, -1):
        with pytest.raises(ProofError):
            consistency_proof(leaves, bad)
    for bad in (4, -1):
        with pytest.raises(ProofError):
            inclusion_proof(leaves, bad)
    with pytest.raises(ProofError, match="leaf hash 2 has 3 bytes"):
        root_hash([leaves[0], leaves[1], b"abc"])


# ---------------------------------------------------------------------------------------------------------
# real RFC 6962 log: Google Pilot, 2013

PILOT = DATA / "google-pilot-2013"
PILOT_OLD = load_json(PILOT / "get-sth_1979426.json")
PILOT_NEW = load_json(PILOT / "get-sth_2741521.json")
PILOT_PROOF = [b64(x) for x in load_json(PILOT / "get-sth-consistency_1979426_2741521.json")["consistency"]]
PILOT_ARGS = (
    PILOT_OLD["tree_size"],
    PILOT_NEW["tree_size"],
    PILOT_PROOF,
    b64(PILOT_OLD["sha256_root_hash"]),
    b64(PILOT_NEW["sha256_root_hash"]),
)


def test_pilot_consistency_proof_verifies() -> None:
    assert PILOT_ARGS[:2] == (1979426, 2741521)
    assert len(PILOT_PROOF) == 22
    verify_consistency(*PILOT_ARGS)


def test_pilot_consistency_fails_with_any_byte_flipped() -> None:
    old, new, proof, old_root, new_root = PILOT_ARGS
    for i, node in enumerate(proof):
        for j in range(HASH_SIZE):
            tampered = list(proof)
            tampered[i] = node[:j] + bytes([node[j] ^ 0x01]) + node[j + 1 :]
            with pytest.raises(ProofError):
                verify_consistency(old, new, tampered, old_root, new_root)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (2741521, 1979426),  # swapped
        (1979425, 2741521),  # old size off by one
        (1979427, 2741521),
        (1979426, 1979426 + 1),
        (1979426, 2**21),  # the new tree's shape changes at these sizes
        (1979426, 2**22 + 1),
    ],
)
def test_pilot_consistency_fails_with_wrong_sizes(old: int, new: int) -> None:
    _, _, proof, old_root, new_root = PILOT_ARGS
    with pytest.raises(ProofError):
        verify_consistency(old, new, proof, old_root, new_root)


@pytest.mark.parametrize("new", [2741520, 2741522, 2**21 + 1, 2**22])
def test_pilot_proof_does_not_bind_the_new_size(new: int) -> None:
    # Leaf 1979425 lies in the left 2**21 subtree of every tree of size 2**21+1 .. 2**22, and the right
    # subtree enters the proof as one hash, so the same 22 hashes verify for any of those sizes. This is
    # the algorithm (RFC 9162 2.1.4.2 agrees, see test_merkle_properties), not a verifier bug: the STH
    # signature is what binds the size, so a monitor must take both sizes from verified tree heads.
    _, _, proof, old_root, new_root = PILOT_ARGS
    verify_consistency(1979426, new, proof, old_root, new_root)


def test_pilot_consistency_fails_with_roots_swapped_or_proof_reordered() -> None:
    old, new, proof, old_root, new_root = PILOT_ARGS
    with pytest.raises(ProofError):
        verify_consistency(old, new, proof, new_root, old_root)
    with pytest.raises(ProofError):
        verify_consistency(old, new, proof[1:] + proof[:1], old_root, new_root)
    with pytest.raises(ProofError, match="has 21 hashes, expected 22"):
        verify_consistency(old, new, proof[:-1], old_root, new_root)


# ---------------------------------------------------------------------------------------------------------
# real static-ct log: Navigli2025h2 level-0 hash tiles (256 leaf hashes each)

TILES = DATA / "navigli-tile0"
NAVIGLI_ROOT_1024 = b64("EMfGG85uIddeOXt5/wdQGP3IQd0COCqoLg9Q6CsPLJA=")
NAVIGLI_ROOT_778 = b64("+WnHOMRZl/LG1669oeskbdK9bcO4nkrY1cfVyknC52U=")


def _split_tile(data: bytes) -> list[bytes]:
    assert len(data) % HASH_SIZE == 0
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


NAVIGLI = [h for name in ("000", "001", "002", "003") for h in _split_tile((TILES / name).read_bytes())]
NAVIGLI_PARTIAL = _split_tile((TILES / "003.p" / "10").read_bytes())


def test_navigli_tiles_shape() -> None:
    assert len(NAVIGLI) == 1024
    assert NAVIGLI[768:778] == NAVIGLI_PARTIAL


def test_navigli_roots() -> None:
    assert root_hash(NAVIGLI) == NAVIGLI_ROOT_1024
    assert root_hash(NAVIGLI[:768] + NAVIGLI_PARTIAL) == NAVIGLI_ROOT_778
    flipped = list(NAVIGLI)
    flipped[500] = bytes([flipped[500][0] ^ 0x80]) + flipped[500][1:]
    assert root_hash(flipped) != NAVIGLI_ROOT_1024


def test_navigli_compact_range() -> None:
    appended = CompactRange()
    for i, h in enumerate(NAVIGLI):
        appended.append(h)
        if i + 1 == 778:
            assert appended.root() == NAVIGLI_ROOT_778
            appended.verify_root(778, NAVIGLI_ROOT_778)
            at_778 = appended.copy()
    appended.verify_root(1024, NAVIGLI_ROOT_1024)
    assert appended.hashes == (NAVIGLI_ROOT_1024,)

    # Tile by tile, as a static-ct monitor reads them, with the partial tile at the edge of size 778.
    tiled = CompactRange()
    for start in (0, 256, 512):
        tiled.extend(NAVIGLI[start : start + 256])
    tiled.extend(NAVIGLI_PARTIAL)
    assert tiled == at_778
    assert tiled.size == 778
    assert CompactRange.subtree_spans(778) == [(0, 512), (512, 768), (768, 776), (776, 778)]
    assert tiled.hashes == tuple(root_hash(NAVIGLI[a:b]) for a, b in CompactRange.subtree_spans(778))
    tiled.extend(iter(NAVIGLI[778:]))
    assert tiled.root() == NAVIGLI_ROOT_1024
    with pytest.raises(ProofError, match="root mismatch"):
        at_778.verify_root(778, NAVIGLI_ROOT_1024)
    with pytest.raises(ProofError, match="size"):
        at_778.verify_root(1024, NAVIGLI_ROOT_1024)


def test_navigli_start_at_the_end() -> None:
    # A monitor that starts at size 778 gets the last leaf's inclusion proof and then follows the log.
    proof = inclusion_proof(NAVIGLI[:778], 777)
    verify_inclusion(NAVIGLI[777], 777, 778, proof, NAVIGLI_ROOT_778)
    start = CompactRange.from_last_leaf_proof(778, NAVIGLI[777], proof)
    start.verify_root(778, NAVIGLI_ROOT_778)
    start.extend(NAVIGLI[778:])
    start.verify_root(1024, NAVIGLI_ROOT_1024)

    bad = list(proof)
    bad[-1] = bytes(32)
    wrong = CompactRange.from_last_leaf_proof(778, NAVIGLI[777], bad)
    with pytest.raises(ProofError):
        wrong.verify_root(778, NAVIGLI_ROOT_778)
    with pytest.raises(ProofError, match="has 3 hashes, expected 4"):
        CompactRange.from_last_leaf_proof(778, NAVIGLI[777], proof[:3])


def test_navigli_proofs_between_778_and_1024() -> None:
    proof = consistency_proof(NAVIGLI, 778)
    verify_consistency(778, 1024, proof, NAVIGLI_ROOT_778, NAVIGLI_ROOT_1024)
    with pytest.raises(ProofError):
        verify_consistency(777, 1024, proof, NAVIGLI_ROOT_778, NAVIGLI_ROOT_1024)
    for index in [*range(0, 1024, 37), 767, 768, 776, 777, 778, 1023]:
        path = inclusion_proof(NAVIGLI, index)
        verify_inclusion(NAVIGLI[index], index, 1024, path, NAVIGLI_ROOT_1024)
        if index < 778:
            verify_inclusion(
                NAVIGLI[index], index, 778, inclusion_proof(NAVIGLI[:778], index), NAVIGLI_ROOT_778
            )
        with pytest.raises(ProofError):
            verify_inclusion(NAVIGLI[index], index, 1024, path, NAVIGLI_ROOT_778)


# ---------------------------------------------------------------------------------------------------------
# CompactRange state records and validation


def test_compact_range_record_layout_and_round_trip() -> None:
    rng = CompactRange()
    rng.extend(NAVIGLI[:778])
    record = rng.to_bytes()
    assert record[:8] == (778).to_bytes(8, "big")
    assert len(record) == 8 + 4 * 32
    assert record[8:] == b"".join(rng.hashes)
    assert CompactRange.from_bytes(record) == rng
    assert CompactRange.from_bytes(CompactRange().to_bytes()) == CompactRange()
    assert CompactRange(778, rng.hashes) == rng


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (b"", "truncated in the size at offset 0"),
        (b"\x00" * 7, "truncated in the size at offset 0"),
        ((3).to_bytes(8, "big") + b"\x00" * 32, "size 3: 40 bytes, expected 72"),
        ((1).to_bytes(8, "big") + b"\x00" * 33, "size 1: 41 bytes, expected 40"),
        ((0).to_bytes(8, "big") + b"\x00", "size 0: 9 bytes, expected 8"),
        (b"\xff" * 8 + b"\x00" * 32, "expected 2056"),
    ],
)
def test_compact_range_from_bytes_rejects(record: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        CompactRange.from_bytes(record)


def test_compact_range_constructor_validates() -> None:
    h = leaf_hash(b"x")
    with pytest.raises(ProofError, match="1 hashes for size 3, expected 2"):
        CompactRange(3, [h])
    with pytest.raises(ProofError, match="has 5 bytes"):
        CompactRange(1, [b"short"])
    with pytest.raises(ProofError):
        CompactRange(-1)
    with pytest.raises(ProofError):
        CompactRange().append(b"")
    with pytest.raises(ProofError, match="leaf hash 1 has 0 bytes"):
        CompactRange().extend([h, b""])
    rng = CompactRange(1, [h])
    assert rng.size == 1 and rng.hashes == (h,)
    copy = rng.copy()
    copy.append(h)
    assert rng.size == 1 and copy.size == 2 and copy.root() == node_hash(h, h)


def test_subtree_spans() -> None:
    assert CompactRange.subtree_spans(0) == []
    assert CompactRange.subtree_spans(1) == [(0, 1)]
    assert CompactRange.subtree_spans(8) == [(0, 8)]
    assert CompactRange.subtree_spans(13) == [(0, 8), (8, 12), (12, 13)]
