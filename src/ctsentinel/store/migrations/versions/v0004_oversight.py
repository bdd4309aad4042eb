"""CA oversight: the flags an alert tripped, the CA certificates logs named, lint reports and the lint
queue, revocation status per issuance, and an index to read one CA's certificates.

Revision ID: 0004_oversight
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_oversight"
down_revision = "0003_legacy_fence"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("alerts", sa.Column("findings", sa.Text, nullable=False, server_default="[]"))
    op.create_index("ix_certificates_issuer", "certificates", ["issuer_spki_sha256"])
    op.create_table(
        "ca_certificates",
        sa.Column("sha256", sa.LargeBinary, primary_key=True),
        sa.Column("spki_sha256", sa.LargeBinary, nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.Column("first_seen", _TIME, nullable=False),
    )
    op.create_index("ix_ca_certificates_spki", "ca_certificates", ["spki_sha256"])
    op.create_table(
        "lint_queue",
        sa.Column("cert_sha256", sa.LargeBinary, sa.ForeignKey("certificates.sha256"), primary_key=True),
        sa.Column("queued_at", _TIME, nullable=False),
    )
    op.create_table(
        "lint_reports",
        sa.Column("cert_sha256", sa.LargeBinary, sa.ForeignKey("certificates.sha256"), primary_key=True),
        sa.Column("profile", sa.Text, nullable=False),
        sa.Column("linted_at", _TIME, nullable=False),
    )
    op.create_table(
        "lint_findings",
        sa.Column("cert_sha256", sa.LargeBinary, sa.ForeignKey("certificates.sha256"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("node", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("cert_sha256", "position"),
    )
    op.create_table(
        "revocations",
        sa.Column("issuance", sa.Text, primary_key=True),
        sa.Column("cert_sha256", sa.LargeBinary, sa.ForeignKey("certificates.sha256"), nullable=False),
        sa.Column("status", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("revoked_at", _TIME),
        sa.Column("source", sa.Text),
        sa.Column("checked_at", _TIME),
        sa.Column("changed_at", _TIME),
        sa.Column("crl", sa.Text),
        sa.Column("ocsp", sa.Text),
        sa.Column("contradiction", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_check_at", _TIME),
        sa.Column("requested_at", _TIME, nullable=False),
    )
    op.create_index("ix_revocations_due", "revocations", ["next_check_at"])
