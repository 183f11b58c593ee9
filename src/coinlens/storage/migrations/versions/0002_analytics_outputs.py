"""analytics outputs

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 11:02:31.544175
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_analytics",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column(
            "as_of_day",
            sa.Integer(),
            nullable=False,
            comment="epoch day (UTC) of the last close used",
        ),
        sa.Column("panel_version", sa.BigInteger(), nullable=False),
        sa.Column("signal", sa.SmallInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("signal_since_day", sa.Integer(), nullable=True),
        sa.Column(
            "payload", sa.JSON(), nullable=False, comment="latest indicators, ROI, risk, levels"
        ),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"], ["tokens.id"], name=op.f("fk_token_analytics_token_id_tokens")
        ),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_token_analytics")),
    )
    op.create_table(
        "signal_events",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False, comment="epoch day (UTC) of the change"),
        sa.Column("from_signal", sa.SmallInteger(), nullable=False),
        sa.Column("to_signal", sa.SmallInteger(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_id"], ["tokens.id"], name=op.f("fk_signal_events_token_id_tokens")
        ),
        sa.PrimaryKeyConstraint("token_id", "day", name=op.f("pk_signal_events")),
    )
    op.create_table(
        "backtests",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("params_key", sa.String(length=128), nullable=False),
        sa.Column("as_of_day", sa.Integer(), nullable=False),
        sa.Column(
            "payload",
            sa.JSON(),
            nullable=False,
            comment="strategy vs buy-and-hold metrics + params",
        ),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"], ["tokens.id"], name=op.f("fk_backtests_token_id_tokens")
        ),
        sa.PrimaryKeyConstraint("token_id", "params_key", name=op.f("pk_backtests")),
    )


def downgrade() -> None:
    op.drop_table("backtests")
    op.drop_table("signal_events")
    op.drop_table("token_analytics")
