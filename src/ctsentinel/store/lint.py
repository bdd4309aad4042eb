"""Lint: the queue of certificates CA watches want linted, and what the linter found in each.

Commits queue the certificates (the decode workers only say which); the linter (ctsentinel.oversight) takes
them from the queue when the workers have time to spare and hands the reports back, with the CA watches'
findings the errors make, which may grow an alert or start one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, bindparam, delete, func, select

from ctsentinel.certs.record import CertRecord
from ctsentinel.store.database import aware
from ctsentinel.store.dialect import bulk_insert_tuples
from ctsentinel.store.keys import issuance_key
from ctsentinel.store.rows import record_from_row
from ctsentinel.store.schema import certificates, lint_findings, lint_queue, lint_reports
from ctsentinel.store.types import FindingLike


class LintFindingLike(Protocol):
    """What the store keeps of one linter finding (oversight.lint.LintFinding)."""

    @property
    def severity(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str | None: ...
    @property
    def where(self) -> str: ...


@dataclass(frozen=True)
class LintDue:
    """A queued certificate, with what the linter and the CA watches need of it."""

    sha256: bytes
    der: bytes | None
    record: CertRecord


@dataclass(frozen=True)
class LintResult:
    """The linter's report on one queued certificate and the CA watches' findings it makes."""

    sha256: bytes
    profile: str
    findings: Sequence[LintFindingLike]
    policy: Sequence[FindingLike]  # ca_policy findings with the lint errors counted (may be none)


@dataclass(frozen=True)
class StoredLintFinding:
    severity: str
    code: str
    message: str | None
    where: str

    def to_json(self) -> dict[str, str | None]:
        return {"severity": self.severity, "code": self.code, "message": self.message, "where": self.where}


@dataclass(frozen=True)
class StoredLint:
    """What the linter said of one certificate, and when."""

    profile: str
    linted_at: datetime
    findings: tuple[StoredLintFinding, ...]


def queue(conn: Connection, shas: Sequence[bytes], now: datetime) -> None:
    rows = [(sha, now) for sha in dict.fromkeys(shas)]
    bulk_insert_tuples(conn, lint_queue, ("cert_sha256", "queued_at"), rows, ["cert_sha256"])


def due(conn: Connection, limit: int) -> list[LintDue]:
    """Queued certificates, the oldest first; those linted already (seen again in another log) leave the
    queue here without a second lint."""
    done = (
        conn.execute(
            select(lint_queue.c.cert_sha256).join(
                lint_reports, lint_reports.c.cert_sha256 == lint_queue.c.cert_sha256
            )
        )
        .scalars()
        .all()
    )
    if done:
        conn.execute(delete(lint_queue).where(lint_queue.c.cert_sha256.in_(list(done))))
    rows = conn.execute(
        select(certificates)
        .join(lint_queue, lint_queue.c.cert_sha256 == certificates.c.sha256)
        .order_by(lint_queue.c.queued_at, lint_queue.c.cert_sha256)
        .limit(limit)
    ).all()
    return [LintDue(row.sha256, row.der, record_from_row(row)) for row in rows]


def pending(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(lint_queue)).scalar_one())


def record(conn: Connection, result: LintResult, now: datetime) -> None:
    """The report (in the caller's transaction; the CA watches' findings are the caller's to write)."""
    conn.execute(delete(lint_queue).where(lint_queue.c.cert_sha256 == result.sha256))
    if conn.execute(
        select(lint_reports.c.profile).where(lint_reports.c.cert_sha256 == result.sha256)
    ).first():
        return
    conn.execute(
        lint_reports.insert().values(cert_sha256=result.sha256, profile=result.profile, linted_at=now)
    )
    rows = [
        (result.sha256, position, str(f.severity), f.code, f.message, f.where)
        for position, f in enumerate(result.findings)
    ]
    bulk_insert_tuples(
        conn, lint_findings, ("cert_sha256", "position", "severity", "code", "message", "node"), rows
    )


def issuance_of(conn: Connection, sha: bytes) -> str | None:
    row = conn.execute(select(certificates).where(certificates.c.sha256 == sha)).first()
    return None if row is None else issuance_key(record_from_row(row))


def reports(conn: Connection, shas: Sequence[bytes]) -> dict[bytes, StoredLint]:
    """The lint of each certificate that was linted."""
    out: dict[bytes, StoredLint] = {}
    if not shas:
        return out
    heads = conn.execute(
        select(lint_reports).where(lint_reports.c.cert_sha256.in_(bindparam("shas", expanding=True))),
        {"shas": list(shas)},
    ).all()
    found: dict[bytes, list[StoredLintFinding]] = {row.cert_sha256: [] for row in heads}
    for row in conn.execute(
        select(lint_findings)
        .where(lint_findings.c.cert_sha256.in_(bindparam("shas", expanding=True)))
        .order_by(lint_findings.c.cert_sha256, lint_findings.c.position),
        {"shas": list(found)},
    ):
        found[row.cert_sha256].append(StoredLintFinding(row.severity, row.code, row.message, row.node))
    for row in heads:
        out[row.cert_sha256] = StoredLint(row.profile, aware(row.linted_at), tuple(found[row.cert_sha256]))
    return out
