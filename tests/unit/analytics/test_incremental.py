"""The daily pipeline's one-bar updates equal recomputing the whole history, bit for bit.

Also: the bounded-window readers (`roi_at`, `trailing_closes`, `latest_levels`) equal the
whole-panel functions they stand in for.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinlens.analytics import indicators, levels, returns
from coinlens.analytics.backtest import (
    CURVE_CAP,
    backtest_with_state,
    equity_curve,
    update_backtest,
)
from coinlens.analytics.indicator_state import NAMES, latest_indicators, update_indicators
from coinlens.analytics.signals import compute_signals, update_signals
from coinlens.services.analytics import indicator_panels

from ._data import Ohlcv, random_walk


def _ends(close: np.ndarray) -> np.ndarray:
    has = np.isfinite(close)
    last = close.shape[1] - 1 - np.argmax(has[:, ::-1], axis=1)
    return np.where(has.any(axis=1), last, -1).astype(np.int64)


def _cut(p: Ohlcv, t: int) -> Ohlcv:
    return Ohlcv(p.symbols, p.days[:t], *(x[:, :t] for x in p[2:]))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), t0=st.integers(30, 300), steps=st.integers(1, 40))
def test_bar_by_bar_updates_equal_the_full_recomputation(seed: int, t0: int, steps: int) -> None:
    p = random_walk(6, t0 + steps, seed=seed)
    h, lo, c, v, o = p.high, p.low, p.close, p.volume, p.open
    first = _cut(p, t0)
    sp, sig_state = compute_signals(first.high, first.low, first.close, first.volume)
    latest, ind_state = latest_indicators(first.high, first.low, first.close, first.volume)
    _, bt_state = backtest_with_state(sp.signal, first.open, first.close)
    ath, mdd = returns.drawdown_state(first.close)
    for j in range(t0, t0 + steps):
        sig_state, bar = update_signals(sig_state, h[:, j], lo[:, j], c[:, j], v[:, j])
        values, ind_state = update_indicators(ind_state, h[:, j], lo[:, j], c[:, j], v[:, j])
        latest = np.where(np.isfinite(c[:, j])[None, :], values, latest)
        bt_state, summary = update_backtest(bt_state, bar.signal, o[:, j], c[:, j])
        ath, mdd = returns.update_drawdown_state(ath, mdd, c[:, j])

    sp_all, _ = compute_signals(h, lo, c, v)
    want_latest, want_state = latest_indicators(h, lo, c, v)
    want_bt, want_bt_state = backtest_with_state(sp_all.signal, o, c)
    want_ath, want_mdd = returns.drawdown_state(c)
    np.testing.assert_array_equal(latest, want_latest)
    np.testing.assert_array_equal(ind_state, want_state)
    np.testing.assert_array_equal(bt_state.core, want_bt_state.core)
    np.testing.assert_array_equal(bt_state.curve, want_bt_state.curve)
    for got, want in zip(
        (*summary.strategy, *summary.trades, *summary.buy_hold),
        (*want_bt.strategy, *want_bt.trades, *want_bt.buy_hold),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ath, want_ath)
    np.testing.assert_array_equal(mdd, returns.max_drawdown(c)[np.arange(6), _ends(c)])
    np.testing.assert_array_equal(mdd, want_mdd)


@pytest.mark.parametrize("which", ["real", "synth"])
def test_latest_indicators_equal_the_panel_functions(
    which: str, request: pytest.FixtureRequest
) -> None:
    p: Ohlcv = request.getfixturevalue(which)
    latest, _ = latest_indicators(p.high, p.low, p.close, p.volume)
    panels = indicator_panels(p.open, p.high, p.low, p.close, p.volume)
    ends = _ends(p.close)
    rows = np.arange(len(ends))
    assert set(panels) == set(NAMES)
    for k, name in enumerate(NAMES):
        want = np.where(ends >= 0, panels[name][rows, np.maximum(ends, 0)], np.nan)
        np.testing.assert_allclose(latest[k], want, rtol=1e-12, atol=0, err_msg=name)


def test_latest_indicators_scale_with_meme_coin_prices(real: Ohlcv) -> None:
    tiny = 1e-9
    a, _ = latest_indicators(real.high, real.low, real.close, real.volume)
    b, _ = latest_indicators(real.high * tiny, real.low * tiny, real.close * tiny, real.volume)
    for k, name in enumerate(NAMES):
        if name in ("obv", "rsi_14", "adx_14", "plus_di_14", "minus_di_14", "stoch_k", "stoch_d"):
            np.testing.assert_allclose(b[k], a[k], rtol=1e-9, err_msg=name)
        elif name not in ("mfi_14", "volatility_30d"):
            np.testing.assert_allclose(b[k], a[k] * tiny, rtol=1e-9, err_msg=name)


@pytest.mark.parametrize("which", ["real", "synth"])
def test_latest_levels_equal_levels_at(which: str, request: pytest.FixtureRequest) -> None:
    p: Ohlcv = request.getfixturevalue(which)
    ends = _ends(p.close)
    ends[0] = ends[0] - 37  # an end before the last bar reads only up to it
    rows = np.arange(len(ends))
    atr = indicators.atr(p.high, p.low, p.close)[rows, ends]
    got = levels.latest_levels(p.high, p.low, p.close, p.volume, ends, atr)
    for i, t in enumerate(ends):
        found = levels.levels_at(p.high[i], p.low[i], p.close[i], p.volume[i], int(t))
        want = [(lv.price, lv.strength, lv.touches, lv.last_touch) for lv in found[:5]]
        have = [tuple(got.strongest[i, q]) for q in range(int(got.n_strongest[i]))]
        assert have == want
        sups = [lv for lv in found if lv.kind == "support"]
        ress = [lv for lv in found if lv.kind == "resistance"]
        for have_row, pool, pick in ((got.support[i], sups, max), (got.resistance[i], ress, min)):
            if not pool:
                assert np.isnan(have_row).all()
                continue
            lv = pick(pool, key=lambda lv: lv.price)
            assert tuple(have_row) == (lv.price, lv.strength, lv.touches, lv.last_touch)


def test_latest_levels_ignore_history_beyond_the_lookback(synth: Ohlcv) -> None:
    cfg = levels.LevelConfig()
    ends = _ends(synth.close)
    atr = indicators.atr(synth.high, synth.low, synth.close)[np.arange(len(ends)), ends]
    base = levels.latest_levels(synth.high, synth.low, synth.close, synth.volume, ends, atr)
    old = ends.min() - cfg.lookback - cfg.pivot_bars - 20
    assert old > 0
    h, lo = synth.high.copy(), synth.low.copy()
    h[:, :old] *= 3.0
    lo[:, :old] *= 0.2
    again = levels.latest_levels(h, lo, synth.close, synth.volume, ends, atr)
    for a, b in zip(base, again, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("which", ["real", "synth"])
def test_roi_at_and_trailing_closes_equal_the_panel_functions(
    which: str, request: pytest.FixtureRequest
) -> None:
    p: Ohlcv = request.getfixturevalue(which)
    c = p.close.copy()
    c[-1, -3:] = np.nan  # a token whose last close is before the panel's last day
    ends = _ends(c)
    ends[0] = 40
    rows = np.arange(len(ends))
    table = returns.roi_table(c, p.days)
    got = returns.roi_at(c, p.days, ends)
    assert got.keys() == table.keys()
    for name, panel in table.items():
        np.testing.assert_array_equal(got[name], panel[rows, ends], err_msg=name)
    tail = returns.trailing_closes(c, ends, 90)
    a = returns.rolling_risk(tail, window=90)
    b = returns.rolling_risk(c, window=90)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x[:, -1], y[rows, ends], rtol=1e-12, atol=0)
    none = returns.roi_at(c, p.days, np.full(len(ends), -1))
    assert all(np.isnan(v).all() for v in none.values())


@pytest.mark.parametrize("n_days", [5, CURVE_CAP, CURVE_CAP + 1, 3 * CURVE_CAP + 7, 2_000])
def test_equity_curve_sample_rule(n_days: int) -> None:
    p = random_walk(3, n_days, seed=n_days, gaps=False)
    sp, _ = compute_signals(p.high, p.low, p.close, p.volume)
    result, state = backtest_with_state(sp.signal, p.open, p.close)
    for i in range(3):
        idx, eq, bh = equity_curve(state, i)
        assert len(idx) <= CURVE_CAP + 1
        assert idx[0] == 0
        assert idx[-1] == n_days - 1
        step = np.diff(idx[:-1]) if len(idx) > 2 else np.array([1])
        k = int(step[0]) if len(step) else 1
        assert (step == k).all()
        assert k & (k - 1) == 0
        assert k == 1 or (n_days - 1) // (k // 2) + 1 > CURVE_CAP  # the smallest such stride
        np.testing.assert_array_equal(eq, result.equity[i, idx])
        np.testing.assert_array_equal(bh, result.buy_hold_equity[i, idx])


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), t=st.integers(60, 250))
def test_readers_at_t_ignore_everything_after_t(seed: int, t: int) -> None:
    p = random_walk(5, 260, seed=seed)
    rng = np.random.default_rng(seed)
    later = [x.copy() for x in (p.high, p.low, p.close, p.volume)]
    for x in later:
        x[:, t + 1 :] *= rng.uniform(0.5, 2.0, x[:, t + 1 :].shape)
    ends = np.minimum(_ends(p.close[:, : t + 1]), t)
    atr = indicators.atr(p.high, p.low, p.close)[np.arange(5), ends]

    def readers(h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray) -> list[np.ndarray]:
        lv = levels.latest_levels(h, lo, c, v, ends, atr)
        roi = returns.roi_at(c, p.days, ends)
        return [*lv[:3], *roi.values(), returns.trailing_closes(c, ends, 90)]

    for a, b in zip(readers(p.high, p.low, p.close, p.volume), readers(*later), strict=True):
        np.testing.assert_array_equal(a, b)
