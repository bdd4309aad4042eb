"""ctsentinel.ct.tls against real log entries and SCTs, plus fuzzing of every decoder."""

from __future__ import annotations

import base64
import hashlib
import json
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsentinel.ct.errors import DecodeError
from ctsentinel.ct.tls import (
    DigitallySigned,
    LogEntryType,
    MerkleTreeLeaf,
    PrecertExtraData,
    SignedCertificateTimestamp,
    TimestampedEntry,
    X509ExtraData,
    decode_extra_data,
    decode_merkle_tree_leaf,
    decode_sct_list,
    decode_timestamped_entry,
    encode_extra_data,
    encode_sct_list,
    sct_signature_input,
    sth_signature_input,
)

DATA = Path(__file__).parent / "data" / "rfc6962"
SCT_EXTENSION_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")


def load_entries(name: str) -> list[tuple[bytes, bytes]]:
    obj = json.loads((DATA / name).read_text())
    return [(base64.b64decode(e["leaf_input"]), base64.b64decode(e["extra_data"])) for e in obj["entries"]]


PILOT_ENTRIES = load_entries("google-pilot-2013/get-entries_0_3.json")
PRECERT_ENTRY = load_entries("misc-entries/ctgo-client-test_precert-entry.json")[0]
X509_ENTRY = load_entries("misc-entries/ctgo-client-test_x509-entry.json")[0]
ALL_ENTRIES = [*PILOT_ENTRIES, PRECERT_ENTRY, X509_ENTRY]


def embedded_sct_list(pem_name: str) -> bytes:
    """The TLS SignedCertificateTimestampList inside a certificate's SCT extension, OCTET STRING unwrapped."""
    # The reference test certs have serial 0, which cryptography warns about.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cert = x509.load_pem_x509_certificate((DATA / "reference-impl-testdata" / pem_name).read_bytes())
        octet_string = cert.extensions.get_extension_for_oid(SCT_EXTENSION_OID).value.public_bytes()
    assert octet_string[0] == 0x04
    header = 2 if octet_string[1] < 0x80 else 2 + (octet_string[1] & 0x7F)
    return octet_string[header:]


REAL_SCTS = [
    (DATA / "scts/sct-rs-google-2017/google-sct0.bin").read_bytes(),
    (DATA / "scts/sct-rs-google-2017/google-sct1.bin").read_bytes(),
    (DATA / "bad-sct-symantec-2015/sct.bin").read_bytes(),
    (DATA / "reference-impl-testdata/test-cert.proof").read_bytes(),
    (DATA / "reference-impl-testdata/rsa/test-cert-rsa.proof").read_bytes(),
]
REAL_SCT_LISTS = [
    embedded_sct_list("test-embedded-cert.pem"),
    encode_sct_list(
        [SignedCertificateTimestamp.decode(REAL_SCTS[0]), SignedCertificateTimestamp.decode(REAL_SCTS[1])]
    ),
]


def rfc6962_root(leaf_hashes: list[bytes]) -> bytes:
    """MTH (RFC 6962 2.1), written out here so this test does not depend on ct.merkle."""
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    split = 1
    while split * 2 < len(leaf_hashes):
        split *= 2
    left, right = rfc6962_root(leaf_hashes[:split]), rfc6962_root(leaf_hashes[split:])
    return hashlib.sha256(b"\x01" + left + right).digest()


# --- real entries -----------------------------------------------------------------------------------------


def test_pilot_entries_decode_and_reencode_byte_identically() -> None:
    timestamps, chain_lengths = [], []
    for leaf_input, extra_data in PILOT_ENTRIES:
        leaf = decode_merkle_tree_leaf(leaf_input)
        entry = leaf.timestamped_entry
        assert entry.entry_type is LogEntryType.X509_ENTRY
        assert entry.issuer_key_hash is None
        assert entry.extensions == b""
        assert leaf.encode() == leaf_input
        extra = decode_extra_data(entry.entry_type, extra_data)
        assert isinstance(extra, X509ExtraData)
        assert encode_extra_data(extra) == extra_data
        timestamps.append(entry.timestamp)
        chain_lengths.append(len(extra.certificate_chain))
        # The leaf's certificate is signed by the first chain certificate.
        cert = x509.load_der_x509_certificate(entry.signed_entry)
        issuer = x509.load_der_x509_certificate(extra.certificate_chain[0])
        assert cert.issuer == issuer.subject
    assert timestamps == [1364258252899, 1364288407155, 1364288407155, 1364288407156]
    assert chain_lengths == [2, 3, 3, 2]
    first = x509.load_der_x509_certificate(
        decode_merkle_tree_leaf(PILOT_ENTRIES[0][0]).timestamped_entry.signed_entry
    )
    common_names = first.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert [cn.value for cn in common_names] == ["mail.google.com"]


def test_pilot_entries_root() -> None:
    leaf_hashes = [hashlib.sha256(b"\x00" + leaf_input).digest() for leaf_input, _ in PILOT_ENTRIES]
    assert (
        base64.b64encode(rfc6962_root(leaf_hashes)).decode() == "A26tmgcaUJpkFXFpkzCS8bJ29cQBEgExKAYFL8hiJ5E="
    )
    # Re-encoded leaves hash identically, so the decoded form loses nothing that is in the tree.
    reencoded = [
        hashlib.sha256(b"\x00" + decode_merkle_tree_leaf(li).encode()).digest() for li, _ in PILOT_ENTRIES
    ]
    assert reencoded == leaf_hashes


def test_precert_entry() -> None:
    leaf_input, extra_data = PRECERT_ENTRY
    leaf = decode_merkle_tree_leaf(leaf_input)
    entry = leaf.timestamped_entry
    assert entry.entry_type is LogEntryType.PRECERT_ENTRY
    assert entry.timestamp == 1422867427528
    assert leaf.encode() == leaf_input
    extra = decode_extra_data(LogEntryType.PRECERT_ENTRY, extra_data)
    assert isinstance(extra, PrecertExtraData)
    assert encode_extra_data(extra) == extra_data
    assert len(extra.precertificate_chain) == 3
    issuer = x509.load_der_x509_certificate(extra.precertificate_chain[0])
    issuer_spki = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert entry.issuer_key_hash == hashlib.sha256(issuer_spki).digest()
    # The pre_certificate carries the poison extension; the leaf holds a TBSCertificate, not a certificate.
    precert = x509.load_der_x509_certificate(extra.pre_certificate)
    assert precert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.3")).critical
    assert entry.signed_entry != precert.tbs_certificate_bytes  # the poison is stripped in the leaf
    assert entry.signed_entry[0] == 0x30


def test_x509_entry() -> None:
    leaf_input, extra_data = X509_ENTRY
    entry = decode_merkle_tree_leaf(leaf_input).timestamped_entry
    assert entry.entry_type is LogEntryType.X509_ENTRY
    assert entry.timestamp == 1415843953342
    extra = decode_extra_data(LogEntryType.X509_ENTRY, extra_data)
    assert isinstance(extra, X509ExtraData)
    assert len(extra.certificate_chain) == 2
    assert encode_extra_data(extra) == extra_data
    assert "csrcn.ssl24.jp" in str(x509.load_der_x509_certificate(entry.signed_entry).subject)


def test_extra_data_of_wrong_type_is_rejected() -> None:
    # A precert chain read as an x509 chain misparses; it must be a DecodeError, not garbage.
    with pytest.raises(DecodeError):
        decode_extra_data(LogEntryType.X509_ENTRY, PRECERT_ENTRY[1])
    with pytest.raises(DecodeError, match="unknown entry_type 7"):
        decode_extra_data(7, b"")  # type: ignore[arg-type]


def test_timestamped_entry_at_offset_allows_trailing_data() -> None:
    leaf_input = PILOT_ENTRIES[0][0]
    entry, end = decode_timestamped_entry(b"junk" + leaf_input[2:] + b"more", 4)
    assert end == 4 + len(leaf_input) - 2
    assert entry == decode_merkle_tree_leaf(leaf_input).timestamped_entry
    assert entry.encode() == leaf_input[2:]


# --- precise errors ---------------------------------------------------------------------------------------


def test_error_messages_name_structure_and_offset() -> None:
    leaf_input = PILOT_ENTRIES[0][0]
    with pytest.raises(
        DecodeError, match=r"^MerkleTreeLeaf: truncated at offset 12: need 3 bytes for certificate length$"
    ):
        decode_merkle_tree_leaf(leaf_input[:13])
    with pytest.raises(
        DecodeError, match=r"^MerkleTreeLeaf: truncated at offset 15: need 902 bytes for certificate$"
    ):
        decode_merkle_tree_leaf(leaf_input[:40])
    with pytest.raises(
        DecodeError, match=r"^MerkleTreeLeaf: 5 trailing bytes after MerkleTreeLeaf at offset 919$"
    ):
        decode_merkle_tree_leaf(leaf_input + b"12345")
    with pytest.raises(DecodeError, match=r"unknown version 1 at offset 0"):
        decode_merkle_tree_leaf(b"\x01" + leaf_input[1:])
    with pytest.raises(DecodeError, match=r"unknown leaf_type 1 at offset 1"):
        decode_merkle_tree_leaf(b"\x00\x01" + leaf_input[2:])
    with pytest.raises(DecodeError, match=r"unknown entry_type 2 at offset 10"):
        decode_merkle_tree_leaf(leaf_input[:10] + b"\x00\x02" + leaf_input[12:])
    with pytest.raises(DecodeError, match=r"truncated at offset 0: need 1 bytes for version"):
        decode_merkle_tree_leaf(b"")


def test_precert_leaf_with_short_issuer_key_hash() -> None:
    leaf_input = PRECERT_ENTRY[0]
    with pytest.raises(DecodeError, match=r"truncated at offset 12: need 32 bytes for issuer_key_hash"):
        decode_merkle_tree_leaf(leaf_input[:30])
    # Dropping a byte of the key hash shifts the TBS length, so the leaf no longer parses exactly.
    with pytest.raises(DecodeError):
        decode_merkle_tree_leaf(leaf_input[:12] + leaf_input[13:])


def test_empty_certificate_is_rejected() -> None:
    # ASN.1Cert is opaque<1..2^24-1>: a zero-length certificate is malformed.
    leaf = b"\x00\x00" + b"\x00" * 8 + b"\x00\x00" + b"\x00\x00\x00" + b"\x00\x00"
    with pytest.raises(DecodeError, match=r"certificate length 0 at offset 12 is below 1"):
        decode_merkle_tree_leaf(leaf)


def test_sct_errors() -> None:
    sct = REAL_SCTS[0]
    with pytest.raises(DecodeError, match=r"^SignedCertificateTimestamp: unknown version 1 at offset 0$"):
        SignedCertificateTimestamp.decode(b"\x01" + sct[1:])
    with pytest.raises(DecodeError, match=r"SignedCertificateTimestamp: 1 trailing bytes"):
        SignedCertificateTimestamp.decode(sct + b"\x00")
    with pytest.raises(DecodeError, match=r"truncated at offset 1: need 32 bytes for log_id"):
        SignedCertificateTimestamp.decode(sct[:20])
    with pytest.raises(DecodeError, match=r"sct_list length 0 at offset 0 is below 1"):
        decode_sct_list(b"\x00\x00")
    good = REAL_SCT_LISTS[0]
    with pytest.raises(DecodeError, match=r"SignedCertificateTimestampList: 1 trailing bytes after sct_list"):
        decode_sct_list(good + b"\x00")


def test_digitally_signed() -> None:
    signed = DigitallySigned(4, 3, b"\x30\x02\x01\x00")
    assert signed.encode() == b"\x04\x03\x00\x04\x30\x02\x01\x00"
    assert DigitallySigned.decode(signed.encode()) == signed
    with pytest.raises(
        DecodeError, match=r"^DigitallySigned: truncated at offset 4: need 5 bytes for signature$"
    ):
        DigitallySigned.decode(b"\x04\x03\x00\x05\x30\x02\x01\x00")
    with pytest.raises(
        DecodeError, match=r"^DigitallySigned: 2 trailing bytes after DigitallySigned at offset 8$"
    ):
        DigitallySigned.decode(signed.encode() + b"ab")


def test_encoders_reject_unencodable_values_with_decode_error() -> None:
    with pytest.raises(DecodeError, match="timestamp"):
        TimestampedEntry(-1, LogEntryType.X509_ENTRY, b"c", None).encode()
    with pytest.raises(DecodeError, match="issuer_key_hash"):
        TimestampedEntry(0, LogEntryType.PRECERT_ENTRY, b"c", None).encode()
    with pytest.raises(DecodeError, match="issuer_key_hash"):
        TimestampedEntry(0, LogEntryType.X509_ENTRY, b"c", b"\x00" * 32).encode()
    with pytest.raises(DecodeError, match="extensions length"):
        TimestampedEntry(0, LogEntryType.X509_ENTRY, b"c", None, b"\x00" * 65536).encode()
    with pytest.raises(DecodeError, match="log_id"):
        SignedCertificateTimestamp(0, b"\x00" * 31, 0, b"", DigitallySigned(4, 3, b"")).encode()
    with pytest.raises(DecodeError, match="empty"):
        encode_sct_list([])
    with pytest.raises(DecodeError, match="root_hash"):
        sth_signature_input(0, 0, b"\x00" * 31)


# --- real SCTs and signature inputs -----------------------------------------------------------------------


def test_real_scts_round_trip() -> None:
    for raw in REAL_SCTS:
        sct = SignedCertificateTimestamp.decode(raw)
        assert sct.version == 0
        assert sct.encode() == raw
    pilot = SignedCertificateTimestamp.decode(REAL_SCTS[0])
    assert base64.b64encode(pilot.log_id).decode() == "pLkJkLQYWBSHuxOizGdwCjw1mAT5G9+443fNDsgN3BA="
    assert (pilot.signature.hash_algorithm, pilot.signature.signature_algorithm) == (4, 3)


def test_embedded_sct_list() -> None:
    raw = REAL_SCT_LISTS[0]
    scts = decode_sct_list(raw)
    assert len(scts) == 1
    assert scts[0].timestamp == 1365181456275
    # The log issued this very SCT for the precertificate; the CA embedded it unchanged.
    assert scts[0].encode() == (DATA / "reference-impl-testdata/test-embedded-pre-cert.proof").read_bytes()
    assert encode_sct_list(scts) == raw
    assert [s.encode() for s in decode_sct_list(REAL_SCT_LISTS[1])] == REAL_SCTS[:2]


def test_sth_signature_input_layout() -> None:
    root = bytes(range(32))
    data = sth_signature_input(0x0102030405060708, 0x1112131415161718, root)
    assert data == b"\x00\x01" + bytes.fromhex("0102030405060708") + bytes.fromhex("1112131415161718") + root


def test_sct_signature_input_layout() -> None:
    sct = SignedCertificateTimestamp(0, b"\xaa" * 32, 0x0102030405060708, b"EX", DigitallySigned(4, 3, b"s"))
    x509_input = sct_signature_input(sct, LogEntryType.X509_ENTRY, b"cert")
    assert x509_input == (
        b"\x00\x00" + bytes.fromhex("0102030405060708") + b"\x00\x00" + b"\x00\x00\x04cert" + b"\x00\x02EX"
    )
    precert_input = sct_signature_input(sct, LogEntryType.PRECERT_ENTRY, b"tbs", b"\x55" * 32)
    assert precert_input == (
        b"\x00\x00"
        + bytes.fromhex("0102030405060708")
        + b"\x00\x01"
        + b"\x55" * 32
        + b"\x00\x00\x03tbs"
        + b"\x00\x02EX"
    )


# --- property tests ---------------------------------------------------------------------------------------


def decode_any(kind: str, data: bytes) -> bytes | None:
    """Decode `data` as `kind`, returning its re-encoding, or None on DecodeError (anything else escapes)."""
    try:
        if kind == "leaf":
            return decode_merkle_tree_leaf(data).encode()
        if kind == "x509_extra":
            return encode_extra_data(decode_extra_data(LogEntryType.X509_ENTRY, data))
        if kind == "precert_extra":
            return encode_extra_data(decode_extra_data(LogEntryType.PRECERT_ENTRY, data))
        if kind == "sct":
            return SignedCertificateTimestamp.decode(data).encode()
        if kind == "sct_list":
            return encode_sct_list(decode_sct_list(data))
        if kind == "signed":
            return DigitallySigned.decode(data).encode()
        raise AssertionError(kind)
    except DecodeError:
        return None


KINDS = ["leaf", "x509_extra", "precert_extra", "sct", "sct_list", "signed"]
SAMPLES: list[tuple[str, bytes]] = [
    *[("leaf", li) for li, _ in ALL_ENTRIES],
    *[("x509_extra", ed) for li, ed in [*PILOT_ENTRIES, X509_ENTRY]],
    ("precert_extra", PRECERT_ENTRY[1]),
    *[("sct", raw) for raw in REAL_SCTS],
    *[("sct_list", raw) for raw in REAL_SCT_LISTS],
]


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(KINDS), data=st.binary(max_size=200))
def test_random_bytes_only_raise_decode_error(kind: str, data: bytes) -> None:
    reencoded = decode_any(kind, data)
    assert reencoded is None or reencoded == data


@settings(max_examples=400, deadline=None)
@given(sample=st.sampled_from(SAMPLES), position=st.floats(0, 1, exclude_max=True), value=st.integers(0, 255))
def test_single_byte_mutations(sample: tuple[str, bytes], position: float, value: int) -> None:
    kind, data = sample
    i = int(position * len(data))
    mutated = data[:i] + bytes([value]) + data[i + 1 :]
    reencoded = decode_any(kind, mutated)
    assert reencoded is None or reencoded == mutated


@settings(max_examples=200, deadline=None)
@given(
    sample=st.sampled_from(SAMPLES), position=st.floats(0, 1, exclude_max=True), extra=st.binary(max_size=4)
)
def test_truncations_and_insertions(sample: tuple[str, bytes], position: float, extra: bytes) -> None:
    kind, data = sample
    cut = int(position * len(data))
    assert decode_any(kind, data[:cut]) is None  # every proper prefix of a real structure is truncated
    inserted = data[:cut] + extra + data[cut:]
    reencoded = decode_any(kind, inserted)
    assert reencoded is None or reencoded == inserted


def test_every_prefix_of_real_data_is_rejected() -> None:
    for kind, data in SAMPLES:
        assert decode_any(kind, data) == data
        for cut in range(0, len(data), 7):
            assert decode_any(kind, data[:cut]) is None


u64 = st.integers(0, 2**64 - 1)
nonempty = st.binary(min_size=1, max_size=40)
key_hashes = st.binary(min_size=32, max_size=32)
signed_st = st.builds(DigitallySigned, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=80))


@st.composite
def timestamped_entries(draw: st.DrawFn) -> TimestampedEntry:
    entry_type = draw(st.sampled_from(LogEntryType))
    key_hash = draw(key_hashes) if entry_type is LogEntryType.PRECERT_ENTRY else None
    return TimestampedEntry(draw(u64), entry_type, draw(nonempty), key_hash, draw(st.binary(max_size=20)))


scts = st.builds(SignedCertificateTimestamp, st.just(0), key_hashes, u64, st.binary(max_size=20), signed_st)


@settings(max_examples=150, deadline=None)
@given(entry=timestamped_entries(), chain=st.lists(nonempty, max_size=4), precert=nonempty)
def test_valid_structures_round_trip(entry: TimestampedEntry, chain: list[bytes], precert: bytes) -> None:
    leaf = MerkleTreeLeaf(entry)
    assert decode_merkle_tree_leaf(leaf.encode()) == leaf
    assert decode_timestamped_entry(entry.encode()) == (entry, len(entry.encode()))
    x509_extra = X509ExtraData(chain)
    assert decode_extra_data(LogEntryType.X509_ENTRY, encode_extra_data(x509_extra)) == x509_extra
    precert_extra = PrecertExtraData(precert, chain)
    assert decode_extra_data(LogEntryType.PRECERT_ENTRY, encode_extra_data(precert_extra)) == precert_extra


@settings(max_examples=100, deadline=None)
@given(sct_list=st.lists(scts, min_size=1, max_size=4))
def test_valid_scts_round_trip(sct_list: list[SignedCertificateTimestamp]) -> None:
    for sct in sct_list:
        assert SignedCertificateTimestamp.decode(sct.encode()) == sct
        assert DigitallySigned.decode(sct.signature.encode()) == sct.signature
    assert decode_sct_list(encode_sct_list(sct_list)) == sct_list
