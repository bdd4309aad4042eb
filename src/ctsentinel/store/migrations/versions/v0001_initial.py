"""The tables: logs and their tree heads and misbehaviour, certificates with their log entries, names and
addresses, alerts and findings (schema_version 1 before Alembic).

Revision ID: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

# Bytewise ordering on every backend for the range-scanned text (SQLite's BINARY collation already is).
_SCAN_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "logs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("log_id", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("operator", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("public_key", sa.LargeBinary),
        sa.Column("mmd", sa.Integer),
        sa.Column("position", sa.BigInteger),
        sa.Column("start_index", sa.BigInteger),
        sa.Column("compact_range", sa.LargeBinary),
        sa.Column("verified_size", sa.BigInteger),
        sa.Column("verified_root", sa.LargeBinary),
        sa.Column("verified_timestamp", sa.BigInteger),
        sa.Column("latest_size", sa.BigInteger),
        sa.Column("latest_timestamp", sa.BigInteger),
        sa.Column("misbehaving", sa.Boolean, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("entries_processed", sa.BigInteger, nullable=False),
        sa.Column("updated_at", _TIME),
    )
    op.create_table(
        "certificates",
        sa.Column("sha256", sa.LargeBinary, primary_key=True),
        sa.Column("issuance", _SCAN_TEXT, nullable=False),
        sa.Column("tbs_sha256", sa.LargeBinary),
        sa.Column("serial", sa.Text),
        sa.Column("issuer", sa.Text),
        sa.Column("issuer_spki_sha256", sa.LargeBinary),
        sa.Column("subject", sa.Text),
        sa.Column("subject_spki_sha256", sa.LargeBinary),
        sa.Column("dns_names", sa.Text, nullable=False),
        sa.Column("ip_addresses", sa.Text, nullable=False),
        sa.Column("unicode_names", sa.Text, nullable=False),
        sa.Column("not_before", sa.Text),
        sa.Column("not_after", sa.Text),
        sa.Column("precert", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("der", sa.LargeBinary),
        sa.Column("first_seen", _TIME, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("watch", sa.Text, nullable=False),
        sa.Column("issuance", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("matched", sa.Text, nullable=False),
        sa.Column("first_seen", _TIME, nullable=False),
        sa.Column("revoked", sa.Text),
        sa.UniqueConstraint("watch", "issuance", name="uq_alerts_watch_issuance"),
    )
    op.create_table(
        "tree_heads",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("log", sa.Integer, sa.ForeignKey("logs.id"), nullable=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.LargeBinary, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("first_seen", _TIME, nullable=False),
        sa.UniqueConstraint("log", "tree_size", "root_hash", name="uq_tree_heads_log_size_root"),
    )
    op.create_table(
        "misbehaviour",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("log", sa.Integer, sa.ForeignKey("logs.id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("time", _TIME, nullable=False),
    )
    op.create_table(
        "log_entries",
        sa.Column("log", sa.Integer, sa.ForeignKey("logs.id"), nullable=False),
        sa.Column("idx", sa.BigInteger, nullable=False),
        sa.Column("cert_sha256", sa.LargeBinary, sa.ForeignKey("certificates.sha256"), nullable=False),
        sa.Column("entry_type", sa.Text, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("log", "idx"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "cert_names",
        sa.Column("name_rev", _SCAN_TEXT, nullable=False),
        sa.Column("cert_sha256", sa.LargeBinary, sa.ForeignKey("certificates.sha256"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name_rev", "cert_sha256"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "cert_ips",
        sa.Column("ip", sa.LargeBinary, nullable=False),
        sa.Column("cert_sha256", sa.LargeBinary, sa.ForeignKey("certificates.sha256"), nullable=False),
        sa.PrimaryKeyConstraint("ip", "cert_sha256"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "findings",
        sa.Column("cert_sha256", sa.LargeBinary, sa.ForeignKey("certificates.sha256"), nullable=False),
        sa.Column("watch", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("matched", sa.Text, nullable=False),
        sa.Column("alert", sa.Integer, sa.ForeignKey("alerts.id")),
        sa.Column("first_seen", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("cert_sha256", "watch"),
    )
    op.create_index("ix_certificates_issuance", "certificates", ["issuance"])
    op.create_index("ix_certificates_tbs_sha256", "certificates", ["tbs_sha256"])
    op.create_index("ix_misbehaviour_log", "misbehaviour", ["log"])
    op.create_index("ix_log_entries_cert", "log_entries", ["cert_sha256"])
    op.create_index("ix_findings_alert", "findings", ["alert"])
