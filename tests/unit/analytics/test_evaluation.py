"""Grade evaluation: IC, quintile spreads, hit rates and Newey-West t on known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from coinlens.analytics import evaluation as ev


def test_forward_returns() -> None:
    c = np.array([[1.0, 2.0, np.nan, 4.0]])
    f = ev.forward_returns(c, 1)
    np.testing.assert_array_equal(f[0, :1], [1.0])
    assert np.isnan(f[0, 1:]).all()
    np.testing.assert_array_equal(ev.forward_returns(c, 3)[0, 0], 3.0)


def test_rank_ic_is_one_for_monotone_and_minus_one_for_reversed() -> None:
    score = np.tile(np.arange(12.0)[:, None], (1, 3))
    fwd = np.exp(score) - 5  # monotone, not linear
    fwd[:, 1] = -fwd[:, 1]
    fwd[:, 2] = np.nan
    ic = ev.rank_ic(score, fwd)
    assert ic[0] == pytest.approx(1.0)
    assert ic[1] == pytest.approx(-1.0)
    assert np.isnan(ic[2])


def test_rank_ic_equals_scipy_spearman() -> None:
    rng = np.random.default_rng(2)
    score = np.round(rng.normal(size=(30, 8)), 1)
    fwd = 0.3 * score + rng.normal(size=score.shape)
    fwd[rng.random(fwd.shape) < 0.15] = np.nan
    ic = ev.rank_ic(score, fwd)
    for j in range(8):
        ok = np.isfinite(fwd[:, j])
        assert ic[j] == pytest.approx(spearmanr(score[ok, j], fwd[ok, j]).statistic, abs=1e-12)


def test_quintile_spread_and_hit_rate_known_answer() -> None:
    score = np.arange(10.0)[:, None]
    fwd = np.array([-0.1, -0.3, 0, 0, 0, 0, 0, 0, 0.2, 0.4])[:, None]
    stats = ev.quintile_stats(score, fwd)
    assert stats.spread[0] == pytest.approx(0.3 - (-0.2))
    assert stats.top_hit[0] == pytest.approx(1.0)


def test_newey_west_without_lags_is_the_plain_t_stat() -> None:
    x = np.random.default_rng(4).normal(0.1, 1.0, 500)
    stat = ev.newey_west(x, 0)
    assert stat.t == pytest.approx(x.mean() / (x.std(ddof=0) / math.sqrt(x.size)))
    assert stat.n == 500


def test_newey_west_widens_errors_for_overlapping_windows() -> None:
    rng = np.random.default_rng(5)
    daily = rng.normal(0.0, 1.0, 3000)
    overlapping = np.convolve(daily, np.ones(7) / 7, mode="valid")  # like 7d forward windows
    assert ev.newey_west(overlapping, 7).se > 1.8 * ev.newey_west(overlapping, 0).se


def test_summary_and_years() -> None:
    days = np.array([18992, 18993, 19357, 19358])  # 2021-12-31, 2022-01-01, 2022-12-31, 2023-01-01
    assert ev.years_of(days).tolist() == [2021, 2022, 2022, 2023]
    ic = np.array([0.1, -0.1, 0.2, np.nan])
    stats = ev.QuintileStats(
        np.array([0.01, 0.02, 0.03, np.nan]), np.array([0.5, 0.6, 0.7, np.nan])
    )
    s = ev.summarize(ic, stats, np.array([10, 10, 20, 0]), np.ones(4, dtype=bool), 1)
    assert s.ic.n == 3
    assert s.ic_hit_rate == pytest.approx(2 / 3)
    assert s.top_hit_rate == pytest.approx(0.6)
    assert s.mean_tokens == pytest.approx(40 / 3)
