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


def downgrade() -> None:
    op.drop_table("grades")
