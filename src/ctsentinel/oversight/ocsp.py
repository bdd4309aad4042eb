"""OCSP (RFC 6960): where a certificate says its responder is, the request for one serial, and what a
verified response says.

Requests use SHA-1 CertIDs, as the lightweight profile of RFC 5019 that Web PKI responders serve expects.
A response is trusted when the issuer signed it, or a responder certificate that the issuer issued
directly, that carries the OCSP-signing EKU and that is valid at the time of the check.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from ctsentinel.oversight.revocation import (
    RevocationAnswer,
    RevocationError,
    RevocationReason,
    RevocationSource,
)

# RFC 8954: a nonce is 1 to 32 octets.
MAX_NONCE = 32


def ocsp_urls(certificate: x509.Certificate) -> tuple[str, ...]:
    """The HTTP(S) OCSP responder URLs of the certificate's Authority Information Access, in order."""
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return ()
    except ValueError as exc:
        raise RevocationError(f"certificate's authority information access cannot be read: {exc}") from None
    urls = [
        d.access_location.value
        for d in access
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
        and d.access_location.value.lower().startswith(("http://", "https://"))
    ]
    return tuple(dict.fromkeys(urls))


@dataclass(frozen=True, slots=True)
class OcspRequest:
    """A DER OCSPRequest for one certificate, and what its answer must echo."""

    der: bytes
    serial: int
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    nonce: bytes | None


def _key_hash(certificate: x509.Certificate) -> bytes:
    # RFC 6960's issuerKeyHash and byKey ResponderID: SHA-1 of the subjectPublicKey BIT STRING contents,
    # which is exactly RFC 5280's key identifier method 1.
    key = certificate.public_key()
    if not isinstance(
        key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
    ):
        raise RevocationError(f"{certificate.subject.rfc4514_string()}: unsupported key type for OCSP")
    return x509.SubjectKeyIdentifier.from_public_key(key).digest


def build_ocsp_request(serial: int, issuer: x509.Certificate, *, nonce: bytes | None = None) -> OcspRequest:
    """The request for the certificate `serial` of `issuer`; with a nonce (RFC 8954) if one is given."""
    if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE:
        raise RevocationError(f"an OCSP nonce is 1 to {MAX_NONCE} octets, not {len(nonce)}")
    name_hash = hashlib.sha1(issuer.subject.public_bytes()).digest()
    key_hash = _key_hash(issuer)
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, serial, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    der = builder.build().public_bytes(Encoding.DER)
    return OcspRequest(der, serial, name_hash, key_hash, nonce)


def verify_ocsp_response(
    data: bytes, request: OcspRequest, issuer: x509.Certificate, *, at: datetime.datetime
) -> RevocationAnswer:
    """Check an OCSPResponse (DER) to `request` about a certificate of `issuer`, as of time `at`."""
    try:
        response = ocsp.load_der_ocsp_response(data)
    except ValueError as exc:
        raise RevocationError(f"not an OCSP response: {_first_line(exc)}") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise RevocationError(f"OCSP responder answered {response.response_status.name.lower()}")
    try:
        signer = _signer(response, issuer, at)
        _verify_signature(
            signer, response.signature, response.tbs_response_bytes, response.signature_hash_algorithm
        )
        single = _single_response(response, request)
        _check_nonce(response, request)
        status = single.certificate_status
        revoked = status == ocsp.OCSPCertStatus.REVOKED
        return RevocationAnswer.judged(
            RevocationSource.OCSP,
            revoked=revoked,
            unknown=status == ocsp.OCSPCertStatus.UNKNOWN,
            this_update=single.this_update_utc,
            next_update=single.next_update_utc,
            at=at,
            reason=RevocationReason.of(single.revocation_reason) if revoked else None,
            revoked_at=single.revocation_time_utc if revoked else None,
        )
    except ValueError as exc:  # a field cryptography could not decode
        raise RevocationError(f"OCSP response cannot be read: {_first_line(exc)}") from None


def _responder_is(response: ocsp.OCSPResponse, certificate: x509.Certificate) -> bool:
    if response.responder_key_hash is not None:
        return response.responder_key_hash == _key_hash(certificate)
    return response.responder_name == certificate.subject


def _signer(response: ocsp.OCSPResponse, issuer: x509.Certificate, at: datetime.datetime) -> x509.Certificate:
    if _responder_is(response, issuer):
        return issuer
    for candidate in response.certificates:
        if _responder_is(response, candidate):
            _check_delegate(candidate, issuer, at)
            return candidate
    raise RevocationError(
        f"OCSP response is signed neither by {issuer.subject.rfc4514_string()} nor by a responder it names"
    )


def _check_delegate(responder: x509.Certificate, issuer: x509.Certificate, at: datetime.datetime) -> None:
    """RFC 6960 4.2.2.2: a delegated responder is issued directly by the CA and has the OCSP-signing EKU."""
    who = responder.subject.rfc4514_string()
    try:
        responder.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        raise RevocationError(
            f"OCSP responder {who} is not issued by {issuer.subject.rfc4514_string()}"
        ) from None
    try:
        usages = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = x509.ExtendedKeyUsage([])
    if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
        raise RevocationError(f"OCSP responder {who} lacks the OCSP-signing extended key usage")
    if not responder.not_valid_before_utc <= at <= responder.not_valid_after_utc:
        raise RevocationError(f"OCSP responder certificate {who} is not valid at {at:%Y-%m-%dT%H:%M:%SZ}")


def _verify_signature(
    signer: x509.Certificate, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None
) -> None:
    key = signer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            raise RevocationError(f"OCSP response signature algorithm not supported for {type(key).__name__}")
    except InvalidSignature:
        raise RevocationError(
            f"OCSP response signature does not verify with the key of {signer.subject.rfc4514_string()}"
        ) from None


def _single_response(response: ocsp.OCSPResponse, request: OcspRequest) -> ocsp.OCSPSingleResponse:
    for single in response.responses:
        if (
            single.serial_number == request.serial
            and isinstance(single.hash_algorithm, hashes.SHA1)
            and single.issuer_name_hash == request.issuer_name_hash
            and single.issuer_key_hash == request.issuer_key_hash
        ):
            return single
    raise RevocationError(f"OCSP response does not answer for serial {request.serial:x}")


def _check_nonce(response: ocsp.OCSPResponse, request: OcspRequest) -> None:
    # A responder may serve a pre-signed response without our nonce (RFC 5019; RFC 8954 section 2.1):
    # freshness then rests on thisUpdate/nextUpdate. A nonce that is there must be ours.
    if request.nonce is None:
        return
    try:
        echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return
    if echoed != request.nonce:
        raise RevocationError("OCSP response carries another request's nonce (a replayed response?)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
