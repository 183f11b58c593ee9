"""Indicators equal TA-Lib on real and synthetic panels, per token on its valid bars."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from coinlens.analytics import _kernels, indicators
from coinlens.domain.errors import UserInputError

from ._data import Ohlcv, random_walk

talib = pytest.importorskip("talib")

F64 = NDArray[np.float64]
RTOL = 1e-9


def _assert_close(ours: F64, ref: F64) -> None:
    """Equal NaN pattern; values within 1e-9 relative (1e-12 of the series' scale near 0)."""
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    if np.isnan(ref).all():
        return
    scale = float(np.nanmax(np.abs(ref)))
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=1e-12 * scale, equal_nan=True)


# name -> (ours on the panel, TA-Lib on one token's valid bars); each returns a list of outputs
CASES: dict[str, tuple[Callable[[Ohlcv], list[F64]], Callable[..., list[F64]]]] = {
    "SMA": (lambda p: [indicators.sma(p.close, 20)], lambda o, h, lo, c, v: [talib.SMA(c, 20)]),
    "EMA": (lambda p: [indicators.ema(p.close, 20)], lambda o, h, lo, c, v: [talib.EMA(c, 20)]),
    "RSI": (lambda p: [indicators.rsi(p.close)], lambda o, h, lo, c, v: [talib.RSI(c, 14)]),
    "MACD": (
        lambda p: list(indicators.macd(p.close)),
        lambda o, h, lo, c, v: list(talib.MACD(c, 12, 26, 9)),
    ),
    "BBANDS": (
        lambda p: list(indicators.bbands(p.close)),
        lambda o, h, lo, c, v: list(talib.BBANDS(c, 20, 2.0, 2.0, 0)),
    ),
    "ATR": (
        lambda p: [indicators.atr(p.high, p.low, p.close)],
        lambda o, h, lo, c, v: [talib.ATR(h, lo, c, 14)],
    ),
    "ADX": (
        lambda p: list(indicators.adx(p.high, p.low, p.close)),
        lambda o, h, lo, c, v: [
            talib.ADX(h, lo, c, 14),
            talib.PLUS_DI(h, lo, c, 14),
            talib.MINUS_DI(h, lo, c, 14),
        ],
    ),
    "OBV": (
        lambda p: [indicators.obv(p.close, p.volume)],
        lambda o, h, lo, c, v: [talib.OBV(c, v)],
    ),
    "STOCH": (
        lambda p: list(indicators.stoch(p.high, p.low, p.close)),
        lambda o, h, lo, c, v: list(talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)),
    ),
    "MFI": (
        lambda p: [indicators.mfi(p.high, p.low, p.close, p.volume)],
        lambda o, h, lo, c, v: [talib.MFI(h, lo, c, v, 14)],
    ),
    "VWAP": (
        lambda p: [indicators.vwap(p.high, p.low, p.close, p.volume, 20)],
        lambda o, h, lo, c, v: [talib.SUM((h + lo + c) / 3.0 * v, 20) / talib.SUM(v, 20)],
    ),
}


def _check_against_talib(panel: Ohlcv, name: str) -> None:
    ours_fn, ref_fn = CASES[name]
    ours = ours_fn(panel)
    cols = (panel.open, panel.high, panel.low, panel.close, panel.volume)
    for i in range(panel.close.shape[0]):
        valid = np.all([np.isfinite(x[i]) for x in cols], axis=0)
        refs = ref_fn(*(np.ascontiguousarray(x[i][valid]) for x in cols))
        for out, ref in zip(ours, refs, strict=True):
            _assert_close(out[i][valid], ref)
            assert np.isnan(out[i][~valid]).all()


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_talib_on_real_candles(real: Ohlcv, name: str) -> None:
    _check_against_talib(real, name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_talib_on_random_walk_with_gaps(synth: Ohlcv, name: str) -> None:
    _check_against_talib(synth, name)


def test_real_fixture_has_a_late_listing(real: Ohlcv) -> None:
    pepe = real.symbols.index("PEPE")

    assert np.isnan(real.close[pepe, 0])
    assert np.isfinite(real.close[pepe, -1])
    assert np.nanmax(real.close[pepe]) < 1e-4


def test_gap_is_skipped_not_poisoning() -> None:
    walk = random_walk(1, 120, seed=3, gaps=False)
    close = walk.close[0].copy()
    close[60:63] = np.nan

    out = indicators.ema(close, 10)

    assert np.isnan(out[60:63]).all()
    assert np.isfinite(out[63:]).all()
    np.testing.assert_allclose(out[np.isfinite(close)], talib.EMA(close[np.isfinite(close)], 10))


@pytest.mark.parametrize("scale", [2.0**-14, 2.0**-30])
def test_tiny_prices_scale_exactly(real: Ohlcv, scale: float) -> None:
    """Scaling prices by a power of two (volume inversely) scales or keeps every output."""
    i = real.symbols.index("PEPE")
    h, lo, c, v = real.high[i], real.low[i], real.close[i], real.volume[i]
    hs, ls, cs, vs = h * scale, lo * scale, c * scale, v / scale

    assert np.nanmax(cs) < 1e-8
    for a, b in zip(indicators.bbands(cs), indicators.bbands(c), strict=True):
        np.testing.assert_allclose(a, b * scale, rtol=1e-7)
    np.testing.assert_allclose(indicators.rsi(cs), indicators.rsi(c), rtol=1e-7)
    np.testing.assert_allclose(
        indicators.atr(hs, ls, cs), indicators.atr(h, lo, c) * scale, rtol=1e-7
    )
    for a, b in zip(indicators.adx(hs, ls, cs), indicators.adx(h, lo, c), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7)
    for a, b in zip(indicators.stoch(hs, ls, cs), indicators.stoch(h, lo, c), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(
        indicators.mfi(hs, ls, cs, vs), indicators.mfi(h, lo, c, v), rtol=1e-7
    )
    for a, b in zip(indicators.macd(cs), indicators.macd(c), strict=True):
        np.testing.assert_allclose(a, b * scale, rtol=1e-6, atol=1e-12 * scale)


def test_rolling_volatility_equals_numpy_sample_std(synth: Ohlcv) -> None:
    out = indicators.rolling_volatility(synth.close, 30, periods_per_year=365)
    for i in range(synth.close.shape[0]):
        c = synth.close[i][np.isfinite(synth.close[i])]
        r = np.diff(np.log(c))
        ref = np.full(c.shape, np.nan)
        windows = np.lib.stride_tricks.sliding_window_view(r, 30)
        ref[30:] = windows.std(axis=1, ddof=1) * np.sqrt(365)
        _assert_close(out[i][np.isfinite(synth.close[i])], ref)


def test_fast_kernels_equal_the_one_bar_steps(synth: Ohlcv) -> None:
    """The tight kernels and the incremental steps replay the same arithmetic."""
    c, h, lo, v = synth.close, synth.high, synth.low, synth.volume
    np.testing.assert_array_equal(indicators.ema(c, 20), _step_ema(c, 20))
    assert _kernels.sma_panel is not None
    from coinlens.analytics.signals import compute_signals

    panel, _ = compute_signals(h, lo, c, v)
    valid = np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & np.isfinite(v)
    mask = np.where(valid, 1.0, np.nan)
    np.testing.assert_array_equal(panel.values[1], indicators.ema(c * mask, 50))
    np.testing.assert_array_equal(panel.values[2], indicators.rsi(c * mask, 14))
    np.testing.assert_array_equal(panel.values[3], indicators.macd(c * mask).hist)
    np.testing.assert_array_equal(panel.values[4], indicators.adx(h * mask, lo, c).adx)
    np.testing.assert_array_equal(panel.values[5], indicators.obv(c * mask, v))


def _step_ema(c: F64, n: int) -> F64:
    from coinlens.analytics._steps import EMA_WIDTH, ema_step

    out = np.full(c.shape, np.nan)
    for i in range(c.shape[0]):
        st = np.zeros(EMA_WIDTH)
        for j in range(c.shape[1]):
            if np.isfinite(c[i, j]):
                out[i, j] = ema_step(st, c[i, j], n)
    return out


@pytest.mark.parametrize("window", [1, 0, 2.5])
def test_rejects_bad_windows(window: float) -> None:
    with pytest.raises(UserInputError):
        indicators.rsi(np.ones(50), window)  # type: ignore[arg-type]


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(UserInputError):
        indicators.atr(np.ones((2, 30)), np.ones((2, 30)), np.ones((3, 30)))


def test_one_dimensional_input_gives_one_dimensional_output() -> None:
    assert indicators.sma(np.arange(30.0), 5).shape == (30,)
    assert indicators.macd(np.arange(60.0)).hist.shape == (60,)
