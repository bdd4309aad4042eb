"""The issuer of a certificate: the key whose signature verifies it.

What a log sends beside a final certificate (RFC 6962 extra_data, static-ct issuer fingerprints) is not
covered by its Merkle tree: a log, or anyone between it and us, can put any certificate first. So the
chain is only a list of candidates, tried in order, and a candidate is the issuer only if its public key
verifies the certificate's signature over its TBSCertificate. None is found: the issuer is unknown, which
a watch treats as unauthorized. (A precertificate entry needs none of this: its issuer_key_hash is part
of the leaf, signed by the log and covered by the tree.)

The certificate's signature is read with the lenient DER reader, so a certificate that strict parsers
refuse (as CAs have issued) is still checked; only RSASSA-PSS, whose parameters name the hash, goes
through cryptography's parser.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import sha256
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning

from ctsentinel.certs.der import BIT_STRING, OID, SEQUENCE, IndefiniteLength, read_tlv
from ctsentinel.ct.errors import DecodeError

# Certificates with a serial of zero or below are in real CT logs, and cryptography warns at each one it
# loads. Here that would only be noise on a decode process's stderr: what is odd about a certificate is
# the record's to say, not a warning's.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=re.escape(__name__))

__all__ = ["IssuerCert", "verified_issuer"]

PublicKey: TypeAlias = (
    rsa.RSAPublicKey
    | ec.EllipticCurvePublicKey
    | ed25519.Ed25519PublicKey
    | ed448.Ed448PublicKey
    | dsa.DSAPublicKey
)


@dataclass(frozen=True, slots=True)
class IssuerCert:
    """A certificate whose key was shown to have signed the certificate it was asked about."""

    der: bytes
    spki_sha256: str  # hex SHA-256 of its SubjectPublicKeyInfo, as a watch's authorized_issuers names it


# signatureAlgorithm OIDs (DER content octets) -> (key family, hash); RFC 3279, 4055, 5758, 8410.
_RSA, _ECDSA, _EDDSA, _DSA = "rsa", "ecdsa", "eddsa", "dsa"
_ALGORITHMS: dict[bytes, tuple[str, hashes.HashAlgorithm | None]] = {
    bytes.fromhex("2a864886f70d010105"): (_RSA, hashes.SHA1()),
    bytes.fromhex("2a864886f70d01010e"): (_RSA, hashes.SHA224()),
    bytes.fromhex("2a864886f70d01010b"): (_RSA, hashes.SHA256()),
    bytes.fromhex("2a864886f70d01010c"): (_RSA, hashes.SHA384()),
    bytes.fromhex("2a864886f70d01010d"): (_RSA, hashes.SHA512()),
    bytes.fromhex("2a8648ce3d0401"): (_ECDSA, hashes.SHA1()),
    bytes.fromhex("2a8648ce3d040301"): (_ECDSA, hashes.SHA224()),
    bytes.fromhex("2a8648ce3d040302"): (_ECDSA, hashes.SHA256()),
    bytes.fromhex("2a8648ce3d040303"): (_ECDSA, hashes.SHA384()),
    bytes.fromhex("2a8648ce3d040304"): (_ECDSA, hashes.SHA512()),
    bytes.fromhex("2b6570"): (_EDDSA, None),  # Ed25519
    bytes.fromhex("2b6571"): (_EDDSA, None),  # Ed448
    bytes.fromhex("2a8648ce380403"): (_DSA, hashes.SHA1()),
    bytes.fromhex("608648016503040302"): (_DSA, hashes.SHA256()),
}
_RSASSA_PSS = bytes.fromhex("2a864886f70d01010a")

# Issuer certificates repeat across entries (a log has a few hundred): each is parsed once per process.
_KEYS: dict[bytes, tuple[PublicKey, str] | None] = {}
_KEYS_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class _Signed:
    tbs: bytes
    algorithm: bytes  # the OID's content octets
    signature: bytes


def verified_issuer(leaf_der: bytes, candidates: Iterable[bytes]) -> IssuerCert | None:
    """The first of `candidates` (DER certificates) whose public key verifies the signature of the DER
    certificate `leaf_der`; None if none does, or if the leaf's signature cannot be read. Never raises."""
    try:
        signed = _signed_parts(bytes(leaf_der))
    except (DecodeError, IndefiniteLength):
        return None
    pss = _pss_parameters(leaf_der) if signed.algorithm == _RSASSA_PSS else None
    if signed.algorithm not in _ALGORITHMS and pss is None:
        return None
    tried: set[bytes] = set()
    for candidate in candidates:
        candidate = bytes(candidate)
        if candidate in tried:
            continue
        tried.add(candidate)
        key = _key_of(candidate)
        if key is not None and _verifies(key[0], signed, pss):
            return IssuerCert(candidate, key[1])
    return None


def _signed_parts(b: bytes) -> _Signed:
    """Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }."""
    tag, start, end = read_tlv(b, 0, len(b))
    if tag != SEQUENCE:
        raise DecodeError("Certificate: not a SEQUENCE at offset 0")
    tag, _, tbs_end = read_tlv(b, start, end)
    if tag != SEQUENCE:
        raise DecodeError(f"TBSCertificate: not a SEQUENCE at offset {start}")
    tag, algorithm_start, algorithm_end = read_tlv(b, tbs_end, end)
    if tag != SEQUENCE:
        raise DecodeError(f"signatureAlgorithm: not a SEQUENCE at offset {tbs_end}")
    tag, oid_start, oid_end = read_tlv(b, algorithm_start, algorithm_end)
    if tag != OID:
        raise DecodeError(f"signatureAlgorithm: no OID at offset {algorithm_start}")
    tag, bits_start, bits_end = read_tlv(b, algorithm_end, end)
    if tag != BIT_STRING or bits_start == bits_end or b[bits_start] != 0:
        raise DecodeError(f"signatureValue: not a whole-octet BIT STRING at offset {algorithm_end}")
    return _Signed(b[start:tbs_end], b[oid_start:oid_end], b[bits_start + 1 : bits_end])


def _pss_parameters(leaf_der: bytes) -> tuple[padding.PSS, hashes.HashAlgorithm] | None:
    # The hash, mask generation and salt length are parameters of the algorithm: cryptography reads them.
    try:
        certificate = x509.load_der_x509_certificate(bytes(leaf_der))
        parameters = certificate.signature_algorithm_parameters
        algorithm = certificate.signature_hash_algorithm
    except Exception:  # a certificate it cannot read is one whose issuer stays unknown
        return None
    if isinstance(parameters, padding.PSS) and algorithm is not None:
        return parameters, algorithm
    return None


def _key_of(der: bytes) -> tuple[PublicKey, str] | None:
    if der in _KEYS:
        return _KEYS[der]
    try:
        certificate = x509.load_der_x509_certificate(der)
        key = certificate.public_key()
        spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        found: tuple[PublicKey, str] | None = None
        if isinstance(key, PublicKey):
            found = (key, sha256(spki).hexdigest())
    except Exception:  # an unreadable candidate is simply not the issuer
        found = None
    if len(_KEYS) >= _KEYS_LIMIT:
        _KEYS.clear()
    _KEYS[der] = found
    return found


def _verifies(key: PublicKey, signed: _Signed, pss: tuple[padding.PSS, hashes.HashAlgorithm] | None) -> bool:
    try:
        if pss is not None:
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(signed.signature, signed.tbs, pss[0], pss[1])
            return True
        family, algorithm = _ALGORITHMS[signed.algorithm]
        if family == _RSA and isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signed.signature, signed.tbs, padding.PKCS1v15(), algorithm)
        elif family == _ECDSA and isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signed.signature, signed.tbs, ec.ECDSA(algorithm))
        elif family == _EDDSA and isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signed.signature, signed.tbs)
        elif family == _DSA and isinstance(key, dsa.DSAPublicKey) and algorithm is not None:
            key.verify(signed.signature, signed.tbs, algorithm)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True
