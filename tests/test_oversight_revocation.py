"""CRL and OCSP verification: real NIST PKITS CRLs, pyca's PEM CRLs, and CRLs and OCSP responses built here
with cryptography for every way an answer can be good, revoked, unknown, stale, forged or misdirected."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ctsentinel.errors import Error
from ctsentinel.oversight.crl import crl_urls, load_crl, verify_crl
from ctsentinel.oversight.ocsp import build_ocsp_request, ocsp_urls, verify_ocsp_response
from ctsentinel.oversight.revocation import (
    RevocationAnswer,
    RevocationError,
    RevocationReason,
    RevocationSource,
    RevocationStatus,
    contradicts,
)

DATA = Path(__file__).parent / "data"
PKITS = DATA / "revocation" / "pkits"
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def pkits_cert(name: str) -> x509.Certificate:
    return x509.load_der_x509_certificate((PKITS / f"{name}.crt").read_bytes())


def pkits_crl(name: str) -> bytes:
    return (PKITS / f"{name}.crl").read_bytes()


# --- real CRLs: NIST PKITS ------------------------------------------------------------------------------


def test_pkits_good_ca_crl_lists_its_revoked_certificate_and_not_the_good_one() -> None:
    ca = pkits_cert("GoodCACert")
    crl = verify_crl(pkits_crl("GoodCACRL"), ca)
    assert crl.issuer == "CN=Good CA,O=Test Certificates 2011,C=US"
    assert (crl.this_update, crl.next_update) == (
        dt.datetime(2010, 1, 1, 8, 30, tzinfo=dt.UTC),
        dt.datetime(2030, 12, 31, 8, 30, tzinfo=dt.UTC),
    )
    assert crl.number == 1 and len(crl) == 2 and not crl.is_stale(NOW)
    revoked = pkits_cert("InvalidRevokedEETest3EE")
    answer = crl.answer(revoked.serial_number, NOW)
    assert answer.status is RevocationStatus.REVOKED and answer.source is RevocationSource.CRL
    assert answer.revoked_at == dt.datetime(2010, 1, 1, 8, 30, 1, tzinfo=dt.UTC)
    assert answer.reason is RevocationReason.KEY_COMPROMISE
    good = pkits_cert("ValidCertificatePathTest1EE")
    assert crl.answer(good.serial_number, NOW).status is RevocationStatus.GOOD
    assert crl.lookup(good.serial_number) is None


def test_pkits_twenty_octet_serial_is_found() -> None:
    crl = verify_crl(pkits_crl("LongSerialNumberCACRL"), pkits_cert("LongSerialNumberCACert"))
    serial = pkits_cert("InvalidLongSerialNumberTest18EE").serial_number
    assert serial.bit_length() > 150
    assert crl.answer(serial, NOW).status is RevocationStatus.REVOKED


def test_pkits_crl_past_next_update_is_stale_so_unlisted_serials_are_unknown() -> None:
    crl = verify_crl(pkits_crl("OldCRLnextUpdateCACRL"), pkits_cert("OldCRLnextUpdateCACert"))
    assert crl.is_stale(NOW)
    answer = crl.answer(1, NOW)
    assert (answer.status, answer.stale) == (RevocationStatus.UNKNOWN, True)
    # On the day it was current the same CRL vouched for the serial.
    assert crl.answer(1, dt.datetime(2010, 1, 1, 12, tzinfo=dt.UTC)).status is RevocationStatus.GOOD


@pytest.mark.parametrize(
    ("ca", "crl", "message"),
    [
        ("BadCRLSignatureCACert", "BadCRLSignatureCACRL", "signature does not verify with the key of CN=Bad"),
        ("BadCRLIssuerNameCACert", "BadCRLIssuerNameCACRL", "CRL issued by CN=Incorrect CRL Issuer Name,"),
        ("deltaCRLCA1Cert", "deltaCRLCA1deltaCRL", "a delta CRL, not a complete one"),
        ("keyUsageCriticalcRLSignFalseCACert", "keyUsageCriticalcRLSignFalseCACRL", "may not sign CRLs"),
        ("indirectCRLCA1Cert", "indirectCRLCA1CRL", "an indirect CRL"),
        ("GoodCACert", "LongSerialNumberCACRL", "CRL issued by CN=Long Serial Number CA"),
    ],
)
def test_pkits_crls_that_must_be_refused(ca: str, crl: str, message: str) -> None:
    with pytest.raises(RevocationError, match=message) as caught:
        verify_crl(pkits_crl(crl), pkits_cert(ca))
    assert isinstance(caught.value, Error) and "\n" not in str(caught.value)


def test_pem_crls_from_pyca() -> None:
    folder = DATA / "revocation" / "cryptography_vectors"
    issuer = x509.load_pem_x509_certificate((folder / "valid_signature_cert.pem").read_bytes())
    crl = verify_crl((folder / "valid_signature_crl.pem").read_bytes(), issuer)
    assert len(crl) == 0 and crl.next_update == dt.datetime(2017, 9, 5, 1, 48, 25, tzinfo=dt.UTC)
    with pytest.raises(RevocationError, match="signature does not verify"):
        verify_crl((folder / "invalid_signature_crl.pem").read_bytes(), issuer)


@pytest.mark.parametrize("data", [b"", b"garbage", b"0\x03\x02\x01\x00", b"-----BEGIN X509 CRL-----\nAAAA\n"])
def test_bytes_that_are_not_a_crl(data: bytes) -> None:
    with pytest.raises(RevocationError, match="not a CRL"):
        load_crl(data)


# --- CRLs and OCSP built here -----------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Oversight Tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Ca:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def make_ca(cn: str, *, rsa_key: bool = False, crl_sign: bool = True) -> Ca:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key
        else ec.generate_private_key(ec.SECP256R1())
    )
    cert = (
        x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 400 * DAY).not_valid_after(NOW + 400 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, crl_sign, False, False),
                       critical=True)
        .sign(key, hashes.SHA256())
    )
    return Ca(key, cert)


def make_responder(ca: Ca, *, eku: bool = True, expired: bool = False, signer: Ca | None = None) -> Ca:
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = NOW - DAY if expired else NOW + 30 * DAY
    builder = (
        x509.CertificateBuilder().subject_name(_name("Oversight OCSP Responder")).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 30 * DAY).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
    return Ca(key, builder.sign((signer or ca).key, hashes.SHA256()))


def leaf(ca: Ca, serial: int, *, cdp: list[str] = (), aia: list[tuple[str, str]] = ()) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder().subject_name(_name("leaf.example.com")).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(serial)
        .not_valid_before(NOW - 10 * DAY).not_valid_after(NOW + 80 * DAY)
    )
    if cdp:
        builder = builder.add_extension(x509.CRLDistributionPoints(
            [x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None) for u in cdp]),
            critical=False)
    if aia:
        methods = {"ocsp": AuthorityInformationAccessOID.OCSP,
                   "issuers": AuthorityInformationAccessOID.CA_ISSUERS}
        builder = builder.add_extension(x509.AuthorityInformationAccess(
            [x509.AccessDescription(methods[m], x509.UniformResourceIdentifier(u)) for m, u in aia]),
            critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def make_crl(ca: Ca, revoked: dict[int, tuple[dt.datetime, x509.ReasonFlags | None]], *,
             this_update: dt.datetime = NOW - DAY, next_update: dt.datetime = NOW + 6 * DAY,
             signer: Ca | None = None, delta: bool = False, pem: bool = False) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
        .last_update(this_update).next_update(next_update)
        .add_extension(x509.CRLNumber(42), critical=False)
    )
    if delta:
        builder = builder.add_extension(x509.DeltaCRLIndicator(41), critical=True)
    for serial, (when, reason) in revoked.items():
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    crl = builder.sign((signer or ca).key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM if pem else serialization.Encoding.DER)


REVOKED_AT = NOW - 3 * DAY


@pytest.mark.parametrize("pem", [False, True])
def test_built_crl_answers_revoked_with_reason_good_and_stale(pem: bool) -> None:
    ca = make_ca("Oversight RSA CA", rsa_key=True)
    data = make_crl(ca, {7: (REVOKED_AT, x509.ReasonFlags.superseded), 8: (REVOKED_AT, None)}, pem=pem)
    crl = verify_crl(data, ca.cert)
    assert crl.number == 42
    seven = crl.answer(7, NOW)
    assert (seven.status, seven.reason, seven.revoked_at) == (
        RevocationStatus.REVOKED, RevocationReason.SUPERSEDED, REVOKED_AT.replace(microsecond=0))
    assert crl.answer(8, NOW).reason is None and crl.answer(8, NOW).status is RevocationStatus.REVOKED
    assert crl.answer(9, NOW).status is RevocationStatus.GOOD
    later = NOW + 7 * DAY
    assert crl.is_stale(later)
    assert (crl.answer(9, later).status, crl.answer(9, later).stale) == (RevocationStatus.UNKNOWN, True)
    # A stale CRL still proves a revocation: revocation is final.
    assert crl.answer(7, later).status is RevocationStatus.REVOKED


def test_crl_refusals_built_here() -> None:
    ca, other = make_ca("Oversight CA"), make_ca("Oversight CA")  # same name, another key
    with pytest.raises(RevocationError, match="signature does not verify"):
        verify_crl(make_crl(ca, {}, signer=other), ca.cert)
    with pytest.raises(RevocationError, match="a delta CRL"):
        verify_crl(make_crl(ca, {}, delta=True), ca.cert)
    no_crl_sign = make_ca("No CRL signing", crl_sign=False)
    with pytest.raises(RevocationError, match="no cRLSign"):
        verify_crl(make_crl(no_crl_sign, {}), no_crl_sign.cert)
    crl = verify_crl(make_crl(ca, {}, this_update=NOW + DAY, next_update=NOW + 8 * DAY), ca.cert)
    with pytest.raises(RevocationError, match=r"thisUpdate .* is in the future"):
        crl.answer(1, NOW)
    # Within the clock skew a thisUpdate ahead of us is accepted.
    crl = verify_crl(make_crl(ca, {}, this_update=NOW + dt.timedelta(minutes=2)), ca.cert)
    assert crl.answer(1, NOW).status is RevocationStatus.GOOD


def ocsp_response(
    ca: Ca, request_der: bytes, status: ocsp.OCSPCertStatus, *, signer: Ca | None = None,
    include: list[x509.Certificate] = (), by_key: bool = True, nonce: bytes | str | None = "echo",
    this_update: dt.datetime = NOW - dt.timedelta(hours=1), next_update: dt.datetime | None = None,
    serial: int | None = None, revoked: tuple[dt.datetime, x509.ReasonFlags | None] | None = None,
    hash_algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    request = ocsp.load_der_ocsp_request(request_der)
    responder = signer or ca
    builder = ocsp.OCSPResponseBuilder()
    name_hash, key_hash = request.issuer_name_hash, request.issuer_key_hash
    if hash_algorithm is not None:
        # The right certificate, identified under another hash algorithm than the request's.
        other = ocsp.OCSPRequestBuilder().add_certificate(
            leaf(ca, request.serial_number), ca.cert, hash_algorithm).build()
        name_hash, key_hash = other.issuer_name_hash, other.issuer_key_hash
    builder = builder.add_response_by_hash(
        name_hash, key_hash, serial if serial is not None else request.serial_number,
        hash_algorithm or request.hash_algorithm, status, this_update,
        next_update if next_update is not None else NOW + 3 * DAY,
        revoked[0] if revoked else None, revoked[1] if revoked else None,
    )
    builder = builder.responder_id(
        ocsp.OCSPResponderEncoding.HASH if by_key else ocsp.OCSPResponderEncoding.NAME, responder.cert)
    if include:
        builder = builder.certificates(list(include))
    if nonce == "echo":
        try:
            ext = request.extensions.get_extension_for_class(x509.OCSPNonce)
            builder = builder.add_extension(ext.value, critical=False)
        except x509.ExtensionNotFound:
            pass
    elif isinstance(nonce, bytes):
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.sign(responder.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


NONCE = b"\x01" * 16


@pytest.mark.parametrize("rsa_key", [False, True])
@pytest.mark.parametrize("by_key", [False, True])
def test_ocsp_good_revoked_unknown_signed_by_the_issuer(rsa_key: bool, by_key: bool) -> None:
    ca = make_ca("Oversight OCSP CA", rsa_key=rsa_key)
    request = build_ocsp_request(77, ca.cert, nonce=NONCE)
    parsed = ocsp.load_der_ocsp_request(request.der)
    assert parsed.serial_number == 77 and isinstance(parsed.hash_algorithm, hashes.SHA1)
    assert parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == NONCE
    good = verify_ocsp_response(ocsp_response(ca, request.der, ocsp.OCSPCertStatus.GOOD, by_key=by_key),
                                request, ca.cert, at=NOW)
    assert (good.status, good.source, good.stale) == (RevocationStatus.GOOD, RevocationSource.OCSP, False)
    assert good.next_update == (NOW + 3 * DAY).replace(microsecond=0)
    revoked = verify_ocsp_response(
        ocsp_response(ca, request.der, ocsp.OCSPCertStatus.REVOKED,
                      revoked=(REVOKED_AT, x509.ReasonFlags.key_compromise)), request, ca.cert, at=NOW)
    assert (revoked.status, revoked.reason, revoked.revoked_at) == (
        RevocationStatus.REVOKED, RevocationReason.KEY_COMPROMISE, REVOKED_AT.replace(microsecond=0))
    unknown = verify_ocsp_response(ocsp_response(ca, request.der, ocsp.OCSPCertStatus.UNKNOWN),
                                   request, ca.cert, at=NOW)
    assert unknown.status is RevocationStatus.UNKNOWN


def test_ocsp_request_matches_cryptographys_own_cert_id() -> None:
    ca = make_ca("Oversight CertID CA", rsa_key=True)
    cert = leaf(ca, 12345)
    ours = ocsp.load_der_ocsp_request(build_ocsp_request(12345, ca.cert).der)
    theirs = ocsp.OCSPRequestBuilder().add_certificate(cert, ca.cert, hashes.SHA1()).build()
    assert ours.public_bytes(serialization.Encoding.DER) == theirs.public_bytes(serialization.Encoding.DER)
    assert len(ours.extensions) == 0


def test_ocsp_delegated_responder() -> None:
    ca = make_ca("Oversight Delegating CA")
    request = build_ocsp_request(5, ca.cert)
    responder = make_responder(ca)
    answer = verify_ocsp_response(
        ocsp_response(ca, request.der, ocsp.OCSPCertStatus.GOOD, signer=responder, include=[responder.cert]),
        request, ca.cert, at=NOW)
    assert answer.status is RevocationStatus.GOOD
    by_name = ocsp_response(ca, request.der, ocsp.OCSPCertStatus.REVOKED, signer=responder,
                            include=[responder.cert], by_key=False, revoked=(REVOKED_AT, None))
    assert verify_ocsp_response(by_name, request, ca.cert, at=NOW).status is RevocationStatus.REVOKED


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no-eku", "lacks the OCSP-signing extended key usage"),
        ("expired", "is not valid at"),
        ("other-issuer", "is not issued by CN=Oversight Delegating CA"),
        ("not-included", "signed neither by CN=Oversight Delegating CA"),
        ("forged", "signature does not verify with the key of CN=Oversight Delegating CA"),
    ],
)
def test_ocsp_responders_that_must_be_refused(case: str, message: str) -> None:
    ca = make_ca("Oversight Delegating CA")
    request = build_ocsp_request(5, ca.cert)
    status = ocsp.OCSPCertStatus.GOOD
    if case == "forged":
        # Names the CA (its key hash) as the responder but is signed by another key of the same name.
        impostor = make_ca("Oversight Delegating CA")
        data = ocsp_response(ca, request.der, status, signer=impostor)
        impostor_hash = x509.SubjectKeyIdentifier.from_public_key(impostor.key.public_key()).digest
        ca_hash = x509.SubjectKeyIdentifier.from_public_key(ca.key.public_key()).digest
        assert data.count(impostor_hash) == 1
        data = data.replace(impostor_hash, ca_hash)
    elif case == "not-included":
        data = ocsp_response(ca, request.der, status, signer=make_responder(ca))
    else:
        responder = {
            "no-eku": lambda: make_responder(ca, eku=False),
            "expired": lambda: make_responder(ca, expired=True),
            "other-issuer": lambda: make_responder(ca, signer=make_ca("Another CA")),
        }[case]()
        data = ocsp_response(ca, request.der, status, signer=responder, include=[responder.cert])
    with pytest.raises(RevocationError, match=message):
        verify_ocsp_response(data, request, ca.cert, at=NOW)


def test_ocsp_nonce_and_identity_checks() -> None:
    ca = make_ca("Oversight Nonce CA")
    request = build_ocsp_request(9, ca.cert, nonce=NONCE)
    good = ocsp.OCSPCertStatus.GOOD
    # A pre-signed response without a nonce is accepted on its thisUpdate/nextUpdate.
    answer = verify_ocsp_response(ocsp_response(ca, request.der, good, nonce=None), request, ca.cert, at=NOW)
    assert answer.status is RevocationStatus.GOOD
    with pytest.raises(RevocationError, match="another request's nonce"):
        verify_ocsp_response(ocsp_response(ca, request.der, good, nonce=b"\x02" * 16), request, ca.cert,
                             at=NOW)
    with pytest.raises(RevocationError, match="does not answer for serial 9"):
        verify_ocsp_response(ocsp_response(ca, request.der, good, serial=10), request, ca.cert, at=NOW)
    with pytest.raises(RevocationError, match="does not answer for serial 9"):
        verify_ocsp_response(ocsp_response(ca, request.der, good, hash_algorithm=hashes.SHA256()), request,
                             ca.cert, at=NOW)
    other = make_ca("Oversight Other CA")
    with pytest.raises(RevocationError, match="signed neither by CN=Oversight Other CA"):
        verify_ocsp_response(ocsp_response(ca, request.der, good), build_ocsp_request(9, other.cert),
                             other.cert, at=NOW)
    with pytest.raises(RevocationError, match="1 to 32 octets"):
        build_ocsp_request(9, ca.cert, nonce=b"")


def test_ocsp_freshness() -> None:
    ca = make_ca("Oversight Fresh CA")
    request = build_ocsp_request(3, ca.cert)
    good, revoked = ocsp.OCSPCertStatus.GOOD, ocsp.OCSPCertStatus.REVOKED
    stale = verify_ocsp_response(
        ocsp_response(ca, request.der, good, this_update=NOW - 9 * DAY, next_update=NOW - 2 * DAY),
        request, ca.cert, at=NOW)
    assert (stale.status, stale.stale) == (RevocationStatus.UNKNOWN, True)
    stale_revoked = verify_ocsp_response(
        ocsp_response(ca, request.der, revoked, this_update=NOW - 9 * DAY, next_update=NOW - 2 * DAY,
                      revoked=(NOW - 20 * DAY, None)), request, ca.cert, at=NOW)
    assert (stale_revoked.status, stale_revoked.stale) == (RevocationStatus.REVOKED, True)
    with pytest.raises(RevocationError, match=r"OCSP thisUpdate .* is in the future"):
        future = ocsp_response(ca, request.der, good, this_update=NOW + DAY, next_update=NOW + 5 * DAY)
        verify_ocsp_response(future, request, ca.cert, at=NOW)


@pytest.mark.parametrize(
    "status", [ocsp.OCSPResponseStatus.TRY_LATER, ocsp.OCSPResponseStatus.UNAUTHORIZED,
               ocsp.OCSPResponseStatus.MALFORMED_REQUEST, ocsp.OCSPResponseStatus.INTERNAL_ERROR])
def test_ocsp_unsuccessful_and_garbage(status: ocsp.OCSPResponseStatus) -> None:
    ca = make_ca("Oversight Busy CA")
    request = build_ocsp_request(3, ca.cert)
    data = ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)
    with pytest.raises(RevocationError, match=f"OCSP responder answered {status.name.lower()}"):
        verify_ocsp_response(data, request, ca.cert, at=NOW)
    with pytest.raises(RevocationError, match="not an OCSP response"):
        verify_ocsp_response(b"<html>503</html>", request, ca.cert, at=NOW)


def test_contradiction_between_crl_and_ocsp() -> None:
    def answer(status: RevocationStatus, source: RevocationSource) -> RevocationAnswer:
        return RevocationAnswer(status, source, NOW - DAY, NOW + DAY)

    crl_revoked = answer(RevocationStatus.REVOKED, RevocationSource.CRL)
    assert contradicts(crl_revoked, answer(RevocationStatus.GOOD, RevocationSource.OCSP))
    assert contradicts(answer(RevocationStatus.GOOD, RevocationSource.CRL),
                       answer(RevocationStatus.REVOKED, RevocationSource.OCSP))
    assert not contradicts(crl_revoked, answer(RevocationStatus.REVOKED, RevocationSource.OCSP))
    assert not contradicts(crl_revoked, answer(RevocationStatus.UNKNOWN, RevocationSource.OCSP))


# --- where a certificate says to ask -----------------------------------------------------------------------


def test_urls_from_built_certificates() -> None:
    ca = make_ca("Oversight URL CA")
    cert = leaf(ca, 1, cdp=["http://crl.example/a.crl", "ldap://ldap.example/cn=a", "http://crl.example/a.crl",
                            "https://crl2.example/b.crl"],
                aia=[("issuers", "http://cacerts.example/ca.crt"), ("ocsp", "http://ocsp.example"),
                     ("ocsp", "ldap://x")])
    assert crl_urls(cert) == ("http://crl.example/a.crl", "https://crl2.example/b.crl")
    assert ocsp_urls(cert) == ("http://ocsp.example",)
    bare = leaf(ca, 2)
    assert crl_urls(bare) == () and ocsp_urls(bare) == ()


def test_urls_from_real_certificates() -> None:
    corpus = DATA / "certs" / "corpus" / "cryptography_vectors"
    def load(name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((corpus / name).read_bytes())
    real = load("cryptography.io.pem")
    assert crl_urls(real) == ("http://gv.symcb.com/gv.crl",)
    assert ocsp_urls(real) == ("http://gv.symcd.com",)
    assert ocsp_urls(load("custom/aia_ocsp.pem")) == ("http://ocsp.domain.com",)
    # A distribution point naming only a CRL issuer (no URL) yields nothing to fetch.
    assert crl_urls(load("custom/cdp_crl_issuer.pem")) == ()
