"""Certificate revocation lists: where a certificate says to find one, and what a verified one says.

Only complete CRLs signed directly by the certificate's issuer are accepted (the CA/B Forum profile);
a delta CRL or an indirect CRL is refused rather than half-understood.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID

from ctsentinel.oversight.revocation import (
    RevocationAnswer,
    RevocationError,
    RevocationReason,
    RevocationSource,
)

_ISSUER_KEYS = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
    dsa.DSAPublicKey,
)


def crl_urls(certificate: x509.Certificate) -> tuple[str, ...]:
    """The HTTP(S) URLs of the certificate's CRL distribution points, in order (LDAP and relative names
    are skipped: the Baseline Requirements allow only HTTP)."""
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return ()
    except ValueError as exc:
        raise RevocationError(f"certificate's CRL distribution points cannot be read: {exc}") from None
    urls: list[str] = []
    for point in points:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier) and _is_http(name.value):
                urls.append(name.value)
    return tuple(dict.fromkeys(urls))


def _is_http(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime.datetime
    reason: RevocationReason | None


@dataclass(frozen=True)
class Crl:
    """A CRL whose signature and issuer have been checked."""

    issuer: str  # RFC 4514
    this_update: datetime.datetime
    next_update: datetime.datetime | None
    number: int | None
    _list: x509.CertificateRevocationList

    def __len__(self) -> int:
        return len(self._list)

    def is_stale(self, at: datetime.datetime) -> bool:
        """Past its nextUpdate: the issuer promised a newer list by then."""
        return self.next_update is not None and self.next_update < at

    def lookup(self, serial: int) -> RevokedEntry | None:
        entry = self._list.get_revoked_certificate_by_serial_number(serial)
        if entry is None:
            return None
        try:
            reason_ext = entry.extensions.get_extension_for_class(x509.CRLReason)
            reason = RevocationReason.of(reason_ext.value.reason)
        except x509.ExtensionNotFound:
            reason = None
        except ValueError as exc:
            raise RevocationError(f"CRL entry for serial {serial:x} cannot be read: {exc}") from None
        return RevokedEntry(serial, entry.revocation_date_utc, reason)

    def answer(self, serial: int, at: datetime.datetime) -> RevocationAnswer:
        """What this CRL says of `serial` at time `at`: revoked if listed; good if not and still fresh."""
        entry = self.lookup(serial)
        return RevocationAnswer.judged(
            RevocationSource.CRL,
            revoked=entry is not None,
            this_update=self.this_update,
            next_update=self.next_update,
            at=at,
            reason=None if entry is None else entry.reason,
            revoked_at=None if entry is None else entry.revoked_at,
        )


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL from DER or PEM bytes."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise RevocationError(f"not a CRL: {_first_line(exc)}") from None


def verify_crl(data: bytes, issuer: x509.Certificate) -> Crl:
    """Parse a CRL (DER or PEM) and check that `issuer` signed it as a complete, direct CRL."""
    crl = load_crl(data)
    if crl.issuer != issuer.subject:
        raise RevocationError(
            f"CRL issued by {crl.issuer.rfc4514_string()}, not by {issuer.subject.rfc4514_string()}"
        )
    _check_may_sign_crls(issuer)
    public_key = issuer.public_key()
    if not isinstance(public_key, _ISSUER_KEYS):
        raise RevocationError(f"CRL signature cannot be checked with a {type(public_key).__name__}")
    try:
        valid = crl.is_signature_valid(public_key)
    except (TypeError, ValueError) as exc:
        raise RevocationError(f"CRL signature cannot be checked: {_first_line(exc)}") from None
    if not valid:
        raise RevocationError(
            f"CRL signature does not verify with the key of {issuer.subject.rfc4514_string()}"
        )
    try:
        extensions = crl.extensions
        if any(e.oid == ExtensionOID.DELTA_CRL_INDICATOR for e in extensions):
            raise RevocationError("a delta CRL, not a complete one")
        number = _crl_number(extensions)
        _check_direct(extensions)
    except ValueError as exc:
        raise RevocationError(f"CRL extensions cannot be read: {_first_line(exc)}") from None
    return Crl(crl.issuer.rfc4514_string(), crl.last_update_utc, crl.next_update_utc, number, crl)


def _crl_number(extensions: x509.Extensions) -> int | None:
    try:
        return extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return None


def _check_direct(extensions: x509.Extensions) -> None:
    try:
        point = extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return
    if point.indirect_crl:
        raise RevocationError("an indirect CRL (entries of other issuers), not supported")


def _check_may_sign_crls(issuer: x509.Certificate) -> None:
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    except ValueError as exc:
        raise RevocationError(f"issuer's key usage cannot be read: {_first_line(exc)}") from None
    if not usage.crl_sign:
        raise RevocationError(f"{issuer.subject.rfc4514_string()} may not sign CRLs (no cRLSign key usage)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
