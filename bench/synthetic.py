"""SYNTHETIC panel generator for scale work — never market data, always labelled synthetic.

Geometric random walks with realistic daily volatility; tokens list on staggered days so the
panel has the leading-NaN shape of a real universe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

LABEL = "SYNTHETIC"


@dataclass(frozen=True)
class SyntheticPanel:
    """OHLCV arrays tokens × days; NaN before each token's listing."""

    symbols: list[str]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    volume: NDArray[np.float64]
    label: str = LABEL


def make_panel(
    tokens: int = 2000, days: int = 2000, seed: int = 7, stagger: bool = True
) -> SyntheticPanel:
    """A seeded synthetic OHLCV panel (labelled SYNTHETIC)."""
    rng = np.random.default_rng(seed)
    rets = rng.normal(0.0, 0.04, size=(tokens, days))
    start = np.exp(rng.uniform(np.log(1e-6), np.log(5e4), size=(tokens, 1)))
    close = start * np.exp(np.cumsum(rets, axis=1))
    open_ = np.concatenate([start, close[:, :-1]], axis=1) * np.exp(
        rng.normal(0, 0.002, (tokens, days))
    )
    spread = np.abs(rng.normal(0, 0.02, (tokens, days)))
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    volume = rng.lognormal(10, 1.5, (tokens, days))
    if stagger:
        listing = rng.integers(0, days // 2, size=tokens)
        mask = np.arange(days)[None, :] < listing[:, None]
        for arr in (open_, high, low, close, volume):
            arr[mask] = np.nan
    return SyntheticPanel(
        symbols=[f"SYN{i:05d}" for i in range(tokens)],
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
    )
