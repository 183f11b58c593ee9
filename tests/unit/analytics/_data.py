"""Test data for analytics: real BTC/ETH/PEPE candles and a synthetic random walk."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "btc_eth_pepe_1d.csv"
F64 = NDArray[np.float64]


class Ohlcv(NamedTuple):
    """A tokens × days OHLCV panel with its symbols and epoch days."""

    symbols: list[str]
    days: NDArray[np.int64]
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64


def load_fixture() -> Ohlcv:
    """BTC/ETH/PEPE daily candles on one date axis; PEPE lists later (leading NaNs)."""
    with FIXTURE.open() as f:
        rows = list(csv.DictReader(f))
    symbols = sorted({r["symbol"] for r in rows})
    dates = sorted({r["date"] for r in rows})
    days = np.array(dates, dtype="datetime64[D]").astype(np.int64)
    col = {d: j for j, d in enumerate(dates)}
    sym = {s: i for i, s in enumerate(symbols)}
    data = np.full((5, len(symbols), len(dates)), np.nan)
    for r in rows:
        i, j = sym[r["symbol"]], col[r["date"]]
        data[:, i, j] = [float(r[k]) for k in ("open", "high", "low", "close", "volume")]
    return Ohlcv(symbols, days, *data)


def random_walk(n_tokens: int, n_days: int, seed: int, gaps: bool = True) -> Ohlcv:
    """Synthetic OHLCV: random-walk closes, varied listing dates and NaN gaps."""
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0.0005, 0.04, (n_tokens, n_days)), axis=1))
    open_ = np.roll(close, 1, axis=1) * (1 + rng.normal(0, 0.01, close.shape))
    open_[:, 0] = close[:, 0]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.03, close.shape))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.03, close.shape))
    volume = rng.lognormal(10, 1, close.shape)
    panel = np.stack([open_, high, low, close, volume])
    if gaps:
        for i in range(n_tokens):
            panel[:, i, : rng.integers(0, n_days // 3)] = np.nan
            if i % 2:
                g = rng.integers(n_days // 2, n_days - 5)
                panel[:, i, g : g + rng.integers(1, 4)] = np.nan
    days = np.arange(19000, 19000 + n_days, dtype=np.int64)
    return Ohlcv([f"T{i}" for i in range(n_tokens)], days, *panel)
