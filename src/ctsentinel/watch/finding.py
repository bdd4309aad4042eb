"""A Finding: one watch matched one certificate, and what the policy says about it."""

from __future__ import annotations

from dataclasses import dataclass

UNAUTHORIZED_ISSUER = "unauthorized_issuer"
UNAUTHORIZED_KEY = "unauthorized_key"
MALFORMED = "malformed"
AUTHORIZED = "authorized"

# Severity ranks alerts; "none" marks an authorized sighting, which is stored and searchable but not alerted.
SEVERITY_OF = {
    UNAUTHORIZED_ISSUER: "critical",
    UNAUTHORIZED_KEY: "high",
    MALFORMED: "high",
    AUTHORIZED: "none",
}


@dataclass(frozen=True, slots=True)
class Finding:
    watch: str  # the [[watch]] name
    reason: str  # unauthorized_issuer | unauthorized_key | malformed | authorized
    severity: str  # critical | high | none
    matched: tuple[str, ...]  # the watched names/addresses as the certificate wrote them

    @property
    def is_alert(self) -> bool:
        return self.severity != "none"
