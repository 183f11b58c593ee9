"""Reads and writes of forecast models (versioned artifacts) and their quantile forecasts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coinlens.storage.repo import DAY, in_series, upsert
from coinlens.storage.tables import candles, markets, tokens
from coinlens.storage.tables_forecasts import evaluations, forecasts, models

QUANTILE_COLUMNS = ("p05", "p10", "p25", "p50", "p75", "p90", "p95")


def save_model(conn: Connection, row: Mapping[str, Any]) -> None:
    """Insert or replace one model row (model_id is the key)."""
    upsert(conn, models, [row], ["model_id"])


def latest_model(
    conn: Connection, kind: str, *, with_artifact: bool = True
) -> dict[str, Any] | None:
    """The newest model of `kind` by cut-off then training time, or None."""
    cols = list(models.c) if with_artifact else [c for c in models.c if c.name != "artifact"]
    row = conn.execute(
        sa.select(*cols)
        .where(models.c.kind == kind)
        .order_by(models.c.cutoff_day.desc(), models.c.trained_at.desc())
        .limit(1)
    ).first()
    return dict(row._mapping) if row is not None else None


def get_model(conn: Connection, model_id: str) -> dict[str, Any] | None:
    """One model row with its artifact, or None."""
    row = conn.execute(sa.select(models).where(models.c.model_id == model_id)).first()
    return dict(row._mapping) if row is not None else None


def list_models(conn: Connection) -> list[dict[str, Any]]:
    """Every model without its artifact, newest first."""
    cols = [c for c in models.c if c.name != "artifact"]
    rows = conn.execute(
        sa.select(*cols).order_by(models.c.cutoff_day.desc(), models.c.trained_at.desc())
    )
    return [dict(r._mapping) for r in rows]


def save_evaluation(conn: Connection, row: Mapping[str, Any]) -> None:
    """Keep one evaluation run (kind, evaluated_at, data_end_day, summary)."""
    conn.execute(sa.insert(evaluations), [dict(row)])


def latest_evaluation(conn: Connection, kind: str) -> dict[str, Any] | None:
    """The newest evaluation of `kind`, or None."""
    row = conn.execute(
        sa.select(evaluations)
        .where(evaluations.c.kind == kind)
        .order_by(evaluations.c.evaluated_at.desc(), evaluations.c.id.desc())
        .limit(1)
    ).first()
    return dict(row._mapping) if row is not None else None


def replace_forecasts(
    conn: Connection,
    model_id: str,
    origin_day: int,
    rows: Sequence[Mapping[str, Any]],
    part: tuple[int, int] = (0, 1),
) -> None:
    """Write one model's forecasts for one origin day (idempotent: replaces the same key).

    With `part` = (k, P), P > 1, only the tokens with id % P == k are replaced: P workers
    can each write their share of the tokens without deleting the others'.
    """
    where = (forecasts.c.model_id == model_id) & (forecasts.c.origin_day == origin_day)
    k, parts = part
    if parts > 1:
        where = where & (forecasts.c.token_id % parts == k)
    conn.execute(sa.delete(forecasts).where(where))
    if rows:
        conn.execute(sa.insert(forecasts), list(rows))


def token_forecasts(conn: Connection, token_id: int, model_id: str) -> list[dict[str, Any]]:
    """The latest-origin forecasts of one token by one model, ordered by horizon."""
    latest = (
        sa.select(sa.func.max(forecasts.c.origin_day))
        .where((forecasts.c.token_id == token_id) & (forecasts.c.model_id == model_id))
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(forecasts)
        .where(
            (forecasts.c.token_id == token_id)
            & (forecasts.c.model_id == model_id)
            & (forecasts.c.origin_day == latest)
        )
        .order_by(forecasts.c.horizon)
    )
    return [dict(r._mapping) for r in rows]


def count_forecasts(conn: Connection, model_id: str | None = None) -> int:
    """Number of stored forecast rows (of one model, if given)."""
    stmt = sa.select(sa.func.count()).select_from(forecasts)
    if model_id is not None:
        stmt = stmt.where(forecasts.c.model_id == model_id)
    return int(conn.execute(stmt).scalar_one())


def token_by_symbol(conn: Connection, symbol: str) -> dict[str, Any] | None:
    """id and symbol of a token (any case), or None."""
    row = conn.execute(
        sa.select(tokens.c.id, tokens.c.symbol).where(
            sa.func.upper(tokens.c.symbol) == symbol.upper()
        )
    ).first()
    return dict(row._mapping) if row is not None else None


def baseline_forecasts(
    conn: Connection, token_id: int, origin_day: int, kind: str
) -> list[dict[str, Any]]:
    """Forecasts of one token at one origin by the newest model of `kind` (e.g. the baseline)."""
    rows = conn.execute(
        sa.select(forecasts)
        .join(models, models.c.model_id == forecasts.c.model_id)
        .where(
            (forecasts.c.token_id == token_id)
            & (forecasts.c.origin_day == origin_day)
            & (models.c.kind == kind)
        )
        .order_by(models.c.cutoff_day.desc(), forecasts.c.horizon)
    )
    out: dict[int, dict[str, Any]] = {}
    for r in rows:
        out.setdefault(int(r.horizon), dict(r._mapping))
    return [out[h] for h in sorted(out)]


def close_on(conn: Connection, token_id: int, day: int) -> float | None:
    """The daily close of the token's series (`repo.in_series`, per one token) on an epoch
    day, or None."""
    value = conn.execute(
        sa.select(candles.c.close / markets.c.contract_multiplier)
        .join(markets, markets.c.id == candles.c.market_id)
        .join(tokens, tokens.c.id == markets.c.token_id)
        .where(
            (tokens.c.id == token_id)
            & in_series()
            & (candles.c.timeframe == "1d")
            & (candles.c.open_time == day * DAY)
        )
    ).scalar()
    return float(value) if value is not None else None
