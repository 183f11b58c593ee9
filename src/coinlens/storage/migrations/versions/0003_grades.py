"""grades

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 11:02:31.544175
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grades",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False, comment="epoch day (UTC) the grade is for"),
        sa.Column("trader", sa.Float(), nullable=False),
        sa.Column("investor", sa.Float(), nullable=True),
        sa.Column(
            "components", sa.JSON(), nullable=False, comment="sub-grades that add up to the grades"
        ),
        sa.ForeignKeyConstraint(
            ["token_id"], ["tokens.id"], name=op.f("fk_grades_token_id_tokens")
        ),
        sa.PrimaryKeyConstraint("token_id", "day", name=op.f("pk_grades")),
    )
    op.create_index("ix_grades_day_trader", "grades", ["day", "trader"], unique=False)
    op.create_table(
        "grade_days",
        sa.Column("day", sa.Integer(), nullable=False, comment="epoch day (UTC)"),
        sa.Column(
            "digest", sa.String(length=40), nullable=False, comment="hash of the day's grade rows"
        ),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_grade_days")),
        comment="one row per graded day, so a rerun rewrites only the days that changed",
    )


def downgrade() -> None:
    op.drop_table("grade_days")
    op.drop_index("ix_grades_day_trader", table_name="grades")
    op.drop_table("grades")
