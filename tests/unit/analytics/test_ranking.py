"""Cross-sectional percentile ranks: equal scipy's average ranks, exactly, in every corner."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import rankdata

from coinlens.analytics.ranking import add_percentiles, percentile_rank


def _reference(x: np.ndarray, min_count: int = 2, mask: np.ndarray | None = None) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    for j in range(x.shape[1]):
        ok = np.isfinite(x[:, j]) & (True if mask is None else mask[:, j])
        if ok.sum() >= max(min_count, 2):
            out[ok, j] = 100 * (rankdata(x[ok, j]) - 1) / (ok.sum() - 1)
    return out


def test_percentile_rank_equals_scipy_rankdata_per_column() -> None:
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(40, 25)), 1)  # rounding makes ties
    x[rng.random(x.shape) < 0.2] = np.nan
    x[0, 0], x[1, 0], x[2, 1] = np.inf, -np.inf, -0.0
    x[3, 1] = 0.0  # -0.0 and 0.0 are one value
    np.testing.assert_allclose(percentile_rank(x), _reference(x), rtol=0, atol=1e-12)


def test_percentile_rank_needs_min_count() -> None:
    x = np.array([[1.0, 1.0], [2.0, np.nan], [3.0, np.nan]])
    pct = percentile_rank(x, min_count=3)
    np.testing.assert_array_equal(pct[:, 0], [0.0, 50.0, 100.0])
    assert np.isnan(pct[:, 1]).all()


def test_values_that_differ_only_in_their_last_bits_are_ordered_exactly() -> None:
    """The keys drop the low mantissa bits (they hold the row): the order must not."""
    base = 1.0 + np.arange(300)[::-1] * np.finfo(float).eps  # descending by the lowest bits
    x = np.stack([base, -base, base * 1e300, np.r_[base[:150], base[:150]]], axis=1)
    np.testing.assert_array_equal(percentile_rank(x), _reference(x))


def test_mask_leaves_cells_out_of_the_ranking() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 12))
    mask = rng.random(x.shape) < 0.7
    np.testing.assert_allclose(percentile_rank(x, 3, mask), _reference(x, 3, mask), atol=1e-12)


def test_added_percentiles_equal_the_sum_of_the_percentile_panels() -> None:
    rng = np.random.default_rng(5)
    panels = [np.round(rng.normal(size=(50, 20)), 1) for _ in range(3)]
    panels[1][rng.random((50, 20)) < 0.3] = np.nan
    mask = rng.random((50, 20)) < 0.8
    total, count = np.zeros((50, 20)), np.zeros((50, 20))
    expected_total, expected_count = np.zeros((50, 20)), np.zeros((50, 20))
    for p in panels:
        add_percentiles(p, total, count, 3, mask)
        pct = percentile_rank(p, 3, mask)
        expected_total += np.where(np.isfinite(pct), pct, 0.0)
        expected_count += np.isfinite(pct)
    np.testing.assert_array_equal(total, expected_total)
    np.testing.assert_array_equal(count, expected_count)


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 70), st.integers(1, 6)),
        elements=st.one_of(
            st.sampled_from([0.0, -0.0, 1.0, -1.0, np.nan, np.inf, 5e-324, 1.0000000000000002]),
            st.floats(allow_nan=True, allow_infinity=True),
        ),
    )
)
def test_percentile_rank_equals_scipy_on_any_floats(x: np.ndarray) -> None:
    np.testing.assert_allclose(percentile_rank(x), _reference(x), rtol=0, atol=1e-12)
