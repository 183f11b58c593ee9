"""evaluations: the forecasting method's stored walk-forward track record

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 07:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(
            "kind",
            sa.String(length=32),
            nullable=False,
            comment="what was evaluated: forecasts",
        ),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_end_day", sa.Integer(), nullable=False, comment="last epoch day evaluated"),
        sa.Column("summary", sa.JSON(), nullable=False, comment="headline out-of-sample figures"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
        comment="full walk-forward evaluations of a method (quick and development runs not kept)",
    )
    op.create_index(
        "ix_evaluations_kind_evaluated_at", "evaluations", ["kind", "evaluated_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_evaluations_kind_evaluated_at", table_name="evaluations")
    op.drop_table("evaluations")
