"""A Finding: one watch (or CA watch) matched one certificate, and what the policy says about it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ctsentinel.watch.severity import Severity


class Reason(StrEnum):
    UNAUTHORIZED_ISSUER = "unauthorized_issuer"
    UNAUTHORIZED_KEY = "unauthorized_key"
    MALFORMED = "malformed"
    AUTHORIZED = "authorized"
    CA_POLICY = "ca_policy"  # a [[ca_watch]]'s CA issued a certificate that trips one of its flags

    @property
    def severity(self) -> Severity:
        return _SEVERITY_OF[self]


_SEVERITY_OF = {
    Reason.UNAUTHORIZED_ISSUER: Severity.CRITICAL,
    Reason.UNAUTHORIZED_KEY: Severity.HIGH,
    Reason.MALFORMED: Severity.HIGH,
    Reason.AUTHORIZED: Severity.NONE,
    Reason.CA_POLICY: Severity.HIGH,
}


@dataclass(frozen=True, slots=True)
class Finding:
    watch: str  # the [[watch]] name
    reason: Reason
    severity: Severity
    matched: tuple[str, ...]  # the watched names/addresses as the certificate wrote them
    # ca_policy: the flags tripped ("ip_address", "lint_error:<code>", ...), the alert JSON's `findings`
    findings: tuple[str, ...] = ()

    @property
    def is_alert(self) -> bool:
        return self.severity.is_alert
