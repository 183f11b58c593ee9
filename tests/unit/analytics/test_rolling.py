"""Trailing-window statistics equal their direct loops (drawdown bit for bit)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coinlens.analytics.rolling import rolling_beta, rolling_moments, window_max_drawdown


def test_rolling_moments_equal_a_plain_loop() -> None:
    r = np.random.default_rng(1).normal(0, 0.05, (3, 60))
    r[1, 10:20] = np.nan
    mean, sd, down = rolling_moments(r, 15, 5)
    for i in range(3):
        for t in range(60):
            win = r[i, max(0, t - 14) : t + 1]
            win = win[np.isfinite(win)]
            if win.size < 5:
                assert np.isnan(mean[i, t])
                continue
            assert mean[i, t] == pytest.approx(win.mean(), abs=1e-12)
            assert sd[i, t] == pytest.approx(win.std(ddof=1), rel=1e-9)
            assert down[i, t] == pytest.approx(np.sqrt(np.mean(np.minimum(win, 0) ** 2)), rel=1e-9)


def test_rolling_beta_equals_least_squares_on_the_shared_days() -> None:
    rng = np.random.default_rng(2)
    b = rng.normal(0, 0.03, 120)
    r = np.stack([0.5 * b + rng.normal(0, 0.01, 120), rng.normal(0, 0.02, 120)])
    r[0, 30:40] = np.nan
    b[50:55] = np.nan
    beta = rolling_beta(r, b, 40, 20)
    for i in range(2):
        for t in range(120):
            x, y = r[i, max(0, t - 39) : t + 1], b[max(0, t - 39) : t + 1]
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() < 20:
                assert np.isnan(beta[i, t])
                continue
            slope = np.cov(x[ok], y[ok])[0, 1] / np.var(y[ok], ddof=1)
            assert beta[i, t] == pytest.approx(slope, rel=1e-9)


def _drawdown_loop(close: np.ndarray, window: int) -> np.ndarray:
    """The definition, directly: O(window) per day."""
    m, t = close.shape
    out = np.full((m, t), np.nan)
    for i in range(m):
        for j in range(t):
            if not math.isfinite(close[i, j]):
                continue
            peak, worst = -math.inf, 0.0
            for k in range(max(0, j - window + 1), j + 1):
                c = close[i, k]
                if math.isfinite(c):
                    peak = max(peak, c)
                    worst = min(worst, c / peak - 1.0)
            out[i, j] = worst
    return out


def test_window_max_drawdown_by_hand() -> None:
    c = np.array([[10.0, 12.0, 6.0, np.nan, 9.0, 3.0, 4.0]])
    mdd = window_max_drawdown(c, 3)
    assert mdd[0, 2] == pytest.approx(-0.5)
    assert np.isnan(mdd[0, 3])
    assert mdd[0, 4] == 0.0  # window days 2..4 (6, gap, 9): the fall from 12 has left it
    assert mdd[0, 5] == pytest.approx(3 / 9 - 1)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    days=st.integers(1, 90),
    window=st.integers(1, 40),
    gaps=st.floats(0.0, 0.6),
)
def test_window_max_drawdown_equals_the_direct_loop_bit_for_bit(
    seed: int, days: int, window: int, gaps: float
) -> None:
    rng = np.random.default_rng(seed)
    close = np.exp(np.cumsum(rng.normal(0, 0.2, (4, days)), axis=1)) * rng.uniform(1e-6, 1e4)
    close[rng.random(close.shape) < gaps] = np.nan
    np.testing.assert_array_equal(window_max_drawdown(close, window), _drawdown_loop(close, window))
