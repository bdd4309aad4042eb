"""record_from_entry and record_from_tile_leaf on real log data, and the precert/final TBS equality."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ctsentinel.certs.decode import record_from_der, record_from_entry, record_from_tile_leaf
from ctsentinel.ct.tiles import TileLeaf, decode_data_tile
from ctsentinel.ct.tls import (
    LogEntryType,
    PrecertExtraData,
    TimestampedEntry,
    X509ExtraData,
    decode_extra_data,
    decode_merkle_tree_leaf,
    encode_extra_data,
)

DATA = Path(__file__).parent / "data" / "certs"
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def pem(path: Path) -> bytes:
    m = _PEM.search(path.read_bytes())
    assert m is not None
    return base64.b64decode(b"".join(m.group(1).split()))


def entries(name: str) -> list[tuple[bytes, bytes]]:
    doc = json.loads((DATA / "entries" / name).read_text())
    return [(base64.b64decode(e["leaf_input"]), base64.b64decode(e["extra_data"])) for e in doc["entries"]]


def spki_sha256(der: bytes) -> str:
    spki = (
        x509.load_der_x509_certificate(der)
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    assert spki in der  # the re-encoding is the certificate's own bytes, so it is a fair oracle
    return hashlib.sha256(spki).hexdigest()


# --- RFC 6962 get-entries ---------------------------------------------------------------------------------


def test_pilot_first_entries() -> None:
    items = entries("get-entries_0_3.json")
    records = [record_from_entry(leaf, extra) for leaf, extra in items]
    assert [r.dns_names for r in records] == [
        ["mail.google.com"],
        ["www.struleartscentre.purchase-tickets-online.co.uk"],
        ["www.netkeiba.com"],
        ["www.oxfordplayhouse.com", "oxfordplayhouse.com"],
    ]
    first = records[0]
    assert first.issuer == "CN=Google Internet Authority,O=Google Inc,C=US"
    assert first.subject == "CN=mail.google.com,O=Google Inc,L=Mountain View,ST=California,C=US"
    assert first.serial == "1484f905000000007d3c"
    assert (first.not_before, first.not_after) == ("2013-02-20T13:34:51Z", "2013-06-07T19:43:27Z")
    for (leaf, extra), r in zip(items, records, strict=True):
        cert = decode_merkle_tree_leaf(leaf).timestamped_entry.signed_entry
        chain = decode_extra_data(LogEntryType.X509_ENTRY, extra)
        assert isinstance(chain, X509ExtraData)
        assert r.sha256 == hashlib.sha256(cert).hexdigest()
        assert r.issuer_spki_sha256 == spki_sha256(chain.certificate_chain[0])
        assert r.subject_spki_sha256 == spki_sha256(cert)
        assert (r.precert, r.error, r.ip_addresses) == (False, None, [])
        # The same certificate alone gives the same record, less the issuer key hash.
        alone = record_from_der(cert)
        alone.issuer_spki_sha256 = r.issuer_spki_sha256
        assert alone == r


def test_ctgo_precert_entry() -> None:
    ((leaf, extra),) = entries("ctgo-client-test_precert-entry.json")
    entry = decode_merkle_tree_leaf(leaf).timestamped_entry
    pre = decode_extra_data(LogEntryType.PRECERT_ENTRY, extra)
    assert isinstance(pre, PrecertExtraData) and entry.issuer_key_hash is not None
    r = record_from_entry(leaf, extra)
    assert r.precert is True and r.error is None
    assert r.issuer_spki_sha256 == entry.issuer_key_hash.hex()
    assert r.issuer_spki_sha256 == spki_sha256(pre.precertificate_chain[0])
    assert r.sha256 == hashlib.sha256(pre.pre_certificate).hexdigest()
    assert r.dns_names == ["kjasdhf.trust", "ssdfs.trust", "sdfedsf.trust", "www.sdfedsf.trust"]
    assert r.serial == "0532298c396a3e25fcaa1977e827b5f3"
    assert r.issuer == "CN=GeoTrust EV SSL TEST CA - G4,OU=FOR TEST PURPOSES ONLY,O=GeoTrust Inc.,C=US"
    # The log's TBS (poison removed by the log) and the precertificate less its poison are the same.
    assert r.tbs_sha256 == hashlib.sha256(entry.signed_entry).hexdigest()
    alone = record_from_der(pre.pre_certificate)
    assert alone.precert is True and alone.tbs_sha256 == r.tbs_sha256
    assert alone.sha256 == r.sha256 and alone.dns_names == r.dns_names


def test_ctgo_x509_entry_with_embedded_scts() -> None:
    ((leaf, extra),) = entries("ctgo-client-test_x509-entry.json")
    cert = decode_merkle_tree_leaf(leaf).timestamped_entry.signed_entry
    r = record_from_entry(leaf, extra)
    assert r.dns_names == ["csrcn.ssl24.jp"] and r.error is None and r.precert is False
    # The SCT list is dropped from the TBS hash, so it is not the hash of the certificate's own TBS.
    own_tbs = x509.load_der_x509_certificate(cert).tbs_certificate_bytes
    assert r.tbs_sha256 is not None and r.tbs_sha256 != hashlib.sha256(own_tbs).hexdigest()


def test_corrupt_entries_give_records() -> None:
    ((leaf, extra),) = entries("ctgo-client-test_precert-entry.json")
    bad_type = leaf[:10] + b"\x07" + leaf[11:]  # entry_type 0x0007
    r = record_from_entry(bad_type, extra)
    assert r.error is not None and r.error.startswith("leaf_input: ")
    assert r.sha256 == hashlib.sha256(bad_type).hexdigest()
    r = record_from_entry(leaf, extra[:-1])
    assert r.error is not None and r.error.startswith("extra_data: ")
    assert r.dns_names  # the leaf still gives the names
    assert (
        r.sha256 == hashlib.sha256(decode_merkle_tree_leaf(leaf).timestamped_entry.signed_entry).hexdigest()
    )
    x_leaf, _ = entries("get-entries_0_3.json")[0]
    r = record_from_entry(x_leaf, b"\x00\x00\x09\x00\x00\x02ab")  # the chain claims 9 bytes, has 5
    assert r.error is not None and r.error.startswith("extra_data: ") and r.issuer_spki_sha256 is None
    assert r.dns_names == ["mail.google.com"]
    # An issuer certificate that is not DER: the record says so and keeps the rest.
    junk_chain = encode_extra_data(X509ExtraData([b"\x04\x03abc"]))
    r = record_from_entry(x_leaf, junk_chain)
    assert r.error is not None and r.error.startswith("issuer certificate: ")
    assert r.dns_names == ["mail.google.com"] and r.issuer_spki_sha256 is None


# --- precertificate / final certificate pairs -------------------------------------------------------------


def test_reference_embedded_pair() -> None:
    final = record_from_der(pem(DATA / "rfc6962" / "test-embedded-cert.pem"))
    pre = record_from_der(pem(DATA / "rfc6962" / "test-embedded-pre-cert.pem"))
    assert pre.precert and not final.precert
    assert (
        final.tbs_sha256
        == pre.tbs_sha256
        == "f891a12ef5a416b880296328e399ac1fce0b3d794781d11b62b33375beb3a956"
    )
    assert final.serial == pre.serial and final.sha256 != pre.sha256


def test_cryptography_scts_pair() -> None:
    # cryptography-scts-tbs-precert.der is the TBSCertificate that the logs signed for cryptography-scts.pem:
    # its precertificate's TBS without the poison, i.e. the certificate's TBS without the SCT list.
    cert_der = pem(DATA / "corpus" / "cryptography_vectors" / "cryptography-scts.pem")
    tbs = (DATA / "corpus" / "cryptography_vectors" / "cryptography-scts-tbs-precert.der").read_bytes()
    final = record_from_der(cert_der)
    assert final.tbs_sha256 == hashlib.sha256(tbs).hexdigest()
    bare = record_from_der(tbs)
    assert bare.error == "Certificate: input is a bare TBSCertificate, not a Certificate"
    assert bare.tbs_sha256 == final.tbs_sha256
    assert (bare.serial, bare.dns_names, bare.subject) == (final.serial, final.dns_names, final.subject)


def test_pair_broken_by_a_flipped_byte() -> None:
    der = bytearray(pem(DATA / "rfc6962" / "test-embedded-cert.pem"))
    pre = record_from_der(pem(DATA / "rfc6962" / "test-embedded-pre-cert.pem"))
    serial_at = 15  # inside the serialNumber of the TBSCertificate
    der[serial_at] ^= 0x01
    assert record_from_der(bytes(der)).tbs_sha256 != pre.tbs_sha256


# --- static-ct-api data tiles -----------------------------------------------------------------------------

NAVIGLI = DATA / "navigli" / "tile"


@pytest.fixture(scope="module")
def navigli() -> list[TileLeaf]:
    return decode_data_tile((NAVIGLI / "data" / "000").read_bytes())


def test_navigli_tile_matches_sunlight_names(navigli: list[TileLeaf]) -> None:
    lines = (NAVIGLI / "names" / "000").read_text().splitlines()
    assert len(navigli) == len(lines) == 256
    for n, (leaf, line) in enumerate(zip(navigli, lines, strict=True)):
        r = record_from_tile_leaf(leaf)
        names = json.loads(line)
        assert r.dns_names == [d.lower() for d in names.get("DNS", [])], n
        cn = names.get("Subject", {}).get("CommonName")
        if cn is not None:
            assert r.subject is not None and f"CN={cn}" in r.subject
        entry = leaf.timestamped_entry
        assert r.precert is True and r.error is None
        assert entry.issuer_key_hash is not None and leaf.pre_certificate is not None
        assert r.issuer_spki_sha256 == entry.issuer_key_hash.hex()
        assert r.sha256 == hashlib.sha256(leaf.pre_certificate).hexdigest()
        assert r.tbs_sha256 == hashlib.sha256(entry.signed_entry).hexdigest()
        assert r.not_before is not None and r.not_after is not None and r.serial is not None


def test_navigli_precert_tbs_matches_its_precertificate(navigli: list[TileLeaf]) -> None:
    for leaf in navigli[:32]:
        assert leaf.pre_certificate is not None
        alone = record_from_der(leaf.pre_certificate)
        r = record_from_tile_leaf(leaf)
        assert alone.precert and alone.tbs_sha256 == r.tbs_sha256
        assert alone.dns_names == r.dns_names and alone.serial == r.serial


def test_tile_x509_leaf_with_issuers() -> None:
    leaf_input, extra = entries("get-entries_0_3.json")[0]
    entry = decode_merkle_tree_leaf(leaf_input).timestamped_entry
    chain = decode_extra_data(LogEntryType.X509_ENTRY, extra)
    assert isinstance(chain, X509ExtraData)
    issuer = chain.certificate_chain[0]
    fingerprint = hashlib.sha256(issuer).digest()
    x509_entry = TimestampedEntry(entry.timestamp, entry.entry_type, entry.signed_entry, None, b"")
    leaf = TileLeaf(x509_entry, None, (fingerprint,))
    with_issuer = record_from_tile_leaf(leaf, {fingerprint: issuer})
    assert with_issuer.issuer_spki_sha256 == spki_sha256(issuer)
    assert with_issuer == record_from_entry(leaf_input, extra)
    without = record_from_tile_leaf(leaf)
    assert without.issuer_spki_sha256 is None and without.dns_names == ["mail.google.com"]


def test_tile_precert_without_precertificate() -> None:
    ((leaf_input, _),) = entries("ctgo-client-test_precert-entry.json")
    entry = decode_merkle_tree_leaf(leaf_input).timestamped_entry
    r = record_from_tile_leaf(TileLeaf(entry, None, ()))
    assert r.error is not None and "without pre_certificate" in r.error and "\n" not in r.error
    assert r.dns_names and r.precert
