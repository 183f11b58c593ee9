"""Walk-forward scoring: block-bootstrap skill interval, development / held-out split."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from coinlens.analytics import forecast as fc
from coinlens.services.forecast_eval import (
    Collected,
    EvalConfig,
    block_bootstrap_coverage,
    block_bootstrap_skill,
    horizon_metrics,
    is_full_run,
    track_record,
)


def test_block_bootstrap_brackets_the_skill_and_counts_losing_blocks() -> None:
    rng = np.random.default_rng(4)
    block = np.repeat(np.arange(8), 50)
    rw = rng.uniform(1.0, 2.0, len(block))
    # six blocks 10 % better than the random walk, two 5 % worse
    factor = np.where(block < 6, 0.9, 1.05)
    lo, hi, worse = block_bootstrap_skill((rw * factor, rw), block)
    skill = 1.0 - (rw * factor).sum() / rw.sum()
    assert lo < skill < hi
    # resampled skills lie between the worst and the best block's
    assert lo >= -0.05 - 1e-12
    assert hi <= 0.1 + 1e-12
    assert worse == 2


def test_one_block_has_a_degenerate_interval() -> None:
    loss = np.array([1.0, 2.0]), np.array([2.0, 2.0])
    lo, hi, worse = block_bootstrap_skill(loss, np.zeros(2, dtype=np.int64))
    assert lo == pytest.approx(0.25)
    assert hi == pytest.approx(0.25)
    assert worse == 0


def test_block_bootstrap_coverage_spans_the_blocks_own_coverages() -> None:
    block = np.repeat(np.arange(10), 40)
    # blocks alternate 30 % and 70 % of rows inside: 50 % overall
    inside = (np.arange(len(block)) % 40) < np.where(block % 2 == 0, 12, 28)
    lo, hi = block_bootstrap_coverage(inside, block)
    assert 0.3 <= lo < 0.5 < hi <= 0.7
    # every block at 60 %: no spread to resample
    same = (np.arange(len(block)) % 40) < 24
    assert block_bootstrap_coverage(same, block) == pytest.approx((0.6, 0.6))


def _random_walk_rows(n: int, h: int, seed: int) -> tuple[Collected, np.ndarray, np.ndarray]:
    """n scored rows whose model is the random walk itself (skill 0): rows, y, quantiles."""
    rng = np.random.default_rng(seed)
    lc = np.zeros(n)
    y = rng.normal(0.0, 0.05, n)
    rw = fc.to_log_price(lc, np.full(n, 0.05 / np.sqrt(h)), h, fc.random_walk_z(n))
    day = np.arange(n, dtype=np.int64)
    return Collected(y=[y], model=[rw], rw=[rw], lc=[lc], day=[day], block=[day // 100]), y, rw


def test_metrics_split_development_and_held_out_rows() -> None:
    n, h = 400, 7
    c, y, rw = _random_walk_rows(n, h, seed=5)
    day = np.arange(n)
    m = horizon_metrics(c, h, holdout_col=300)
    assert m["pinball_skill"] == pytest.approx(0.0)
    assert m["development"]["rows"] + m["held_out"]["rows"] == n
    assert m["held_out"]["rows"] == (day + h >= 300).sum()
    assert m["held_out"]["coverage_50_model"] == pytest.approx(
        ((y >= rw[:, 2]) & (y <= rw[:, 4]))[day + h >= 300].mean()
    )
    empty = horizon_metrics(c, h, holdout_col=10_000)["held_out"]
    assert empty["rows"] == 0
    assert np.isnan(empty["pinball_skill"])


def test_only_a_full_run_of_the_production_method_is_a_track_record() -> None:
    assert is_full_run(EvalConfig())
    for change in (
        {"model": fc.ForecastConfig(n_trees=10)},
        {"score_until": dt.date(2024, 9, 30)},
        {"max_origins": 2},
        {"market_features": True},
    ):
        assert not is_full_run(dataclasses.replace(EvalConfig(), **change))


def test_track_record_keeps_the_headline_figures_and_none_for_undefined_ones() -> None:
    n, h = 300, 7
    c, _, _ = _random_walk_rows(n, h, seed=6)
    m = horizon_metrics(c, h, holdout_col=10_000)  # nothing held out: its skill is NaN
    result = {
        "config": EvalConfig(),
        "horizons": {h: m},
        "origins": ["2024-01-01", "2024-04-01", "2024-07-01"],
        "data_end": "2025-09-30",
        "features": ["ret_1d"],
    }
    at = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    record = track_record(result, at, "reports/forecasts.md")
    assert (record.first_origin, record.last_origin) == (dt.date(2024, 1, 1), dt.date(2024, 7, 1))
    assert record.retrains == 3
    assert record.method == fc.method_id(fc.ForecastConfig(), ["ret_1d"])
    assert record.method != fc.method_id(fc.ForecastConfig(n_trees=10), ["ret_1d"])
    assert record.method != fc.method_id(fc.ForecastConfig(), ["ret_1d", "ret_3d"])
    assert record.held_out_from == dt.date(2024, 10, 1)
    (hr,) = record.horizons
    assert (hr.horizon, hr.rows) == (h, n)
    assert hr.pinball_skill == pytest.approx(0.0)
    assert hr.held_out_skill is None
    assert [c.level for c in hr.coverage] == [50, 80, 90]
    assert [c.observed for c in hr.coverage] == pytest.approx(
        [m[f"coverage_{lv}_model"] for lv in (50, 80, 90)]
    )
    low, observed, high = hr.coverage[0].low, hr.coverage[0].observed, hr.coverage[0].high
    assert low is not None
    assert observed is not None
    assert high is not None
    assert low <= observed <= high
