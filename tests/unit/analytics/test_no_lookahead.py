"""Property: changing or dropping data after day t never changes any output at or before t."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from coinlens.analytics import indicators, levels, returns
from coinlens.analytics.backtest import backtest
from coinlens.analytics.signals import compute_signals

from ._data import Ohlcv, random_walk

F64 = NDArray[np.float64]
N_DAYS = 140


def _outputs(p: Ohlcv) -> list[F64]:
    """Every time-indexed output of the analytics package, as float panels."""
    h, lo, c, v, o = p.high, p.low, p.close, p.volume, p.open
    panel, _ = compute_signals(h, lo, c, v)
    bt = backtest(panel.signal, o, c)
    outs: list[F64] = [
        indicators.sma(c, 10),
        indicators.ema(c, 10),
        indicators.rsi(c),
        *indicators.macd(c),
        *indicators.bbands(c),
        indicators.atr(h, lo, c),
        *indicators.adx(h, lo, c),
        indicators.obv(c, v),
        *indicators.stoch(h, lo, c),
        indicators.mfi(h, lo, c, v),
        indicators.rolling_volatility(c, 10),
        indicators.vwap(h, lo, c, v, 10),
        panel.signal.astype(np.float64),
        panel.score,
        *panel.values,
        bt.equity,
        bt.buy_hold_equity,
        *returns.roi_table(c, p.days).values(),
        returns.drawdown_from_ath(c),
        returns.max_drawdown(c),
        *returns.rolling_risk(c, 20, min_obs=5),
        *returns.rolling_beta_corr(c, c[0], 20, min_obs=5),
        *levels.nearest_levels(h, lo, c, v, levels.LevelConfig(pivot_bars=3, lookback=60)),
    ]
    return outs


def _cut(p: Ohlcv, t: int) -> Ohlcv:
    return Ohlcv(p.symbols, p.days[: t + 1], *(x[:, : t + 1] for x in p[2:]))


def _perturb(p: Ohlcv, t: int, rng: np.random.Generator) -> Ohlcv:
    def noisy(x: F64) -> F64:
        y = x.copy()
        y[:, t + 1 :] *= rng.uniform(0.5, 1.5, y[:, t + 1 :].shape)
        return y

    return Ohlcv(p.symbols, p.days, *(noisy(x) for x in p[2:]))


def _assert_prefix_equal(a: list[F64], b: list[F64], t: int) -> None:
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x[:, : t + 1], y[:, : t + 1])


seeds = st.integers(0, 10_000)
days = st.integers(1, N_DAYS - 2)
Transform = Callable[[Ohlcv, int, np.random.Generator], Ohlcv]


def _check(seed: int, t: int, change: Transform) -> None:
    panel = random_walk(3, N_DAYS, seed=seed)
    base = _outputs(panel)
    changed = _outputs(change(panel, t, np.random.default_rng(seed + 1)))
    _assert_prefix_equal(base, changed, t)


@settings(max_examples=30, deadline=None)
@given(seed=seeds, t=days)
def test_truncating_after_t_changes_nothing_up_to_t(seed: int, t: int) -> None:
    _check(seed, t, lambda p, t, _: _cut(p, t))


@settings(max_examples=30, deadline=None)
@given(seed=seeds, t=days)
def test_perturbing_after_t_changes_nothing_up_to_t(seed: int, t: int) -> None:
    _check(seed, t, _perturb)
