"""Tight full-history kernels for the hot indicators (EMA, RSI, MACD, BBANDS, ATR, ADX, OBV).

Each `_x_1d` is TA-Lib's loop for one gap-free series, with the same operation order as the
one-bar steps in `_steps` (tests assert the two agree bit for bit). The `*_panel` drivers
run a token's valid bars in place when they are contiguous, and gather/scatter them when
the token has gaps; tokens run in parallel.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from coinlens.analytics._jit import njit, njit_parallel, prange
from coinlens.analytics._steps import true_range

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
NAN = math.nan


@njit
def _finite(rows: tuple[F64, ...], j: int) -> bool:
    for r in rows:  # noqa: SIM110 -- numba cannot compile generator expressions
        if not math.isfinite(r[j]):
            return False
    return True


@njit
def first_valid(rows: tuple[F64, ...]) -> tuple[int, bool]:
    """First position where every row is finite, and whether no gap follows it."""
    t = rows[0].shape[0]
    s = 0
    while s < t and not _finite(rows, s):
        s += 1
    for j in range(s, t):
        if not _finite(rows, j):
            return s, False
    return s, True


@njit
def valid_index(rows: tuple[F64, ...]) -> I64:
    """Positions where every row is finite."""
    t = rows[0].shape[0]
    idx = np.empty(t, np.int64)
    cnt = 0
    for j in range(t):
        if _finite(rows, j):
            idx[cnt] = j
            cnt += 1
    return idx[:cnt]


@njit
def _ema_1d(x: F64, s: int, n: int, out: F64) -> None:
    size = x.shape[0]
    if size - s < n:
        return
    acc = 0.0
    for j in range(s, s + n):
        acc += x[j]
    prev = acc / n
    out[s + n - 1] = prev
    k = 2.0 / (n + 1)
    for j in range(s + n, size):
        prev = (x[j] - prev) * k + prev
        out[j] = prev


@njit
def _rsi_1d(x: F64, s: int, n: int, out: F64) -> None:
    size = x.shape[0]
    if size - s <= n:
        return
    prev = x[s]
    gain = 0.0
    loss = 0.0
    for j in range(s + 1, s + n + 1):
        d = x[j] - prev
        prev = x[j]
        if d < 0:
            loss -= d
        else:
            gain += d
    gain /= n
    loss /= n
    tot = gain + loss
    out[s + n] = 100.0 * (gain / tot) if tot != 0.0 else 0.0
    for j in range(s + n + 1, size):
        d = x[j] - prev
        prev = x[j]
        gain *= n - 1
        loss *= n - 1
        if d < 0:
            loss -= d
        else:
            gain += d
        gain /= n
        loss /= n
        tot = gain + loss
        out[j] = 100.0 * (gain / tot) if tot != 0.0 else 0.0


@njit
def _macd_1d(x: F64, s: int, p: tuple[int, int, int], out: tuple[F64, F64, F64]) -> None:
    fast, slow, sig = p
    line, signal, hist = out
    size = x.shape[0]
    first = s + slow + sig - 2
    if size <= first:
        return
    fs = 0.0
    ss = 0.0
    for j in range(s, s + slow):
        ss += x[j]
        if j - s >= slow - fast:
            fs += x[j]
    fe = fs / fast
    se = ss / slow
    kf = 2.0 / (fast + 1)
    ks = 2.0 / (slow + 1)
    line[s + slow - 1] = fe - se
    for j in range(s + slow, size):
        fe = (x[j] - fe) * kf + fe
        se = (x[j] - se) * ks + se
        line[j] = fe - se
    seed = 0.0
    for j in range(s + slow - 1, first + 1):
        seed += line[j]
    sg = seed / sig
    kg = 2.0 / (sig + 1)
    signal[first] = sg
    hist[first] = line[first] - sg
    for j in range(first + 1, size):
        sg = (line[j] - sg) * kg + sg
        signal[j] = sg
        hist[j] = line[j] - sg
    line[s + slow - 1 : first] = NAN


@njit
def _bbands_1d(x: F64, s: int, n: int, k: float, out: tuple[F64, F64, F64]) -> None:
    up, mid, lo = out
    t1 = 0.0
    t2 = 0.0
    for j in range(s, min(s + n - 1, x.shape[0])):
        t1 += x[j]
        t2 += x[j] * x[j]
    for j in range(s + n - 1, x.shape[0]):
        v = x[j]
        t1 += v
        t2 += v * v
        md = t1 / n
        m2 = t2 / n
        old = x[j - n + 1]
        t1 -= old
        t2 -= old * old
        m2 -= md * md
        sd = math.sqrt(m2) if m2 > 0.0 else 0.0
        if k != 1.0:
            sd = sd * k
        up[j] = md + sd
        mid[j] = md
        lo[j] = md - sd


@njit
def _atr_1d(hlc: tuple[F64, F64, F64], s: int, n: int, out: F64) -> None:
    h, lo, c = hlc
    size = c.shape[0]
    if size - s <= n:
        return
    acc = 0.0
    for j in range(s + 1, s + n + 1):
        acc += true_range(h[j], lo[j], c[j - 1])
    a = acc / n
    out[s + n] = a
    for j in range(s + n + 1, size):
        a *= n - 1
        a += true_range(h[j], lo[j], c[j - 1])
        a /= n
        out[j] = a


@njit
def _adx_1d(hlc: tuple[F64, F64, F64], s: int, n: int, out: tuple[F64, F64, F64]) -> None:
    h, lo, c = hlc
    adx, pdi, mdi = out
    pdm = mdm = tr = sum_dx = a = 0.0
    for j in range(s + 1, c.shape[0]):
        diff_p = h[j] - h[j - 1]
        diff_m = lo[j - 1] - lo[j]
        r = true_range(h[j], lo[j], c[j - 1])
        k = j - s
        if k >= n:
            pdm -= pdm / n
            mdm -= mdm / n
        if diff_m > 0 and diff_p < diff_m:
            mdm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            pdm += diff_p
        if k < n:
            tr += r
            continue
        tr = tr - (tr / n) + r
        p = m = dx = 0.0
        dx_ok = False
        if tr != 0.0:
            m = 100.0 * (mdm / tr)
            p = 100.0 * (pdm / tr)
            tot = m + p
            if tot != 0.0:
                dx = 100.0 * (abs(m - p) / tot)
                dx_ok = True
        pdi[j] = p
        mdi[j] = m
        if k < 2 * n - 1:
            if dx_ok:
                sum_dx += dx
            continue
        if k == 2 * n - 1:
            if dx_ok:
                sum_dx += dx
            a = sum_dx / n
        elif dx_ok:
            a = ((a * (n - 1)) + dx) / n
        adx[j] = a


@njit
def _obv_1d(c: F64, v: F64, s: int, out: F64) -> None:
    size = c.shape[0]
    if size <= s:
        return
    o = v[s]
    prev = c[s]
    for j in range(s, size):
        x = c[j]
        if x > prev:
            o += v[j]
        elif x < prev:
            o -= v[j]
        out[j] = o
        prev = x


@njit_parallel
def ema_panel(x: F64, n: int) -> F64:
    """EMA (TA-Lib EMA) per row."""
    m, t = x.shape
    out = np.full((m, t), NAN)
    for i in prange(m):
        s, whole = first_valid((x[i],))
        if whole:
            _ema_1d(x[i], s, n, out[i])
        else:
            sel = valid_index((x[i],))
            o = np.full(sel.shape[0], NAN)
            _ema_1d(x[i][sel], 0, n, o)
            out[i][sel] = o
    return out


@njit_parallel
def rsi_panel(x: F64, n: int) -> F64:
    """RSI (TA-Lib RSI) per row."""
    m, t = x.shape
    out = np.full((m, t), NAN)
    for i in prange(m):
        s, whole = first_valid((x[i],))
        if whole:
            _rsi_1d(x[i], s, n, out[i])
        else:
            sel = valid_index((x[i],))
            o = np.full(sel.shape[0], NAN)
            _rsi_1d(x[i][sel], 0, n, o)
            out[i][sel] = o
    return out


@njit_parallel
def macd_panel(x: F64, fast: int, slow: int, sig: int) -> tuple[F64, F64, F64]:
    """MACD line, signal, histogram (TA-Lib MACD) per row."""
    m, t = x.shape
    line = np.full((m, t), NAN)
    signal = np.full((m, t), NAN)
    hist = np.full((m, t), NAN)
    p = (fast, slow, sig)
    for i in prange(m):
        s, whole = first_valid((x[i],))
        if whole:
            _macd_1d(x[i], s, p, (line[i], signal[i], hist[i]))
        else:
            sel = valid_index((x[i],))
            a = np.full(sel.shape[0], NAN)
            b = np.full(sel.shape[0], NAN)
            c = np.full(sel.shape[0], NAN)
            _macd_1d(x[i][sel], 0, p, (a, b, c))
            line[i][sel] = a
            signal[i][sel] = b
            hist[i][sel] = c
    return line, signal, hist


@njit_parallel
def bbands_panel(x: F64, n: int, k: float) -> tuple[F64, F64, F64]:
    """Bollinger upper, middle, lower (TA-Lib BBANDS) per row."""
    m, t = x.shape
    up = np.full((m, t), NAN)
    mid = np.full((m, t), NAN)
    lo = np.full((m, t), NAN)
    for i in prange(m):
        s, whole = first_valid((x[i],))
        if whole:
            _bbands_1d(x[i], s, n, k, (up[i], mid[i], lo[i]))
        else:
            sel = valid_index((x[i],))
            a = np.full(sel.shape[0], NAN)
            b = np.full(sel.shape[0], NAN)
            c = np.full(sel.shape[0], NAN)
            _bbands_1d(x[i][sel], 0, n, k, (a, b, c))
            up[i][sel] = a
            mid[i][sel] = b
            lo[i][sel] = c
    return up, mid, lo


@njit_parallel
def atr_panel(h: F64, lo: F64, c: F64, n: int) -> F64:
    """ATR (TA-Lib ATR) per row."""
    m, t = c.shape
    out = np.full((m, t), NAN)
    for i in prange(m):
        s, whole = first_valid((h[i], lo[i], c[i]))
        if whole:
            _atr_1d((h[i], lo[i], c[i]), s, n, out[i])
        else:
            sel = valid_index((h[i], lo[i], c[i]))
            o = np.full(sel.shape[0], NAN)
            _atr_1d((h[i][sel], lo[i][sel], c[i][sel]), 0, n, o)
            out[i][sel] = o
    return out


@njit_parallel
def adx_panel(h: F64, lo: F64, c: F64, n: int) -> tuple[F64, F64, F64]:
    """ADX, +DI, -DI (TA-Lib ADX, PLUS_DI, MINUS_DI) per row."""
    m, t = c.shape
    adx = np.full((m, t), NAN)
    pdi = np.full((m, t), NAN)
    mdi = np.full((m, t), NAN)
    for i in prange(m):
        s, whole = first_valid((h[i], lo[i], c[i]))
        if whole:
            _adx_1d((h[i], lo[i], c[i]), s, n, (adx[i], pdi[i], mdi[i]))
        else:
            sel = valid_index((h[i], lo[i], c[i]))
            a = np.full(sel.shape[0], NAN)
            b = np.full(sel.shape[0], NAN)
            d = np.full(sel.shape[0], NAN)
            _adx_1d((h[i][sel], lo[i][sel], c[i][sel]), 0, n, (a, b, d))
            adx[i][sel] = a
            pdi[i][sel] = b
            mdi[i][sel] = d
    return adx, pdi, mdi


@njit_parallel
def obv_panel(c: F64, v: F64) -> F64:
    """OBV (TA-Lib OBV) per row."""
    m, t = c.shape
    out = np.full((m, t), NAN)
    for i in prange(m):
        s, whole = first_valid((c[i], v[i]))
        if whole:
            _obv_1d(c[i], v[i], s, out[i])
        else:
            sel = valid_index((c[i], v[i]))
            o = np.full(sel.shape[0], NAN)
            _obv_1d(c[i][sel], v[i][sel], 0, o)
            out[i][sel] = o
    return out
