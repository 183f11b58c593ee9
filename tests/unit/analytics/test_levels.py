"""Support/resistance levels: pivots confirmed late, sensible nearest levels, respect rate."""

from __future__ import annotations

import numpy as np

from coinlens.analytics import levels

from ._data import Ohlcv


def test_levels_at_are_classified_against_the_close(real: Ohlcv) -> None:
    btc = real.symbols.index("BTC")
    h, lo, c, v = real.high[btc], real.low[btc], real.close[btc], real.volume[btc]
    t = 500

    found = levels.levels_at(h, lo, c, v, t)

    assert found
    for lv in found:
        assert (lv.kind == "support") == (lv.price < c[t])
        assert 0.0 < lv.strength < 1.0
        assert lv.touches >= 1
        assert lv.last_touch <= t - levels.LevelConfig().pivot_bars
    assert [lv.strength for lv in found] == sorted((lv.strength for lv in found), reverse=True)


def test_nearest_levels_bracket_the_close(real: Ohlcv) -> None:
    near = levels.nearest_levels(real.high, real.low, real.close, real.volume)

    with np.errstate(invalid="ignore"):
        assert not (near.support >= real.close).any()
        assert not (near.resistance <= real.close).any()
    assert np.isfinite(near.support[:, -1]).any()


def test_nearest_support_is_the_highest_support_level(real: Ohlcv) -> None:
    eth = real.symbols.index("ETH")
    near = levels.nearest_levels(real.high, real.low, real.close, real.volume)
    t = 450
    found = levels.levels_at(real.high[eth], real.low[eth], real.close[eth], real.volume[eth], t)

    supports = [lv.price for lv in found if lv.kind == "support"]
    assert np.isclose(near.support[eth, t], max(supports))


def test_a_clean_double_bottom_is_found() -> None:
    c = np.concatenate([np.linspace(120, 100, 20), np.linspace(100, 120, 20)] * 2 + [[118.0] * 10])
    h, lo, v = c * 1.01, c * 0.99, np.ones_like(c)

    found = levels.levels_at(h, lo, c, v, len(c) - 1)

    support = [lv for lv in found if lv.kind == "support"]
    assert any(np.isclose(lv.price, 99.0, rtol=0.01) and lv.touches == 2 for lv in support)


def test_respect_rate_counts(real: Ohlcv) -> None:
    near = levels.nearest_levels(real.high, real.low, real.close, real.volume)

    stats = levels.respect_rate(real.low, real.high, real.close, near, tolerance=0.01, horizon=5)

    assert (stats.respected <= stats.touches).all()
    assert ((stats.rate >= 0) & (stats.rate <= 1)).all()
