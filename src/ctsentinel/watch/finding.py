"""A Finding: one watch matched one certificate, and what the policy says about it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ctsentinel.watch.severity import Severity


class Reason(StrEnum):
    UNAUTHORIZED_ISSUER = "unauthorized_issuer"
    UNAUTHORIZED_KEY = "unauthorized_key"
    MALFORMED = "malformed"
    AUTHORIZED = "authorized"

    @property
    def severity(self) -> Severity:
        return _SEVERITY_OF[self]


_SEVERITY_OF = {
    Reason.UNAUTHORIZED_ISSUER: Severity.CRITICAL,
    Reason.UNAUTHORIZED_KEY: Severity.HIGH,
    Reason.MALFORMED: Severity.HIGH,
    Reason.AUTHORIZED: Severity.NONE,
}


@dataclass(frozen=True, slots=True)
class Finding:
    watch: str  # the [[watch]] name
    reason: Reason
    severity: Severity
    matched: tuple[str, ...]  # the watched names/addresses as the certificate wrote them

    @property
    def is_alert(self) -> bool:
        return self.severity.is_alert
