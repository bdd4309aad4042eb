"""Browsing: every issuance numbered in the order first seen (issuances), every issuing key (issuers), and
alert states with their history (alerts.state, alert_actions). Issuances and issuers are filled from the
certificates already stored, oldest first.

Revision ID: 0007_browse
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0007_browse"
down_revision = "0006_request_rate"
branch_labels = None
depends_on = None

_SCAN_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_TIME = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_BATCH = 5000


def upgrade() -> None:
    op.add_column("alerts", sa.Column("state", sa.Text, nullable=False, server_default="open"))
    op.create_table(
        "alert_actions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("alert", sa.Integer, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", _TIME, nullable=False),
    )
    op.create_index("ix_alert_actions_alert", "alert_actions", ["alert"])
    issuances = op.create_table(
        "issuances",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("issuance", _SCAN_TEXT, nullable=False, unique=True),
        sa.Column("issuer_spki_sha256", sa.LargeBinary),
        sa.Column("not_before", sa.Text),
        sa.Column("not_after", sa.Text),
        sa.Column("dns_names", sa.Integer, nullable=False),
        sa.Column("ip_addresses", sa.Integer, nullable=False),
        sa.Column("first_seen", _TIME, nullable=False),
    )
    issuers = op.create_table(
        "issuers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("spki_sha256", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("name", sa.Text),
        sa.Column("first_seen", _TIME, nullable=False),
    )
    assert issuances is not None and issuers is not None
    _fill(issuances, issuers)
    op.create_index("ix_issuances_issuer", "issuances", ["issuer_spki_sha256", "id"])


def _fill(issuances: sa.Table, issuers: sa.Table) -> None:
    """One row per issuance and per issuing key of the certificates stored, numbered oldest first."""
    bind = op.get_bind()
    c = sa.table(
        "certificates",
        *(sa.column(n) for n in ("sha256", "issuance", "issuer", "not_before", "not_after", "dns_names")),
        sa.column("issuer_spki_sha256", sa.LargeBinary),
        sa.column("ip_addresses"),
        sa.column("first_seen", _TIME),
    )
    seen: set[str] = set()
    keys: set[bytes] = set()
    rows: list[dict[str, object]] = []
    issuer_rows: list[dict[str, object]] = []
    result = bind.execute(sa.select(c).order_by(c.c.first_seen, c.c.sha256))
    for row in result:
        if row.issuance in seen:
            continue
        seen.add(row.issuance)
        spki = bytes(row.issuer_spki_sha256) if row.issuer_spki_sha256 is not None else None
        rows.append(
            {
                "issuance": row.issuance,
                "issuer_spki_sha256": spki,
                "not_before": row.not_before,
                "not_after": row.not_after,
                "dns_names": len(json.loads(row.dns_names)),
                "ip_addresses": len(json.loads(row.ip_addresses)),
                "first_seen": row.first_seen,
            }
        )
        if spki is not None and spki not in keys:
            keys.add(spki)
            issuer_rows.append({"spki_sha256": spki, "name": row.issuer, "first_seen": row.first_seen})
        if len(rows) >= _BATCH:
            bind.execute(issuances.insert(), rows)
            rows = []
    if rows:
        bind.execute(issuances.insert(), rows)
    if issuer_rows:
        bind.execute(issuers.insert(), issuer_rows)
