"""markets.source: 256 characters (a market merged from several sources lists them all)

The embedded dataset's BTCUSDT spot market names three sources (77 characters), over the
old VARCHAR(64): PostgreSQL enforces the length (`coinlens load` failed there), SQLite
ignores it (batch mode rebuilds its table; `storage.db.upgrade` defers its foreign keys).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _source(length: int, was: int) -> None:
    with op.batch_alter_table("markets") as batch:
        batch.alter_column(
            "source",
            existing_type=sa.String(length=was),
            type_=sa.String(length=length),
            existing_nullable=False,
        )


def upgrade() -> None:
    _source(256, 64)


def downgrade() -> None:
    _source(64, 256)
