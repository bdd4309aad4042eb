"""Version 3 in `schema_version`: a ctsentinel from before Alembic reads the schema version there, and now
refuses this database as newer than it knows instead of writing to a schema it does not understand.

Revision ID: 0003_legacy_fence
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003_legacy_fence"
down_revision = "0002_deliveries"
branch_labels = None
depends_on = None

_FENCE = 3  # one more than the last version those releases know


def upgrade() -> None:
    bind = op.get_bind()
    if not sa.inspect(bind).has_table("schema_version"):
        op.create_table(
            "schema_version",
            sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        )
    table = sa.table(
        "schema_version",
        sa.column("version", sa.Integer),
        sa.column("applied_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(table, [{"version": _FENCE, "applied_at": datetime.now(UTC)}])
