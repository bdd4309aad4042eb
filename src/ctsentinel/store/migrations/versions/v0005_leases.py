"""Leases of logs and of ranges of a backlog, for several processes on one database.

Revision ID: 0005_leases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_leases"
down_revision = "0004_oversight"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_leases",
        sa.Column("log", sa.Integer, sa.ForeignKey("logs.id"), primary_key=True, autoincrement=False),
        sa.Column("holder", sa.Text),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "log_ranges",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("log", sa.Integer, sa.ForeignKey("logs.id"), nullable=False),
        sa.Column("watch", sa.Text, nullable=False),
        sa.Column("start", sa.BigInteger, nullable=False),
        sa.Column("end", sa.BigInteger, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("compact_range", sa.LargeBinary),
        sa.Column("target_size", sa.BigInteger, nullable=False),
        sa.Column("target_timestamp", sa.BigInteger, nullable=False),
        sa.Column("target_root", sa.LargeBinary, nullable=False),
        sa.Column("holder", sa.Text),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("log", "watch", "start", name="uq_log_ranges_log_watch_start"),
    )
