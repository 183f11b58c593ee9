"""Panel kernels: run each one-bar step over time, one token per parallel iteration.

A bar is valid for an indicator when all its inputs are finite; invalid bars output NaN
and leave the token's state untouched (see `_steps`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from coinlens.analytics._jit import njit_parallel, prange
from coinlens.analytics._steps import (
    mfi_step,
    sma_step,
    stoch_step,
    volatility_step,
    vwap_step,
)

F64 = NDArray[np.float64]
NAN = math.nan


@njit_parallel
def sma_panel(x: F64, n: int) -> F64:
    """SMA over each row."""
    m, t = x.shape
    out = np.empty((m, t))
    for i in prange(m):
        st = np.zeros(n + 2)
        for j in range(t):
            v = x[i, j]
            out[i, j] = sma_step(st, v, n) if math.isfinite(v) else NAN
    return out


@njit_parallel
def stoch_panel(h: F64, lo: F64, c: F64, n: int, nk: int, nd: int) -> tuple[F64, F64]:
    """Slow %K and %D over each row."""
    m, t = c.shape
    k_out = np.empty((m, t))
    d_out = np.empty((m, t))
    for i in prange(m):
        st = np.zeros(1 + 2 * n + nk + 2 + nd + 2)
        for j in range(t):
            a, b, d = h[i, j], lo[i, j], c[i, j]
            if math.isfinite(a) and math.isfinite(b) and math.isfinite(d):
                k_out[i, j], d_out[i, j] = stoch_step(st, a, b, d, n, nk, nd)
            else:
                k_out[i, j] = d_out[i, j] = NAN
    return k_out, d_out


@njit_parallel
def mfi_panel(h: F64, lo: F64, c: F64, v: F64, n: int) -> F64:
    """MFI over each row."""
    m, t = c.shape
    out = np.empty((m, t))
    for i in prange(m):
        st = np.zeros(4 + 2 * n)
        for j in range(t):
            a, b, d, e = h[i, j], lo[i, j], c[i, j], v[i, j]
            ok = math.isfinite(a) and math.isfinite(b) and math.isfinite(d) and math.isfinite(e)
            out[i, j] = mfi_step(st, a, b, d, e, n) if ok else NAN
    return out


@njit_parallel
def volatility_panel(c: F64, n: int, scale: float) -> F64:
    """Sample std (ddof=1) of the last n log returns between valid closes, times `scale`."""
    m, t = c.shape
    out = np.full((m, t), NAN)
    for i in prange(m):
        st = np.zeros(3 + n)
        for j in range(t):
            v = c[i, j]
            if math.isfinite(v):
                out[i, j] = volatility_step(st, v, n, scale)
    return out


@njit_parallel
def vwap_panel(h: F64, lo: F64, c: F64, v: F64, n: int) -> F64:
    """Sum(typical price * volume) / sum(volume) over the last n valid bars."""
    m, t = c.shape
    out = np.full((m, t), NAN)
    for i in prange(m):
        st = np.zeros(1 + 2 * n)
        for j in range(t):
            a, b, d, e = h[i, j], lo[i, j], c[i, j], v[i, j]
            if math.isfinite(a) and math.isfinite(b) and math.isfinite(d) and math.isfinite(e):
                out[i, j] = vwap_step(st, a, b, d, e, n)
    return out
