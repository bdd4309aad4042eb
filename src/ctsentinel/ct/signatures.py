"""Log keys and the signatures of RFC 6962: STHs and SCTs, verified with `cryptography`.

RFC 6962 section 2.1.4 allows exactly two schemes: ECDSA over NIST P-256 with SHA-256 and RSASSA-PKCS1-v1_5
with SHA-256. P-384 with SHA-384 is accepted too because some logs outside the browser programs use it.
The DigitallySigned algorithm bytes are checked against the key before verifying, so a log cannot make
us verify under a weaker scheme than its key implies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ctsentinel.ct.errors import DecodeError, SignatureError
from ctsentinel.ct.sth import SignedTreeHead
from ctsentinel.ct.tls import (
    DigitallySigned,
    HashAlgorithm,
    LogEntryType,
    SignatureAlgorithm,
    SignedCertificateTimestamp,
    sct_signature_input,
)

__all__ = ["LogKey", "LogSigner", "verify_sct", "verify_sth"]

_MIN_RSA_BITS = 2048
_PEM_PUBLIC_KEY = re.compile(rb"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", re.DOTALL)

# Curve name -> (hash algorithm byte, hash) allowed with it.
_EC_SCHEMES: dict[str, tuple[int, hashes.HashAlgorithm]] = {
    "secp256r1": (HashAlgorithm.SHA256, hashes.SHA256()),
    "secp384r1": (HashAlgorithm.SHA384, hashes.SHA384()),
}
_CURVE_LABELS = {"secp256r1": "P-256", "secp384r1": "P-384"}


def _algorithm_name(value: int, enum: type[HashAlgorithm] | type[SignatureAlgorithm]) -> str:
    try:
        return f"{enum(value).name} ({value})"
    except ValueError:
        return f"unknown ({value})"


def _looks_like_spki(der: bytes) -> bool:
    """True if `der` opens SEQUENCE { SEQUENCE ...: the shape of a SubjectPublicKeyInfo.

    cryptography's DER loader also takes a bare PKCS#1 RSAPublicKey (SEQUENCE { INTEGER ...), whose
    SHA-256 is not a log ID; this keeps those out.
    """
    if len(der) < 2 or der[0] != 0x30:
        return False
    first_len = der[1]
    inner = 2 if first_len < 0x80 else 2 + (first_len & 0x7F)
    return len(der) > inner and der[inner] == 0x30


class LogKey:
    """A log's public key; `log_id` is SHA-256 of the SubjectPublicKeyInfo DER exactly as given."""

    __slots__ = ("_hash", "_hash_algorithm", "_key", "_label", "_signature_algorithm", "log_id", "spki_der")

    spki_der: bytes
    log_id: bytes

    def __init__(self, spki_der: bytes) -> None:
        """Prefer the from_* constructors; this is from_der."""
        if not _looks_like_spki(spki_der):
            raise DecodeError("LogKey: not a SubjectPublicKeyInfo DER (a SEQUENCE starting with a SEQUENCE)")
        try:
            key = serialization.load_der_public_key(spki_der)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise DecodeError(f"LogKey: not a SubjectPublicKeyInfo DER ({exc})") from None
        self._hash: hashes.HashAlgorithm
        self._key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
        if isinstance(key, ec.EllipticCurvePublicKey):
            curve = key.curve.name
            if curve not in _EC_SCHEMES:
                raise SignatureError(f"LogKey: unsupported elliptic curve {curve} (need P-256 or P-384)")
            self._hash_algorithm, self._hash = _EC_SCHEMES[curve]
            self._signature_algorithm = int(SignatureAlgorithm.ECDSA)
            self._label = f"ECDSA {_CURVE_LABELS[curve]}"
        elif isinstance(key, rsa.RSAPublicKey):
            if key.key_size < _MIN_RSA_BITS:
                raise SignatureError(
                    f"LogKey: RSA key of {key.key_size} bits is too small (need {_MIN_RSA_BITS}+)"
                )
            self._hash_algorithm, self._hash = HashAlgorithm.SHA256, hashes.SHA256()
            self._signature_algorithm = int(SignatureAlgorithm.RSA)
            self._label = f"RSA-{key.key_size}"
        else:
            raise SignatureError(f"LogKey: unsupported public key type {type(key).__name__}")
        self._key = key
        self.spki_der = bytes(spki_der)
        self.log_id = hashlib.sha256(self.spki_der).digest()

    @classmethod
    def from_der(cls, spki_der: bytes) -> LogKey:
        return cls(spki_der)

    @classmethod
    def from_pem(cls, pem: bytes) -> LogKey:
        """The first "PUBLIC KEY" PEM block; its own bytes give the log ID, not a re-encoding."""
        match = _PEM_PUBLIC_KEY.search(pem)
        if match is None:
            raise DecodeError("LogKey: no '-----BEGIN PUBLIC KEY-----' PEM block")
        body = b"".join(match.group(1).split())
        try:
            der = base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise DecodeError(f"LogKey: PEM body is not valid base64 ({exc})") from None
        return cls(der)

    @classmethod
    def from_base64(cls, b64: str) -> LogKey:
        """The `key` field of a Chrome/Apple log list: base64 of the SubjectPublicKeyInfo DER."""
        try:
            der = base64.b64decode(b64.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error) as exc:
            raise DecodeError(f"LogKey: key is not valid base64 ({exc})") from None
        return cls(der)

    @property
    def description(self) -> str:
        return f"{self._label} key {base64.b64encode(self.log_id).decode('ascii')}"

    def verify(self, data: bytes, signed: DigitallySigned) -> None:
        """Raise SignatureError unless `signed` is this key's signature over `data` in the key's scheme."""
        if signed.signature_algorithm != self._signature_algorithm:
            raise SignatureError(
                f"DigitallySigned: signature algorithm "
                f"{_algorithm_name(signed.signature_algorithm, SignatureAlgorithm)} does not match "
                f"the {self.description}"
            )
        if signed.hash_algorithm != self._hash_algorithm:
            raise SignatureError(
                f"DigitallySigned: hash algorithm {_algorithm_name(signed.hash_algorithm, HashAlgorithm)} "
                f"is not the {_algorithm_name(self._hash_algorithm, HashAlgorithm)} required with the "
                f"{self.description}"
            )
        try:
            if isinstance(self._key, rsa.RSAPublicKey):
                self._key.verify(signed.signature, data, padding.PKCS1v15(), self._hash)
            else:
                self._key.verify(signed.signature, data, ec.ECDSA(self._hash))
        except (InvalidSignature, ValueError):
            # A malformed ECDSA DER blob is just another signature that does not verify.
            raise SignatureError(
                f"DigitallySigned: signature does not verify with the {self.description}"
            ) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LogKey) and other.spki_der == self.spki_der

    def __hash__(self) -> int:
        return hash(self.log_id)

    def __repr__(self) -> str:
        return f"LogKey({self.description})"


class LogSigner:
    """An ECDSA P-256 log private key, for the test log."""

    __slots__ = ("_private", "public_key")

    public_key: LogKey

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise SignatureError(f"LogSigner: unsupported curve {private_key.curve.name} (need P-256)")
        self._private = private_key
        spki = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = LogKey(spki)

    @classmethod
    def generate(cls) -> LogSigner:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes) -> LogSigner:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise DecodeError(f"LogSigner: not an unencrypted PEM private key ({exc})") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SignatureError(
                f"LogSigner: unsupported private key type {type(key).__name__} (need ECDSA P-256)"
            )
        return cls(key)

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def sign(self, data: bytes) -> DigitallySigned:
        der = self._private.sign(data, ec.ECDSA(hashes.SHA256()))
        return DigitallySigned(int(HashAlgorithm.SHA256), int(SignatureAlgorithm.ECDSA), der)

    def __repr__(self) -> str:
        return f"LogSigner({self.public_key.description})"


def verify_sth(key: LogKey, sth: SignedTreeHead) -> None:
    try:
        key.verify(sth.signature_input(), sth.signature)
    except SignatureError as exc:
        raise SignatureError(
            f"SignedTreeHead (tree_size {sth.tree_size}, timestamp {sth.timestamp}): {exc}"
        ) from None


def verify_sct(
    key: LogKey,
    sct: SignedCertificateTimestamp,
    entry_type: LogEntryType,
    signed_entry: bytes,
    issuer_key_hash: bytes | None = None,
) -> None:
    """Check the SCT's signature only; whether its log ID and timestamp are acceptable is for the caller."""
    data = sct_signature_input(sct, entry_type, signed_entry, issuer_key_hash)
    try:
        key.verify(data, sct.signature)
    except SignatureError as exc:
        raise SignatureError(f"SignedCertificateTimestamp (timestamp {sct.timestamp}): {exc}") from None
