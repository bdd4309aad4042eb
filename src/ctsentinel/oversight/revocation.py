"""What a CRL or an OCSP responder says about one certificate: the shared answer type and its error."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509

from ctsentinel.errors import Error

# A thisUpdate this far ahead of our clock is the issuer's clock running fast, not a forged future answer.
CLOCK_SKEW = datetime.timedelta(minutes=5)


class RevocationError(Error):
    """A CRL or OCSP answer that cannot be trusted or read: bad signature, wrong issuer, malformed bytes."""


class RevocationStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


class RevocationSource(StrEnum):
    CRL = "crl"
    OCSP = "ocsp"


class RevocationReason(StrEnum):
    """RFC 5280 section 5.3.1 CRLReason, by its ASN.1 name (what CRLs, OCSP and the alert JSON say)."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    CA_COMPROMISE = "cACompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"
    CERTIFICATE_HOLD = "certificateHold"
    REMOVE_FROM_CRL = "removeFromCRL"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn"
    AA_COMPROMISE = "aACompromise"

    @classmethod
    def of(cls, flag: x509.ReasonFlags | None) -> RevocationReason | None:
        # cryptography's ReasonFlags values are the same ASN.1 names.
        return None if flag is None else cls(flag.value)

    def to_flag(self) -> x509.ReasonFlags:
        return x509.ReasonFlags(self.value)


@dataclass(frozen=True, slots=True)
class RevocationAnswer:
    """One source's verified word on one serial.

    A source past its nextUpdate (`stale`) can still prove a revocation (revocation is final), but it
    cannot vouch that a certificate is good: such an answer is UNKNOWN.
    """

    status: RevocationStatus
    source: RevocationSource
    this_update: datetime.datetime
    next_update: datetime.datetime | None
    reason: RevocationReason | None = None
    revoked_at: datetime.datetime | None = None
    stale: bool = False

    @classmethod
    def judged(
        cls,
        source: RevocationSource,
        *,
        revoked: bool,
        this_update: datetime.datetime,
        next_update: datetime.datetime | None,
        at: datetime.datetime,
        reason: RevocationReason | None = None,
        revoked_at: datetime.datetime | None = None,
        unknown: bool = False,
    ) -> RevocationAnswer:
        """The answer a source gives at time `at`, its freshness applied."""
        if this_update > at + CLOCK_SKEW:
            raise RevocationError(
                f"{source.upper()} thisUpdate {this_update:%Y-%m-%dT%H:%M:%SZ} is in the future"
            )
        stale = next_update is not None and next_update < at
        if revoked:
            status = RevocationStatus.REVOKED
        elif unknown or stale:
            status = RevocationStatus.UNKNOWN
        else:
            status = RevocationStatus.GOOD
        return cls(status, source, this_update, next_update, reason, revoked_at, stale)


def contradicts(first: RevocationAnswer, second: RevocationAnswer) -> bool:
    """True when one source says revoked and the other good: a responder lying, or a CRL gone wrong."""
    return {first.status, second.status} == {RevocationStatus.GOOD, RevocationStatus.REVOKED}
