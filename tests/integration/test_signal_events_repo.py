"""Replacing a token set's signal events writes only the differences, ending equal (a
missing score compares as missing, NULL or NaN)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import sqlalchemy as sa

from coinlens.services.context import Context
from coinlens.storage import repo
from coinlens.storage.analytics_repo import replace_signal_events
from coinlens.storage.tables_analytics import signal_events


def _events(ids: dict[str, int], days: range, price: float = 10.0) -> list[dict[str, Any]]:
    return [
        {
            "token_id": ids[s],
            "day": d,
            "from_signal": -1,
            "to_signal": 1,
            "price": price + d,
            "score": math.nan if d % 5 == 0 else (None if d % 7 == 0 else 0.5),
        }
        for s in ("AAA", "BBB")
        for d in days
    ]


def _stored(ctx: Context) -> list[tuple[Any, ...]]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(sa.select(signal_events).order_by("token_id", "day")).all()
    return [tuple(None if isinstance(v, float) and v != v else v for v in r) for r in rows]


def _expected(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    keys = ("token_id", "day", "from_signal", "to_signal", "price", "score")
    out = [tuple(r[k] for k in keys) for r in sorted(rows, key=lambda r: (r["token_id"], r["day"]))]
    return [tuple(None if isinstance(v, float) and v != v else v for v in r) for r in out]


def test_replace_writes_only_differences_and_ends_equal(ctx: Context) -> None:
    with ctx.engine.begin() as conn:
        ids = repo.upsert_tokens(
            conn, [{"symbol": s, "name": s, "categories": []} for s in ("AAA", "BBB", "CCC")]
        )
    other = [
        {**r, "token_id": ids["CCC"]} for r in _events(ids, range(3)) if r["token_id"] == ids["AAA"]
    ]
    first = _events(ids, range(20))
    with ctx.engine.begin() as conn:
        replace_signal_events(conn, [ids["AAA"], ids["BBB"], ids["CCC"]], first + other)
    assert _stored(ctx) == _expected(first + other)

    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "DELETE")):
            statements.append(statement)

    sa.event.listen(ctx.engine, "before_cursor_execute", count)
    try:
        with ctx.engine.begin() as conn:  # the same history again: nothing written
            replace_signal_events(conn, [ids["AAA"], ids["BBB"]], first)
        assert statements == []
        changed = [r for r in first if r["day"] != 4]  # day 4 gone
        changed = [{**r, "price": 1.0} if r["day"] == 9 else r for r in changed]  # day 9 moved
        changed += _events(ids, range(20, 22))  # two new days
        with ctx.engine.begin() as conn:
            replace_signal_events(conn, [ids["AAA"], ids["BBB"]], changed)
    finally:
        sa.event.remove(ctx.engine, "before_cursor_execute", count)
    assert len(statements) == 2  # one delete, one insert
    assert _stored(ctx) == _expected(changed + other)  # CCC, not in the token set, kept


@pytest.mark.parametrize("score", [None, math.nan])
def test_a_score_that_went_missing_is_rewritten(ctx: Context, score: float | None) -> None:
    with ctx.engine.begin() as conn:
        ids = repo.upsert_tokens(conn, [{"symbol": "AAA", "name": "AAA", "categories": []}])
        row = {"token_id": ids["AAA"], "day": 1, "from_signal": 0, "to_signal": 1, "price": 2.0}
        replace_signal_events(conn, [ids["AAA"]], [{**row, "score": 0.1}])
        replace_signal_events(conn, [ids["AAA"]], [{**row, "score": score}])
    assert _stored(ctx)[0][-1] is None  # NULL, or NaN on PostgreSQL (read back as None here)
