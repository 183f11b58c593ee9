"""Quantile forecaster: no look-ahead, monotone quantiles, RW calibration, probabilities."""

from __future__ import annotations

import dataclasses
import json
import zlib
from statistics import NormalDist

import numpy as np
import pytest
from scipy.stats import binomtest

from coinlens.analytics import forecast as fc
from coinlens.analytics import forecast_features, scoring, set_threads, threads
from coinlens.analytics.forecast_features import build_features

SMALL = fc.ForecastConfig(
    horizons=(1, 7), n_trees=5, min_data_in_leaf=50, max_rows=5_000, calib_days=60, min_age=30
)


def gbm(tokens: int = 30, days: int = 400, sigma: float = 0.04, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, sigma, (tokens, days)), axis=1))
    close[: tokens // 3, : days // 4] = np.nan  # late listings
    return close


@pytest.fixture(scope="module")
def panel() -> tuple[np.ndarray, np.ndarray]:
    close = gbm()
    volume = np.random.default_rng(2).lognormal(10, 1, close.shape)
    return close, volume


def _perturb_after(x: np.ndarray, col: int) -> np.ndarray:
    y = x.copy()
    y[:, col + 1 :] *= np.random.default_rng(3).uniform(0.5, 2.0, y[:, col + 1 :].shape)
    return y


def test_features_use_no_future_data(panel: tuple[np.ndarray, np.ndarray]) -> None:
    close, volume = panel
    col = 250
    a = build_features(close, volume)
    b = build_features(_perturb_after(close, col), _perturb_after(volume, col))
    np.testing.assert_array_equal(a.values[:, : col + 1], b.values[:, : col + 1])
    np.testing.assert_array_equal(a.sigma[:, : col + 1], b.sigma[:, : col + 1])
    np.testing.assert_array_equal(a.vol_ratio[:, : col + 1], b.vol_ratio[:, : col + 1])
    assert not np.array_equal(a.values[:, col + 2 :], b.values[:, col + 2 :], equal_nan=True)


def test_trained_forecast_ignores_data_after_cutoff(panel: tuple[np.ndarray, np.ndarray]) -> None:
    close, volume = panel
    col = 300
    idx = np.stack([np.arange(close.shape[0]), np.full(close.shape[0], col)], axis=1)
    results = []
    for c, v in ((close, volume), (_perturb_after(close, col), _perturb_after(volume, col))):
        fp = build_features(c, v)
        results.append(fc.predict(fc.train(fp, col, SMALL), fp, idx))
    for h in SMALL.horizons:
        np.testing.assert_array_equal(results[0][h], results[1][h])


def test_features_of_some_cells_equal_those_of_the_whole_panel(
    panel: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    close, volume = panel
    whole = build_features(close, volume)
    monkeypatch.setattr(forecast_features, "FEATURE_CHUNK", 7)  # cells across 5 chunks
    rng = np.random.default_rng(4)
    cells = np.stack([rng.integers(0, 30, 500), rng.integers(0, 400, 500)], axis=1)
    some = build_features(close, volume, only=lambda index: np.concatenate([cells, cells[:9]]))
    assert some.values.shape[0] == len(np.unique(cells[:, 0] * 400 + cells[:, 1]))
    tok, day = cells[:, 0], cells[:, 1]
    np.testing.assert_array_equal(some.at(tok, day), whole.values[tok, day])
    for name in ("log_close", "observed", "sigma", "vol_ratio"):
        np.testing.assert_array_equal(getattr(some, name), getattr(whole, name))
    missing = np.setdiff1d(np.arange(30 * 400), some.pairs)[:1]
    with pytest.raises(ValueError, match="not built"):
        some.at(missing // 400, missing % 400)


def test_training_on_its_sampled_cells_equals_training_on_the_whole_panel(
    panel: tuple[np.ndarray, np.ndarray],
) -> None:
    close, volume = panel
    whole = build_features(close, volume)
    observed = whole.observed & (np.cumsum(np.isfinite(whole.log_close), axis=1) >= 30)
    observed[:, -7:] = False
    observed[:, :-7] &= whole.observed[:, 7:]
    np.testing.assert_array_equal(fc.origins(whole, 0, 399, 7, 30), np.argwhere(observed))
    assert fc.origins(whole, 0, 399, 500, 30).shape == (0, 2)  # no target day in the panel
    cfg = dataclasses.replace(SMALL, max_rows=1_000)  # samples: 6 × 1,000 of 12,000 cells
    sampled = build_features(close, volume, only=lambda index: fc.training_cells(index, 399, cfg))
    assert sampled.values.shape[0] <= 6_000
    assert fc.train(sampled, 399, cfg).to_bytes() == fc.train(whole, 399, cfg).to_bytes()


def test_horizons_trained_side_by_side_give_the_serial_model(
    panel: tuple[np.ndarray, np.ndarray],
) -> None:
    close, volume = panel
    fp = build_features(close, volume)
    cfg = dataclasses.replace(SMALL, horizons=(1, 7, 30))
    before = threads()
    try:
        set_threads(1)
        serial = fc.train(fp, 399, cfg)
        set_threads(3)
        side_by_side = fc.train(fp, 399, cfg)
    finally:
        set_threads(before)
    assert [h.horizon for h in side_by_side.horizons] == [1, 7, 30]
    assert side_by_side.to_bytes() == serial.to_bytes()


def test_quantiles_are_monotone_and_model_round_trips(
    panel: tuple[np.ndarray, np.ndarray],
) -> None:
    close, volume = panel
    fp = build_features(close, volume)
    model = fc.train(fp, 399, SMALL)
    idx = fc.origins(fp, 200, 390, 1, 30)
    out = fc.predict(model, fp, idx)
    again = fc.predict(fc.QuantileModel.from_bytes(model.to_bytes()), fp, idx)
    for h, q in out.items():
        assert q.shape == (len(idx), 7)
        assert (np.diff(q, axis=1) >= 0).all()
        np.testing.assert_allclose(q, again[h])


def test_blend_moves_the_median_only_where_the_window_supports_it() -> None:
    rng = np.random.default_rng(8)
    n = 20_000
    ones = np.ones(n)
    daily = (np.arange(n) % 365, 1)  # a 365-day window, one-day outcomes
    cfg = fc.ForecastConfig()
    # the model knows the drift: its median is taken
    z = rng.normal(0.5, 1.0, n)
    right, _ = fc._choose_blend(0.5 + fc.random_walk_z(n), ones, z, daily, cfg)
    assert right.loc == 1.0
    # the model's drift is wrong: the median stays the random walk's (0)
    z = rng.normal(0.0, 1.0, n)
    wrong, lcb = fc._choose_blend(0.8 + fc.random_walk_z(n), ones, z, daily, cfg)
    assert (wrong.loc, lcb) == (0.0, 0.0)
    # no model information, but the realised scale follows the slow vol: beta > 0 is chosen
    ratio = rng.choice([0.5, 2.0], n)
    z = rng.normal(0.0, 1.0, n) * ratio
    vol, _ = fc._choose_blend(fc.random_walk_z(n), ratio, z, daily, cfg)
    assert vol.vol_exponent == 0.5
    q = fc.apply_calibration(fc.random_walk_z(n), ratio, vol)
    np.testing.assert_allclose(q, fc.Z[None, :] * np.sqrt(ratio)[:, None])


def test_model_needs_a_gain_larger_than_its_noise_at_long_horizons() -> None:
    rng = np.random.default_rng(9)
    day = np.repeat(np.arange(360), 40)
    # the whole market drifts up in one 90-day stretch and down a little in another: a model
    # median of +0.3 wins on average, but on ~4 independent 90-day outcomes only
    drift = np.select([day < 90, day >= 270], [-0.4, 1.5], 0.0)
    z = drift + rng.normal(0.0, 1.0, len(day))
    zm = 0.3 + fc.random_walk_z(len(day))
    ones = np.ones(len(day))
    plain, _ = fc._choose_blend(zm, ones, z, (day, 90), fc.ForecastConfig(evidence_se=0.0))
    assert plain.loc > 0
    gated, lcb = fc._choose_blend(zm, ones, z, (day, 90), fc.ForecastConfig())
    assert (gated.loc, gated.shape, lcb) == (0.0, 0.0, 0.0)


def test_batch_se_uses_non_overlapping_blocks_from_the_latest_day() -> None:
    series = np.array([9.0, 1.0, 2.0, 3.0, 5.0, 7.0, 11.0])  # the oldest value is dropped
    means = np.array([1.5, 4.0, 9.0])
    assert fc.batch_se(series, 2) == pytest.approx(means.std(ddof=1) / np.sqrt(3))
    assert fc.batch_se(series, 4) == np.inf


def test_scales_shrink_more_at_long_horizons_and_old_models_load() -> None:
    cfg = fc.ForecastConfig()  # 365-day window, n0 = 8
    raw = (1.4,) * 7
    s1, s90 = fc.shrunk_scales(raw, 1, cfg)[0], fc.shrunk_scales(raw, 90, cfg)[0]
    assert s1 == pytest.approx(1 + 0.4 * 365 / 373)
    assert s90 == pytest.approx(1 + 0.4 * (365 / 90) / (365 / 90 + 8))
    # a model stored before the location/shape split: one weight for both, plain RW reference
    doc = {
        "feature_names": ["a"],
        "cutoff": 5,
        "horizons": [
            {"horizon": 1, "boosters": [], "weight": 0.25, "scales": [1.0] * 7, "metrics": {}}
        ],
    }
    old = fc.QuantileModel.from_bytes(zlib.compress(json.dumps(doc).encode()))
    hm = old.horizons[0]
    assert (hm.location, hm.weight, hm.vol_exponent) == (0.25, 0.25, 0.0)
    again = fc.QuantileModel.from_bytes(old.to_bytes()).horizons[0]
    assert fc.blend_of(again) == fc.blend_of(hm)


def test_random_walk_coverage_is_nominal_on_gbm() -> None:
    close = gbm(tokens=200, days=600, seed=5)
    fp = build_features(close, np.ones_like(close))
    for h in (1, 7):
        idx = fc.origins(fp, 100, 600 - 1 - h, h, 60)
        q = fc.predict_random_walk(fp, idx, [h])[h]
        y = fp.log_close[idx[:, 0], idx[:, 1] + h]
        for level, k in ((50, 2), (80, 1), (90, 0)):
            cov = scoring.coverage(y, q[:, k], q[:, -1 - k])
            assert abs(cov - level / 100) < 0.03, (h, level, cov)


def test_probability_is_monotone_and_complementary() -> None:
    sigma = 0.03
    log_q = np.log(100) + np.array([fc.Z * sigma * np.sqrt(h) for h in fc.HORIZONS])
    prev = 1.0
    for level in (60.0, 80.0, 95.0, 100.0, 105.0, 120.0, 200.0):
        up_at, up_by = fc.probability(log_q, fc.HORIZONS, np.log(100), level, 45, above=True)
        down_at, _ = fc.probability(log_q, fc.HORIZONS, np.log(100), level, 45, above=False)
        assert up_at <= prev + 1e-12
        assert up_at + down_at == pytest.approx(1.0, abs=1e-9)
        assert up_at <= up_by <= 1.0
        prev = up_at
    # a driftless lognormal: P(close >= S0 e^{sigma sqrt(d)}) = 1 - Φ(1)
    p, _ = fc.probability(
        log_q, fc.HORIZONS, np.log(100), 100 * np.exp(sigma * np.sqrt(45)), 45, above=True
    )
    assert p == pytest.approx(0.1587, abs=0.01)


def test_tails_beyond_p05_p95_are_exponential() -> None:
    """Each further width of the outer segment halves the tail, as p10 → p05 does: heavier
    than a normal's (a 5σ day is not 3e-7 likely in crypto)."""
    q = fc.Z * 0.03  # one horizon's log-return quantiles, σ = 3 %
    upper, lower = q[-1] - q[-2], q[1] - q[0]
    for k in (0.0, 1.0, 3.0):
        assert 1.0 - fc.cdf(q, q[-1] + k * upper) == pytest.approx(0.05 * 2.0**-k, rel=1e-9)
        assert fc.cdf(q, q[0] - k * lower) == pytest.approx(0.05 * 2.0**-k, rel=1e-9)
    assert 1.0 - fc.cdf(q, 5 * 0.03) > 100 * (1.0 - NormalDist().cdf(5.0))
    assert fc.cdf(q, q[3]) == pytest.approx(0.5)


def test_scoring_matches_references() -> None:
    for k, n in ((60, 100), (3, 20), (50, 100), (0, 7)):
        assert scoring.binomial_test(k, n) == pytest.approx(binomtest(k, n).pvalue, rel=1e-9)
    y = np.array([0.0, 1.0])
    q = np.array([[0.5], [0.5]])
    assert scoring.pinball(y, q, [0.5])[0] == pytest.approx(0.25)
    assert scoring.coverage([1, 2, 3], [0, 0, 0], [2, 2, 2]) == pytest.approx(2 / 3)
