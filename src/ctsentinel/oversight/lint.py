"""Lint one certificate with pkilint's CA/B Forum TLS Baseline Requirements validations.

pkilint (DigiCert's linter, the one crt.sh and pkimetal run) picks the profile from the certificate
itself, as its `lint_cabf_serverauth_cert lint --detect` does: root, intermediate, OCSP responder, or a
subscriber certificate by its reserved policy OID (DV, OV, IV, EV). Rules are applied as of the
certificate's notBefore, and PKIX findings that the CA/B Forum rules supersede are filtered out, as the
command line does by default.

A precertificate is linted as what it is: the poison extension makes pkilint choose the matching
*-pre-certificate profile, which holds it to the same Baseline Requirements (BR 7.1.2.9: a
precertificate is the certificate to be, plus the poison) and checks the CT extensions too (poison
present, no SCT list). So the first (pre)certificate of an issuance that is linted speaks for the
issuance; its final certificate differs only by the SCT list that replaces the poison.

Building pkilint's validators costs about 0.2 s per profile, so they are built once per profile and
process; linting is then a few milliseconds per certificate (bench/lint_bench.py measures it).
pkilint is untyped: everything it returns is turned into the typed LintReport right here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pkilint import finding_filter, loader  # type: ignore[import-untyped]
from pkilint.cabf import serverauth  # type: ignore[import-untyped]
from pkilint.pkix import certificate  # type: ignore[import-untyped]

# What the report says of bytes pkilint cannot decode at all (ours, not one of pkilint's codes): a
# certificate a CA signed that no DER decoder reads is the gravest finding there is.
UNDECODABLE = "certificate.undecodable"
UNDECODABLE_PROFILE = "undecodable"


class LintSeverity(StrEnum):
    """pkilint's severities, most severe first; FATAL and ERROR are what the lint_error flag counts."""

    FATAL = "fatal"
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def is_error(self) -> bool:
        return self in (LintSeverity.FATAL, LintSeverity.ERROR)


_RANK = {severity: rank for rank, severity in enumerate(reversed(LintSeverity))}


@dataclass(frozen=True, slots=True)
class LintFinding:
    severity: LintSeverity
    code: str  # pkilint's code, e.g. "cabf.serverauth.certificate_validity_period_exceeds_398_days"
    message: str | None  # pkilint's detail, one line
    where: str  # the node of the certificate, e.g. "certificate.tbsCertificate.validity.notBefore"

    def to_json(self) -> dict[str, str | None]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "where": self.where,
        }


@dataclass(frozen=True, slots=True)
class LintReport:
    profile: str  # pkilint's certificate type, e.g. "ov-pre-certificate", or "undecodable"
    findings: tuple[LintFinding, ...]  # in pkilint's order

    @property
    def errors(self) -> tuple[LintFinding, ...]:
        return tuple(f for f in self.findings if f.severity.is_error)

    @property
    def error_codes(self) -> tuple[str, ...]:
        """The distinct codes of the errors, sorted: what a CA watch's lint_error flag lists."""
        return tuple(sorted({f.code for f in self.errors}))

    def to_json(self) -> dict[str, object]:
        """A certificate's "lint" in JSON (inspect cert --lint, the web's certificate)."""
        return {"profile": self.profile, "findings": [f.to_json() for f in self.findings]}


class _Linters:
    """pkilint's validators and filters, built on first use of each profile."""

    def __init__(self) -> None:
        self._loader: Any = None
        self._by_type: dict[Any, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def loader(self) -> Any:
        if self._loader is None:
            self._loader = loader.RFC5280CertificateDocumentLoader()
        return self._loader

    def for_type(self, certificate_type: Any) -> tuple[Any, Any]:
        with self._lock:
            built = self._by_type.get(certificate_type)
            if built is None:
                validator = certificate.create_pkix_certificate_validator_container(
                    serverauth.create_decoding_validators(), serverauth.create_validators(certificate_type)
                )
                filters = serverauth.create_serverauth_finding_filters(certificate_type)
                built = self._by_type[certificate_type] = (validator, filters)
            return built


_LINTERS = _Linters()


def lint_certificate(der: bytes, *, at_least: LintSeverity = LintSeverity.NOTICE) -> LintReport:
    """pkilint's findings for one DER certificate or precertificate, those at least `at_least` severe."""
    try:
        document = _LINTERS.loader().load_der_document(der, "certificate")
        certificate_type = serverauth.determine_certificate_type(document)
    except Exception as exc:  # pkilint raises ValueError, pyasn1's errors and its own decoding errors
        problem = LintFinding(LintSeverity.FATAL, UNDECODABLE, _one_line(exc), "")
        return LintReport(UNDECODABLE_PROFILE, (problem,))
    validator, filters = _LINTERS.for_type(certificate_type)
    results, _ = finding_filter.filter_results(filters, validator.validate(document.root))
    findings = []
    for result in results:
        where = str(result.node.path)
        for description in result.finding_descriptions:
            severity = _severity(description.finding.severity.name)
            if severity is None or severity.rank < at_least.rank:
                continue
            message = None if description.message is None else _one_line(description.message)
            findings.append(LintFinding(severity, str(description.finding.code), message, where))
    return LintReport(str(certificate_type.to_option_str).lower(), tuple(findings))


def _severity(name: str) -> LintSeverity | None:
    try:
        return LintSeverity(name.lower())
    except ValueError:  # DEBUG: pkilint's own tracing, not a finding
        return None


def _one_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return " ".join(line.strip() for line in lines) if lines else type(text).__name__
