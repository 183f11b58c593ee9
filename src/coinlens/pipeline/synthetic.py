"""SYNTHETIC universes written to a database — for benches and tests, never market data.

Seeded geometric random walks (4 % daily volatility) with staggered listings, stored as
ordinary tokens/markets/daily candles (exchange ``synthetic``, source ``SYNTHETIC``) so the
whole pipeline (panel → analytics → grades → forecasts → alerts) runs on them unchanged.
The first two tokens are named BTC and ETH so the benchmark-relative statistics exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from coinlens.domain.models import SYNTHETIC
from coinlens.services.context import Context
from coinlens.storage import repo

LABEL = SYNTHETIC
DAY = 86_400
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class SyntheticUniverse:
    """OHLCV arrays tokens × days (NaN before each token's listing) and their calendar."""

    symbols: list[str]
    first_day: int  # epoch day of column 0
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64


def make_universe(
    tokens: int, days: int, *, seed: int = 7, start: date = date(2022, 1, 1)
) -> SyntheticUniverse:
    """A seeded synthetic universe; tokens after the first two list within the first third."""
    rng = np.random.default_rng(seed)
    rets = rng.normal(0.0, 0.04, size=(tokens, days))
    first = np.exp(rng.uniform(np.log(1e-3), np.log(5e4), size=(tokens, 1)))
    close = first * np.exp(np.cumsum(rets, axis=1))
    open_ = np.concatenate([first, close[:, :-1]], axis=1) * np.exp(
        rng.normal(0, 0.002, (tokens, days))
    )
    spread = np.abs(rng.normal(0, 0.02, (tokens, days)))
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    volume = rng.lognormal(10, 1.5, (tokens, days))
    listing = rng.integers(0, max(days // 3, 1), size=tokens)
    listing[:2] = 0
    mask = np.arange(days)[None, :] < listing[:, None]
    for arr in (open_, high, low, close, volume):
        arr[mask] = np.nan
    names = ["BTC", "ETH", *(f"SYN{i:05d}" for i in range(2, tokens))][:tokens]
    epoch = (start - date(1970, 1, 1)).days
    return SyntheticUniverse(names, epoch, open_, high, low, close, volume)


def _candle_rows(u: SyntheticUniverse, i: int) -> list[dict[str, Any]]:
    ok = np.nonzero(np.isfinite(u.close[i]))[0]
    return [
        {
            "open_time": (u.first_day + int(j)) * DAY,
            "open": float(u.open[i, j]),
            "high": float(u.high[i, j]),
            "low": float(u.low[i, j]),
            "close": float(u.close[i, j]),
            "volume": float(u.volume[i, j]),
            "quote_volume": float(u.volume[i, j] * u.close[i, j]),
            "trades": None,
        }
        for j in ok
    ]


def write_universe(ctx: Context, u: SyntheticUniverse) -> dict[str, int]:
    """Store the universe as tokens, one spot market each and daily candles; symbol → id."""
    token_rows = [
        {"symbol": s, "name": f"{s} ({LABEL})", "sector": "synthetic", "categories": [LABEL]}
        for s in u.symbols
    ]
    with ctx.engine.begin() as conn:
        ids = repo.upsert_tokens(conn, token_rows)
        market_rows = [
            {
                "market_key": f"synthetic:{s}/USDT:spot",
                "token_id": ids[s],
                "exchange": "synthetic",
                "pair": f"{s}/USDT",
                "quote": "USDT",
                "instrument": "spot",
                "contract_multiplier": 1.0,
                "source": LABEL,
            }
            for s in u.symbols
        ]
        markets = repo.upsert_markets(conn, market_rows)
    for i, s in enumerate(u.symbols):
        with ctx.engine.begin() as conn:
            repo.write_candles(conn, markets[f"synthetic:{s}/USDT:spot"], "1d", _candle_rows(u, i))
    with ctx.engine.begin() as conn:
        repo.refresh_token_spans(conn)
    return ids


def seed(ctx: Context, tokens: int, days: int, *, seed: int = 7) -> SyntheticUniverse:
    """Make and store a synthetic universe ending yesterday-independent (fixed calendar)."""
    u = make_universe(tokens, days, seed=seed)
    write_universe(ctx, u)
    return u


def day_start(epoch_day: int) -> datetime:
    """Midnight UTC of an epoch day."""
    return datetime.fromtimestamp(epoch_day * DAY, tz=UTC)
