"""tokens.history_market_id/history_until: a token's daily series continues another market

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(
            sa.Column(
                "history_market_id",
                sa.Integer(),
                nullable=True,
                comment="market whose earlier daily candles continue the series backwards",
            )
        )
        batch.add_column(
            sa.Column(
                "history_until",
                sa.BigInteger(),
                nullable=True,
                comment="open time of the primary's first daily candle: history before it",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("history_until")
        batch.drop_column("history_market_id")
