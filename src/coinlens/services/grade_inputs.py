"""Point-in-time inputs of the grades from storage, aligned to the daily panel.

A CMC snapshot (monthly or yearly) applies from its `snapshot_date` on and is carried
forward at most `CAP_MAX_AGE` days; a chain metric applies from its date on, carried at most
`METRIC_MAX_AGE` days. Chain data reaches a token through `CHAIN_OF` (stated in
docs/grades.md).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray

from coinlens.analytics import grades as method
from coinlens.services.context import Context
from coinlens.storage.panel import Panel
from coinlens.storage.tables import market_caps, metrics, tokens

F64 = NDArray[np.float64]

BENCHMARK = "BTC"
CAP_MAX_AGE = 120  # days a CMC snapshot stays valid (monthly series; yearly ones fill gaps)
METRIC_MAX_AGE = 14  # days a daily chain metric stays valid
CHAIN_OF = {
    "ETH": "ethereum",
    "ARB": "arbitrum",
    "OP": "optimism",
    "POL": "polygon",
    "AVAX": "avalanche",
    "BNB": "bsc",
}
TVL_METRIC = "tvl_usd"
ACTIVITY_METRIC = "tx_count"


def ffill_limited(grid: F64, max_age: int) -> F64:
    """Carry each value forward along days, at most `max_age` days past where it was set."""
    cols = np.arange(grid.shape[1])
    last = np.maximum.accumulate(np.where(np.isfinite(grid), cols, -1), axis=1)
    out = np.take_along_axis(grid, np.maximum(last, 0), axis=1)
    return np.where((last >= 0) & (cols - last <= max_age), out, np.nan)


def _scatter(
    shape: tuple[int, int], rows: NDArray[np.int64], cols: NDArray[np.int64], values: F64
) -> F64:
    """A grid with values placed at (row, col); points before day 0 land on day 0.

    Points must come sorted by time so the newest of several clipped to day 0 wins.
    """
    grid = np.full(shape, np.nan)
    keep = (cols < shape[1]) & np.isfinite(values)
    grid[rows[keep], np.maximum(cols[keep], 0)] = values[keep]
    return grid


def _epoch_day(d: Any) -> int:
    return int(np.datetime64(d, "D").astype(np.int64))


class CapPanels(NamedTuple):
    """Market cap, rank and circulating supply, point in time, tokens × days (None: no
    snapshot for any token; the features then treat them as unknown everywhere)."""

    market_cap: F64 | None
    rank: F64 | None
    supply: F64 | None


def cap_panels(ctx: Context, panel: Panel) -> CapPanels:
    """CMC snapshots scattered on their dates and carried forward (no look-ahead)."""
    row_of = {int(t): i for i, t in enumerate(panel.token_ids)}
    q = sa.select(
        market_caps.c.token_id,
        market_caps.c.snapshot_date,
        market_caps.c.rank,
        market_caps.c.market_cap,
        market_caps.c.circulating_supply,
    ).order_by(market_caps.c.snapshot_date, market_caps.c.source.desc())
    with ctx.engine.connect() as conn:
        found = [r for r in conn.execute(q) if int(r[0]) in row_of]
    shape = panel.close.shape
    if not found:
        return CapPanels(None, None, None)
    rows = np.array([row_of[int(r[0])] for r in found], dtype=np.int64)
    cols = np.array([_epoch_day(r[1]) for r in found], dtype=np.int64) - int(panel.days[0])

    def col(i: int) -> F64:
        return np.array([np.nan if r[i] is None else float(r[i]) for r in found])

    def panel_of(i: int) -> F64:
        return ffill_limited(_scatter(shape, rows, cols, col(i)), CAP_MAX_AGE)

    return CapPanels(market_cap=panel_of(3), rank=panel_of(2), supply=panel_of(4))


def chain_panel(ctx: Context, panel: Panel, metric: str) -> F64 | None:
    """A chain metric (e.g. TVL) on the rows of the tokens that map to that chain (None: no
    token maps to a chain with that metric)."""
    rows_by_chain: dict[str, list[int]] = {}
    for i, symbol in enumerate(panel.symbols):
        if symbol in CHAIN_OF:
            rows_by_chain.setdefault(CHAIN_OF[symbol], []).append(i)
    if not rows_by_chain:
        return None
    q = (
        sa.select(metrics.c.entity, metrics.c.date, metrics.c.value)
        .where(metrics.c.metric == metric, metrics.c.entity.in_(list(rows_by_chain)))
        .order_by(metrics.c.date)
    )
    with ctx.engine.connect() as conn:
        points = conn.execute(q).all()
    if not points:
        return None
    grid = np.full(panel.close.shape, np.nan)
    n_days = len(panel.days)
    for entity, day, value in points:
        col = _epoch_day(day) - int(panel.days[0])
        if col < n_days:
            grid[rows_by_chain[entity], max(col, 0)] = float(value)
    return ffill_limited(grid, METRIC_MAX_AGE)


def _stablecoins(ctx: Context) -> set[str]:
    with ctx.engine.connect() as conn:
        return {
            str(s)
            for (s,) in conn.execute(sa.select(tokens.c.symbol).where(tokens.c.is_stablecoin))
        }


def grade_inputs(ctx: Context, panel: Panel) -> method.GradeInputs:
    """Everything the method needs, aligned to the panel's calendar, point in time."""
    caps = cap_panels(ctx, panel)
    stable = _stablecoins(ctx)
    return method.GradeInputs(
        close=panel.close,
        high=panel.high,
        low=panel.low,
        volume=panel.volume,
        quote_volume=panel.quote_volume,
        benchmark=panel.symbols.index(BENCHMARK) if BENCHMARK in panel.symbols else None,
        eligible=np.array([s not in stable for s in panel.symbols], dtype=bool),
        market_cap=caps.market_cap,
        rank=caps.rank,
        supply=caps.supply,
        tvl=chain_panel(ctx, panel, TVL_METRIC),
        activity=chain_panel(ctx, panel, ACTIVITY_METRIC),
    )
