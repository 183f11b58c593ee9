"""Trailing-window statistics over days for tokens × days panels, O(tokens × days).

Windows are in days (columns), not valid bars: day t's window is (t - window, t], and only
finite values in it count. Sums are differences of prefix sums taken left to right, so every
statistic here is the same float whichever function computes it. Each kernel writes only
its outputs: no intermediate panels (the grade features of 10,000 tokens stay in memory).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from coinlens.analytics._jit import njit, njit_ieee, run_rows

F64 = NDArray[np.float64]


@njit
def _prefix(x: F64, i: int, cs: F64, cn: F64) -> None:
    """cs[j + 1], cn[j + 1]: sum and count of the finite x[i, :j + 1]."""
    for j in range(x.shape[1]):
        v = x[i, j]
        ok = math.isfinite(v)
        cs[j + 1] = cs[j] + (v if ok else 0.0)
        cn[j + 1] = cn[j] + (1.0 if ok else 0.0)


@njit
def _rolling_sum_rows(x: F64, window: int, out: tuple[F64, F64], r0: int, r1: int) -> None:
    s_out, n_out = out
    t = x.shape[1]
    cs = np.zeros(t + 1)
    cn = np.zeros(t + 1)
    for i in range(r0, r1):
        _prefix(x, i, cs, cn)
        for j in range(t):
            lo = max(j + 1 - window, 0)
            s_out[i, j] = cs[j + 1] - cs[lo]
            n_out[i, j] = cn[j + 1] - cn[lo]


def rolling_sum(x: F64, window: int) -> tuple[F64, F64]:
    """Sum and count of the finite values in (t - window, t]."""
    a = np.ascontiguousarray(x, dtype=np.float64)
    out = (np.empty_like(a), np.empty_like(a))
    run_rows(_rolling_sum_rows, a.shape[0], a, window, out)
    return out


def rolling_mean(x: F64, window: int, min_obs: int) -> F64:
    """Mean of the finite values in the last `window` days (NaN below `min_obs`)."""
    s, n = rolling_sum(x, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(s, n, out=s)
    s[n < min_obs] = np.nan
    return s


@njit_ieee
def _moments_rows(
    r: F64, window: int, min_n: int, out: tuple[F64, F64, F64], r0: int, r1: int
) -> None:
    mean_o, sd_o, down_o = out
    t = r.shape[1]
    s1, n1 = np.zeros(t + 1), np.zeros(t + 1)
    s2, n2 = np.zeros(t + 1), np.zeros(t + 1)
    d2, nd = np.zeros(t + 1), np.zeros(t + 1)
    sq = np.empty((1, t))
    dn = np.empty((1, t))
    for i in range(r0, r1):
        for j in range(t):
            v = r[i, j]
            sq[0, j] = v * v
            m = v if v != v else min(v, 0.0)  # np.minimum: NaN propagates
            dn[0, j] = m * m
        _prefix(r, i, s1, n1)
        _prefix(sq, 0, s2, n2)
        _prefix(dn, 0, d2, nd)
        for j in range(t):
            lo = max(j + 1 - window, 0)
            n = n1[j + 1] - n1[lo]
            if n < min_n:
                mean_o[i, j] = np.nan
                sd_o[i, j] = np.nan
                down_o[i, j] = np.nan
                continue
            a = s1[j + 1] - s1[lo]
            var = (s2[j + 1] - s2[lo]) - a * a / n
            if var < 0.0:
                var = 0.0
            mean_o[i, j] = a / n
            sd_o[i, j] = math.sqrt(var / (n - 1))
            down_o[i, j] = math.sqrt((d2[j + 1] - d2[lo]) / n)


def rolling_moments(r: F64, window: int, min_obs: int) -> tuple[F64, F64, F64]:
    """Mean, sample std (ddof=1) and downside deviation √mean(min(r,0)²) over a window.

    Same definitions as `returns.rolling_risk` (before annualising); NaN with fewer than
    `max(min_obs, 2)` finite returns in the window.
    """
    a = np.ascontiguousarray(r, dtype=np.float64)
    out = (np.empty_like(a), np.empty_like(a), np.empty_like(a))
    run_rows(_moments_rows, a.shape[0], a, window, max(min_obs, 2), out)
    return out


@njit_ieee
def _beta_rows(r: F64, b: F64, window: int, min_n: int, out: F64, r0: int, r1: int) -> None:
    t = r.shape[1]
    sums = np.zeros((4, t + 1))
    cnts = np.zeros((4, t + 1))
    terms = np.empty((4, t))
    for i in range(r0, r1):
        for j in range(t):
            x, y = r[i, j], b[j]
            if not (math.isfinite(x) and math.isfinite(y)):
                x = y = np.nan
            terms[0, j], terms[1, j], terms[2, j], terms[3, j] = x * y, x, y, y * y
        for k in range(4):
            _prefix(terms, k, sums[k], cnts[k])
        for j in range(t):
            lo = max(j + 1 - window, 0)
            n = cnts[0, j + 1] - cnts[0, lo]
            if n < min_n:
                out[i, j] = np.nan
                continue
            sxy, sx = sums[0, j + 1] - sums[0, lo], sums[1, j + 1] - sums[1, lo]
            sy, syy = sums[2, j + 1] - sums[2, lo], sums[3, j + 1] - sums[3, lo]
            var_b = syy - sy * sy / n
            out[i, j] = (sxy - sx * sy / n) / var_b if var_b > 0 else np.nan


def rolling_beta(r: F64, benchmark: F64, window: int, min_obs: int) -> F64:
    """OLS beta of each row's returns on `benchmark`'s over the days both are finite in a window.

    cov/var from running sums (Σxy − ΣxΣy/n) / (Σy² − (Σy)²/n); NaN with fewer than
    `min_obs` paired days or a flat benchmark.
    """
    a = np.ascontiguousarray(r, dtype=np.float64)
    b = np.ascontiguousarray(benchmark, dtype=np.float64)
    out = np.empty_like(a)
    run_rows(_beta_rows, a.shape[0], a, b, window, min_obs, out)
    return out


@njit_ieee
def _drawdown_rows(close: F64, window: int, out: F64, r0: int, r1: int) -> None:
    """van Herk/Gil-Werman: per block of `window` days, prefix and suffix summaries of
    (peak, trough, drawdown); a window is one block's suffix followed by the next's prefix.

    Joining A then B: drawdown = min(dd_A, dd_B, trough_B / peak_A - 1), which for positive
    prices is exactly the minimum of c_k / running peak - 1 over the window (division is
    monotone in each operand, so no rounding differs from the direct loop).
    """
    t = close.shape[1]
    pre = np.empty((3, t))
    suf = np.empty((3, t))
    for i in range(r0, r1):
        for s in range(0, t, window):
            e = min(s + window, t)
            peak, trough, dd = -math.inf, math.inf, 0.0
            for k in range(s, e):
                c = close[i, k]
                if math.isfinite(c):
                    if peak > -math.inf:
                        dd = min(dd, c / max(peak, c) - 1.0)
                    peak, trough = max(peak, c), min(trough, c)
                pre[0, k], pre[1, k], pre[2, k] = peak, trough, dd
            peak, trough, dd = -math.inf, math.inf, 0.0
            for k in range(e - 1, s - 1, -1):
                c = close[i, k]
                if math.isfinite(c):
                    if peak > -math.inf:
                        dd = min(dd, trough / c - 1.0)
                    peak, trough = max(peak, c), min(trough, c)
                suf[0, k], suf[1, k], suf[2, k] = peak, trough, dd
        for j in range(t):
            if not math.isfinite(close[i, j]):
                out[i, j] = np.nan
                continue
            s = j - window + 1
            if s <= 0 or s % window == 0:
                out[i, j] = pre[2, j]  # the window is the start of j's block
                continue
            dd = min(suf[2, s], pre[2, j])
            if suf[0, s] > -math.inf and pre[1, j] < math.inf:
                dd = min(dd, pre[1, j] / suf[0, s] - 1.0)
            out[i, j] = dd


def window_max_drawdown(close: F64, window: int) -> F64:
    """Deepest peak-to-trough fall of the valid closes within the last `window` days (<= 0).

    Equals, for positive prices, min over the window's valid days k of c_k / max(c up to k) − 1
    (the direct O(window) loop; tested), in O(1) per day.
    """
    a = np.ascontiguousarray(close, dtype=np.float64)
    out = np.empty_like(a)
    run_rows(_drawdown_rows, a.shape[0], a, window, out)
    return out
