"""forecasts

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 11:02:31.544175
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("model_id", sa.String(length=96), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "cutoff_day", sa.Integer(), nullable=False, comment="last epoch day of training data"
        ),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False, comment="measured out-of-sample accuracy"),
        sa.Column("artifact", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_models")),
    )
    op.create_table(
        "forecasts",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column(
            "origin_day", sa.Integer(), nullable=False, comment="epoch day of the last close used"
        ),
        sa.Column("horizon", sa.Integer(), nullable=False, comment="days ahead"),
        sa.Column("model_id", sa.String(length=96), nullable=False),
        sa.Column("p05", sa.Float(), nullable=False),
        sa.Column("p10", sa.Float(), nullable=False),
        sa.Column("p25", sa.Float(), nullable=False),
        sa.Column("p50", sa.Float(), nullable=False),
        sa.Column("p75", sa.Float(), nullable=False),
        sa.Column("p90", sa.Float(), nullable=False),
        sa.Column("p95", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.model_id"], name=op.f("fk_forecasts_model_id_models")
        ),
        sa.ForeignKeyConstraint(
            ["token_id"], ["tokens.id"], name=op.f("fk_forecasts_token_id_tokens")
        ),
        sa.PrimaryKeyConstraint(
            "token_id", "origin_day", "horizon", "model_id", name=op.f("pk_forecasts")
        ),
    )


def downgrade() -> None:
    op.drop_table("forecasts")
    op.drop_table("models")
