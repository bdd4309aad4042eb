"""The test log's storage: entries as real logs record them, tile-backed hashes and proofs, persistence."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctsentinel.ct import merkle, signatures, tiles, tls
from ctsentinel.ct.checkpoint import open_checkpoint
from ctsentinel.ct.errors import SignatureError
from ctsentinel.testlog.storage import LogStorage, StorageError, Submission, SubmissionError
from ctsentinel.testlog.tbs import tbs_without_poison
from ctsentinel.testlog.tree import TreeReader, append_leaf_hashes
from testlog_pki import Pki, make_leaf, make_pki

DATA = Path(__file__).parent / "data" / "testlog"
NAVIGLI_TILES = DATA / "sunlight-navigli2025h2" / "tile" / "0"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def chains(pki: Pki) -> list[tuple[list[bytes], bool]]:
    """A few certificates and precertificates, reused: a log may hold the same chain many times."""
    out = []
    for i in range(8):
        precert = i % 3 == 1
        out.append((pki.chain(make_leaf(pki.intermediate, [f"h{i}.example.com"], precert=precert)), precert))
    return out


def _fill(
    storage: LogStorage, chains: list[tuple[list[bytes], bool]], n: int, ts: int = 1_700_000_000_000
) -> None:
    subs = [Submission(chains[i % len(chains)][0], chains[i % len(chains)][1], ts + i) for i in range(n)]
    storage.add(subs, sign=False)


class _MemoryTiles:
    def __init__(self) -> None:
        self.tiles: dict[tuple[int, int], bytes] = {}

    def read(self, level: int, index: int) -> bytes:
        return self.tiles.get((level, index), b"")

    def write(self, level: int, index: int, blob: bytes) -> None:
        self.tiles[(level, index)] = blob


def _navigli_leaf_hashes() -> list[bytes]:
    hashes: list[bytes] = []
    for name in ("000", "001", "002", "003"):
        hashes += tiles.decode_hash_tile((NAVIGLI_TILES / name).read_bytes())
    return hashes


def test_tree_reproduces_real_navigli_roots_and_tiles() -> None:
    hashes = _navigli_leaf_hashes()
    store = _MemoryTiles()
    # Appended in uneven chunks that straddle tile boundaries, as a sequencer would.
    for start, end in [(0, 1), (1, 300), (300, 778), (778, 1024)]:
        append_leaf_hashes(store.read, store.write, start, hashes[start:end])
    tree = TreeReader(store.read)
    assert base64.b64encode(tree.root(1024)).decode() == "EMfGG85uIddeOXt5/wdQGP3IQd0COCqoLg9Q6CsPLJA="
    assert base64.b64encode(tree.root(778)).decode() == "+WnHOMRZl/LG1669oeskbdK9bcO4nkrY1cfVyknC52U="
    assert store.tiles[(0, 3)][:320] == (NAVIGLI_TILES / "003.p" / "10").read_bytes()
    assert store.tiles[(1, 0)] == b"".join(merkle.root_hash(hashes[i : i + 256]) for i in range(0, 1024, 256))
    # A flipped leaf changes the root: the check can fail.
    hashes[500] = bytes(32)
    assert merkle.root_hash(hashes) != tree.root(1024)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(min_value=1, max_value=700),
    cuts=st.lists(st.integers(min_value=1, max_value=700), max_size=4),
    data=st.data(),
)
def test_tile_proofs_equal_reference_proofs(size: int, cuts: list[int], data: st.DataObject) -> None:
    hashes = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    store = _MemoryTiles()
    bounds = sorted({0, size, *(c for c in cuts if c < size)})
    for start, end in itertools.pairwise(bounds):
        append_leaf_hashes(store.read, store.write, start, hashes[start:end])
    tree = TreeReader(store.read)
    n = data.draw(st.integers(min_value=1, max_value=size), label="tree size")
    index = data.draw(st.integers(min_value=0, max_value=n - 1), label="leaf")
    old = data.draw(st.integers(min_value=1, max_value=n), label="old size")
    assert tree.root(n) == merkle.root_hash(hashes[:n])
    proof = tree.inclusion_proof(index, n)
    assert proof == merkle.inclusion_proof(hashes[:n], index)
    merkle.verify_inclusion(hashes[index], index, n, proof, tree.root(n))
    consistency = tree.consistency_proof(old, n)
    assert consistency == merkle.consistency_proof(hashes[:n], old)
    merkle.verify_consistency(old, n, consistency, tree.root(old), tree.root(n))


def test_precert_entry_matches_a_real_log_entry() -> None:
    """The ct-go test entry: a real log's precert_entry; our derivation must give its exact leaf."""
    entry = json.loads((DATA / "ctgo-client-test_precert-entry.json").read_text())["entries"][0]
    leaf = tls.decode_merkle_tree_leaf(base64.b64decode(entry["leaf_input"])).timestamped_entry
    extra = tls.decode_extra_data(tls.LogEntryType.PRECERT_ENTRY, base64.b64decode(entry["extra_data"]))
    assert isinstance(extra, tls.PrecertExtraData)
    precert = x509.load_der_x509_certificate(extra.pre_certificate)
    assert tbs_without_poison(precert.tbs_certificate_bytes) == leaf.signed_entry
    assert len(tbs_without_poison(precert.tbs_certificate_bytes)) < len(precert.tbs_certificate_bytes)


def test_precert_submission_reproduces_the_real_leaf(tmp_path: Path) -> None:
    entry = json.loads((DATA / "ctgo-client-test_precert-entry.json").read_text())["entries"][0]
    leaf = tls.decode_merkle_tree_leaf(base64.b64decode(entry["leaf_input"])).timestamped_entry
    extra = tls.decode_extra_data(tls.LogEntryType.PRECERT_ENTRY, base64.b64decode(entry["extra_data"]))
    assert isinstance(extra, tls.PrecertExtraData)
    with LogStorage.open(tmp_path / "log") as storage:
        (sct,) = storage.add(
            [Submission([extra.pre_certificate, *extra.precertificate_chain], True, leaf.timestamp)]
        )
        storage.integrate()
        ours = tls.decode_merkle_tree_leaf(storage.get_entries(0, 0)[0][0]).timestamped_entry
        assert (ours.timestamp, ours.entry_type, ours.signed_entry, ours.issuer_key_hash) == (
            leaf.timestamp,
            leaf.entry_type,
            leaf.signed_entry,
            leaf.issuer_key_hash,
        )
        assert tiles.decode_leaf_index_extension(ours.extensions) == 0
        assert sct is not None
        signatures.verify_sct(
            storage.signer.public_key, sct, ours.entry_type, ours.signed_entry, ours.issuer_key_hash
        )
        with pytest.raises(SignatureError):
            signatures.verify_sct(
                storage.signer.public_key, sct, ours.entry_type, ours.signed_entry, bytes(32)
            )


def test_add_integrate_and_read_back(
    tmp_path: Path, pki: Pki, chains: list[tuple[list[bytes], bool]]
) -> None:
    with LogStorage.open(tmp_path / "log") as storage:
        key = storage.signer.public_key
        assert storage.tree_size == 0
        assert storage.latest_sth().root_hash == merkle.EMPTY_ROOT
        subs = [Submission(chain, precert) for chain, precert in chains]
        scts = storage.add(subs)
        assert storage.tree_size == 0 and storage.pending_count == len(chains)
        sth = storage.integrate()
        signatures.verify_sth(key, sth)
        entries = storage.get_entries(0, len(chains) - 1)
        hashes = [merkle.leaf_hash(leaf_input) for leaf_input, _ in entries]
        assert merkle.root_hash(hashes) == sth.root_hash
        for index, ((leaf_input, extra_data), sct, (chain, precert)) in enumerate(
            zip(entries, scts, chains, strict=True)
        ):
            leaf = tls.decode_merkle_tree_leaf(leaf_input).timestamped_entry
            assert sct is not None and sct.extensions == leaf.extensions
            assert tiles.decode_leaf_index_extension(sct.extensions) == index
            signatures.verify_sct(key, sct, leaf.entry_type, leaf.signed_entry, leaf.issuer_key_hash)
            extra = tls.decode_extra_data(leaf.entry_type, extra_data)
            if precert:
                assert isinstance(extra, tls.PrecertExtraData)
                assert extra.pre_certificate == chain[0] and extra.precertificate_chain == chain[1:]
                assert leaf.issuer_key_hash is not None and leaf.signed_entry != chain[0]
            else:
                assert isinstance(extra, tls.X509ExtraData)
                assert leaf.signed_entry == chain[0] and extra.certificate_chain == chain[1:]
        assert storage.roots() == [pki.root.der]
        assert storage.issuer(merkle.leaf_hash(b"")) is None
        assert storage.issuer(hashlib.sha256(pki.intermediate.der).digest()) == pki.intermediate.der
        assert storage.find_leaf(hashes[5], sth.tree_size) == 5
        assert storage.find_leaf(bytes(32), sth.tree_size) is None
        checkpoint = open_checkpoint(storage.checkpoint(), storage.origin, key)
        assert (checkpoint.checkpoint.tree_size, checkpoint.timestamp) == (sth.tree_size, sth.timestamp)


def test_persistence_across_reopen(tmp_path: Path, chains: list[tuple[list[bytes], bool]]) -> None:
    directory = tmp_path / "log"
    with LogStorage.open(directory) as storage:
        _fill(storage, chains, 300)
        first = storage.integrate()
        _fill(storage, chains, 10)  # pending, not yet integrated
        spki = storage.signer.public_key.spki_der
    assert stat.S_IMODE((directory / "key.pem").stat().st_mode) == 0o600
    with LogStorage.open(directory) as storage:
        assert storage.signer.public_key.spki_der == spki
        assert storage.latest_sth() == first and storage.pending_count == 10
        second = storage.integrate()
        assert second.tree_size == 310 and second.timestamp > first.timestamp
        proof = storage.tree().consistency_proof(300, 310)
        merkle.verify_consistency(300, 310, proof, first.root_hash, second.root_hash)
        assert [h.tree_size for h in storage.tree_heads()] == [0, 300, 310]


def test_missing_key_with_existing_database_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    LogStorage.open(directory).close()
    (directory / "key.pem").unlink()
    with pytest.raises(StorageError, match=r"key\.pem is missing"):
        LogStorage.open(directory)


@pytest.mark.parametrize(
    ("make_chain", "precert", "message"),
    [
        (lambda p: [], False, "empty chain"),
        (lambda p: [b"\x30\x03\x02\x01\x01"], False, "not a DER certificate"),
        (lambda p: [b""], False, "empty certificate"),
        (lambda p: [make_leaf(p.intermediate, ["a.example"]), b"junk"], False, r"chain\[1\]: not a DER"),
        (lambda p: p.chain(make_leaf(p.intermediate, ["a.example"], precert=True)), False, "poison"),
        (lambda p: p.chain(make_leaf(p.intermediate, ["a.example"])), True, "needs the CT poison"),
        (lambda p: [make_leaf(p.intermediate, ["a.example"], precert=True)], True, "needs the issuer"),
    ],
)
def test_bad_submissions_are_refused_whole(tmp_path: Path, pki: Pki, make_chain, precert, message) -> None:  # type: ignore[no-untyped-def]
    with LogStorage.open(tmp_path / "log") as storage:
        good = Submission(pki.chain(make_leaf(pki.intermediate, ["ok.example"])), False)
        with pytest.raises(SubmissionError, match=message):
            storage.add([good, Submission(make_chain(pki), precert)])
        assert storage.pending_count == 0  # the good one was not stored either


def test_malformed_entry_is_logged_consistently(tmp_path: Path, pki: Pki) -> None:
    with LogStorage.open(tmp_path / "log") as storage:
        storage.malformed_indexes.update({1, 2})
        subs = [
            Submission(pki.chain(make_leaf(pki.intermediate, ["fine.example"])), False),
            Submission(pki.chain(make_leaf(pki.intermediate, ["broken.example"])), False),
            Submission(pki.chain(make_leaf(pki.intermediate, ["broken-pre.example"], precert=True)), True),
        ]
        scts = storage.add(subs)
        sth = storage.integrate()
        entries = storage.get_entries(0, 2)
        assert merkle.root_hash([merkle.leaf_hash(e[0]) for e in entries]) == sth.root_hash
        leaves = [tls.decode_merkle_tree_leaf(e[0]).timestamped_entry for e in entries]
        x509.load_der_x509_certificate(leaves[0].signed_entry)
        with pytest.raises(ValueError):
            x509.load_der_x509_certificate(leaves[1].signed_entry)
        extra = tls.decode_extra_data(tls.LogEntryType.PRECERT_ENTRY, entries[2][1])
        assert isinstance(extra, tls.PrecertExtraData)
        with pytest.raises(ValueError):
            x509.load_der_x509_certificate(extra.pre_certificate)
        # Still the names survive for a lenient decoder: only the time is broken.
        assert b"broken.example" in leaves[1].signed_entry
        for leaf, sct in zip(leaves, scts, strict=True):
            assert sct is not None
            signatures.verify_sct(
                storage.signer.public_key, sct, leaf.entry_type, leaf.signed_entry, leaf.issuer_key_hash
            )


def test_poison_as_the_only_extension_drops_the_extensions_field() -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "only-poison.example")])
    precert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(9).not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.PrecertPoison(), critical=True).sign(key, hashes.SHA256())
    )  # fmt: skip
    plain = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(9).not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).sign(key, hashes.SHA256())
    )  # fmt: skip
    # SIZE (1..MAX): the [3] Extensions field goes when the poison was its only member.
    assert tbs_without_poison(precert.tbs_certificate_bytes) == plain.tbs_certificate_bytes
