"""Technical indicators on tokens × time panels, each equal to its TA-Lib counterpart.

Conventions shared by every function here:

* Inputs are 2-D float64 panels shaped (tokens, time); a 1-D series is accepted and
  gives a 1-D result. Outputs have the input's shape.
* A bar is valid when all the indicator's inputs are finite. Each token is computed from
  its first valid bar with TA-Lib's warm-up (the same number of leading NaNs), and a gap
  (invalid bars) outputs NaN and is skipped: the result equals TA-Lib applied to the
  token's valid bars and scattered back. TA-Lib itself would poison every later value.
* Results match TA-Lib 0.6 (python `TA-Lib` 0.8) within 1e-9 relative, because the same
  arithmetic is replayed (see `_steps`), including on tokens priced near 1e-5 (PEPE).
  Zero tests are exact, so outputs scale exactly with the price unit (tested to ~1e-14).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from coinlens.analytics import _fast as f
from coinlens.analytics import _kernels as k
from coinlens.domain.errors import UserInputError

F64 = NDArray[np.float64]


class Macd(NamedTuple):
    """MACD line, its signal line and the histogram (line - signal)."""

    macd: F64
    signal: F64
    hist: F64


class Bands(NamedTuple):
    """Bollinger upper, middle and lower bands."""

    upper: F64
    middle: F64
    lower: F64


class Adx(NamedTuple):
    """Average directional index with its directional indicators."""

    adx: F64
    plus_di: F64
    minus_di: F64


class Stoch(NamedTuple):
    """Slow stochastic %K and %D."""

    slowk: F64
    slowd: F64


def as_panel(x: ArrayLike) -> F64:
    """Return `x` as a C-contiguous 2-D float64 panel (a 1-D series becomes one row)."""
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim == 1:
        return arr.reshape(1, -1)
    if arr.ndim != 2:
        raise UserInputError(f"expected a 1-D series or 2-D panel, got {arr.ndim}-D")
    return arr


def _panels(*xs: ArrayLike) -> tuple[list[F64], tuple[int, ...]]:
    shape = np.shape(xs[0])
    panels = [as_panel(x) for x in xs]
    if any(p.shape != panels[0].shape for p in panels):
        raise UserInputError("all input panels must have the same shape")
    return panels, shape


def _check_window(**windows: int) -> None:
    for name, n in windows.items():
        if int(n) != n or n < 2:
            raise UserInputError(f"{name} must be an integer >= 2, got {n}")


def sma(close: ArrayLike, window: int = 20) -> F64:
    """Simple moving average; equals TA-Lib `SMA(close, window)`."""
    _check_window(window=window)
    (x,), shape = _panels(close)
    return k.sma_panel(x, window).reshape(shape)


def ema(close: ArrayLike, window: int = 20) -> F64:
    """EMA seeded with the first window's SMA, k = 2/(n+1); equals TA-Lib `EMA`."""
    _check_window(window=window)
    (x,), shape = _panels(close)
    return f.ema_panel(x, window).reshape(shape)


def rsi(close: ArrayLike, window: int = 14) -> F64:
    """Wilder's relative strength index; equals TA-Lib `RSI(close, window)`."""
    _check_window(window=window)
    (x,), shape = _panels(close)
    return f.rsi_panel(x, window).reshape(shape)


def macd(close: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> Macd:
    """MACD(fast, slow, signal); equals TA-Lib `MACD` (first value at bar slow+signal-2)."""
    _check_window(fast=fast, slow=slow, signal=signal)
    if fast >= slow:
        raise UserInputError("MACD needs fast < slow")
    (x,), shape = _panels(close)
    line, sig, hist = f.macd_panel(x, fast, slow, signal)
    return Macd(line.reshape(shape), sig.reshape(shape), hist.reshape(shape))


def bbands(close: ArrayLike, window: int = 20, n_std: float = 2.0) -> Bands:
    """SMA ± n_std population std; equals TA-Lib `BBANDS(close, window, n_std, n_std, 0)`."""
    _check_window(window=window)
    (x,), shape = _panels(close)
    up, mid, low = f.bbands_panel(x, window, float(n_std))
    return Bands(up.reshape(shape), mid.reshape(shape), low.reshape(shape))


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, window: int = 14) -> F64:
    """Wilder's average true range; equals TA-Lib `ATR(high, low, close, window)`."""
    _check_window(window=window)
    (h, lo, c), shape = _panels(high, low, close)
    return f.atr_panel(h, lo, c, window).reshape(shape)


def adx(high: ArrayLike, low: ArrayLike, close: ArrayLike, window: int = 14) -> Adx:
    """ADX, +DI, -DI; equal TA-Lib `ADX`, `PLUS_DI`, `MINUS_DI` (window)."""
    _check_window(window=window)
    (h, lo, c), shape = _panels(high, low, close)
    a, p, m = f.adx_panel(h, lo, c, window)
    return Adx(a.reshape(shape), p.reshape(shape), m.reshape(shape))


def obv(close: ArrayLike, volume: ArrayLike) -> F64:
    """On-balance volume, starting at the first bar's volume; equals TA-Lib `OBV`."""
    (c, v), shape = _panels(close, volume)
    return f.obv_panel(c, v).reshape(shape)


def stoch(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    fastk: int = 14,
    slowk: int = 3,
    slowd: int = 3,
) -> Stoch:
    """Slow stochastic; equals TA-Lib `STOCH(h, l, c, fastk, slowk, 0, slowd, 0)`."""
    _check_window(fastk=fastk)
    if slowk < 1 or slowd < 1:
        raise UserInputError("slowk and slowd must be >= 1")
    (h, lo, c), shape = _panels(high, low, close)
    sk, sd = k.stoch_panel(h, lo, c, fastk, slowk, slowd)
    return Stoch(sk.reshape(shape), sd.reshape(shape))


def mfi(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike, window: int = 14
) -> F64:
    """Money flow index; equals TA-Lib `MFI(high, low, close, volume, window)`."""
    _check_window(window=window)
    (h, lo, c, v), shape = _panels(high, low, close, volume)
    return k.mfi_panel(h, lo, c, v, window).reshape(shape)


def rolling_volatility(
    close: ArrayLike, window: int = 30, periods_per_year: float | None = 365.0
) -> F64:
    """Sample std (ddof=1) of the last `window` log returns, × sqrt(periods_per_year).

    Returns are taken between consecutive valid closes. Pass `periods_per_year=None` for
    the per-bar figure. Equals `np.std(np.diff(np.log(c))[-window:], ddof=1)` (no TA-Lib
    counterpart uses the sample std).
    """
    _check_window(window=window)
    (c,), shape = _panels(close)
    scale = 1.0 if periods_per_year is None else math.sqrt(periods_per_year)
    return k.volatility_panel(c, window, scale).reshape(shape)


def vwap(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike, window: int = 20
) -> F64:
    """Volume-weighted typical price (h+l+c)/3 over the last `window` valid bars.

    Equals TA-Lib `SUM(tp * volume, window) / SUM(volume, window)`; NaN when the window
    traded no volume.
    """
    _check_window(window=window)
    (h, lo, c, v), shape = _panels(high, low, close, volume)
    return k.vwap_panel(h, lo, c, v, window).reshape(shape)
