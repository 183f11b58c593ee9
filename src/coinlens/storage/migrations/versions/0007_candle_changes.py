"""candle_changes: the per-version log of changed markets behind incremental panel snapshots

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "candle_changes",
        sa.Column(
            "version", sa.BigInteger(), nullable=False, comment="candles_version of the write"
        ),
        sa.Column("market_id", sa.Integer(), nullable=False),
        sa.Column("timeframe", sa.String(length=4), nullable=False),
        sa.Column(
            "min_open_time", sa.BigInteger(), nullable=False, comment="oldest changed candle"
        ),
        sa.PrimaryKeyConstraint(
            "version", "market_id", "timeframe", name=op.f("pk_candle_changes")
        ),
        comment="which markets each candles_version changed, from when: lets panel snapshots merge",
    )


def downgrade() -> None:
    op.drop_table("candle_changes")
