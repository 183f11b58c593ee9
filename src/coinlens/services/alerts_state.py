"""What alert rules are evaluated against: the market state and the per-rule values.

`market_state(ctx)` reads every token's last daily close, 1h/24h/7d changes, grades, signal
and stored key levels; `rule_values(ctx, rows, state)` adds the values that depend on the
rule itself: a `probability_cross` rule's P(reach target by horizon) and a `level_break`
rule's gap to the level it watches.

A `level_break` rule compares the price with the level known BEFORE that price: the one
stored in the rule's `ref` at its previous evaluation (or at its creation). The pipeline
recomputes key levels from a new daily close just before alerts are evaluated, and a level
is support or resistance relative to that very close, so the close always lies between the
current levels — comparing it with them would never fire on a daily close.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from coinlens.alerts import evaluate as ev
from coinlens.domain.errors import DataUnavailable, NotFound
from coinlens.services.context import Context
from coinlens.storage import alerts_repo as repo
from coinlens.storage.panel import read_daily_panel

F64 = np.ndarray[Any, np.dtype[np.float64]]


def _changes(close: F64, ends: np.ndarray[Any, np.dtype[np.int64]], lag: int) -> F64:
    rows = np.arange(close.shape[0])
    prev = np.maximum(ends - lag, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = close[rows, ends] / close[rows, prev] - 1.0
    return np.where(ends - lag >= 0, out, np.nan)


def _fill_daily(ctx: Context, ids: list[int], values: F64) -> None:
    try:
        p = read_daily_panel(ctx.engine, ctx.cache_dir)
    except DataUnavailable:
        return
    finite = np.isfinite(p.close)
    ends = np.where(finite.any(axis=1), p.close.shape[1] - 1 - np.argmax(finite[:, ::-1], 1), 0)
    # the panel may hold tokens added after `ids` was read (a load or replay running meanwhile)
    known_ids = np.asarray(ids, dtype=np.int64)
    rows = np.searchsorted(known_ids, p.token_ids)
    known = rows < len(known_ids)
    known[known] = known_ids[rows[known]] == p.token_ids[known]
    rows, panel_rows = rows[known], np.flatnonzero(known)
    values[rows, ev.CLOSE] = p.close[panel_rows, ends[panel_rows]]
    values[rows, ev.CHG_24H] = _changes(p.close, ends, 1)[known]
    values[rows, ev.CHG_7D] = _changes(p.close, ends, 7)[known]


def _fill_db(conn: Any, ids: list[int], values: F64) -> None:
    index = {token_id: i for i, token_id in enumerate(ids)}  # rows of tokens added since: skipped

    for t, trader, investor in repo.latest_grades(conn):
        if (i := index.get(t)) is not None:
            values[i, ev.TRADER] = trader
            values[i, ev.INVESTOR] = np.nan if investor is None else investor
    for t, signal, levels in repo.latest_signals(conn):
        if (i := index.get(t)) is None:
            continue
        values[i, ev.SIGNAL] = signal
        for key, col in (("resistance", ev.RES), ("support", ev.SUP)):
            level = (levels or {}).get(key)
            if level and level.get("price"):
                values[i, col] = float(level["price"])
    hourly: dict[int, list[tuple[int, float]]] = {}
    for t, open_time, close in repo.hourly_closes(conn):
        hourly.setdefault(t, []).append((open_time, close))
    for t, pts in hourly.items():
        pts.sort()
        if len(pts) == 2 and pts[0][1] > 0 and (i := index.get(t)) is not None:
            values[i, ev.CHG_1H] = pts[1][1] / pts[0][1] - 1.0


def market_state(ctx: Context, prices: Mapping[int, float] | None = None) -> ev.MarketState:
    """Latest price, changes, grades, signal and key levels of every token (NaN if unknown).

    `prices` (token id → live price) override the price, as on a live tick; CLOSE and the
    changes stay those of the stored closes.
    """
    with ctx.engine.connect() as conn:
        ids = sorted(repo.token_ids_all(conn))
        values = np.full((len(ids), ev.N_METRICS), np.nan)
        _fill_daily(ctx, ids, values)
        _fill_db(conn, ids, values)
    values[:, ev.PRICE] = values[:, ev.CLOSE]
    for token_id, price in (prices or {}).items():
        i = int(np.searchsorted(ids, token_id))
        if i < len(ids) and ids[i] == token_id:
            values[i, ev.PRICE] = price
    return ev.MarketState(np.asarray(ids, dtype=np.int64), values)


def _probability(f: Any, spec: Mapping[str, Any]) -> float:
    from coinlens.analytics import forecast as fc

    target = float(spec["target"])
    _, p_by = fc.probability(
        np.log(f.prices), f.horizons, math.log(f.last_close), target,
        float(spec["horizon_days"]), above=target >= f.last_close,
    )  # fmt: skip
    return float(p_by)


def _forecasts(ctx: Context, rows: Sequence[Any]) -> dict[int, Any]:
    """The latest forecast (or None) of each token with a probability rule."""
    wanted = {r.token_id for r in rows if r.kind == "probability_cross"}
    if not wanted:
        return {}
    # imported only when needed: the forecasts module loads LightGBM (~2 s the first time),
    # which an evaluation without probability rules must not wait for
    from coinlens.services.forecasts import latest_forecast

    with ctx.engine.connect() as conn:
        symbols = repo.symbols_by_id(conn)
    out: dict[int, Any] = {}
    for token_id in sorted(wanted):
        try:
            out[token_id] = latest_forecast(ctx, symbols[token_id])
        except (DataUnavailable, NotFound, KeyError):
            out[token_id] = None
    return out


@dataclass(frozen=True)
class RuleValues:
    """Per-rule values (NaN elsewhere), aligned with the rule rows.

    `value`: what a RULE_VALUE rule is compared with (a probability, a level gap);
    `level`: the level a `level_break` rule compared the price with (the one known before);
    `level_now`: that level as stored now, the rule's `ref` for its next evaluation.
    """

    value: F64
    level: F64
    level_now: F64


def _ref(row: Any) -> float:
    return math.nan if row.ref is None else float(row.ref)


def rule_values(ctx: Context, rows: Sequence[Any], state: ev.MarketState) -> RuleValues:
    """The per-rule values of `rows` in `state` (see `RuleValues`)."""
    n = len(rows)
    value, level, level_now = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    forecasts = _forecasts(ctx, rows)
    pos, found = state.lookup(np.asarray([r.token_id for r in rows], dtype=np.int64))
    for i, r in enumerate(rows):
        if r.kind == "probability_cross" and forecasts.get(r.token_id) is not None:
            value[i] = _probability(forecasts[r.token_id], r.spec)
        elif r.kind == "level_break" and found[i]:
            col = ev.RES if r.spec.get("direction") == "above" else ev.SUP
            level_now[i] = state.values[pos[i], col]
            level[i] = _ref(r) if math.isfinite(_ref(r)) else level_now[i]
            with np.errstate(invalid="ignore", divide="ignore"):
                value[i] = state.values[pos[i], ev.PRICE] / level[i] - 1.0
    return RuleValues(value, level, level_now)
