"""Bulk writes of the grades table (whole days replaced, only where their digest changed) and
the day-over-day reads the grade-change events need."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from coinlens.storage.tables import tokens
from coinlens.storage.tables_grades import grade_days, grades

_CHUNK = 5_000


def day_digests(conn: Connection) -> dict[int, str]:
    """day → digest of the grade rows stored for it."""
    return {
        int(d): str(h) for d, h in conn.execute(sa.select(grade_days.c.day, grade_days.c.digest))
    }


def replace_days(
    conn: Connection,
    rows: Sequence[Mapping[str, Any]],
    digests: Mapping[int, tuple[str, int]],
) -> None:
    """Replace every grade row of the days in `digests` by `rows` and record the digests.

    `digests` maps day → (digest, token count); `rows` must hold only those days.
    """
    days = sorted(digests)
    for i in range(0, len(days), 500):
        part = days[i : i + 500]
        conn.execute(grades.delete().where(grades.c.day.in_(part)))
        conn.execute(grade_days.delete().where(grade_days.c.day.in_(part)))
    for i in range(0, len(rows), _CHUNK):
        conn.execute(grades.insert(), list(rows[i : i + _CHUNK]))
    records = [{"day": d, "digest": h, "tokens": n} for d, (h, n) in digests.items()]
    for i in range(0, len(records), _CHUNK):
        conn.execute(grade_days.insert(), records[i : i + _CHUNK])


def drop_days(conn: Connection, days: Sequence[int]) -> None:
    """Delete the grades of days that are no longer graded."""
    for i in range(0, len(days), 500):
        part = list(days[i : i + 500])
        conn.execute(grades.delete().where(grades.c.day.in_(part)))
        conn.execute(grade_days.delete().where(grade_days.c.day.in_(part)))


def band_moves(conn: Connection, day: int) -> list[Row[Any]]:
    """(symbol, trader, investor) on `day` and (trader, investor) on the graded day before
    it, for the tokens graded on both; empty when `day` is the first graded day."""
    before = sa.select(sa.func.max(grade_days.c.day)).where(grade_days.c.day < day)
    old = grades.alias("old")
    q = (
        sa.select(
            tokens.c.symbol,
            grades.c.trader,
            grades.c.investor,
            old.c.trader.label("old_trader"),
            old.c.investor.label("old_investor"),
        )
        .join(tokens, tokens.c.id == grades.c.token_id)
        .join(
            old, sa.and_(old.c.token_id == grades.c.token_id, old.c.day == before.scalar_subquery())
        )
        .where(grades.c.day == day)
        .order_by(tokens.c.symbol)
    )
    return list(conn.execute(q))
