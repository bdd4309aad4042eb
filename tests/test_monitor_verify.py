"""monitor.verify: the verification rule on real Pilot heads and on trees built with ct.merkle."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsentinel.ct.errors import SignatureError
from ctsentinel.ct.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
)
from ctsentinel.ct.signatures import LogKey, LogSigner, verify_sth
from ctsentinel.ct.sth import SignedTreeHead, parse_consistency_response
from ctsentinel.ct.tls import DigitallySigned, sth_signature_input
from ctsentinel.monitor.verify import LogVerifier, Misbehaviour, bad_signature

DATA = Path(__file__).parent / "data" / "monitor"


@dataclass(frozen=True)
class Head:
    tree_size: int
    timestamp: int
    root_hash: bytes
    raw: bytes = b"{}"


def leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]


def head_of(hashes: list[bytes], timestamp: int = 1) -> Head:
    return Head(len(hashes), timestamp, root_hash(hashes))


def pilot(size: int) -> tuple[SignedTreeHead, Head]:
    raw = (DATA / f"get-sth_{size}.json").read_bytes()
    sth = SignedTreeHead.from_json(json.loads(raw))
    return sth, Head(sth.tree_size, sth.timestamp, sth.root_hash, raw)


def test_real_pilot_heads_consistency_and_signatures() -> None:
    key = LogKey.from_pem((DATA / "google-pilot.pem").read_bytes())
    old_sth, old = pilot(1979426)
    new_sth, new = pilot(2741521)
    proof_file = DATA / "get-sth-consistency_1979426_2741521.json"
    proof = parse_consistency_response(json.loads(proof_file.read_bytes()))
    assert len(proof) == 22
    verify_sth(key, new_sth)
    # The quoted 1979426 head's signature does not verify: that is bad_signature with the raw response.
    with pytest.raises(SignatureError) as caught:
        verify_sth(key, old_sth)
    finding = bad_signature(old, caught.value)
    assert finding.kind == "bad_signature"
    assert finding.evidence["head"]["tree_size"] == 1979426  # type: ignore[index]
    assert json.loads(finding.evidence["head"]["raw"])["tree_size"] == 1979426  # type: ignore[index]

    verifier = LogVerifier(old, CompactRange())
    assert verifier.needs_consistency(new)
    assert verifier.accept_head(new, proof)
    assert verifier.verified is new
    assert verifier.backlog == 2741521

    for position in range(len(proof)):
        bad = list(proof)
        bad[position] = bytes([bad[position][0] ^ 1]) + bad[position][1:]
        fresh = LogVerifier(old, CompactRange())
        with pytest.raises(Misbehaviour) as misbehaved:
            fresh.accept_head(new, bad)
        assert misbehaved.value.kind == "inconsistent"
        assert fresh.verified is old  # untouched
        evidence = misbehaved.value.evidence
        assert evidence["verified_head"]["root_hash"] == old.root_hash.hex()  # type: ignore[index]
        assert evidence["new_head"]["tree_size"] == 2741521  # type: ignore[index]
        assert evidence["proof"][position] == bad[position].hex()  # type: ignore[index]


def test_shrink_stale_and_fork() -> None:
    hashes = leaves(10)
    verifier = LogVerifier(head_of(hashes), CompactRange())
    # A smaller head signed later: the log went back on what it published.
    with pytest.raises(Misbehaviour) as shrink:
        verifier.accept_head(head_of(hashes[:9], timestamp=2))
    assert shrink.value.kind == "shrink"
    assert shrink.value.evidence["new_head"]["tree_size"] == 9  # type: ignore[index]
    # A smaller head signed earlier (a replica or cache behind) is fine if it is a prefix of the tree...
    stale = head_of(hashes[:6], timestamp=0)
    assert verifier.is_stale(stale)
    assert not verifier.accept_head(stale, consistency_proof(hashes, 6))
    assert not verifier.accept_head(Head(0, 0, EMPTY_ROOT))
    # ...and inconsistent if it is not.
    other = head_of(hashes[:5] + leaves(1, b"x"), timestamp=0)
    with pytest.raises(Misbehaviour) as inconsistent:
        verifier.accept_head(other, consistency_proof(hashes, 6))
    assert inconsistent.value.kind == "inconsistent"
    assert inconsistent.value.evidence["new_head"]["tree_size"] == 6  # type: ignore[index]
    assert verifier.verified is not None and verifier.verified.tree_size == 10
    forked = hashes[:3] + leaves(1, b"fork") + hashes[4:]
    with pytest.raises(Misbehaviour) as fork:
        verifier.accept_head(head_of(forked, timestamp=2))
    assert fork.value.kind == "fork"
    assert fork.value.evidence["new_head"]["root_hash"] == root_hash(forked).hex()  # type: ignore[index]
    assert fork.value.evidence["verified_head"]["root_hash"] == root_hash(hashes).hex()  # type: ignore[index]
    # The same head again (a newer timestamp is fine) changes nothing.
    assert not verifier.accept_head(Head(10, 5, root_hash(hashes)))
    # A forked tree that grows is inconsistent with the past, whatever proof the log offers for it.
    grown = [*forked, *leaves(3, b"more")]
    with pytest.raises(Misbehaviour) as inconsistent:
        verifier.accept_head(head_of(grown), consistency_proof(grown, 10))
    assert inconsistent.value.kind == "inconsistent"
    assert verifier.verified is not None and verifier.verified.root_hash == root_hash(hashes)


def test_chunks_are_proven_against_the_target() -> None:
    hashes = leaves(1000)
    target = head_of(hashes)
    verifier = LogVerifier(None, CompactRange())
    assert verifier.accept_head(target)
    for start, end in [(0, 300), (300, 999), (999, 1000)]:
        chunk = verifier.begin_chunk()
        chunk.extend(hashes[start:end])
        assert chunk.start == start and chunk.end == end
        assert LogVerifier.chunk_needs_proof(chunk) == (end != 1000)
        proof = consistency_proof(hashes, end) if end != 1000 else []
        LogVerifier.prove(chunk, proof)
        verifier.advance(chunk)
    assert verifier.position == 1000 and verifier.range.root() == target.root_hash
    assert verifier.backlog == 0


def test_a_flipped_leaf_is_bad_entries_and_nothing_moves() -> None:
    data = [i.to_bytes(4, "big") * 50 for i in range(64)]
    hashes = [leaf_hash(d) for d in data]
    verifier = LogVerifier(head_of(hashes), CompactRange())
    tampered = list(data)
    tampered[17] = tampered[17][:5] + bytes([tampered[17][5] ^ 0x80]) + tampered[17][6:]
    for end in (32, 64):
        chunk = verifier.begin_chunk()
        chunk.extend(leaf_hash(d) for d in tampered[:end])
        with pytest.raises(Misbehaviour) as caught:
            LogVerifier.prove(chunk, consistency_proof(hashes, end) if end < 64 else [])
        assert caught.value.kind == "bad_entries"
        assert caught.value.evidence["chunk"] == [0, end]
        computed = root_hash([leaf_hash(d) for d in tampered[:end]])
        assert caught.value.evidence["computed_root"] == computed.hex()
        assert caught.value.evidence["head"]["root_hash"] == root_hash(hashes).hex()  # type: ignore[index]
        assert verifier.position == 0


def test_bootstrap_from_the_last_leaf_proof() -> None:
    hashes = leaves(777)
    target = head_of(hashes)
    last = CompactRange.from_last_leaf_proof(777, hashes[-1], inclusion_proof(hashes, 776))
    verifier = LogVerifier(None, CompactRange())
    verifier.bootstrap(target, last)
    assert verifier.position == 777 and verifier.backlog == 0
    more = hashes + leaves(40, b"new")
    new = head_of(more)
    assert verifier.accept_head(new, consistency_proof(more, 777))
    chunk = verifier.begin_chunk()
    chunk.extend(more[777:])
    LogVerifier.prove(chunk)
    verifier.advance(chunk)
    assert verifier.position == 817 and verifier.range.root() == new.root_hash
    # A range that does not lead to the head's root is refused.
    proof = inclusion_proof(hashes, 776)
    wrong = CompactRange.from_last_leaf_proof(777, leaf_hash(b"not the last leaf"), proof)
    with pytest.raises(Misbehaviour) as caught:
        LogVerifier(None, CompactRange()).bootstrap(target, wrong)
    assert caught.value.kind == "inconsistent"


def test_signed_heads_from_a_log_signer() -> None:
    signer = LogSigner.generate()
    hashes = leaves(5)
    root = root_hash(hashes)
    sth = SignedTreeHead(5, 1234, root, signer.sign(sth_signature_input(1234, 5, root)))
    verify_sth(signer.public_key, sth)
    sig = sth.signature.signature
    flipped = SignedTreeHead(5, 1234, sth.root_hash, DigitallySigned(
        sth.signature.hash_algorithm, sth.signature.signature_algorithm, sig[:-1] + bytes([sig[-1] ^ 1])))
    with pytest.raises(SignatureError):
        verify_sth(signer.public_key, flipped)


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 300),
    cuts=st.lists(st.integers(1, 299), max_size=6),
    bootstrap_at=st.integers(0, 299),
)
def test_any_chunking_proves_an_honest_log(size: int, cuts: list[int], bootstrap_at: int) -> None:
    hashes = leaves(size, hashlib.sha256(str(size).encode()).digest()[:4])
    start = min(bootstrap_at, size - 1)
    verifier = LogVerifier(None, CompactRange())
    if start:
        first = head_of(hashes[:start])
        proof = inclusion_proof(hashes[:start], start - 1)
        verifier.bootstrap(first, CompactRange.from_last_leaf_proof(start, hashes[start - 1], proof))
        assert verifier.accept_head(head_of(hashes), consistency_proof(hashes, start))
    else:
        assert verifier.accept_head(head_of(hashes))
    ends = sorted({c for c in cuts if start < c < size} | {size})
    for end in ends:
        chunk = verifier.begin_chunk()
        chunk.extend(hashes[chunk.start:end])
        LogVerifier.prove(chunk, consistency_proof(hashes, end) if end < size else [])
        verifier.advance(chunk)
    assert verifier.position == size and verifier.range.root() == root_hash(hashes)
