"""Backtest equals a plain-Python reference loop; no same-bar fills; config validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray

from coinlens.analytics.backtest import (
    BacktestConfig,
    backtest,
    backtest_with_state,
    entries_exits,
    equity_curve,
)
from coinlens.analytics.returns import performance
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


def until_last_close(values: F64, cl: F64) -> F64:
    """`values` with every bar after each token's last valid close set to NaN: what the
    metrics count (a token whose data ends early is measured up to its end)."""
    last = cl.shape[1] - 1 - np.argmax(np.isfinite(cl)[:, ::-1], axis=1)
    return np.where(np.arange(cl.shape[1])[None, :] > last[:, None], np.nan, values)


def reference_trades(sig: NDArray[np.int8], op: F64, cl: F64, cfg: BacktestConfig) -> F64:
    """Per token [trades, win rate, mean trade return, exposure] from the reference equity,
    up to the token's last valid close."""
    eq = until_last_close(reference_equity(sig, op, cl, cfg), cl)
    out = np.full((cl.shape[0], 4), np.nan)
    for i in range(cl.shape[0]):
        entries, exits = (x[0] for x in entries_exits(sig[i]))
        rets, held, start, pending = [], 0, math.nan, 0
        end = int(np.flatnonzero(np.isfinite(cl[i]))[-1]) + 1 if np.isfinite(cl[i]).any() else 0
        for j in range(end):
            if pending and math.isfinite(op[i, j]):
                if pending > 0:  # equity just before the fill is the cash spent
                    start = eq[i, j - 1] if j and math.isfinite(eq[i, j - 1]) else cfg.init_cash
                else:
                    rets.append(eq[i, j] / start - 1)
                    start = math.nan
                pending = 0
            held += math.isfinite(start) and math.isfinite(eq[i, j])
            if entries[j] and not math.isfinite(start):
                pending = 1
            elif exits[j]:
                pending = -1 if math.isfinite(start) else 0
        if math.isfinite(start):
            rets.append(eq[i, end - 1] / start - 1)
        bars = np.isfinite(eq[i]).sum()
        out[i, 0] = len(rets)
        if rets:
            out[i, 1:3] = np.mean(np.array(rets) > 0), np.mean(rets)
        out[i, 3] = held / bars if bars else math.nan
    return out


def reference_buy_hold(op: F64, cl: F64, cfg: BacktestConfig) -> F64:
    """All cash in at the first valid open, held to the end."""
    hold = np.zeros(cl.shape, np.int8)
    first = np.argmax(np.isfinite(op), axis=1)
    rows = np.nonzero(np.isfinite(op).any(axis=1))[0]
    # a +1 on the bar before the first valid open: the order fills at that open
    padded = np.hstack([np.zeros((cl.shape[0], 1), np.int8), hold])
    padded[rows, first[rows]] = 1
    padded = np.maximum.accumulate(padded, axis=1)
    nan = np.full((cl.shape[0], 1), np.nan)
    eq = reference_equity(padded, np.hstack([nan, op]), np.hstack([nan, cl]), cfg)
    return eq[:, 1:]


def gappy_walk() -> Ohlcv:
    """A random walk plus the awkward rows: empty, no opens, late opens, trailing gaps."""
    w = random_walk(10, 260, seed=5)
    w.open[1] = np.nan
    w.close[2] = np.nan
    w.open[3, :120] = np.nan  # closes before the first open
    w.close[4, 200:] = np.nan
    w.open[5, 150:] = np.nan  # orders placed after this never fill
    return w


@pytest.mark.parametrize(
    "cfg",
    [
        BacktestConfig(),
        BacktestConfig(fees=0.0025, slippage=0.0, init_cash=50.0, periods_per_year=252),
    ],
)
def test_metrics_and_buy_hold_equal_references(cfg: BacktestConfig) -> None:
    w = gappy_walk()
    sig = compute_signals(w.high, w.low, w.close, w.volume)[0].signal
    sig[6, ::7] = 1  # many short trades

    res = backtest(sig, w.open, w.close, cfg)

    ppy, init = cfg.periods_per_year, cfg.init_cash
    np.testing.assert_array_equal(res.equity, reference_equity(sig, w.open, w.close, cfg))
    bh_ref = reference_buy_hold(w.open, w.close, cfg)
    np.testing.assert_array_equal(res.buy_hold_equity, bh_ref)
    pairs = [
        (res.strategy, performance(until_last_close(res.equity, w.close), ppy, init)),
        (res.buy_hold, performance(until_last_close(bh_ref, w.close), ppy, init)),
    ]
    for got, want in pairs:
        for name, a, b in zip(got._fields, got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, equal_nan=True, err_msg=name)
    assert np.isnan(res.strategy.total_return[2])
    assert np.isnan(res.buy_hold.sharpe[2])
    assert res.trades.trades.dtype == np.int64
    got_trades = np.column_stack([np.asarray(x, np.float64) for x in res.trades])
    want_trades = reference_trades(sig, w.open, w.close, cfg)
    np.testing.assert_allclose(got_trades, want_trades, rtol=1e-12, equal_nan=True)
    assert res.trades.trades[6] > 10


def test_a_token_whose_data_ends_is_measured_up_to_its_last_close() -> None:
    """A delisted token on the shared calendar: 150 days of prices, then 250 without. Its
    metrics, trades and equity curve are those of its 150 days, not annualised over 400."""
    w = random_walk(2, 400, seed=11, gaps=False)
    sig = compute_signals(w.high, w.low, w.close, w.volume)[0].signal
    ended = [x.copy() for x in (w.open, w.close)]
    for x in ended:
        x[0, 150:] = np.nan

    res, state = backtest_with_state(sig, *ended)
    alone = backtest(sig[:, :150], w.open[:, :150], w.close[:, :150])

    for got, want in ((res.strategy, alone.strategy), (res.buy_hold, alone.buy_hold)):
        for name, a, b in zip(got._fields, got, want, strict=True):
            assert a[0] == b[0] or (np.isnan(a[0]) and np.isnan(b[0])), name
    for a, b in zip(res.trades, alone.trades, strict=True):
        assert a[0] == b[0] or (np.isnan(a[0]) and np.isnan(b[0]))
    idx, eq, bh = equity_curve(state, 0)
    assert idx[-1] == 149
    assert eq[-1] == alone.equity[0, 149]
    assert bh[-1] == alone.buy_hold_equity[0, 149]
    assert equity_curve(state, 1)[0][-1] == 399  # the other token runs to the end


def test_signal_dtype_does_not_matter(walk: Ohlcv) -> None:
    sig = compute_signals(walk.high, walk.low, walk.close, walk.volume)[0].signal

    res = backtest(sig, walk.open, walk.close)

    for other in (sig.astype(np.float64), sig.astype(np.int64), sig == 1):
        alt = backtest(other, walk.open, walk.close)
        np.testing.assert_array_equal(alt.equity, res.equity)
        np.testing.assert_array_equal(alt.trades.trades, res.trades.trades)


def test_shape_mismatch_is_rejected(walk: Ohlcv) -> None:
    with pytest.raises(UserInputError):
        backtest(np.zeros((2, 3), np.int8), walk.open, walk.close)


@pytest.mark.parametrize("kwargs", [{"fees": -0.1}, {"slippage": 1.0}, {"init_cash": 0.0}])
def test_config_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(UserInputError):
        BacktestConfig(**kwargs)
