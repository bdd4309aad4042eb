"""logs.request_rate: the request rate each log tolerated, so that a restarted monitor starts from it.

Revision ID: 0006_request_rate
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_request_rate"
down_revision = "0005_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("logs") as batch:
        batch.add_column(sa.Column("request_rate", sa.Float))
