"""Daily long/flat/short signal per token from trend, momentum and volume (see docs/signals.md).

Rules, evaluated at each bar's close from data up to and including that close:

* trend:    +1 when close > EMA50 and EMA20 > EMA50; -1 when close < EMA50 and EMA20 < EMA50;
            else 0. The trend counts only when ADX(14) > 20.
* votes:    sign(MACD(12,26,9) histogram), sign(RSI(14) - 50), sign(OBV - EMA20(OBV)).
* signal:   the trend direction when ADX(14) > 20 and at least 2 of the 3 votes agree with
            it; otherwise 0.
* score:    0.4·trend·(1 if ADX > 20 else 0.5) + 0.2·(sum of the three votes), in [-1, 1].

A bar is used when high, low, close and volume are all finite. Until every indicator has
warmed up (50 valid bars) the signal is 0 and the score NaN. On a bar with missing data
the previous signal is carried and the score is NaN. Indicators follow TA-Lib exactly
(`coinlens.analytics.indicators`).

`update_signals` advances a `SignalState` by one bar for all tokens; it runs the same
one-bar code as `compute_signals`, so a daily update equals the full recomputation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from coinlens.analytics._jit import njit, run_rows
from coinlens.analytics._steps import (
    ADX_WIDTH,
    EMA_WIDTH,
    MACD_WIDTH,
    OBV_WIDTH,
    RSI_WIDTH,
    adx_step,
    ema_step,
    macd_step,
    obv_step,
    rsi_step,
    true_range,
)
from coinlens.analytics.indicators import as_panel
from coinlens.domain.errors import UserInputError

F64 = NDArray[np.float64]
I8 = NDArray[np.int8]
NAN = math.nan

EMA_FAST, EMA_SLOW, RSI_N, ADX_N, OBV_EMA_N = 20, 50, 14, 14, 20
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
ADX_THRESHOLD = 20.0
WARMUP_BARS = EMA_SLOW

# Offsets of each indicator's state inside one token's state row.
_O_EF = 0
_O_ES = _O_EF + EMA_WIDTH
_O_RSI = _O_ES + EMA_WIDTH
_O_MACD = _O_RSI + RSI_WIDTH
_O_ADX = _O_MACD + MACD_WIDTH
_O_OBV = _O_ADX + ADX_WIDTH
_O_OE = _O_OBV + OBV_WIDTH
STATE_WIDTH = _O_OE + EMA_WIDTH

# Rows of the per-bar value block.
VALUE_NAMES = ("ema_fast", "ema_slow", "rsi", "macd_hist", "adx", "obv", "obv_ema", "score")
N_VALUES = len(VALUE_NAMES)


class SignalPanel(NamedTuple):
    """Full-history signals: signal in {-1, 0, +1}, score, and the indicators behind them."""

    signal: I8
    score: F64
    values: F64  # (N_VALUES, tokens, time), rows named by VALUE_NAMES


class SignalBar(NamedTuple):
    """One bar for every token: signal, score and indicator values (N_VALUES, tokens)."""

    signal: I8
    score: F64
    values: F64


@dataclass(frozen=True, slots=True)
class SignalState:
    """Everything needed to advance the signals by one bar, per token."""

    indicators: F64  # (tokens, STATE_WIDTH) one-bar step states
    signal: I8  # last emitted signal, carried over gaps

    @classmethod
    def empty(cls, n_tokens: int) -> SignalState:
        """State before any bar has been seen."""
        return cls(np.zeros((n_tokens, STATE_WIDTH)), np.zeros(n_tokens, np.int8))


@njit
def _sign(x: float) -> int:
    return 1 if x > 0 else (-1 if x < 0 else 0)


@njit
def _decide(
    close: float, v: tuple[float, float, float, float, float, float, float]
) -> tuple[int, float]:
    """The documented rule on one bar's indicator values: (signal, score)."""
    ef, es, r, hist, a, o, oe = v
    if math.isnan(ef + es + r + hist + a + o + oe):
        return 0, math.nan
    trend = 0
    if close > es and ef > es:
        trend = 1
    elif close < es and ef < es:
        trend = -1
    strong = a > ADX_THRESHOLD
    votes = (_sign(hist), _sign(r - 50.0), _sign(o - oe))
    score = 0.4 * trend * (1.0 if strong else 0.5) + 0.2 * (votes[0] + votes[1] + votes[2])
    agree = 0
    for vote in votes:
        if trend != 0 and vote == trend:
            agree += 1
    return (trend if strong and agree >= 2 else 0), score


@njit
def _rule(close: float, vals: F64) -> int:
    """Apply the documented rule to one bar's indicator values; write the score."""
    sig, vals[7] = _decide(close, (vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6]))
    return sig


@njit
def _signal_step(st: F64, hlcv: tuple[float, float, float, float], vals: F64) -> int:
    """Advance one token's state by one valid bar; fill `vals`; return the signal."""
    h, lo, c, v = hlcv
    vals[0] = ema_step(st[_O_EF:_O_ES], c, EMA_FAST)
    vals[1] = ema_step(st[_O_ES:_O_RSI], c, EMA_SLOW)
    vals[2] = rsi_step(st[_O_RSI:_O_MACD], c, RSI_N)
    vals[3] = macd_step(st[_O_MACD:_O_ADX], c, MACD_FAST, MACD_SLOW, MACD_SIGNAL)[2]
    vals[4] = adx_step(st[_O_ADX:_O_OBV], h, lo, c, ADX_N)[0]
    vals[5] = obv_step(st[_O_OBV:_O_OE], c, v)
    vals[6] = ema_step(st[_O_OE:STATE_WIDTH], vals[5], OBV_EMA_N)
    return _rule(c, vals)


@njit
def _finite4(h: float, lo: float, c: float, v: float) -> bool:
    return math.isfinite(h) and math.isfinite(lo) and math.isfinite(c) and math.isfinite(v)


S3 = tuple[float, float, float]


@njit
def _ema_s(st: S3, x: float, n: int) -> tuple[S3, float]:
    """`ema_step` on a state held in registers."""
    seed, cnt, prev = st
    cnt += 1.0
    if cnt < n:
        return (seed + x, cnt, prev), NAN
    if cnt == n:
        seed += x
        prev = seed / n
    else:
        prev = (x - prev) * (2.0 / (n + 1)) + prev
    return (seed, cnt, prev), prev


@njit
def _rsi_s(
    st: tuple[float, float, float, float], x: float
) -> tuple[tuple[float, float, float, float], float]:
    """`rsi_step` on a state held in registers."""
    prev, gain, loss, idx = st
    n = RSI_N
    if idx == 0:
        return (x, gain, loss, 1.0), NAN
    d = x - prev
    if idx > n:
        gain *= n - 1
        loss *= n - 1
    if d < 0:
        loss -= d
    else:
        gain += d
    if idx < n:
        return (x, gain, loss, idx + 1.0), NAN
    gain /= n
    loss /= n
    tot = gain + loss
    return (x, gain, loss, idx + 1.0), 100.0 * (gain / tot) if tot != 0.0 else 0.0


S7 = tuple[float, float, float, float, float, float, float]


@njit
def _macd_s(st: S7, x: float) -> tuple[S7, float]:
    """`macd_step` (histogram only) on a state held in registers."""
    fsum, ssum, idx, fe, se, gsum, sg = st
    fast, slow, sig = MACD_FAST, MACD_SLOW, MACD_SIGNAL
    if idx <= slow - 1:
        ssum += x
        if idx >= slow - fast:
            fsum += x
        if idx < slow - 1:
            return (fsum, ssum, idx + 1.0, fe, se, gsum, sg), NAN
        fe = fsum / fast
        se = ssum / slow
    else:
        fe = (x - fe) * (2.0 / (fast + 1)) + fe
        se = (x - se) * (2.0 / (slow + 1)) + se
    m = fe - se
    j = idx - (slow - 1)
    if j <= sig - 1:
        gsum += m
        if j < sig - 1:
            return (fsum, ssum, idx + 1.0, fe, se, gsum, sg), NAN
        sg = gsum / sig
    else:
        sg = (m - sg) * (2.0 / (sig + 1)) + sg
    return (fsum, ssum, idx + 1.0, fe, se, gsum, sg), m - sg


S9 = tuple[float, float, float, float, float, float, float, float, float]


@njit
def _adx_s(st: S9, h: float, lo: float, c: float) -> tuple[S9, float]:
    """`adx_step` (ADX only) on a state held in registers."""
    ph, pl, pc, pdm, mdm, tr, sdx, a, idx = st
    n = ADX_N
    if idx == 0:
        return (h, lo, c, pdm, mdm, tr, sdx, a, 1.0), NAN
    diff_p = h - ph
    diff_m = pl - lo
    r = true_range(h, lo, pc)
    if idx >= n:
        pdm -= pdm / n
        mdm -= mdm / n
    if diff_m > 0 and diff_p < diff_m:
        mdm += diff_m
    elif diff_p > 0 and diff_p > diff_m:
        pdm += diff_p
    if idx < n:
        return (h, lo, c, pdm, mdm, tr + r, sdx, a, idx + 1.0), NAN
    tr = tr - (tr / n) + r
    dx = NAN
    if tr != 0.0:
        mdi = 100.0 * (mdm / tr)
        pdi = 100.0 * (pdm / tr)
        tot = mdi + pdi
        if tot != 0.0:
            dx = 100.0 * (abs(mdi - pdi) / tot)
    out = NAN
    if idx <= 2 * n - 1:
        if not math.isnan(dx):
            sdx += dx
        if idx == 2 * n - 1:
            a = sdx / n
            out = a
    else:
        if not math.isnan(dx):
            a = ((a * (n - 1)) + dx) / n
        out = a
    return (h, lo, c, pdm, mdm, tr, sdx, a, idx + 1.0), out


@njit
def _obv_s(st: S3, c: float, v: float) -> tuple[S3, float]:
    """`obv_step` on a state held in registers."""
    prev, o, cnt = st
    if cnt == 0.0:
        o = v
    elif c > prev:
        o += v
    elif c < prev:
        o -= v
    return (c, o, cnt + 1.0), o


@njit
def _signal_token(hlcv: tuple[F64, F64, F64, F64], i: int, out: tuple[F64, I8], st: F64) -> None:
    """All bars of token i from an empty state; writes values, signals and the end state."""
    h, lo, c, v = hlcv
    vals, sig = out
    z3, z4 = (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)
    ef, es, oe, ob, rs = z3, z3, z3, z3, z4
    mc = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    ad = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    prev = 0
    for j in range(c.shape[1]):
        hj, lj, cj, vj = h[i, j], lo[i, j], c[i, j], v[i, j]
        if not _finite4(hj, lj, cj, vj):
            for k in range(N_VALUES):
                vals[k, i, j] = NAN
            sig[i, j] = prev
            continue
        ef, x0 = _ema_s(ef, cj, EMA_FAST)
        es, x1 = _ema_s(es, cj, EMA_SLOW)
        rs, x2 = _rsi_s(rs, cj)
        mc, x3 = _macd_s(mc, cj)
        ad, x4 = _adx_s(ad, hj, lj, cj)
        ob, x5 = _obv_s(ob, cj, vj)
        oe, x6 = _ema_s(oe, x5, OBV_EMA_N)
        prev, score = _decide(cj, (x0, x1, x2, x3, x4, x5, x6))
        vals[0, i, j], vals[1, i, j], vals[2, i, j], vals[3, i, j] = x0, x1, x2, x3
        vals[4, i, j], vals[5, i, j], vals[6, i, j], vals[7, i, j] = x4, x5, x6, score
        sig[i, j] = prev
    row = (*ef, *es, *rs, *mc, *ad, *ob, *oe)
    for k in range(STATE_WIDTH):
        st[i, k] = row[k]


@njit
def _signals_rows(
    hlcv: tuple[F64, F64, F64, F64], out: tuple[F64, I8], state: tuple[F64, I8], r0: int, r1: int
) -> None:
    st, last = state
    sig = out[1]
    t = sig.shape[1]
    for i in range(r0, r1):
        _signal_token(hlcv, i, out, st)
        last[i] = sig[i, t - 1] if t > 0 else 0


@njit
def _signals_update(hlcv: tuple[F64, F64, F64, F64], st: F64, last: I8) -> F64:
    h, lo, c, v = hlcv
    m = c.shape[0]
    vals = np.full((N_VALUES, m), np.nan)
    row = np.empty(N_VALUES)
    for i in range(m):
        if _finite4(h[i], lo[i], c[i], v[i]):
            last[i] = _signal_step(st[i], (h[i], lo[i], c[i], v[i]), row)
            vals[:, i] = row
    return vals


def compute_signals(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike
) -> tuple[SignalPanel, SignalState]:
    """Signals for the full history, and the state to continue from with `update_signals`."""
    panels = (as_panel(high), as_panel(low), as_panel(close), as_panel(volume))
    if any(p.shape != panels[2].shape for p in panels):
        raise UserInputError("high, low, close and volume must have the same shape")
    state = SignalState.empty(panels[2].shape[0])
    m, t = panels[2].shape
    sig = np.empty((m, t), np.int8)
    vals = np.empty((N_VALUES, m, t))
    run_rows(_signals_rows, m, panels, (vals, sig), (state.indicators, state.signal))
    return SignalPanel(sig, vals[N_VALUES - 1], vals), state


def update_signals(
    state: SignalState, high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike
) -> tuple[SignalState, SignalBar]:
    """Advance every token by one bar (1-D columns); the input state is not modified."""
    h, lo, c, v = (np.ascontiguousarray(x, dtype=np.float64) for x in (high, low, close, volume))
    cols = (h, lo, c, v)
    n = state.signal.shape[0]
    if any(col.shape != (n,) for col in cols):
        raise UserInputError(f"each column must have shape ({n},), one value per token")
    new = SignalState(state.indicators.copy(), state.signal.copy())
    vals = _signals_update(cols, new.indicators, new.signal)
    return new, SignalBar(new.signal.copy(), vals[N_VALUES - 1], vals)


class SignalChanges(NamedTuple):
    """Signal change events, one entry per change, ordered by token then time."""

    token: NDArray[np.int64]
    t: NDArray[np.int64]
    from_signal: I8
    to_signal: I8
    price: F64


def signal_changes(signal: ArrayLike, close: ArrayLike) -> SignalChanges:
    """Events where a token's signal differs from the previous bar's (the first bar vs 0)."""
    sig = np.atleast_2d(np.asarray(signal, dtype=np.int8))
    px = as_panel(close)
    if sig.shape != px.shape:
        raise UserInputError("signal and close must have the same shape")
    prev = np.zeros_like(sig)
    prev[:, 1:] = sig[:, :-1]
    token, t = np.nonzero(sig != prev)
    return SignalChanges(
        token.astype(np.int64), t.astype(np.int64), prev[token, t], sig[token, t], px[token, t]
    )
