"""Every published indicator's latest value, carried as a per-token state for daily updates.

`latest_indicators` runs the one-bar steps of `_steps` over each token's whole history
and returns the values at the last bar plus the state (tokens × `WIDTH` floats);
`update_indicators` advances that state by one bar for all tokens in O(tokens). Both run
the very same step functions, so a day added incrementally equals the full recomputation
bit for bit. The values equal the panel functions of `indicators` (TA-Lib parity) to
floating-point rounding: same definitions, same warm-up, same validity per indicator.

Validity follows the panel functions: close-only indicators (RSI, MACD, EMAs, Bollinger
Bands, volatility) step on bars with a finite close; ATR, ADX and the stochastic need
high, low and close; OBV close and volume; MFI and VWAP all four. A bar where an
indicator's inputs are missing reads NaN for it and leaves its state untouched.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from coinlens.analytics._jit import njit, run_rows
from coinlens.analytics._steps import (
    ADX_WIDTH,
    ATR_WIDTH,
    EMA_WIDTH,
    MACD_WIDTH,
    OBV_WIDTH,
    RSI_WIDTH,
    adx_step,
    atr_step,
    bbands_step,
    bbands_width,
    ema_step,
    macd_step,
    mfi_step,
    mfi_width,
    obv_step,
    rsi_step,
    stoch_step,
    stoch_width,
    volatility_step,
    volatility_width,
    vwap_step,
    vwap_width,
)
from coinlens.analytics.indicators import as_panel
from coinlens.domain.errors import UserInputError

F64 = NDArray[np.float64]

NAMES = (
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "ema_20",
    "ema_50",
    "ema_200",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "atr_14",
    "adx_14",
    "plus_di_14",
    "minus_di_14",
    "obv",
    "stoch_k",
    "stoch_d",
    "mfi_14",
    "volatility_30d",
    "vwap_20",
)
N_NAMES = len(NAMES)
VOL_SCALE = math.sqrt(365.0)

# State layout: consecutive blocks, one per stateful indicator.
_WIDTHS = (
    ("rsi", RSI_WIDTH),
    ("macd", MACD_WIDTH),
    ("ema20", EMA_WIDTH),
    ("ema50", EMA_WIDTH),
    ("ema200", EMA_WIDTH),
    ("bb", bbands_width(20)),
    ("atr", ATR_WIDTH),
    ("adx", ADX_WIDTH),
    ("obv", OBV_WIDTH),
    ("stoch", stoch_width(14, 3, 3)),
    ("mfi", mfi_width(14)),
    ("vol", volatility_width(30)),
    ("vwap", vwap_width(20)),
)
_OFF = dict(zip((n for n, _ in _WIDTHS), np.cumsum([0] + [w for _, w in _WIDTHS]), strict=False))
WIDTH = int(sum(w for _, w in _WIDTHS))
RSI, MACD, E20, E50, E200 = (int(_OFF[k]) for k in ("rsi", "macd", "ema20", "ema50", "ema200"))
BB, ATR, ADX, OBV = (int(_OFF[k]) for k in ("bb", "atr", "adx", "obv"))
STOCH, MFI, VOL, VWAP = (int(_OFF[k]) for k in ("stoch", "mfi", "vol", "vwap"))
END = WIDTH


@njit
def _bar(st: F64, hlcv: tuple[float, float, float, float], out: F64) -> None:
    """Advance one token's state by one bar and write every indicator's value into `out`."""
    h, lo, c, v = hlcv
    out[:] = np.nan
    fc = math.isfinite(c)
    fhlc = fc and math.isfinite(h) and math.isfinite(lo)
    fv = math.isfinite(v)
    if fc:
        out[0] = rsi_step(st[RSI:MACD], c, 14)
        out[1], out[2], out[3] = macd_step(st[MACD:E20], c, 12, 26, 9)
        out[4] = ema_step(st[E20:E50], c, 20)
        out[5] = ema_step(st[E50:E200], c, 50)
        out[6] = ema_step(st[E200:BB], c, 200)
        out[7], out[8], out[9] = bbands_step(st[BB:ATR], c, 20, 2.0)
        out[18] = volatility_step(st[VOL:VWAP], c, 30, VOL_SCALE)
    if fhlc:
        out[10] = atr_step(st[ATR:ADX], h, lo, c, 14)
        out[11], out[12], out[13] = adx_step(st[ADX:OBV], h, lo, c, 14)
        out[15], out[16] = stoch_step(st[STOCH:MFI], h, lo, c, 14, 3, 3)
    if fc and fv:
        out[14] = obv_step(st[OBV:STOCH], c, v)
    if fhlc and fv:
        out[17] = mfi_step(st[MFI:VOL], h, lo, c, v, 14)
        out[19] = vwap_step(st[VWAP:END], h, lo, c, v, 20)


@njit
def _history_rows(hlcv: tuple[F64, F64, F64, F64], st: F64, latest: F64, r0: int, r1: int) -> None:
    """Tokens r0..r1 from an empty state over all bars; `latest` = values at the last close."""
    h, lo, c, v = hlcv
    row = np.empty(N_NAMES)
    for i in range(r0, r1):
        latest[:, i] = np.nan
        for j in range(c.shape[1]):
            _bar(st[i], (h[i, j], lo[i, j], c[i, j], v[i, j]), row)
            if math.isfinite(c[i, j]):
                latest[:, i] = row


@njit
def _update(hlcv: tuple[F64, F64, F64, F64], st: F64, out: F64) -> None:
    h, lo, c, v = hlcv
    row = np.empty(N_NAMES)
    for i in range(c.shape[0]):
        _bar(st[i], (h[i], lo[i], c[i], v[i]), row)
        out[:, i] = row


def _panels(*xs: ArrayLike) -> tuple[F64, ...]:
    panels = tuple(as_panel(x) for x in xs)
    if any(p.shape != panels[0].shape for p in panels):
        raise UserInputError("high, low, close and volume must have the same shape")
    return panels


def latest_indicators(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike
) -> tuple[F64, F64]:
    """Per token, every indicator (rows in `NAMES` order) at its last bar with a close.

    Returns (values of shape (N_NAMES, tokens), state of shape (tokens, WIDTH)).
    """
    h, lo, c, v = _panels(high, low, close, volume)
    m = c.shape[0]
    state = np.zeros((m, WIDTH))
    latest = np.empty((N_NAMES, m))
    run_rows(_history_rows, m, (h, lo, c, v), state, latest)
    return latest, state


def update_indicators(
    state: F64, high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike
) -> tuple[F64, F64]:
    """Advance every token by one bar (1-D columns): (bar values (N_NAMES, tokens), state).

    Values are NaN for a token whose close is missing on that bar; the input state is not
    modified.
    """
    h, lo, c, v = (np.ascontiguousarray(x, dtype=np.float64) for x in (high, low, close, volume))
    cols = (h, lo, c, v)
    m = state.shape[0]
    if state.shape != (m, WIDTH) or any(col.shape != (m,) for col in cols):
        raise UserInputError(f"need a ({m}, {WIDTH}) state and columns of shape ({m},)")
    new = state.copy()
    out = np.empty((N_NAMES, m))
    _update(cols, new, out)
    return out, new
