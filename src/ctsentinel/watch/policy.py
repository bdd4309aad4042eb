"""Authorization policy of one watch: is this matching certificate one its owner allowed?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ctsentinel.certs.dn import ORGANIZATION, attribute_values
from ctsentinel.certs.record import CertRecord
from ctsentinel.watch.finding import Finding, Reason


class IssuerSpec(Protocol):
    @property
    def spki_sha256(self) -> str | None: ...
    @property
    def organization(self) -> str | None: ...


def organizations(dn: str) -> frozenset[str]:
    """The O= values of an RFC 4514 DN string, case-folded ("O=Let's Encrypt" -> "let's encrypt")."""
    return frozenset(value.casefold() for value in attribute_values(dn, ORGANIZATION))


@dataclass(frozen=True, slots=True)
class Policy:
    watch: str
    issuer_hashes: frozenset[str]
    issuer_organizations: frozenset[str]
    subscriber_keys: frozenset[str]
    approved: frozenset[str]

    @classmethod
    def build(
        cls,
        watch: str,
        issuers: Sequence[IssuerSpec],
        keys: Sequence[str],
        approved: Sequence[str],
    ) -> Policy:
        return cls(
            watch=watch,
            issuer_hashes=frozenset(i.spki_sha256.lower() for i in issuers if i.spki_sha256),
            issuer_organizations=frozenset(i.organization.casefold() for i in issuers if i.organization),
            subscriber_keys=frozenset(k.lower() for k in keys),
            approved=frozenset(a.lower() for a in approved),
        )

    def judge(self, record: CertRecord, matched: tuple[str, ...], issuer_orgs: frozenset[str]) -> Finding:
        reason = self._reason(record, issuer_orgs)
        return Finding(self.watch, reason, reason.severity, matched)

    def _reason(self, record: CertRecord, issuer_orgs: frozenset[str]) -> Reason:
        if self.approved and (record.tbs_sha256 in self.approved or record.sha256 in self.approved):
            return Reason.AUTHORIZED
        # An unknown issuer key (a final certificate no chain certificate verifies) is unauthorized even
        # when the certificate names an authorized organization: anyone can write that name.
        issuer_ok = record.issuer_spki_sha256 is not None and (
            record.issuer_spki_sha256 in self.issuer_hashes or bool(self.issuer_organizations & issuer_orgs)
        )
        if not issuer_ok:
            return Reason.UNAUTHORIZED_ISSUER
        if self.subscriber_keys and record.subject_spki_sha256 not in self.subscriber_keys:
            return Reason.UNAUTHORIZED_KEY
        if record.error is not None:
            # An authorized CA's certificate we could not fully read may name more than we saw.
            return Reason.MALFORMED
        return Reason.AUTHORIZED
