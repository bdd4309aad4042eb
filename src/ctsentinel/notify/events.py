"""The kinds of event that travel through the channels, and their round trip through the outbox.

- AlertEvent: an alert (DESIGN.md section 5) with its certificate's details, which channels may use (a
  mail attachment, hook variables) but never send: to_json() is exactly the alert JSON;
- HealthEvent: a log's problem, {"event": "log_health", "log", "problem", "detail", "severity", "time"} in
  JSON, a clearly distinct object, so a receiver never mistakes a log problem for a certificate;
- RevocationEvent: news about an alerted certificate's revocation, {"event": "revocation", "change",
  "detail", "severity", "time", "alert"}: "revoked" (its CA revoked it) or "contradiction" (the CA's OCSP
  responder says good for a certificate its CRL lists); "alert" is the alert JSON, `revoked` filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ctsentinel.store import Alert, CertificateDetails, alert_payload
from ctsentinel.timefmt import parse_rfc3339, rfc3339
from ctsentinel.watch.severity import Severity

HEALTH_EVENT = "log_health"
REVOCATION_EVENT = "revocation"


@dataclass(frozen=True)
class AlertEvent:
    alert: Alert
    certificate: CertificateDetails | None = None  # None when the certificate itself was not stored

    @property
    def kind(self) -> str:
        return "alert"

    @property
    def severity(self) -> Severity:
        return self.alert.severity

    def to_json(self) -> dict[str, Any]:
        return self.alert.to_json()

    def to_payload(self) -> dict[str, Any]:
        return alert_payload(self.alert, self.certificate)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> AlertEvent:
        return cls(Alert.from_json(payload), CertificateDetails.from_payload(payload))


@dataclass(frozen=True)
class HealthEvent:
    log: str  # the log's URL
    problem: str  # "misbehaving" (the misbehaviour kind leads the detail) or "behind"
    detail: str
    severity: Severity
    time: datetime

    @property
    def kind(self) -> str:
        return HEALTH_EVENT

    def to_json(self) -> dict[str, Any]:
        return {
            "event": HEALTH_EVENT,
            "log": self.log,
            "problem": self.problem,
            "detail": self.detail,
            "severity": self.severity.value,
            "time": rfc3339(self.time),
        }

    def to_payload(self) -> dict[str, Any]:
        return self.to_json()

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> HealthEvent:
        return cls(
            log=str(payload["log"]),
            problem=str(payload["problem"]),
            detail=str(payload["detail"]),
            severity=Severity(payload["severity"]),
            time=parse_rfc3339(str(payload["time"])),
        )


@dataclass(frozen=True)
class RevocationEvent:
    alert: Alert
    change: str  # "revoked" | "contradiction" (store.RevocationChange)
    detail: str  # one line: what each source said
    time: datetime

    @property
    def kind(self) -> str:
        return REVOCATION_EVENT

    @property
    def severity(self) -> Severity:
        return self.alert.severity

    def to_json(self) -> dict[str, Any]:
        return {
            "event": REVOCATION_EVENT,
            "change": self.change,
            "detail": self.detail,
            "severity": self.severity.value,
            "time": rfc3339(self.time),
            "alert": self.alert.to_json(),
        }

    def to_payload(self) -> dict[str, Any]:
        return self.to_json()

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> RevocationEvent:
        return cls(
            alert=Alert.from_json(payload["alert"]),
            change=str(payload["change"]),
            detail=str(payload["detail"]),
            time=parse_rfc3339(str(payload["time"])),
        )


Event = AlertEvent | HealthEvent | RevocationEvent


def health_event(
    log: str, problem: str, detail: str, severity: Severity = Severity.HIGH, time: datetime | None = None
) -> HealthEvent:
    """A log-health event, now unless `time` says otherwise; ValueError for a severity that alerts no one."""
    severity = Severity(severity)
    if not severity.is_alert:
        raise ValueError(f"health event severity {severity!r} is not one of {', '.join(Severity.alerting())}")
    return HealthEvent(log, problem, detail, severity, time or datetime.now(UTC))


def event_from_payload(payload: Mapping[str, Any]) -> Event:
    """The event an outbox payload holds; KeyError, ValueError or TypeError when it holds none."""
    if payload.get("event") == HEALTH_EVENT:
        return HealthEvent.from_payload(payload)
    if payload.get("event") == REVOCATION_EVENT:
        return RevocationEvent.from_payload(payload)
    return AlertEvent.from_payload(payload)
