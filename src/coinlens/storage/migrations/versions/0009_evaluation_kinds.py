"""evaluations.kind: grades are evaluated and stored too

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 13:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _comment(new: str, old: str) -> None:
    if op.get_bind().dialect.name == "sqlite":  # SQLite keeps no column comments
        return
    op.alter_column(
        "evaluations",
        "kind",
        existing_type=sa.String(length=32),
        existing_nullable=False,
        comment=new,
        existing_comment=old,
    )


def upgrade() -> None:
    _comment("what was evaluated: forecasts or grades", "what was evaluated: forecasts")


def downgrade() -> None:
    _comment("what was evaluated: forecasts", "what was evaluated: forecasts or grades")
