"""Equity equals vectorbt's Portfolio.from_signals on the same orders (bench extra only)."""

from __future__ import annotations

import numpy as np
import pytest

from coinlens.analytics.backtest import BacktestConfig, backtest, entries_exits
from coinlens.analytics.signals import compute_signals

from ._data import random_walk

vbt = pytest.importorskip("vectorbt")
pd = pytest.importorskip("pandas")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize(("fees", "slippage"), [(0.001, 0.0005), (0.0, 0.0), (0.0025, 0.002)])
def test_equity_and_metrics_equal_vectorbt(fees: float, slippage: float) -> None:
    walk = random_walk(15, 400, seed=3, gaps=False)
    panel, _ = compute_signals(walk.high, walk.low, walk.close, walk.volume)
    cfg = BacktestConfig(fees=fees, slippage=slippage, init_cash=100.0)
    entries, exits = entries_exits(panel.signal)
    # our orders are decided at close t and fill at open t+1: vectorbt gets them on bar t+1
    shift = np.zeros_like(entries)
    entries_next, exits_next = shift.copy(), shift.copy()
    entries_next[:, 1:], exits_next[:, 1:] = entries[:, :-1], exits[:, :-1]

    res = backtest(panel.signal, walk.open, walk.close, cfg)
    pf = vbt.Portfolio.from_signals(
        close=pd.DataFrame(walk.close.T),
        entries=pd.DataFrame(entries_next.T),
        exits=pd.DataFrame(exits_next.T),
        price=pd.DataFrame(walk.open.T),
        fees=fees,
        slippage=slippage,
        init_cash=100.0,
        freq="1D",
    )

    np.testing.assert_allclose(res.equity, pf.value().to_numpy().T, rtol=1e-9)
    np.testing.assert_allclose(res.strategy.total_return, pf.total_return().to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(res.strategy.max_drawdown, pf.max_drawdown().to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(res.strategy.sharpe, pf.sharpe_ratio().to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(res.strategy.sortino, pf.sortino_ratio().to_numpy(), rtol=1e-9)
    np.testing.assert_array_equal(res.trades.trades, pf.trades.count().to_numpy())
    np.testing.assert_allclose(res.trades.win_rate, pf.trades.win_rate().to_numpy(), rtol=1e-12)
