"""What the store hands out: typed rows of its read side, and the alert and delivery models."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ctsentinel.certs.record import CertRecord
from ctsentinel.ct.misbehaviour import MisbehaviourKind
from ctsentinel.timefmt import parse_rfc3339, rfc3339
from ctsentinel.watch.finding import Reason
from ctsentinel.watch.severity import Severity


class EntryType(StrEnum):
    """A log entry's type, by the name the store keeps it under."""

    X509 = "x509"
    PRECERT = "precert"

    @property
    def json_name(self) -> str:
        """How alert and search JSON name it: "cert" or "precert"."""
        return "cert" if self is EntryType.X509 else "precert"

    @classmethod
    def from_json_name(cls, name: str) -> EntryType:
        if name == "cert":
            return cls.X509
        if name == "precert":
            return cls.PRECERT
        raise ValueError(f"entry type {name!r} is neither cert nor precert")


@dataclass(frozen=True)
class Sighting:
    """One log entry that carried a certificate."""

    log: str  # the log's URL
    index: int
    type: EntryType

    def to_json(self) -> dict[str, object]:
        return {"log": self.log, "index": self.index, "type": self.type.json_name}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Sighting:
        return cls(str(data["log"]), int(data["index"]), EntryType.from_json_name(str(data["type"])))


class AlertState(StrEnum):
    """Where people are with an alert: nobody has looked, someone is on it, it is dealt with."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    """One issuance for one watch (DESIGN.md section 5): the representative certificate's fields (the
    final certificate when one was seen), names and fingerprints of every certificate of the issuance,
    and every log entry that carried one."""

    id: int
    watch: str
    reason: Reason
    severity: Severity
    issuer: str | None
    issuer_spki_sha256: str | None
    serial: str | None
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    matched: tuple[str, ...]
    not_before: str | None
    not_after: str | None
    sha256: tuple[str, ...]
    entries: tuple[Sighting, ...]
    first_seen: datetime
    revoked: Mapping[str, Any] | None = None
    findings: tuple[str, ...] = ()  # the flags a ca_policy alert tripped
    state: AlertState = AlertState.OPEN

    def to_json(self) -> dict[str, Any]:
        """The alert JSON contract: exactly these keys, in this order."""
        return {
            "id": self.id,
            "watch": self.watch,
            "reason": self.reason.value,
            "severity": self.severity.value,
            "state": self.state.value,
            "findings": list(self.findings),
            "issuer": self.issuer,
            "issuer_spki_sha256": self.issuer_spki_sha256,
            "serial": self.serial,
            "dns_names": list(self.dns_names),
            "ip_addresses": list(self.ip_addresses),
            "matched": list(self.matched),
            "not_before": self.not_before,
            "not_after": self.not_after,
            "sha256": list(self.sha256),
            "entries": [entry.to_json() for entry in self.entries],
            "first_seen": rfc3339(self.first_seen),
            "revoked": None if self.revoked is None else dict(self.revoked),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        """The inverse of to_json; other keys are ignored. KeyError, ValueError or TypeError when `data` is
        not an alert."""
        revoked = data["revoked"]
        return cls(
            id=int(data["id"]),
            watch=str(data["watch"]),
            reason=Reason(data["reason"]),
            severity=Severity(data["severity"]),
            issuer=_text(data["issuer"]),
            issuer_spki_sha256=_text(data["issuer_spki_sha256"]),
            serial=_text(data["serial"]),
            dns_names=_texts(data["dns_names"]),
            ip_addresses=_texts(data["ip_addresses"]),
            matched=_texts(data["matched"]),
            not_before=_text(data["not_before"]),
            not_after=_text(data["not_after"]),
            sha256=_texts(data["sha256"]),
            entries=tuple(Sighting.from_json(entry) for entry in data["entries"]),
            first_seen=parse_rfc3339(str(data["first_seen"])),
            revoked=None if revoked is None else dict(revoked),
            state=AlertState(data.get("state", AlertState.OPEN.value)),
            findings=_texts(data.get("findings", [])),  # absent from events queued by older releases
        )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _texts(values: object) -> tuple[str, ...]:
    if not isinstance(values, list | tuple):
        raise TypeError(f"expected a list, got {type(values).__name__}")
    return tuple(str(value) for value in values)


@dataclass(frozen=True)
class CertificateDetails:
    """What a channel may use of an alert's representative certificate but never sends as alert JSON:
    the PEM (a mail attachment, a hook's CERT_FILENAME), the subject and two hashes (hook variables)."""

    pem: str | None
    subject: str | None
    tbs_sha256: str | None
    subject_spki_sha256: str | None

    # In the outbox payload they sit beside the alert's keys, marked private by a leading underscore.
    _KEYS = ("_pem", "_subject", "_tbs_sha256", "_subject_spki_sha256")

    def to_payload(self) -> dict[str, str | None]:
        values = (self.pem, self.subject, self.tbs_sha256, self.subject_spki_sha256)
        return dict(zip(self._KEYS, values, strict=True))

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> CertificateDetails | None:
        """None when the payload carries no certificate details (its certificate was not stored)."""
        if not any(key in payload for key in cls._KEYS):
            return None
        pem, subject, tbs, spki = (_text(payload.get(key)) for key in cls._KEYS)
        return cls(pem, subject, tbs, spki)


def alert_payload(alert: Alert, certificate: CertificateDetails | None) -> dict[str, Any]:
    """An alert as the outbox keeps it: its JSON, then its certificate details."""
    payload = alert.to_json()
    if certificate is not None:
        payload.update(certificate.to_payload())
    return payload


@dataclass(frozen=True)
class SearchResult:
    """One issuance a search found. `record` is its representative certificate (the final one when seen,
    else the first precertificate) with the names of every certificate of the issuance, and `precert`
    true only when no final certificate was seen: what `search --json` prints."""

    record: CertRecord
    fingerprints: tuple[str, ...]  # SHA-256 of every certificate and precertificate, in sighting order
    entries: tuple[Sighting, ...]  # every log entry that carried one of them


@dataclass(frozen=True)
class StoredTreeHead:
    """A tree head a log served, kept as evidence."""

    tree_size: int
    timestamp: int  # ms
    root_hash: bytes
    raw: bytes  # the head as the log served it
    verified: bool
    first_seen: datetime


@dataclass(frozen=True)
class MisbehaviourRecord:
    kind: MisbehaviourKind
    detail: str
    evidence: dict[str, Any]  # what proves it, as JSON (bytes as hex)
    time: datetime


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # for good: the sender gave up


@dataclass(frozen=True)
class PendingDelivery:
    id: int
    channel: str  # the channel's key
    idempotency_key: str
    payload: dict[str, Any] = field(hash=False)  # the event as queued: a JSON object
    attempts: int = 0  # failed attempts so far
    last_error: str | None = None


@dataclass(frozen=True)
class Undelivered:
    """A delivery not accepted yet, for `alerts` and `logs`."""

    id: int
    alert: int | None  # None for an event that is not an alert (a log's health)
    channel: str
    status: DeliveryStatus  # pending or failed
    attempts: int
    last_error: str | None
    next_attempt: datetime | None  # None once failed for good
    created: datetime
    kind: str = "alert"  # what is delivered: "alert", "log_health", "revocation" (news about an alert)


@dataclass(frozen=True)
class AlertDelivery:
    """One delivery of an alert, whatever its state."""

    channel: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    delivered: datetime | None
