"""Tables for Trader and Investor Grades (daily, point in time)."""

from __future__ import annotations

import sqlalchemy as sa

from coinlens.storage.tables import metadata

grades = sa.Table(
    "grades",
    metadata,
    sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id"), primary_key=True),
    sa.Column("day", sa.Integer, primary_key=True, comment="epoch day (UTC) the grade is for"),
    sa.Column("trader", sa.Float, nullable=False),
    sa.Column("investor", sa.Float),
    sa.Column(
        "components", sa.JSON, nullable=False, comment="sub-grades that add up to the grades"
    ),
    sa.Index("ix_grades_day_trader", "day", "trader"),
)

grade_days = sa.Table(
    "grade_days",
    metadata,
    sa.Column("day", sa.Integer, primary_key=True, comment="epoch day (UTC)"),
    sa.Column("digest", sa.String(40), nullable=False, comment="hash of the day's grade rows"),
    sa.Column("tokens", sa.Integer, nullable=False),
    comment="one row per graded day, so a rerun rewrites only the days that changed",
)
