"""certs.issuer.verified_issuer: the issuer is the key whose signature verifies, whatever the chain says."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from ctsentinel.certs.decode import record_from_entry
from ctsentinel.certs.issuer import IssuerCert, verified_issuer
from ctsentinel.ct.tls import (
    LogEntryType,
    MerkleTreeLeaf,
    TimestampedEntry,
    X509ExtraData,
    decode_extra_data,
    decode_merkle_tree_leaf,
    encode_extra_data,
)

ENTRIES = Path(__file__).parent / "data" / "certs" / "entries"
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def certificate(subject: str, key: Key, signer: Key, issuer: str, *, pss: bool = False) -> bytes:
    builder = (
        x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    )  # fmt: skip
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    if pss:
        pss_padding = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
        cert = builder.sign(signer, algorithm, rsa_padding=pss_padding)
    else:
        cert = builder.sign(signer, algorithm)
    return cert.public_bytes(serialization.Encoding.DER)


def spki_hash(key: Key) -> str:
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    return {
        "rsa": rsa.generate_private_key(65537, 2048),
        "ecdsa": ec.generate_private_key(ec.SECP384R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "other": ec.generate_private_key(ec.SECP256R1()),
    }


@pytest.mark.parametrize("kind", ["rsa", "rsa-pss", "ecdsa", "ed25519"])
def test_the_signing_key_is_found_wherever_the_chain_puts_it(kind: str, keys: dict[str, Key]) -> None:
    ca_key, other = keys[kind.split("-")[0]], keys["other"]
    ca = certificate("CA", ca_key, ca_key, "CA", pss=kind == "rsa-pss")
    decoy = certificate("CA", other, other, "CA")  # the same name, another key
    leaf = certificate("leaf.example", keys["other"], ca_key, "CA", pss=kind == "rsa-pss")
    assert verified_issuer(leaf, [ca]) == IssuerCert(ca, spki_hash(ca_key))
    assert verified_issuer(leaf, [decoy, decoy, ca]) == IssuerCert(ca, spki_hash(ca_key))
    assert verified_issuer(leaf, [decoy]) is None
    assert verified_issuer(leaf, []) is None


def test_what_cannot_be_read_is_no_issuer(keys: dict[str, Key]) -> None:
    ca_key = keys["ecdsa"]
    ca = certificate("CA", ca_key, ca_key, "CA")
    leaf = certificate("leaf.example", keys["other"], ca_key, "CA")
    assert verified_issuer(leaf, [b"", b"\x30\x03\x02\x01\x00", leaf[:-5], ca]) == IssuerCert(
        ca, spki_hash(ca_key)
    )
    for broken in (b"", b"\x30\x00", leaf[:-1], leaf[:-1] + bytes([leaf[-1] ^ 1]), b"\x30\x80" + leaf[2:]):
        assert verified_issuer(broken, [ca]) is None


def test_real_final_certificates_verify_against_their_logged_chain() -> None:
    document = json.loads((ENTRIES / "get-entries_0_3.json").read_text())
    for item in document["entries"]:
        leaf_input, extra = base64.b64decode(item["leaf_input"]), base64.b64decode(item["extra_data"])
        entry = decode_merkle_tree_leaf(leaf_input).timestamped_entry
        chain = decode_extra_data(LogEntryType.X509_ENTRY, extra)
        assert isinstance(chain, X509ExtraData)
        found = verified_issuer(entry.signed_entry, reversed(chain.certificate_chain))
        assert found is not None and found.der == chain.certificate_chain[0]
        # The record's issuer is the verified one, and without verification it is unknown.
        assert record_from_entry(leaf_input, extra).issuer_spki_sha256 == found.spki_sha256
        assert record_from_entry(leaf_input, extra, verify_issuer=False).issuer_spki_sha256 is None


def test_a_self_signed_certificate_logged_alone_is_its_own_issuer(keys: dict[str, Key]) -> None:
    root_key = keys["ecdsa"]
    root = certificate("Root", root_key, root_key, "Root")
    leaf = certificate("leaf.example", keys["other"], root_key, "Root")

    def logged(der: bytes, chain: list[bytes]) -> tuple[bytes, bytes]:
        entry = TimestampedEntry(1, LogEntryType.X509_ENTRY, der, None)
        return MerkleTreeLeaf(entry).encode(), encode_extra_data(X509ExtraData(chain))

    assert record_from_entry(*logged(root, [])).issuer_spki_sha256 == spki_hash(root_key)
    unknown = record_from_entry(*logged(leaf, []))
    assert unknown.issuer_spki_sha256 is None
    assert unknown.error == "issuer certificate: none in the chain, and not self-signed; issuer unknown"
    forged = record_from_entry(*logged(leaf, [leaf, keyless_decoy(keys)]))
    assert forged.issuer_spki_sha256 is None and forged.error == (
        "issuer certificate: none of the 2 in the chain verifies this certificate's signature; issuer unknown"
    )
    assert record_from_entry(*logged(leaf, [root])).issuer_spki_sha256 == spki_hash(root_key)


def keyless_decoy(keys: dict[str, Key]) -> bytes:
    return certificate("Root", keys["rsa"], keys["rsa"], "Root")
