"""Tight full-history kernels for the hot indicators (EMA, RSI, MACD, BBANDS, ATR, ADX, OBV).

Each `_x_1d` is TA-Lib's loop over one gap-free stretch `se = (start, end)` of a row; it
writes the row's output up to `end`, NaN before the first value (TA-Lib's warm-up), with
the same operation order as the one-bar steps in `_steps` (tests assert the two agree bit
for bit). Each `_x_rows` runs rows r0..r1 of a panel: a token whose valid bars are
contiguous is computed in place, a token with gaps is gathered, computed and scattered
back. The public `*_panel` functions split the rows over threads (`run_rows`).

Compile time: numba compiles each function separately, so the kernels avoid slicing,
fancy indexing and tuples of arrays, and each has one specialisation (C-contiguous).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from coinlens.analytics._jit import njit, run_rows
from coinlens.analytics._steps import true_range

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
NAN = math.nan
Span = tuple[int, int]


@njit
def _span(a: F64, b: F64, c: F64, idx: I64) -> Span:
    """Write the positions where a, b and c are all finite into `idx`; (first, count).

    The valid bars are contiguous exactly when count == len - first.
    """
    t = c.shape[0]
    s = t
    cnt = 0
    for j in range(t):
        if math.isfinite(a[j]) and math.isfinite(b[j]) and math.isfinite(c[j]):
            s = min(s, j)
            idx[cnt] = j
            cnt += 1
    return s, cnt


@njit
def _gather(x: F64, idx: I64, cnt: int, buf: F64) -> F64:
    for q in range(cnt):
        buf[q] = x[idx[q]]
    return buf


@njit
def _scatter(buf: F64, idx: I64, cnt: int, out: F64) -> None:
    for j in range(out.shape[0]):
        out[j] = NAN
    for q in range(cnt):
        out[idx[q]] = buf[q]


@njit
def _nan(out: F64, end: int) -> None:
    for j in range(end):
        out[j] = NAN


@njit
def _ema_1d(x: F64, se: Span, n: int, out: F64) -> None:
    s, e = se
    _nan(out, min(e, s + n - 1))
    if e - s < n:
        return
    acc = 0.0
    for j in range(s, s + n):
        acc += x[j]
    prev = acc / n
    out[s + n - 1] = prev
    k = 2.0 / (n + 1)
    for j in range(s + n, e):
        prev = (x[j] - prev) * k + prev
        out[j] = prev


@njit
def _rsi_1d(x: F64, se: Span, n: int, out: F64) -> None:
    s, e = se
    _nan(out, min(e, s + n))
    if e - s <= n:
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
    m1 = n - 1
    for j in range(s + n + 1, e):
        d = x[j] - prev
        prev = x[j]
        # adding +0.0 leaves a non-negative sum unchanged: branch-free, same bits
        gain = (gain * m1 + max(d, 0.0)) / n
        loss = (loss * m1 - min(d, 0.0)) / n
        tot = gain + loss
        out[j] = 100.0 * (gain / tot) if tot != 0.0 else 0.0


@njit
def _macd_1d(x: F64, se: Span, p: tuple[int, int, int], line: F64, signal: F64, hist: F64) -> None:
    fast, slow, sig = p
    s, e = se
    first = s + slow + sig - 2
    for j in range(min(e, first)):
        line[j] = signal[j] = hist[j] = NAN
    if e <= first:
        return
    fs = 0.0
    ss = 0.0
    for j in range(s, s + slow):
        ss += x[j]
        if j - s >= slow - fast:
            fs += x[j]
    fe = fs / fast
    se_ = ss / slow
    kf = 2.0 / (fast + 1)
    ks = 2.0 / (slow + 1)
    m = fe - se_
    seed = m
    for j in range(s + slow, first + 1):
        fe = (x[j] - fe) * kf + fe
        se_ = (x[j] - se_) * ks + se_
        m = fe - se_
        seed += m
    sg = seed / sig
    line[first] = m
    signal[first] = sg
    hist[first] = m - sg
    kg = 2.0 / (sig + 1)
    for j in range(first + 1, e):
        fe = (x[j] - fe) * kf + fe
        se_ = (x[j] - se_) * ks + se_
        m = fe - se_
        sg = (m - sg) * kg + sg
        line[j] = m
        signal[j] = sg
        hist[j] = m - sg


@njit
def _bbands_1d(x: F64, se: Span, n: int, k: float, up: F64, mid: F64, lo: F64) -> None:
    s, e = se
    w = min(e, s + n - 1)
    t1 = 0.0
    t2 = 0.0
    for j in range(w):
        up[j] = mid[j] = lo[j] = NAN
        if j >= s:
            t1 += x[j]
            t2 += x[j] * x[j]
    for j in range(s + n - 1, e):
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
def _atr_1d(h: F64, lo: F64, c: F64, se: Span, n: int, out: F64) -> None:
    s, e = se
    _nan(out, min(e, s + n))
    if e - s <= n:
        return
    acc = 0.0
    for j in range(s + 1, s + n + 1):
        acc += true_range(h[j], lo[j], c[j - 1])
    a = acc / n
    out[s + n] = a
    m1 = n - 1
    for j in range(s + n + 1, e):
        a = (a * m1 + true_range(h[j], lo[j], c[j - 1])) / n
        out[j] = a


@njit
def _adx_1d(h: F64, lo: F64, c: F64, se: Span, n: int, adx: F64, pdi: F64, mdi: F64) -> None:
    s, e = se
    for j in range(min(e, s + 2 * n - 1)):
        adx[j] = NAN
        if j < s + n:
            pdi[j] = mdi[j] = NAN
    pdm = mdm = tr = sum_dx = a = 0.0
    for j in range(s + 1, e):
        diff_p = h[j] - h[j - 1]
        diff_m = lo[j - 1] - lo[j]
        k = j - s
        if k >= n:
            pdm -= pdm / n
            mdm -= mdm / n
        if diff_m > 0 and diff_p < diff_m:
            mdm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            pdm += diff_p
        r = true_range(h[j], lo[j], c[j - 1])
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
            sum_dx += dx if dx_ok else 0.0
            continue
        if k == 2 * n - 1:
            a = (sum_dx + dx if dx_ok else sum_dx) / n
        elif dx_ok:
            a = ((a * (n - 1)) + dx) / n
        adx[j] = a


@njit
def _obv_1d(c: F64, v: F64, se: Span, out: F64) -> None:
    s, e = se
    _nan(out, s)
    if e <= s:
        return
    o = v[s]
    prev = c[s]
    for j in range(s, e):
        x = c[j]
        if x > prev:
            o += v[j]
        elif x < prev:
            o -= v[j]
        out[j] = o
        prev = x


@njit
def _ema_rows(x: F64, n: int, out: F64, r0: int, r1: int) -> None:
    t = x.shape[1]
    idx = np.empty(t, np.int64)
    g, go = np.empty(t), np.empty(t)
    for i in range(r0, r1):
        s, cnt = _span(x[i], x[i], x[i], idx)
        whole = cnt == t - s
        src, dst, se = (x[i], out[i], (s, t)) if whole else (g, go, (0, cnt))
        if not whole:
            _gather(x[i], idx, cnt, g)
        _ema_1d(src, se, n, dst)
        if not whole:
            _scatter(go, idx, cnt, out[i])


@njit
def _rsi_rows(x: F64, n: int, out: F64, r0: int, r1: int) -> None:
    t = x.shape[1]
    idx = np.empty(t, np.int64)
    g, go = np.empty(t), np.empty(t)
    for i in range(r0, r1):
        s, cnt = _span(x[i], x[i], x[i], idx)
        whole = cnt == t - s
        src, dst, se = (x[i], out[i], (s, t)) if whole else (g, go, (0, cnt))
        if not whole:
            _gather(x[i], idx, cnt, g)
        _rsi_1d(src, se, n, dst)
        if not whole:
            _scatter(go, idx, cnt, out[i])


@njit
def _macd_rows(x: F64, p: tuple[int, int, int], out: F64, r0: int, r1: int) -> None:
    """`out` is (3, tokens, time): line, signal, histogram."""
    t = x.shape[1]
    idx = np.empty(t, np.int64)
    g, go = np.empty(t), np.empty((3, t))
    for i in range(r0, r1):
        s, cnt = _span(x[i], x[i], x[i], idx)
        whole = cnt == t - s
        dst = out[:, i] if whole else go[:, :t]
        src, se = (x[i], (s, t)) if whole else (g, (0, cnt))
        if not whole:
            _gather(x[i], idx, cnt, g)
        _macd_1d(src, se, p, dst[0], dst[1], dst[2])
        if not whole:
            for r in range(3):
                _scatter(go[r], idx, cnt, out[r, i])


@njit
def _bbands_rows(x: F64, n: int, k: float, out: F64, r0: int, r1: int) -> None:
    """`out` is (3, tokens, time): upper, middle, lower."""
    t = x.shape[1]
    idx = np.empty(t, np.int64)
    g, go = np.empty(t), np.empty((3, t))
    for i in range(r0, r1):
        s, cnt = _span(x[i], x[i], x[i], idx)
        whole = cnt == t - s
        dst = out[:, i] if whole else go[:, :t]
        src, se = (x[i], (s, t)) if whole else (g, (0, cnt))
        if not whole:
            _gather(x[i], idx, cnt, g)
        _bbands_1d(src, se, n, k, dst[0], dst[1], dst[2])
        if not whole:
            for r in range(3):
                _scatter(go[r], idx, cnt, out[r, i])


@njit
def _atr_rows(h: F64, lo: F64, c: F64, n: int, out: F64, r0: int, r1: int) -> None:
    t = c.shape[1]
    idx = np.empty(t, np.int64)
    g, go = np.empty((3, t)), np.empty(t)
    for i in range(r0, r1):
        s, cnt = _span(h[i], lo[i], c[i], idx)
        whole = cnt == t - s
        src = (h[i], lo[i], c[i]) if whole else (g[0], g[1], g[2])
        dst, se = (out[i], (s, t)) if whole else (go, (0, cnt))
        if not whole:
            for r, x in enumerate((h, lo, c)):
                _gather(x[i], idx, cnt, g[r])
        _atr_1d(src[0], src[1], src[2], se, n, dst)
        if not whole:
            _scatter(go, idx, cnt, out[i])


@njit
def _adx_rows(h: F64, lo: F64, c: F64, n: int, out: F64, r0: int, r1: int) -> None:
    """`out` is (3, tokens, time): ADX, +DI, -DI."""
    t = c.shape[1]
    idx = np.empty(t, np.int64)
    g, go = np.empty((3, t)), np.empty((3, t))
    for i in range(r0, r1):
        s, cnt = _span(h[i], lo[i], c[i], idx)
        whole = cnt == t - s
        src = (h[i], lo[i], c[i]) if whole else (g[0], g[1], g[2])
        dst = out[:, i] if whole else go[:, :t]
        se = (s, t) if whole else (0, cnt)
        if not whole:
            for r, x in enumerate((h, lo, c)):
                _gather(x[i], idx, cnt, g[r])
        _adx_1d(src[0], src[1], src[2], se, n, dst[0], dst[1], dst[2])
        if not whole:
            for r in range(3):
                _scatter(go[r], idx, cnt, out[r, i])


@njit
def _obv_rows(c: F64, v: F64, out: F64, r0: int, r1: int) -> None:
    t = c.shape[1]
    idx = np.empty(t, np.int64)
    g, go = np.empty((2, t)), np.empty(t)
    for i in range(r0, r1):
        s, cnt = _span(c[i], v[i], v[i], idx)
        whole = cnt == t - s
        src = (c[i], v[i]) if whole else (g[0], g[1])
        dst, se = (out[i], (s, t)) if whole else (go, (0, cnt))
        if not whole:
            _gather(c[i], idx, cnt, g[0])
            _gather(v[i], idx, cnt, g[1])
        _obv_1d(src[0], src[1], se, dst)
        if not whole:
            _scatter(go, idx, cnt, out[i])


def _c(x: F64) -> F64:
    return np.ascontiguousarray(x, dtype=np.float64)


def ema_panel(x: F64, n: int) -> F64:
    """EMA (TA-Lib EMA) per row."""
    x = _c(x)
    out = np.empty(x.shape)
    run_rows(_ema_rows, x.shape[0], x, n, out)
    return out


def rsi_panel(x: F64, n: int) -> F64:
    """RSI (TA-Lib RSI) per row."""
    x = _c(x)
    out = np.empty(x.shape)
    run_rows(_rsi_rows, x.shape[0], x, n, out)
    return out


def macd_panel(x: F64, fast: int, slow: int, sig: int) -> tuple[F64, F64, F64]:
    """MACD line, signal, histogram (TA-Lib MACD) per row."""
    x = _c(x)
    out = np.empty((3, *x.shape))
    run_rows(_macd_rows, x.shape[0], x, (fast, slow, sig), out)
    return out[0], out[1], out[2]


def bbands_panel(x: F64, n: int, k: float) -> tuple[F64, F64, F64]:
    """Bollinger upper, middle, lower (TA-Lib BBANDS) per row."""
    x = _c(x)
    out = np.empty((3, *x.shape))
    run_rows(_bbands_rows, x.shape[0], x, n, float(k), out)
    return out[0], out[1], out[2]


def atr_panel(h: F64, lo: F64, c: F64, n: int) -> F64:
    """ATR (TA-Lib ATR) per row."""
    h, lo, c = _c(h), _c(lo), _c(c)
    out = np.empty(c.shape)
    run_rows(_atr_rows, c.shape[0], h, lo, c, n, out)
    return out


def adx_panel(h: F64, lo: F64, c: F64, n: int) -> tuple[F64, F64, F64]:
    """ADX, +DI, -DI (TA-Lib ADX, PLUS_DI, MINUS_DI) per row."""
    h, lo, c = _c(h), _c(lo), _c(c)
    out = np.empty((3, *c.shape))
    run_rows(_adx_rows, c.shape[0], h, lo, c, n, out)
    return out[0], out[1], out[2]


def obv_panel(c: F64, v: F64) -> F64:
    """OBV (TA-Lib OBV) per row."""
    c, v = _c(c), _c(v)
    out = np.empty(c.shape)
    run_rows(_obv_rows, c.shape[0], c, v, out)
    return out
