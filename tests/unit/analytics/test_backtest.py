"""Backtest equals a plain-Python reference loop; no same-bar fills; config validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray

from coinlens.analytics.backtest import BacktestConfig, backtest, entries_exits
from coinlens.analytics.signals import compute_signals
from coinlens.domain.errors import UserInputError

from ._data import Ohlcv, random_walk

F64 = NDArray[np.float64]


def reference_equity(sig: NDArray[np.int8], op: F64, cl: F64, cfg: BacktestConfig) -> F64:
    """The documented rules, one token and one bar at a time."""
    out = np.full(cl.shape, np.nan)
    for i in range(cl.shape[0]):
        cash, shares, last, pending, prev_sig = cfg.init_cash, 0.0, math.nan, 0, 0
        for j in range(cl.shape[1]):
            if pending and math.isfinite(op[i, j]):
                if pending > 0:
                    shares = cash / (1 + cfg.fees) / (op[i, j] * (1 + cfg.slippage))
                    cash = 0.0
                else:
                    value = shares * (op[i, j] * (1 - cfg.slippage))
                    cash, shares = value - value * cfg.fees, 0.0
                pending = 0
            if math.isfinite(cl[i, j]):
                last = cl[i, j]
            if math.isfinite(last):
                out[i, j] = cash + shares * last
            s = int(sig[i, j])
            if s == 1 and prev_sig != 1 and shares == 0:
                pending = 1
            elif s != 1 and prev_sig == 1:
                pending = -1 if shares > 0 else 0
            prev_sig = s
    return out


@pytest.fixture(scope="module")
def walk() -> Ohlcv:
    return random_walk(12, 300, seed=21)


@pytest.mark.parametrize(
    "cfg", [BacktestConfig(), BacktestConfig(fees=0.0, slippage=0.0, init_cash=1000.0)]
)
def test_equity_equals_reference_loop(walk: Ohlcv, cfg: BacktestConfig) -> None:
    panel, _ = compute_signals(walk.high, walk.low, walk.close, walk.volume)

    res = backtest(panel.signal, walk.open, walk.close, cfg)

    ref = reference_equity(panel.signal, walk.open, walk.close, cfg)
    np.testing.assert_allclose(res.equity, ref, rtol=1e-12, equal_nan=True)


def test_fill_is_at_next_open_never_same_bar() -> None:
    sig = np.array([[0, 1, 1, 0, 0]], dtype=np.int8)
    op = np.array([[10.0, 10.0, 20.0, 40.0, 40.0]])
    cl = np.array([[10.0, 10.0, 20.0, 40.0, 40.0]])

    res = backtest(sig, op, cl, BacktestConfig(fees=0.0, slippage=0.0))

    # entry decided at bar 1's close fills at bar 2's open (20), exit at bar 4's open (40)
    np.testing.assert_allclose(res.equity[0], [1, 1, 1, 2, 2])
    assert res.trades.trades[0] == 1
    assert res.trades.win_rate[0] == 1.0


def test_buy_and_hold_from_first_valid_open(real: Ohlcv) -> None:
    cfg = BacktestConfig(fees=0.001, slippage=0.001)
    sig = np.zeros(real.close.shape, np.int8)

    res = backtest(sig, real.open, real.close, cfg)

    pepe = real.symbols.index("PEPE")
    first = int(np.argmax(np.isfinite(real.open[pepe])))
    shares = 1 / 1.001 / (real.open[pepe, first] * 1.001)
    assert np.isnan(res.buy_hold_equity[pepe, :first]).all()
    np.testing.assert_allclose(res.buy_hold_equity[pepe, first:], shares * real.close[pepe, first:])
    assert np.isclose(res.buy_hold.total_return[pepe], shares * real.close[pepe, -1] - 1)
    assert (res.equity[~np.isnan(res.equity)] == 1.0).all()


def test_metrics_are_per_token(walk: Ohlcv) -> None:
    panel, _ = compute_signals(walk.high, walk.low, walk.close, walk.volume)

    res = backtest(panel.signal, walk.open, walk.close)

    n = walk.close.shape[0]
    for arr in (*res.strategy, *res.trades, *res.buy_hold):
        assert arr.shape == (n,)
    assert ((res.trades.exposure >= 0) & (res.trades.exposure <= 1)).all()
    entries, _ = entries_exits(panel.signal)
    assert (res.trades.trades <= entries.sum(axis=1)).all()


@pytest.mark.parametrize("kwargs", [{"fees": -0.1}, {"slippage": 1.0}, {"init_cash": 0.0}])
def test_config_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(UserInputError):
        BacktestConfig(**kwargs)
