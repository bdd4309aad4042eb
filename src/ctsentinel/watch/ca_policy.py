"""CA watches: the root program's view of what a CA issues (DESIGN.md section 4, [[ca_watch]]).

A CA watch selects issuers (by SPKI hash, by organization, or "*" for every CA) and names the flags it
cares about. Every certificate of a selected CA is the watch's to keep; one that trips a flag is a
CaPolicyFinding, an alert of reason `ca_policy` whose `findings` list the flags ("lint_error:<code>" for
each linter error). The cheap flags are computed here, on every certificate of a watched CA; lint errors
come from the linter (ctsentinel.oversight.lint), which the caller runs where `wants_lint` says so.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ctsentinel.certs.record import CertRecord
from ctsentinel.watch.finding import Finding, Reason
from ctsentinel.watch.policy import IssuerSpec, organizations
from ctsentinel.watch.public_suffix import is_internal_name
from ctsentinel.watch.reserved import is_reserved_text
from ctsentinel.watch.severity import Severity

# CA/B Forum BR 6.3.2: at most 398 days, where the validity period counts notBefore to notAfter
# inclusive (notAfter - notBefore + 1 second).
MAX_VALIDITY = datetime.timedelta(days=398)
_ONE_SECOND = datetime.timedelta(seconds=1)
_ORG_CACHE_LIMIT = 10_000


class CaFlag(StrEnum):
    IP_ADDRESS = "ip_address"  # names any IP address
    RESERVED_IP = "reserved_ip"  # names an address that is not globally routable
    INTERNAL_NAME = "internal_name"  # names a DNS name under no public top-level domain
    LONG_VALIDITY = "long_validity"  # valid for more than 398 days
    LINT_ERROR = "lint_error"  # the linter reports an error

    @property
    def is_cheap(self) -> bool:
        """Computed from the CertRecord alone, on the hot path; LINT_ERROR needs the linter."""
        return self is not CaFlag.LINT_ERROR


ALL_FLAGS: tuple[CaFlag, ...] = tuple(CaFlag)  # a [[ca_watch]] without `flag` watches them all


class RevocationScope(StrEnum):
    """Whose revocation status a CA watch wants checked (besides every alert's, which is always checked)."""

    ALERTS = "alerts"  # only the certificates it alerted on (the default)
    ALL = "all"  # every certificate its CAs issue


class LintHit(Protocol):
    """A linter error as the policy needs it (oversight.lint.LintFinding has these)."""

    @property
    def code(self) -> str: ...
    @property
    def where(self) -> str: ...  # the linter's node path, e.g. "certificate.tbsCertificate...dNSName"


@dataclass(frozen=True, slots=True)
class LintIgnore:
    """A lint error code a CA watch does not count, everywhere or only in one certificate field.

    Written "<code>" or "<code>@<field>", the field being the last element of the linter's node path: e.g.
    "cabf.internal_domain_name@uniformResourceIdentifier" ignores internal names in CRL and OCSP URLs
    while an internal name in the subjectAltName (field dNSName) still counts.
    """

    code: str
    field: str | None = None

    @classmethod
    def parse(cls, text: str) -> LintIgnore:
        code, at, where = text.strip().partition("@")
        if not code or any(c.isspace() for c in code) or (at and (not where or "." in where)):
            raise ValueError(f"{text!r} is not a lint code, or a code @ a field name")
        return cls(code, where or None)

    def covers(self, code: str, where: str) -> bool:
        return code == self.code and (self.field is None or where.rsplit(".", 1)[-1] == self.field)

    def __str__(self) -> str:
        return f"{self.code}@{self.field}" if self.field else self.code


@dataclass(frozen=True, slots=True)
class TrippedFlag:
    flag: CaFlag
    code: str | None = None  # the linter's finding code, for LINT_ERROR

    def __str__(self) -> str:
        return f"{self.flag}:{self.code}" if self.code else str(self.flag)


_FLAG_ORDER = {flag: position for position, flag in enumerate(CaFlag)}


@dataclass(frozen=True, slots=True)
class CaPolicyFinding:
    """One CA watch's verdict on one certificate: the flags it tripped (never empty)."""

    ca_watch: str
    tripped: tuple[TrippedFlag, ...]
    severity: Severity = Severity.HIGH

    @property
    def findings(self) -> tuple[str, ...]:
        """The alert JSON's `findings`: "ip_address", "lint_error:<code>", ..."""
        return tuple(str(t) for t in self.tripped)


class CaWatchSpec(Protocol):
    """What a [[ca_watch]] provides (the config builds it)."""

    @property
    def name(self) -> str: ...
    @property
    def issuers(self) -> Sequence[IssuerSpec]: ...
    @property
    def every_ca(self) -> bool: ...  # issuers = ["*"]
    @property
    def flags(self) -> Sequence[CaFlag]: ...
    @property
    def ignore_lint(self) -> Sequence[LintIgnore]: ...
    @property
    def revocation(self) -> RevocationScope: ...


@dataclass(frozen=True, slots=True)
class CaWatch:
    """A CA watch compiled for matching."""

    name: str
    issuer_hashes: frozenset[str]
    issuer_organizations: frozenset[str]
    every_ca: bool
    flags: frozenset[CaFlag]
    ignore_lint: tuple[LintIgnore, ...] = ()
    revocation: RevocationScope = RevocationScope.ALERTS

    @classmethod
    def build(cls, spec: CaWatchSpec) -> CaWatch:
        return cls(
            name=spec.name,
            issuer_hashes=frozenset(i.spki_sha256.lower() for i in spec.issuers if i.spki_sha256),
            issuer_organizations=frozenset(i.organization.casefold() for i in spec.issuers if i.organization),
            every_ca=spec.every_ca,
            flags=frozenset(spec.flags or ALL_FLAGS),
            ignore_lint=tuple(spec.ignore_lint),
            revocation=spec.revocation,
        )

    def counts(self, hit: str | LintHit) -> bool:
        """Whether a lint error counts for this watch (a bare code is one found in no particular field)."""
        code, where = (hit, "") if isinstance(hit, str) else (hit.code, hit.where)
        return not any(rule.covers(code, where) for rule in self.ignore_lint)

    def selects(self, record: CertRecord, issuer_orgs: frozenset[str]) -> bool:
        return (
            self.every_ca
            or record.issuer_spki_sha256 in self.issuer_hashes
            or not self.issuer_organizations.isdisjoint(issuer_orgs)
        )


def cheap_flags(record: CertRecord, wanted: frozenset[CaFlag] = frozenset(ALL_FLAGS)) -> frozenset[CaFlag]:
    """The flags among `wanted` (LINT_ERROR aside) that `record` trips, each computed only if wanted."""
    tripped: set[CaFlag] = set()
    if record.ip_addresses:
        if CaFlag.IP_ADDRESS in wanted:
            tripped.add(CaFlag.IP_ADDRESS)
        if CaFlag.RESERVED_IP in wanted and any(is_reserved_text(text) for text in record.ip_addresses):
            tripped.add(CaFlag.RESERVED_IP)
    if CaFlag.INTERNAL_NAME in wanted and any(is_internal_name(name) for name in record.dns_names):
        tripped.add(CaFlag.INTERNAL_NAME)
    if CaFlag.LONG_VALIDITY in wanted and _too_long(record.not_before, record.not_after):
        tripped.add(CaFlag.LONG_VALIDITY)
    return frozenset(tripped)


def _too_long(not_before: str | None, not_after: str | None) -> bool:
    if not not_before or not not_after:
        return False
    try:
        start = datetime.datetime.fromisoformat(not_before)
        end = datetime.datetime.fromisoformat(not_after)
    except ValueError:
        return False
    return end - start + _ONE_SECOND > MAX_VALIDITY


class CaPolicy:
    """Every [[ca_watch]] of the config, applied to one certificate at a time."""

    def __init__(self, watches: Sequence[CaWatch]) -> None:
        self._watches = tuple(watches)
        self._issuer_orgs: dict[str, frozenset[str]] = {}

    @classmethod
    def from_config(cls, ca_watches: Sequence[CaWatchSpec]) -> CaPolicy:
        return cls([CaWatch.build(spec) for spec in ca_watches])

    def __bool__(self) -> bool:
        return bool(self._watches)

    @property
    def verify_first(self) -> bool:
        """A final certificate's issuer must be verified before the policy can judge it: some CA watch
        selects CAs by key hash, or one watches every CA (each certificate is kept, so verified anyway)."""
        return any(w.issuer_hashes or w.every_ca for w in self._watches)

    def watching(self, record: CertRecord) -> tuple[CaWatch, ...]:
        """The CA watches whose CAs issued `record`: each keeps the certificate, flagged or not."""
        if not self._watches:
            return ()
        orgs = self._organizations(record.issuer)
        return tuple(w for w in self._watches if w.selects(record, orgs))

    def check(self, record: CertRecord, lint_errors: Sequence[str | LintHit] = ()) -> list[CaPolicyFinding]:
        """One finding per watching CA watch whose flags `record` trips, in config order.

        `lint_errors` are the linter's errors for the certificate (or just their codes), where it was
        linted; each CA watch leaves out those its `ignore_lint` covers.
        """
        return self.judge(record, self.watching(record), lint_errors)

    def judge(
        self, record: CertRecord, watches: Sequence[CaWatch], lint_errors: Sequence[str | LintHit] = ()
    ) -> list[CaPolicyFinding]:
        """check() for the CA watches `watching` already found, so the caller selects only once."""
        if not watches:
            return []
        wanted = watches[0].flags if len(watches) == 1 else frozenset().union(*(w.flags for w in watches))
        tripped = cheap_flags(record, wanted)
        if not tripped and not lint_errors:
            return []  # most certificates: nothing to report
        findings = []
        for watch in watches:
            # In the order CaFlag declares them, lint codes last and sorted.
            hits = [TrippedFlag(flag) for flag in sorted(tripped & watch.flags, key=_FLAG_ORDER.__getitem__)]
            if CaFlag.LINT_ERROR in watch.flags and lint_errors:
                codes = {h if isinstance(h, str) else h.code for h in lint_errors if watch.counts(h)}
                hits.extend(TrippedFlag(CaFlag.LINT_ERROR, code) for code in sorted(codes))
            if hits:
                findings.append(CaPolicyFinding(watch.name, tuple(hits)))
        return findings

    def verdict(self, record: CertRecord) -> CaVerdict | None:
        """What the CA watches make of `record` on the hot path (cheap flags only); None when no CA watch
        watches its CA. The decode workers call this for every certificate."""
        watches = self.watching(record)
        if not watches:
            return None
        found = self.judge(record, watches)
        return CaVerdict(
            findings=tuple(as_finding(record, f) for f in found),
            lint=self.wants_lint(watches, found),
            revocation=any(w.revocation is RevocationScope.ALL for w in watches),
        )

    def findings(self, record: CertRecord, lint_errors: Sequence[str | LintHit] = ()) -> list[Finding]:
        """check() as the Findings the store keeps (reason ca_policy), e.g. once the linter has spoken."""
        return [as_finding(record, f) for f in self.check(record, lint_errors)]

    @staticmethod
    def wants_lint(watches: Sequence[CaWatch], findings: Sequence[CaPolicyFinding]) -> bool:
        """Whether to lint the certificate: for a CA watch with lint_error that names its CAs (they are
        few), or that has flagged the certificate already (flagged ones are few under "*")."""
        flagged = {f.ca_watch for f in findings}
        return any(CaFlag.LINT_ERROR in w.flags and (not w.every_ca or w.name in flagged) for w in watches)

    def _organizations(self, issuer: str | None) -> frozenset[str]:
        if not issuer:
            return frozenset()
        cached = self._issuer_orgs.get(issuer)
        if cached is None:
            if len(self._issuer_orgs) >= _ORG_CACHE_LIMIT:
                self._issuer_orgs.clear()
            cached = self._issuer_orgs[issuer] = organizations(issuer)
        return cached


@dataclass(frozen=True, slots=True)
class CaVerdict:
    """What the CA watches make of one certificate of a CA they watch: it is stored in any case."""

    findings: tuple[Finding, ...]  # reason ca_policy, one per CA watch whose cheap flags it trips
    lint: bool  # to be linted (CaPolicy.wants_lint)
    revocation: bool  # a CA watch wants the revocation status of every certificate of its CAs


def as_finding(record: CertRecord, found: CaPolicyFinding) -> Finding:
    """A CA watch's finding as the alert it makes: `matched` holds the identifiers behind the flags (the
    addresses, the internal names); `findings` the flags."""
    flags = {t.flag for t in found.tripped}
    matched: list[str] = []
    if CaFlag.IP_ADDRESS in flags:
        matched.extend(record.ip_addresses)
    elif CaFlag.RESERVED_IP in flags:
        matched.extend(text for text in record.ip_addresses if is_reserved_text(text))
    if CaFlag.INTERNAL_NAME in flags:
        matched.extend(name for name in record.dns_names if is_internal_name(name))
    return Finding(found.ca_watch, Reason.CA_POLICY, found.severity, tuple(matched), found.findings)
