"""Trader/Investor Grades: sub-grades add up, day ranges equal the whole, no look-ahead."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from coinlens.analytics import grades as g

from ._data import random_walk

SHAPE = (9, 260)


def _inputs(seed: int, n_tokens: int = SHAPE[0], n_days: int = SHAPE[1]) -> g.GradeInputs:
    w = random_walk(n_tokens, n_days, seed=seed)
    rng = np.random.default_rng(seed)
    cap = w.close * rng.uniform(1e6, 1e9, (n_tokens, 1))
    return g.GradeInputs(
        close=w.close,
        high=w.high,
        low=w.low,
        volume=w.volume,
        benchmark=0,
        market_cap=cap,
        rank=np.argsort(np.argsort(-cap, axis=0), axis=0).astype(float) + 1,
        supply=cap / w.close,
    )


def test_grades_are_the_weighted_sum_of_their_sub_grades() -> None:
    res = g.compute_grades(_inputs(5))
    cfg = g.GradeConfig()
    for kind, subs, weights in (
        (res.trader, g.TRADER_SUBS, cfg.trader_weights),
        (res.investor, g.INVESTOR_SUBS, cfg.investor_weights),
    ):
        total = sum(weights.values())
        expected = sum(weights[s] / total * res.sub[s] for s in subs)
        ok = np.isfinite(kind)
        assert ok.sum() > 100
        np.testing.assert_allclose(kind[ok], expected[ok], atol=1e-9)
        assert np.nanmin(kind) >= 0
        assert np.nanmax(kind) <= 100


def test_insufficient_history_gives_nan() -> None:
    res = g.compute_grades(_inputs(6))
    assert np.isnan(res.trader[:, : g.GradeConfig().trader_history - 1]).all()
    assert np.isnan(res.investor[:, : g.GradeConfig().investor_history - 1]).all()


def test_ineligible_tokens_are_not_graded() -> None:
    inp = _inputs(7)
    eligible = np.ones(SHAPE[0], dtype=bool)
    eligible[2] = False
    res = g.compute_grades(g.GradeInputs(**{**inp.__dict__, "eligible": eligible}))
    assert np.isnan(res.trader[2]).all()
    assert np.isfinite(res.trader[3]).any()


def test_one_day_equals_that_column_of_the_full_computation() -> None:
    inp = _inputs(8)
    cfg = g.GradeConfig()
    feats = g.grade_features(inp)
    masks = g.eligibility(inp, cfg)
    full = g.grades_from_features(feats, masks, cfg)
    t = SHAPE[1] - 1
    one_feats = {k: {n: f[:, [t]] for n, f in v.items()} for k, v in feats.items()}
    one = g.grades_from_features(
        one_feats, g.Masks(masks.trader[:, [t]], masks.investor[:, [t]]), cfg
    )
    np.testing.assert_array_equal(one.trader[:, 0], full.trader[:, t])
    np.testing.assert_array_equal(one.investor[:, 0], full.investor[:, t])


def test_grades_from_a_first_day_equal_those_columns_of_the_full_computation() -> None:
    inp = _inputs(9)
    full = g.compute_grades(inp)
    late = g.compute_grades(inp, first_day=150)
    np.testing.assert_array_equal(late.trader, full.trader[:, 150:])
    np.testing.assert_array_equal(late.investor, full.investor[:, 150:])
    for sub in g.SUB_GRADES:
        np.testing.assert_array_equal(late.sub[sub], full.sub[sub][:, 150:])


def test_streamed_grades_equal_grades_from_all_features_at_once() -> None:
    inp = _inputs(10)
    cfg = g.GradeConfig()
    at_once = g.grades_from_features(g.grade_features(inp), g.eligibility(inp, cfg), cfg)
    streamed = g.compute_grades(inp, cfg)
    np.testing.assert_array_equal(streamed.trader, at_once.trader)
    np.testing.assert_array_equal(streamed.investor, at_once.investor)


def test_bands() -> None:
    assert [g.band_of(x) for x in (0, 20.4, 20.6, 40, 55, 61, 80.49, 81, 100)] == [
        "strong_sell",
        "strong_sell",
        "sell",
        "sell",
        "neutral",
        "buy",
        "buy",
        "strong_buy",
        "strong_buy",
    ]


BASE = _inputs(11)
BASE_GRADES = g.compute_grades(BASE)


@settings(max_examples=12, deadline=None)
@given(t=st.integers(min_value=60, max_value=SHAPE[1] - 2), seed=st.integers(0, 2**16))
def test_no_look_ahead(t: int, seed: int) -> None:
    """Changing any data after day t leaves every grade at days <= t unchanged."""
    rng = np.random.default_rng(seed)

    def perturb(x: np.ndarray | None) -> np.ndarray | None:
        if x is None:
            return None
        y = x.copy()
        tail = y[:, t + 1 :]
        y[:, t + 1 :] = tail * rng.uniform(0.2, 5.0, tail.shape)
        y[:, t + 1 :][rng.random(tail.shape) < 0.1] = np.nan
        return y

    changed = g.GradeInputs(
        **{k: perturb(v) if isinstance(v, np.ndarray) else v for k, v in BASE.__dict__.items()}
    )
    res = g.compute_grades(changed)
    for name in ("trader", "investor"):
        np.testing.assert_array_equal(
            getattr(res, name)[:, : t + 1], getattr(BASE_GRADES, name)[:, : t + 1]
        )
    for sub in g.SUB_GRADES:
        np.testing.assert_array_equal(res.sub[sub][:, : t + 1], BASE_GRADES.sub[sub][:, : t + 1])


def test_absent_inputs_grade_like_inputs_missing_everywhere() -> None:
    """Features of absent caps/chain data are skipped, not built as NaN panels: same grades."""
    base = _inputs(11)
    nan = np.full(SHAPE, np.nan)
    absent = g.GradeInputs(base.close, base.high, base.low, base.volume, benchmark=0)
    missing = g.GradeInputs(
        base.close, base.high, base.low, base.volume, nan, 0, None, nan, nan, nan, nan, nan
    )
    a, m = g.compute_grades(absent), g.compute_grades(missing)
    assert np.isfinite(a.investor).sum() > 100
    np.testing.assert_array_equal(a.investor, m.investor)
    for sub in g.SUB_GRADES:
        np.testing.assert_array_equal(a.sub[sub], m.sub[sub])


def test_method_id_fingerprints_the_weights_and_windows() -> None:
    base = g.GradeConfig()
    assert g.method_id(base) == g.method_id(g.GradeConfig())
    other = dict(base.trader_weights)
    first = next(iter(other))
    other[first] += 0.05
    assert g.method_id(g.GradeConfig(trader_weights=other)) != g.method_id(base)
    assert g.method_id(g.GradeConfig(investor_history=200)) != g.method_id(base)
