"""Turn a submitted chain into what the log records: the signed entry, issuer key hash and issuer chain.

Validation is what a real, lenient log does: every certificate must be DER that parses, add-pre-chain needs
the CT poison extension and add-chain must not carry it. Chains need not end in a configured root.
Uses `cryptography` directly, never ctsentinel.certs: the log must not share the monitor's decoder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from ctsentinel.ct.tls import LogEntryType
from ctsentinel.testlog.tbs import tbs_without_poison

# RFC 6962 section 3.1: the EKU marking a Precertificate Signing Certificate.
_PRECERT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4")


class SubmissionError(ValueError):
    """A chain the log refuses (HTTP 400): one line naming the certificate at fault."""


@dataclass(frozen=True, slots=True)
class CheckedChain:
    entry_type: LogEntryType
    signed_entry: bytes  # certificate DER, or the precertificate's TBS without the poison extension
    issuer_key_hash: bytes | None
    pre_certificate: bytes | None
    issuers: tuple[bytes, ...]  # chain[1:], DER as submitted


def _load(der: bytes, position: int) -> x509.Certificate:
    if not isinstance(der, bytes | bytearray) or not der:
        raise SubmissionError(f"chain[{position}]: empty certificate")
    try:
        return x509.load_der_x509_certificate(bytes(der))
    except ValueError as exc:
        raise SubmissionError(f"chain[{position}]: not a DER certificate ({exc})") from None


def _has_extension(cert: x509.Certificate, oid: x509.ObjectIdentifier, position: int) -> bool:
    try:
        cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return False
    except ValueError as exc:
        raise SubmissionError(f"chain[{position}]: malformed extensions ({exc})") from None
    return True


def _is_precert_signing_cert(cert: x509.Certificate) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return _PRECERT_SIGNING_EKU in eku or ExtendedKeyUsageOID.CERTIFICATE_TRANSPARENCY in eku


def spki_sha256(cert: x509.Certificate) -> bytes:
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


class ChainChecker:
    """Checks chains; remembers parsed issuers because a log sees the same few issuers over and over."""

    def __init__(self) -> None:
        self._issuer_key_hashes: dict[bytes, bytes] = {}
        self._checked_issuers: set[bytes] = set()

    def _issuer_key_hash(self, der: bytes) -> bytes:
        cached = self._issuer_key_hashes.get(der)
        if cached is None:
            cert = _load(der, 1)
            if _is_precert_signing_cert(cert):
                # static-ct-api allows refusing these; supporting them would need the TBS issuer rewrite.
                raise SubmissionError("chain[1]: precertificate signing certificates are not accepted")
            cached = spki_sha256(cert)
            self._issuer_key_hashes[der] = cached
        return cached

    def _check_issuers(self, chain: Sequence[bytes]) -> tuple[bytes, ...]:
        issuers = tuple(bytes(c) for c in chain[1:])
        for position, der in enumerate(issuers, start=1):
            if der not in self._checked_issuers:
                _load(der, position)
                self._checked_issuers.add(der)
        return issuers

    def check(self, chain: Sequence[bytes], precert: bool) -> CheckedChain:
        if len(chain) == 0:
            raise SubmissionError("empty chain")
        leaf_der = bytes(chain[0])
        leaf = _load(leaf_der, 0)
        poisoned = _has_extension(leaf, ExtensionOID.PRECERT_POISON, 0)
        issuers = self._check_issuers(chain)
        if not precert:
            if poisoned:
                raise SubmissionError("chain[0]: add-chain got a precertificate (CT poison extension)")
            return CheckedChain(LogEntryType.X509_ENTRY, leaf_der, None, None, issuers)
        if not poisoned:
            raise SubmissionError("chain[0]: add-pre-chain needs the CT poison extension")
        if not issuers:
            raise SubmissionError("add-pre-chain needs the issuer certificate after the precertificate")
        issuer_key_hash = self._issuer_key_hash(issuers[0])
        tbs = tbs_without_poison(leaf.tbs_certificate_bytes)
        return CheckedChain(LogEntryType.PRECERT_ENTRY, tbs, issuer_key_hash, leaf_der, issuers)
