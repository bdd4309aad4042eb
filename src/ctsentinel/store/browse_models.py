"""What browsing the store hands out: pages of issuances, a certificate with everything known of it, alert
actions, a watch's timeline and a CA's report."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from ctsentinel.certs.record import CertRecord
from ctsentinel.store.models import Alert, AlertState, SearchResult, Sighting
from ctsentinel.timefmt import rfc3339

T = TypeVar("T")


@dataclass(frozen=True)
class SearchFilters:
    unexpired_at: str | None = None  # "…Z": only issuances whose not_after is at or after this time
    issuer_spki_sha256: str | None = None  # hex: only this issuer's
    watch: str | None = None  # only issuances with a finding for this watch


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    more: bool  # there are rows after the last item


@dataclass(frozen=True)
class Issuance:
    """One issuance found: its number, when the store first saw it, and the search result (the
    representative certificate with every name of the issuance, every fingerprint and log entry)."""

    id: int
    first_seen: datetime
    found: SearchResult
    issuer_id: int | None = None  # issuers.id of its issuing key, when identified
    revoked: Mapping[str, Any] | None = None

    @property
    def record(self) -> CertRecord:
        return self.found.record

    def to_json(self) -> dict[str, Any]:
        """A CertRecord (the representative's sha256) plus "id", "entries" and "revoked"."""
        return {
            **self.record.to_json(),
            "id": self.id,
            "entries": [entry.to_json() for entry in self.found.entries],
            "revoked": None if self.revoked is None else dict(self.revoked),
        }


def pem(der: bytes) -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


@dataclass(frozen=True)
class Sibling:
    """Another certificate of the same issuance (the precertificate of a final certificate, or back)."""

    sha256: str
    precert: bool


@dataclass(frozen=True)
class CertificateView:
    record: CertRecord
    der: bytes | None  # None when only the record was kept
    entries: tuple[Sighting, ...]  # every log entry that carried this certificate
    issuance_id: int | None
    siblings: tuple[Sibling, ...]
    alerts: tuple[Alert, ...]  # alerts on its issuance
    first_seen: datetime
    revoked: Mapping[str, Any] | None = None  # null until checked
    lint: tuple[Mapping[str, Any], ...] | None = None  # null until linted, else its findings

    @property
    def pem(self) -> str | None:
        return pem(self.der) if self.der is not None else None

    def to_json(self) -> dict[str, Any]:
        """A CertRecord plus "pem", "entries", "lint" (null until linted), "revoked" (null until checked)."""
        return {
            **self.record.to_json(),
            "pem": self.pem,
            "entries": [entry.to_json() for entry in self.entries],
            "lint": None if self.lint is None else [dict(finding) for finding in self.lint],
            "revoked": None if self.revoked is None else dict(self.revoked),
        }


@dataclass(frozen=True)
class AlertAction:
    alert: int
    state: AlertState  # the state the alert moved to
    note: str
    actor: str
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "state": self.state.value,
            "note": self.note,
            "by": self.actor,
            "at": rfc3339(self.at),
        }


@dataclass(frozen=True)
class IssuerInfo:
    id: int
    spki_sha256: str  # hex
    name: str | None
    first_seen: datetime


@dataclass(frozen=True)
class TimelineBar:
    """Issuances of one issuer in one month (by notBefore)."""

    month: str  # "2024-02"
    issuer: IssuerInfo | None  # None: issuer not identified
    count: int


@dataclass(frozen=True)
class CAReport:
    """What the store holds of one issuer; to_json() is the `ca report --json` object."""

    issuer: IssuerInfo
    issuances: int
    by_month: dict[str, int]
    identifiers: dict[str, int]  # issuances naming at least one DNS name / IP address
    findings: dict[str, int] = field(default_factory=dict)  # ca_policy flags tripped, per flag
    lint: dict[str, int] = field(default_factory=dict)  # issuances with a lint error, per code
    revocation: dict[str, int] = field(default_factory=dict)  # revoked, good, unknown, unchecked
    alerts: tuple[Alert, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer.name,
            "issuer_spki_sha256": self.issuer.spki_sha256,
            "issuances": self.issuances,
            "by_month": dict(self.by_month),
            "identifiers": dict(self.identifiers),
            "findings": dict(self.findings),
            "lint": dict(self.lint),
            "revocation": dict(self.revocation),
        }
