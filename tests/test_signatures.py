"""ctsentinel.ct.signatures: real STH and SCT signatures from production and reference logs."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ctsentinel.ct.errors import DecodeError, SignatureError
from ctsentinel.ct.signatures import LogKey, LogSigner, verify_sct, verify_sth
from ctsentinel.ct.sth import SignedTreeHead
from ctsentinel.ct.tls import DigitallySigned, LogEntryType, SignedCertificateTimestamp, decode_sct_list

DATA = Path(__file__).parent / "data" / "rfc6962"
REF = DATA / "reference-impl-testdata"
SYNTH = DATA / "scts" / "sct-rs-synthetic"


def key(name: str) -> LogKey:
    return LogKey.from_pem((DATA / "keys" / f"{name}.pem").read_bytes())


def sth(path: str) -> SignedTreeHead:
    return SignedTreeHead.from_json(json.loads((DATA / path).read_text()))


def spki_der(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_cert(path: Path) -> x509.Certificate:
    # The reference test CA has serial 0, which cryptography warns about.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return x509.load_pem_x509_certificate(path.read_bytes())


def cert_der(path: Path) -> bytes:
    return load_cert(path).public_bytes(serialization.Encoding.DER)


# --- keys -------------------------------------------------------------------------------------------------

# Log IDs as listed in the ctdata README (checked there against the Google/Apple log lists).
README_LOG_IDS = {
    "google-pilot": "pLkJkLQYWBSHuxOizGdwCjw1mAT5G9+443fNDsgN3BA=",
    "google-aviator": "aPaY+B9kgr46jO65KB1M/HFRXWeT1ETRCmesu09P+8Q=",
    "venafi": "rDua7X+pZ0dXFZ5tfVdWcvnZgQCUHpve/+yhMTt1eC0=",
    "symantec": "3esdK3oNT6Ygi4GtgWhwfi6OnQHVXIiNPRHEzbbsvsw=",
    "digicert-yeti2018": "wRZK4Kdy0tQ5LcgKwQdw1PDEm96ZGkhAwfoHUWT2M2A=",
    "google-argon2024": "7s3QZNXbGs7FXLedtM0TojKHRny87N7DUUhZRnEftZs=",
    "google-argon2026h1": "DleUvPOuqT4zGyyZB7P3kN+bwj1xMiXdIaklrGHFTiE=",
    "cloudflare-nimbus-2019": "dH7agzGtMxCRIZzOJU9CcMK//V5CIAjGNzV55hB7zFY=",
    "google-argon-2017": "+tTJfMSe4vishcXqXOoJ0CINu/TknGtQZi/4aPhrjCg=",
    "digicert-nessie-2025": "5tIxY0B3jMEQQQbXcbnOwdJA9paEhvu6hzId/R43jlA=",
}


@pytest.mark.parametrize(("name", "log_id"), sorted(README_LOG_IDS.items()))
def test_log_ids(name: str, log_id: str) -> None:
    log_key = key(name)
    assert base64.b64encode(log_key.log_id).decode() == log_id
    assert log_key.log_id == hashlib.sha256(log_key.spki_der).digest()


def test_key_constructors_agree() -> None:
    pem = (DATA / "keys" / "google-pilot.pem").read_bytes()
    from_pem = LogKey.from_pem(pem)
    from_der = LogKey.from_der(from_pem.spki_der)
    from_b64 = LogKey.from_base64(base64.b64encode(from_pem.spki_der).decode())
    assert from_pem == from_der == from_b64
    assert len({from_pem, from_der, from_b64}) == 1
    assert from_pem != key("google-aviator")
    assert "pLkJkLQYWBSHuxOizGdwCjw1mAT5G9+443fNDsgN3BA=" in repr(from_pem)
    # PEM text around the block (as in openssl output) is fine.
    assert LogKey.from_pem(b"Public-Key: (256 bit)\n" + pem + b"\ntrailer\n") == from_pem


def test_bad_keys() -> None:
    with pytest.raises(DecodeError, match=r"^LogKey: no '-----BEGIN PUBLIC KEY-----' PEM block$"):
        LogKey.from_pem(b"hello")
    with pytest.raises(DecodeError, match="LogKey: PEM body is not valid base64"):
        LogKey.from_pem(b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n")
    with pytest.raises(DecodeError, match="LogKey: key is not valid base64"):
        LogKey.from_base64("MFkw#")
    with pytest.raises(DecodeError, match="LogKey: not a SubjectPublicKeyInfo DER"):
        LogKey.from_der(b"\x30\x03\x30\x01\x00")
    # A bare PKCS#1 RSAPublicKey loads in cryptography, but its hash is not a log ID.
    with pytest.raises(DecodeError, match="LogKey: not a SubjectPublicKeyInfo DER"):
        LogKey.from_der((SYNTH / "rsa-2048-pub.raw").read_bytes())
    with pytest.raises(SignatureError, match="unsupported elliptic curve secp521r1"):
        LogKey.from_der(spki_der(ec.generate_private_key(ec.SECP521R1()).public_key()))
    with pytest.raises(SignatureError, match="RSA key of 1024 bits is too small"):
        LogKey.from_der(spki_der(rsa.generate_private_key(65537, 1024).public_key()))
    with pytest.raises(SignatureError, match="unsupported public key type"):
        LogKey.from_der(spki_der(ed25519.Ed25519PrivateKey.generate().public_key()))


# --- STHs -------------------------------------------------------------------------------------------------


def test_909_pilot_sths_verify() -> None:
    pilot = key("google-pilot")
    lines = (DATA / "google-pilot-2013/get-sth-responses.jsonl").read_text().splitlines()
    assert len(lines) == 909
    sizes = set()
    for line in lines:
        tree_head = SignedTreeHead.from_json(json.loads(line))
        verify_sth(pilot, tree_head)
        sizes.add(tree_head.tree_size)
    assert len(sizes) == 215


GOOD_STHS = [
    ("google-pilot-2013/get-sth_2741521.json", "google-pilot"),
    ("google-pilot-2014/get-sth_3721782.json", "google-pilot"),
    ("google-aviator-2015/get-sth_8285124.json", "google-aviator"),
    ("google-aviator-2015/get-sth_8285157.json", "google-aviator"),
    ("google-aviator-2015/get-sth_8285192.json", "google-aviator"),
    ("google-argon2024-2024/get-sth_1267285836.json", "google-argon2024"),
    ("digicert-yeti2018-2020/get-sth_90785920.json", "digicert-yeti2018"),
    ("venafi-2015/get-sth_1130.json", "venafi"),
    ("misc-sths/google-argon-2017_get-sth_7834486.json", "google-argon-2017"),
    ("misc-sths/google-pilot_get-sth_344104340.json", "google-pilot"),
    ("misc-sths/google-pilot_get-sth_237390491.json", "google-pilot"),
    ("misc-sths/cloudflare-nimbus-2019_get-sth_475036812.json", "cloudflare-nimbus-2019"),
    ("misc-sths/digicert-nessie-2025_get-sth_881954985.json", "digicert-nessie-2025"),
    ("misc-sths/google-argon2026h1_get-sth_2786064990.json", "google-argon2026h1"),
]


@pytest.mark.parametrize(("path", "key_name"), GOOD_STHS)
def test_real_sths_verify(path: str, key_name: str) -> None:
    verify_sth(key(key_name), sth(path))


def test_unknown_2012_log_sth_verifies_with_its_key() -> None:
    log_key = LogKey.from_pem((DATA / "unknown-ecdsa-log-2012/log-key.pem").read_bytes())
    verify_sth(log_key, sth("unknown-ecdsa-log-2012/get-sth_42.json"))


def test_venafi_key_is_rsa() -> None:
    assert repr(key("venafi")).startswith("LogKey(RSA-2048 key")
    assert sth("venafi-2015/get-sth_1130.json").signature.signature_algorithm == 1


def test_altered_pilot_sth_does_not_verify() -> None:
    with pytest.raises(
        SignatureError, match=r"^SignedTreeHead \(tree_size 1979426, .*signature does not verify"
    ):
        verify_sth(key("google-pilot"), sth("google-pilot-2013/get-sth_1979426.json"))


def test_sth_under_wrong_key_does_not_verify() -> None:
    with pytest.raises(SignatureError, match="signature does not verify"):
        verify_sth(key("google-aviator"), sth("google-pilot-2014/get-sth_3721782.json"))


def flips(value: bytes) -> list[bytes]:
    return [value[:i] + bytes([value[i] ^ 0x01]) + value[i + 1 :] for i in range(len(value))]


@pytest.mark.parametrize(
    ("path", "key_name"),
    [("google-pilot-2014/get-sth_3721782.json", "google-pilot"), ("venafi-2015/get-sth_1130.json", "venafi")],
)
def test_any_flipped_byte_breaks_an_sth(path: str, key_name: str) -> None:
    log_key, good = key(key_name), sth(path)
    verify_sth(log_key, good)
    variants = [dataclasses.replace(good, root_hash=r) for r in flips(good.root_hash)]
    for ts in flips(good.timestamp.to_bytes(8, "big")):
        variants.append(dataclasses.replace(good, timestamp=int.from_bytes(ts, "big")))
    for size in flips(good.tree_size.to_bytes(8, "big")):
        variants.append(dataclasses.replace(good, tree_size=int.from_bytes(size, "big")))
    for encoded in flips(good.signature.encode()):
        # A flip in the signature's length prefix no longer decodes at all: that is a rejection too.
        try:
            signature = DigitallySigned.decode(encoded)
        except DecodeError:
            continue
        variants.append(dataclasses.replace(good, signature=signature))
    assert len(variants) >= 32 + 8 + 8 + len(good.signature.signature)
    for variant in variants:
        with pytest.raises(SignatureError):
            verify_sth(log_key, variant)


def test_algorithm_mismatch_is_named() -> None:
    good = sth("google-pilot-2014/get-sth_3721782.json")
    pilot = key("google-pilot")
    as_rsa = dataclasses.replace(good, signature=dataclasses.replace(good.signature, signature_algorithm=1))
    with pytest.raises(
        SignatureError, match=r"signature algorithm RSA \(1\) does not match the ECDSA P-256 key"
    ):
        verify_sth(pilot, as_rsa)
    as_sha384 = dataclasses.replace(good, signature=dataclasses.replace(good.signature, hash_algorithm=5))
    with pytest.raises(
        SignatureError, match=r"hash algorithm SHA384 \(5\) is not the SHA256 \(4\) required with"
    ):
        verify_sth(pilot, as_sha384)
    as_md5 = dataclasses.replace(good, signature=dataclasses.replace(good.signature, hash_algorithm=1))
    with pytest.raises(SignatureError, match=r"hash algorithm unknown \(1\)"):
        verify_sth(pilot, as_md5)
    venafi_sth = sth("venafi-2015/get-sth_1130.json")
    as_ecdsa = dataclasses.replace(
        venafi_sth, signature=dataclasses.replace(venafi_sth.signature, signature_algorithm=3)
    )
    with pytest.raises(
        SignatureError, match=r"signature algorithm ECDSA \(3\) does not match the RSA-2048 key"
    ):
        verify_sth(key("venafi"), as_ecdsa)


# --- SCTs -------------------------------------------------------------------------------------------------


def test_sct_rs_google_scts_verify() -> None:
    folder = DATA / "scts/sct-rs-google-2017"
    cert = (folder / "google-cert.bin").read_bytes()
    for sct_file, point_file, key_name in [
        ("google-sct0.bin", "google-pilot-pubkey.bin", "google-pilot"),
        ("google-sct1.bin", "symantec-log-pubkey.bin", "symantec"),
    ]:
        # The raw EC point in sct.rs's test data is the same key as the PEM from the log list.
        point = (folder / point_file).read_bytes()
        from_point = LogKey.from_der(
            spki_der(ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point))
        )
        assert from_point == key(key_name)
        sct = SignedCertificateTimestamp.decode((folder / sct_file).read_bytes())
        assert sct.log_id == from_point.log_id
        verify_sct(from_point, sct, LogEntryType.X509_ENTRY, cert)
        with pytest.raises(SignatureError, match="signature does not verify"):
            verify_sct(from_point, sct, LogEntryType.X509_ENTRY, cert[:-1] + bytes([cert[-1] ^ 1]))
        with pytest.raises(SignatureError, match="signature does not verify"):
            verify_sct(
                from_point,
                dataclasses.replace(sct, timestamp=sct.timestamp + 1),
                LogEntryType.X509_ENTRY,
                cert,
            )
        with pytest.raises(SignatureError, match="signature does not verify"):
            verify_sct(
                from_point, dataclasses.replace(sct, extensions=b"\x00"), LogEntryType.X509_ENTRY, cert
            )


def test_symantec_2015_bad_sct_does_not_verify() -> None:
    sct = SignedCertificateTimestamp.decode((DATA / "bad-sct-symantec-2015/sct.bin").read_bytes())
    symantec = key("symantec")
    assert sct.log_id == symantec.log_id
    cert = cert_der(DATA / "bad-sct-symantec-2015/www.google.com.pem")
    with pytest.raises(
        SignatureError, match=r"^SignedCertificateTimestamp \(timestamp 1444218272694\): .*does not verify"
    ):
        verify_sct(symantec, sct, LogEntryType.X509_ENTRY, cert)


def reference_key(rsa_log: bool) -> LogKey:
    name = "rsa/ct-server-key-public-rsa.pem" if rsa_log else "ct-server-key-public.pem"
    return LogKey.from_pem((REF / name).read_bytes())


def test_reference_x509_scts_verify() -> None:
    cert = cert_der(REF / "test-cert.pem")
    for proof, rsa_log in [("test-cert.proof", False), ("rsa/test-cert-rsa.proof", True)]:
        log_key = reference_key(rsa_log)
        sct = SignedCertificateTimestamp.decode((REF / proof).read_bytes())
        assert sct.log_id == log_key.log_id
        verify_sct(log_key, sct, LogEntryType.X509_ENTRY, cert)
        with pytest.raises(SignatureError):
            verify_sct(reference_key(not rsa_log), sct, LogEntryType.X509_ENTRY, cert)


def embedded_scts(cert: x509.Certificate) -> list[SignedCertificateTimestamp]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2"))
        octet_string = ext.value.public_bytes()
    assert octet_string[0] == 0x04 and octet_string[1] == len(octet_string) - 2  # short-form OCTET STRING
    return decode_sct_list(octet_string[2:])


def test_reference_precert_scts_verify() -> None:
    """Precert SCTs sign issuer_key_hash + the TBS without poison/SCT-list extensions (RFC 6962 3.2)."""
    issuer_key_hash = hashlib.sha256(spki_der(load_cert(REF / "ca-cert.pem").public_key())).digest()  # type: ignore[arg-type]
    final = load_cert(REF / "test-embedded-cert.pem")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tbs = final.tbs_precertificate_bytes
    for proof, rsa_log in [
        ("test-embedded-pre-cert.proof", False),
        ("rsa/test-embedded-pre-cert-rsa.proof", True),
    ]:
        sct = SignedCertificateTimestamp.decode((REF / proof).read_bytes())
        verify_sct(reference_key(rsa_log), sct, LogEntryType.PRECERT_ENTRY, tbs, issuer_key_hash)
        with pytest.raises(SignatureError):
            verify_sct(reference_key(rsa_log), sct, LogEntryType.PRECERT_ENTRY, tbs, bytes(32))
        with pytest.raises(SignatureError):
            verify_sct(reference_key(rsa_log), sct, LogEntryType.X509_ENTRY, tbs)
    [embedded] = embedded_scts(final)
    verify_sct(reference_key(False), embedded, LogEntryType.PRECERT_ENTRY, tbs, issuer_key_hash)
    # A correctly embedded SCT that was issued for another certificate.
    invalid = load_cert(REF / "test-invalid-embedded-cert.pem")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        invalid_tbs = invalid.tbs_precertificate_bytes
    [wrong] = embedded_scts(invalid)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_sct(reference_key(False), wrong, LogEntryType.PRECERT_ENTRY, invalid_tbs, issuer_key_hash)


def synthetic_key(raw_name: str) -> LogKey:
    raw = (SYNTH / raw_name).read_bytes()
    if raw_name.startswith("ecdsa-"):
        curve: ec.EllipticCurve = ec.SECP256R1() if "prime256v1" in raw_name else ec.SECP384R1()
        return LogKey.from_der(spki_der(ec.EllipticCurvePublicKey.from_encoded_point(curve, raw)))
    public = serialization.load_der_public_key(raw)  # PKCS#1 RSAPublicKey
    assert isinstance(public, rsa.RSAPublicKey)
    return LogKey.from_der(spki_der(public))


SYNTH_KEYS = {
    "ecdsa_p256": "ecdsa-prime256v1-pub.raw",
    "ecdsa_p384": "ecdsa-secp384r1-pub.raw",
    "rsa2048": "rsa-2048-pub.raw",
    "rsa3072": "rsa-3072-pub.raw",
    "rsa4096": "rsa-4096-pub.raw",
}

# sct.rs's verdict (EXPECTED.txt) -> what this layer judges. We only check decoding and the signature;
# whether the log ID is a known log and whether the timestamp is in the future is the caller's business,
# so "wrongid" and "future" verify here. "version" (v2) and "junk" (trailing byte) fail to decode.
# "badsigalg" names RSA for an ECDSA key: we refuse it as a mismatch rather than attempt it. RFC 6962
# permits RSA only with SHA-256, so the sct.rs RSA-3072/4096 SCTs (SHA-384) are refused as unsupported
# even though sct.rs accepts the "basic" ones.
SYNTH_EXPECTED = {
    "ecdsa_p256-basic": "ok",
    "ecdsa_p256-wrongtime": "does not verify",
    "ecdsa_p256-wrongcert": "does not verify",
    "ecdsa_p256-wrongext": "does not verify",
    "ecdsa_p256-wrongid": "ok",
    "ecdsa_p256-future": "ok",
    "ecdsa_p256-badsigalg": "does not match",
    "ecdsa_p256-version": "decode: unknown version 1",
    "ecdsa_p256-junk": "decode: 1 trailing bytes",
    "ecdsa_p384-basic": "ok",
    "ecdsa_p384-wrongtime": "does not verify",
    "ecdsa_p384-wrongcert": "does not verify",
    "rsa2048-basic": "ok",
    "rsa2048-wrongtime": "does not verify",
    "rsa2048-wrongcert": "does not verify",
    "rsa3072-basic": "hash algorithm SHA384",
    "rsa3072-wrongtime": "hash algorithm SHA384",
    "rsa3072-wrongcert": "hash algorithm SHA384",
    "rsa4096-basic": "hash algorithm SHA384",
    "rsa4096-wrongtime": "hash algorithm SHA384",
    "rsa4096-wrongcert": "hash algorithm SHA384",
}


def test_synthetic_expectations_cover_every_file() -> None:
    listed = {
        line.split()[0]
        for line in (SYNTH / "EXPECTED.txt").read_text().splitlines()
        if not line.startswith("#")
    }
    assert {f"{name}-sct.bin" for name in SYNTH_EXPECTED} | {"ecdsa_p256-short-sct.bin"} == listed


@pytest.mark.parametrize(("name", "expected"), sorted(SYNTH_EXPECTED.items()))
def test_sct_rs_synthetic(name: str, expected: str) -> None:
    log_key = synthetic_key(SYNTH_KEYS[name.split("-")[0]])
    raw = (SYNTH / f"{name}-sct.bin").read_bytes()
    if expected.startswith("decode: "):
        with pytest.raises(DecodeError, match=expected.removeprefix("decode: ")):
            SignedCertificateTimestamp.decode(raw)
        return
    sct = SignedCertificateTimestamp.decode(raw)
    if name != "ecdsa_p256-wrongid":
        assert sct.log_id == log_key.log_id
    if expected == "ok":
        verify_sct(log_key, sct, LogEntryType.X509_ENTRY, b"cert")
    else:
        with pytest.raises(SignatureError, match=expected):
            verify_sct(log_key, sct, LogEntryType.X509_ENTRY, b"cert")


def test_sct_rs_synthetic_wrongid_is_visible_to_the_caller() -> None:
    sct = SignedCertificateTimestamp.decode((SYNTH / "ecdsa_p256-wrongid-sct.bin").read_bytes())
    assert sct.log_id != synthetic_key(SYNTH_KEYS["ecdsa_p256"]).log_id


def test_sct_rs_synthetic_short() -> None:
    # sct.rs checks that every proper prefix is malformed; the whole SCT (2 bytes of extensions) verifies.
    raw = (SYNTH / "ecdsa_p256-short-sct.bin").read_bytes()
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            SignedCertificateTimestamp.decode(raw[:cut])
    sct = SignedCertificateTimestamp.decode(raw)
    verify_sct(synthetic_key(SYNTH_KEYS["ecdsa_p256"]), sct, LogEntryType.X509_ENTRY, b"cert")


# --- LogSigner --------------------------------------------------------------------------------------------


def test_signer_signs_sths_that_verify() -> None:
    signer = LogSigner.generate()
    unsigned = SignedTreeHead(10, 1700000000000, bytes(range(32)), DigitallySigned(4, 3, b""))
    signature = signer.sign(unsigned.signature_input())
    assert (signature.hash_algorithm, signature.signature_algorithm) == (4, 3)
    assert signature.signature[0] == 0x30  # DER ECDSA-Sig-Value
    signed = dataclasses.replace(unsigned, signature=signature)
    verify_sth(signer.public_key, signed)
    with pytest.raises(SignatureError):
        verify_sth(LogSigner.generate().public_key, signed)
    with pytest.raises(SignatureError):
        verify_sth(signer.public_key, dataclasses.replace(signed, tree_size=11))


def test_signer_pem_round_trip() -> None:
    signer = LogSigner.generate()
    pem = signer.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    again = LogSigner.from_pem(pem)
    assert again.public_key == signer.public_key
    assert again.to_pem() == pem
    signer.public_key.verify(b"data", again.sign(b"data"))
    # The public key's SPKI from the private key is the one a log list would publish.
    assert (
        LogKey.from_base64(base64.b64encode(signer.public_key.spki_der).decode()).log_id
        == again.public_key.log_id
    )


def test_signer_rejects_other_keys() -> None:
    with pytest.raises(DecodeError, match="LogSigner: not an unencrypted PEM private key"):
        LogSigner.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SignatureError, match="unsupported curve secp384r1"):
        LogSigner.from_pem(p384)
    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SignatureError, match="unsupported private key type"):
        LogSigner.from_pem(ed)
