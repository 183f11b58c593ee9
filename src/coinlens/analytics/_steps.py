"""One-bar state machines for every indicator, replaying TA-Lib's arithmetic exactly.

Each `*_step` consumes one *valid* bar for one token and mutates that token's state vector
(a float64 row, zero-initialised; width given by the matching `*_width`). Panel kernels
loop the step over time and skip invalid bars, which is how gaps are handled: an indicator
equals TA-Lib applied to the token's valid bars only. The daily incremental update calls
the very same step once, so it equals the full recomputation bit for bit.

The order of floating-point operations follows the TA-Lib C sources (running sums for
SMA/BBANDS, SMA seeds for EMA and Wilder averages, MACD's fast EMA seeded on the slow
EMA's start bar). Zero tests are exact (`x == 0`), so outputs scale exactly with the price
unit (tested down to prices near 1e-14). MFI keeps TA-Lib's rules that typical prices
within 1e-14·(|a|+|b|) are equal and that a window with under 1.0
quote units of money flow reads 0.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from coinlens.analytics._jit import njit

NAN = math.nan
F64 = NDArray[np.float64]


def sma_width(n: int) -> int:
    """State width of `sma_step`: running total, count, ring of n values."""
    return n + 2


@njit
def sma_step(st: F64, x: float, n: int) -> float:
    """Simple moving average (TA-Lib SMA running total)."""
    c = int(st[1])
    st[0] += x
    st[2 + c % n] = x
    st[1] = c + 1
    if c + 1 < n:
        return NAN
    out: float = st[0] / n
    st[0] -= st[2 + (c + 1) % n]
    return out


EMA_WIDTH = 3  # seed sum, count, previous EMA


@njit
def ema_step(st: F64, x: float, n: int) -> float:
    """Exponential moving average seeded with the SMA of the first n values (TA-Lib EMA)."""
    c = st[1] + 1.0
    st[1] = c
    if c < n:
        st[0] += x
        return NAN
    if c == n:
        st[0] += x
        st[2] = st[0] / n
    else:
        st[2] = (x - st[2]) * (2.0 / (n + 1)) + st[2]
    out: float = st[2]
    return out


RSI_WIDTH = 4  # previous close, avg gain, avg loss, count


@njit
def rsi_step(st: F64, x: float, n: int) -> float:
    """Wilder RSI (TA-Lib RSI, default compatibility)."""
    idx = int(st[3])
    st[3] = idx + 1
    if idx == 0:
        st[0] = x
        return NAN
    d = x - st[0]
    st[0] = x
    if idx > n:
        st[1] *= n - 1
        st[2] *= n - 1
    if d < 0:
        st[2] -= d
    else:
        st[1] += d
    if idx < n:
        return NAN
    st[1] /= n
    st[2] /= n
    s = st[1] + st[2]
    return 100.0 * (st[1] / s) if s != 0.0 else 0.0


MACD_WIDTH = 7  # fast seed sum, slow seed sum, count, fast EMA, slow EMA, signal seed sum, signal


@njit
def macd_step(st: F64, x: float, fast: int, slow: int, sig: int) -> tuple[float, float, float]:
    """MACD line, signal and histogram (TA-Lib MACD: fast EMA starts on the slow EMA's bar)."""
    idx = int(st[2])
    st[2] = idx + 1
    if idx <= slow - 1:
        st[1] += x
        if idx >= slow - fast:
            st[0] += x
        if idx < slow - 1:
            return NAN, NAN, NAN
        st[3] = st[0] / fast
        st[4] = st[1] / slow
    else:
        st[3] = (x - st[3]) * (2.0 / (fast + 1)) + st[3]
        st[4] = (x - st[4]) * (2.0 / (slow + 1)) + st[4]
    m = st[3] - st[4]
    j = idx - (slow - 1)
    if j < sig - 1:
        st[5] += m
        return NAN, NAN, NAN
    if j == sig - 1:
        st[5] += m
        st[6] = st[5] / sig
    else:
        st[6] = (m - st[6]) * (2.0 / (sig + 1)) + st[6]
    return m, st[6], m - st[6]


@njit
def true_range(h: float, lo: float, prev_close: float) -> float:
    """TA-Lib TRANGE for one bar."""
    greatest = h - lo
    v2 = abs(prev_close - h)
    if v2 > greatest:
        greatest = v2
    v3 = abs(lo - prev_close)
    if v3 > greatest:
        greatest = v3
    return greatest


ATR_WIDTH = 4  # previous close, ATR, count, seed sum of true ranges


@njit
def atr_step(st: F64, h: float, lo: float, c: float, n: int) -> float:
    """Average true range with Wilder smoothing (TA-Lib ATR)."""
    idx = int(st[2])
    st[2] = idx + 1
    if idx == 0:
        st[0] = c
        return NAN
    tr = true_range(h, lo, st[0])
    st[0] = c
    if idx < n:
        st[3] += tr
        return NAN
    if idx == n:
        st[3] += tr
        st[1] = st[3] / n
    else:
        st[1] *= n - 1
        st[1] += tr
        st[1] /= n
    out: float = st[1]
    return out


ADX_WIDTH = 9  # prev high, prev low, prev close, +DM, -DM, TR, sum DX, ADX, count


@njit
def adx_step(st: F64, h: float, lo: float, c: float, n: int) -> tuple[float, float, float]:
    """ADX, +DI and -DI (TA-Lib ADX, PLUS_DI, MINUS_DI)."""
    idx = int(st[8])
    st[8] = idx + 1
    if idx == 0:
        st[0], st[1], st[2] = h, lo, c
        return NAN, NAN, NAN
    diff_p = h - st[0]
    diff_m = st[1] - lo
    tr = true_range(h, lo, st[2])
    st[0], st[1], st[2] = h, lo, c
    if idx >= n:
        st[3] -= st[3] / n
        st[4] -= st[4] / n
    if diff_m > 0 and diff_p < diff_m:
        st[4] += diff_m
    elif diff_p > 0 and diff_p > diff_m:
        st[3] += diff_p
    if idx < n:
        st[5] += tr
        return NAN, NAN, NAN
    st[5] = st[5] - (st[5] / n) + tr
    pdi = mdi = dx = 0.0
    dx_ok = False
    if st[5] != 0.0:
        mdi = 100.0 * (st[4] / st[5])
        pdi = 100.0 * (st[3] / st[5])
        s = mdi + pdi
        if s != 0.0:
            dx = 100.0 * (abs(mdi - pdi) / s)
            dx_ok = True
    if idx < 2 * n - 1:
        if dx_ok:
            st[6] += dx
        return NAN, pdi, mdi
    if idx == 2 * n - 1:
        if dx_ok:
            st[6] += dx
        st[7] = st[6] / n
    elif dx_ok:
        st[7] = ((st[7] * (n - 1)) + dx) / n
    return st[7], pdi, mdi


OBV_WIDTH = 3  # previous close, OBV, count


@njit
def obv_step(st: F64, c: float, v: float) -> float:
    """On-balance volume starting at the first bar's volume (TA-Lib OBV)."""
    if st[2] == 0.0:
        st[1] = v
    elif c > st[0]:
        st[1] += v
    elif c < st[0]:
        st[1] -= v
    st[0] = c
    st[2] += 1.0
    out: float = st[1]
    return out


def bbands_width(n: int) -> int:
    """State width of `bbands_step`: total, total of squares, count, ring of n values."""
    return n + 3


@njit
def bbands_step(st: F64, x: float, n: int, k: float) -> tuple[float, float, float]:
    """Bollinger Bands upper, middle, lower with population std (TA-Lib BBANDS, SMA)."""
    c = int(st[2])
    st[0] += x
    st[1] += x * x
    st[3 + c % n] = x
    st[2] = c + 1
    if c + 1 < n:
        return NAN, NAN, NAN
    mid = st[0] / n
    mean2 = st[1] / n
    old = st[3 + (c + 1) % n]
    st[0] -= old
    st[1] -= old * old
    mean2 -= mid * mid
    std = math.sqrt(mean2) if mean2 > 0.0 else 0.0
    if k == 1.0:
        return mid + std, mid, mid - std
    dev = std * k
    return mid + dev, mid, mid - dev


def stoch_width(n: int, nk: int, nd: int) -> int:
    """State width of `stoch_step`."""
    return 1 + 2 * n + sma_width(nk) + sma_width(nd)


@njit
def stoch_step(
    st: F64, h: float, lo: float, c: float, n: int, nk: int, nd: int
) -> tuple[float, float]:
    """Slow stochastic %K and %D with SMA smoothing (TA-Lib STOCH, matype 0)."""
    idx = int(st[0])
    st[0] = idx + 1
    st[1 + idx % n] = h
    st[1 + n + idx % n] = lo
    if idx < n - 1:
        return NAN, NAN
    hi = st[1]
    low = st[1 + n]
    for j in range(1, n):
        hi = max(hi, st[1 + j])
        low = min(low, st[1 + n + j])
    diff = (hi - low) / 100.0
    fast_k = (c - low) / diff if diff != 0.0 else 0.0
    k_state = st[1 + 2 * n : 1 + 2 * n + nk + 2]
    slow_k = sma_step(k_state, fast_k, nk)
    if idx < n - 1 + nk - 1:
        return NAN, NAN
    d_state = st[1 + 2 * n + nk + 2 :]
    slow_d = sma_step(d_state, slow_k, nd)
    if idx < n - 1 + nk - 1 + nd - 1:
        return NAN, NAN
    return slow_k, slow_d


def mfi_width(n: int) -> int:
    """State width of `mfi_step`: prev typical price, +flow, -flow, count, 2 rings of n."""
    return 4 + 2 * n


@njit
def mfi_step(st: F64, h: float, lo: float, c: float, v: float, n: int) -> float:
    """Money flow index (TA-Lib MFI, including its < 1.0 money-flow cutoff)."""
    idx = int(st[3])
    st[3] = idx + 1
    tp = (h + lo + c) / 3.0
    if idx == 0:
        st[0] = tp
        return NAN
    prev = st[0]
    d = tp - prev
    st[0] = tp
    flow = tp * v
    if abs(d) <= 1e-14 * (abs(tp) + abs(prev)):
        d = 0.0  # TA-Lib treats typical prices this close as equal (measured on 0.6)
    slot = (idx - 1) % n
    if idx > n:
        st[1] -= st[4 + slot]
        st[2] -= st[4 + n + slot]
    if d < 0:
        st[4 + n + slot] = flow
        st[2] += flow
        st[4 + slot] = 0.0
    elif d > 0:
        st[4 + slot] = flow
        st[1] += flow
        st[4 + n + slot] = 0.0
    else:
        st[4 + slot] = 0.0
        st[4 + n + slot] = 0.0
    if idx < n:
        return NAN
    s = st[1] + st[2]
    if s < 1.0:
        return 0.0
    # Running sums can leave a -1e-17 residue once all inflows leave the window.
    out: float = min(100.0, max(0.0, 100.0 * (st[1] / s)))
    return out


def volatility_width(n: int) -> int:
    """State width of `volatility_step`: closes seen, returns seen, previous close, ring."""
    return 3 + n


@njit
def volatility_step(st: F64, x: float, n: int, scale: float) -> float:
    """Sample std (ddof=1) of the last n log returns between valid closes, times `scale`."""
    seen = st[0]
    st[0] = seen + 1.0
    prev = st[2]
    st[2] = x
    if seen == 0.0:
        return NAN
    count = int(st[1])
    st[3 + count % n] = math.log(x / prev)
    st[1] = count + 1
    if count + 1 < n:
        return NAN
    ring = st[3 : 3 + n]
    mean = ring.sum() / n
    ss = 0.0
    for r in ring:
        ss += (r - mean) * (r - mean)
    return math.sqrt(ss / (n - 1)) * scale


def vwap_width(n: int) -> int:
    """State width of `vwap_step`: count, ring of price x volume, ring of volume."""
    return 1 + 2 * n


@njit
def vwap_step(st: F64, h: float, lo: float, c: float, v: float, n: int) -> float:
    """Sum(typical price * volume) / sum(volume) over the last n valid bars."""
    count = int(st[0])
    st[1 + count % n] = (h + lo + c) / 3.0 * v
    st[1 + n + count % n] = v
    st[0] = count + 1
    if count + 1 < n:
        return NAN
    den = st[1 + n : 1 + 2 * n].sum()
    if den > 0.0:
        out: float = st[1 : 1 + n].sum() / den
        return out
    return NAN
