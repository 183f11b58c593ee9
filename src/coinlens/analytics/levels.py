"""Support and resistance levels from swing pivots, without look-ahead.

* A pivot high at bar j is a high strictly above the k highs before it and at least the k
  highs after it (pivot lows mirror this). It is only *known* at bar j + k, and is used
  only from then on.
* At day t the pivots confirmed within the last `lookback` bars are sorted by price and
  merged greedily while a price is within `tol` of the running cluster mean, where
  tol = max(min_tolerance, tolerance_atr × ATR(14)[t] / close[t]).
* Each pivot weighs (volume / its trailing 20-bar mean volume, clipped to [0.5, 2]) ×
  0.5 ** (age / half_life). A level's price is the weighted mean of its pivots, touches
  their count, last_touch the latest pivot bar, and strength = 1 − exp(−Σweights / 2).
* A level below close[t] is support, above it resistance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from coinlens.analytics._fast import atr_panel
from coinlens.analytics._jit import njit, njit_parallel, prange, run_rows
from coinlens.analytics.indicators import as_panel
from coinlens.domain.errors import UserInputError

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class LevelConfig:
    """Parameters of pivot detection, clustering and weighting."""

    pivot_bars: int = 5
    lookback: int = 365
    tolerance_atr: float = 0.5
    min_tolerance: float = 0.005
    half_life: float = 90.0

    def __post_init__(self) -> None:
        if self.pivot_bars < 1 or self.lookback <= self.pivot_bars:
            raise UserInputError("need pivot_bars >= 1 and lookback > pivot_bars")


class Level(NamedTuple):
    """One support or resistance level as seen at a given day."""

    price: float
    kind: str
    strength: float
    touches: int
    last_touch: int


class NearestLevels(NamedTuple):
    """Per token and day: nearest support below and resistance above the close."""

    support: F64
    support_strength: F64
    resistance: F64
    resistance_strength: F64


@njit
def _pivots_range(h: F64, lo: F64, vol: F64, k: int, j0: int, j1: int) -> tuple[I64, F64, F64]:
    """Pivot bars j0 <= j < j1 (time order), their prices and volume weights."""
    n_max = 2 * max(j1 - j0, 0)
    idx = np.empty(n_max, np.int64)
    price = np.empty(n_max)
    weight = np.empty(n_max)
    n = 0
    for j in range(j0, j1):
        hi_ok = lo_ok = math.isfinite(h[j]) and math.isfinite(lo[j])
        for d in range(1, k + 1):
            a, b = h[j - d], h[j + d]
            hi_ok = hi_ok and h[j] > a and h[j] >= b
            a, b = lo[j - d], lo[j + d]
            lo_ok = lo_ok and lo[j] < a and lo[j] <= b
        if not (hi_ok or lo_ok):
            continue
        s, c = 0.0, 0
        for d in range(max(0, j - 19), j + 1):
            if math.isfinite(vol[d]):
                s += vol[d]
                c += 1
        w = 1.0
        if c > 0 and s > 0 and math.isfinite(vol[j]):
            w = min(2.0, max(0.5, vol[j] / (s / c)))
        for ok, p in ((hi_ok, h[j]), (lo_ok, lo[j])):
            if ok:
                idx[n], price[n], weight[n] = j, p, w
                n += 1
    return idx[:n], price[:n], weight[:n]


@njit
def _pivots_1d(h: F64, lo: F64, vol: F64, k: int) -> tuple[I64, F64, F64]:
    """Every pivot of a series (each is confirmed k bars after its own)."""
    return _pivots_range(h, lo, vol, k, k, h.shape[0] - k)


@njit
def _cluster(price: F64, weight: F64, idx: I64, tol: float) -> tuple[F64, F64, I64, I64]:
    """Greedy price clustering; returns level price, summed weight, touches, last touch."""
    order = np.argsort(price)
    n = order.shape[0]
    lv_p, lv_w = np.empty(n), np.empty(n)
    lv_n, lv_last = np.empty(n, np.int64), np.empty(n, np.int64)
    m = -1
    for q in order:
        p, w = price[q], weight[q]
        if m >= 0 and p <= lv_p[m] * (1.0 + tol):
            tot = lv_w[m] + w
            lv_p[m] = (lv_p[m] * lv_w[m] + p * w) / tot
            lv_w[m] = tot
            lv_n[m] += 1
            lv_last[m] = max(lv_last[m], idx[q])
        else:
            m += 1
            lv_p[m], lv_w[m], lv_n[m], lv_last[m] = p, w, 1, idx[q]
    return lv_p[: m + 1], lv_w[: m + 1], lv_n[: m + 1], lv_last[: m + 1]


@njit
def _levels_1d(
    piv: tuple[I64, F64, F64], t: int, tol: float, cfg: tuple[int, int, float]
) -> tuple[F64, F64, I64, I64]:
    """Levels known at bar t from the pivots confirmed by then."""
    idx, price, weight = piv
    k, lookback, half_life = cfg
    sel = np.nonzero((idx + k <= t) & (idx >= t - lookback))[0]
    w = weight[sel] * 0.5 ** ((t - idx[sel]) / half_life)
    lv_p, lv_w, lv_n, lv_last = _cluster(price[sel], w, idx[sel], tol)
    return lv_p, 1.0 - np.exp(-lv_w / 2.0), lv_n, lv_last


@njit
def _tolerance(atr: float, close: float, tol: tuple[float, float]) -> float:
    """Clustering tolerance: max(min_tolerance, tolerance_atr × ATR / close); ATR may be NaN."""
    rel = atr / close if math.isfinite(atr) else 0.0
    return max(tol[1], tol[0] * rel)


@njit_parallel
def _nearest(
    hlcv: tuple[F64, F64, F64, F64], atr: F64, cfg: tuple[int, int, float], tol: tuple[float, float]
) -> tuple[F64, F64, F64, F64]:
    h, lo, c, v = hlcv
    m, t = c.shape
    out = np.full((4, m, t), np.nan)
    for i in prange(m):
        piv = _pivots_1d(h[i], lo[i], v[i], cfg[0])
        for j in range(t):
            close = c[i, j]
            if not math.isfinite(close):
                continue
            lv_p, lv_s, _, _ = _levels_1d(piv, j, _tolerance(atr[i, j], close, tol), cfg)
            for q in range(lv_p.shape[0]):
                p = lv_p[q]
                if p < close and not p <= out[0, i, j]:
                    out[0, i, j], out[1, i, j] = p, lv_s[q]
                elif p > close and not p >= out[2, i, j]:
                    out[2, i, j], out[3, i, j] = p, lv_s[q]
    return out[0], out[1], out[2], out[3]


class LatestLevels(NamedTuple):
    """Per token, the levels at its end bar; each entry is (price, strength, touches, last).

    `support` is the highest level below the close, `resistance` the lowest at or above
    it, `strongest[i, :n_strongest[i]]` the strongest levels, strongest first (ties: lower
    price first). Rows without levels are NaN.
    """

    support: F64
    resistance: F64
    strongest: F64
    n_strongest: I64


@njit
def _latest_rows(
    hlcv: tuple[F64, F64, F64, F64],
    ends_atr: tuple[I64, F64],
    cfg: tuple[int, int, float, float, float],
    out: tuple[F64, F64, F64, I64],
    r0: int,
    r1: int,
) -> None:
    h, lo, c, v = hlcv
    ends, atr = ends_atr
    k, lookback, half_life, tol_atr, tol_min = cfg
    sup, res, top, count = out
    for i in range(r0, r1):
        sup[i, :] = np.nan
        res[i, :] = np.nan
        top[i, :, :] = np.nan
        count[i] = 0
        t = ends[i]
        if t < 0 or not math.isfinite(c[i, t]):
            continue
        close = c[i, t]
        piv = _pivots_range(h[i], lo[i], v[i], k, max(k, t - lookback), t - k + 1)
        lv_p, lv_s, lv_n, lv_last = _levels_1d(
            piv, t, _tolerance(atr[i], close, (tol_atr, tol_min)), (k, lookback, half_life)
        )
        order = np.argsort(-lv_s, kind="mergesort")
        for q in order:
            entry = (lv_p[q], lv_s[q], float(lv_n[q]), float(lv_last[q]))
            if count[i] < top.shape[1]:
                for f in range(4):
                    top[i, count[i], f] = entry[f]
                count[i] += 1
            if lv_p[q] < close and not lv_p[q] <= sup[i, 0]:
                for f in range(4):
                    sup[i, f] = entry[f]
            elif lv_p[q] >= close and not lv_p[q] >= res[i, 0]:
                for f in range(4):
                    res[i, f] = entry[f]


def _inputs(*xs: ArrayLike) -> tuple[F64, ...]:
    panels = tuple(as_panel(x) for x in xs)
    if any(p.shape != panels[0].shape for p in panels):
        raise UserInputError("high, low, close and volume must have the same shape")
    return panels


def nearest_levels(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    volume: ArrayLike,
    config: LevelConfig | None = None,
) -> NearestLevels:
    """Per day, the nearest support below and resistance above the close (data <= t)."""
    cfg = config or LevelConfig()
    h, lo, c, v = _inputs(high, low, close, volume)
    atr = atr_panel(h, lo, c, 14)
    params = (cfg.pivot_bars, cfg.lookback, cfg.half_life)
    return NearestLevels(
        *_nearest((h, lo, c, v), atr, params, (cfg.tolerance_atr, cfg.min_tolerance))
    )


def levels_at(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    volume: ArrayLike,
    t: int,
    config: LevelConfig | None = None,
) -> list[Level]:
    """All levels of one token (1-D inputs) as known at bar t, strongest first."""
    cfg = config or LevelConfig()
    h, lo, c, v = _inputs(high, low, close, volume)
    if h.shape[0] != 1 or not 0 <= t < h.shape[1]:
        raise UserInputError("levels_at takes one token's 1-D series and 0 <= t < len")
    close_t = c[0, t]
    if not math.isfinite(close_t):
        return []
    atr = atr_panel(h[:, : t + 1], lo[:, : t + 1], c[:, : t + 1], 14)[0, t]
    tol = _tolerance(float(atr), float(close_t), (cfg.tolerance_atr, cfg.min_tolerance))
    piv = _pivots_1d(h[0, : t + 1], lo[0, : t + 1], v[0, : t + 1], cfg.pivot_bars)
    lv_p, lv_s, lv_n, lv_last = _levels_1d(
        piv, t, tol, (cfg.pivot_bars, cfg.lookback, cfg.half_life)
    )
    levels = [
        Level(float(p), "support" if p < close_t else "resistance", float(s), int(n), int(last))
        for p, s, n, last in zip(lv_p, lv_s, lv_n, lv_last, strict=True)
    ]
    return sorted(levels, key=lambda lv: -lv.strength)


def latest_levels(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    volume: ArrayLike,
    ends: ArrayLike,
    atr: ArrayLike,
    config: LevelConfig | None = None,
    top: int = 5,
) -> LatestLevels:
    """Every token's levels at its bar `ends[i]` (-1: none), given ATR(14) at that bar.

    Equal to `levels_at(row, ends[i])` when `atr` is `indicators.atr` at `ends`; only the
    last `lookback` + `pivot_bars` + 20 bars are read, so the cost does not grow with the
    history.
    """
    cfg = config or LevelConfig()
    h, lo, c, v = _inputs(high, low, close, volume)
    m = c.shape[0]
    t_end = np.ascontiguousarray(ends, dtype=np.int64)
    atr_end = np.ascontiguousarray(atr, dtype=np.float64)
    if t_end.shape != (m,) or atr_end.shape != (m,):
        raise UserInputError("need one end bar and one ATR value per token")
    out = (np.empty((m, 4)), np.empty((m, 4)), np.empty((m, top, 4)), np.empty(m, np.int64))
    params = (cfg.pivot_bars, cfg.lookback, cfg.half_life, cfg.tolerance_atr, cfg.min_tolerance)
    run_rows(_latest_rows, m, (h, lo, c, v), (t_end, atr_end), params, out)
    return LatestLevels(*out)


class RespectStats(NamedTuple):
    """How often price approached a level and held it, per token."""

    touches: NDArray[np.int64]
    respected: NDArray[np.int64]
    rate: F64


def respect_rate(
    low: ArrayLike,
    high: ArrayLike,
    close: ArrayLike,
    levels: NearestLevels,
    tolerance: float = 0.01,
    horizon: int = 5,
) -> RespectStats:
    """Evaluation only (uses the future on purpose): did price respect the levels?

    A support touch at t: close[t] above support[t] and low[t+1] <= support × (1 + tol).
    It is respected when no close over t+1..t+horizon is below support × (1 − tol).
    Resistance mirrors this with high and the bands flipped. Touches need t + horizon to
    exist; rate is respected / touches (NaN without touches).
    """
    lo, hi, c = _inputs(low, high, close)
    s, r = levels.support, levels.resistance
    n = c.shape[1] - horizon
    if n < 1:
        raise UserInputError("series too short for the horizon")
    fut = np.lib.stride_tricks.sliding_window_view(c[:, 1:], horizon, axis=1)[:, :n]
    with np.errstate(invalid="ignore"):
        s_now, r_now, c_now = s[:, :n], r[:, :n], c[:, :n]
        s_touch = (c_now > s_now) & (lo[:, 1 : n + 1] <= s_now * (1 + tolerance))
        r_touch = (c_now < r_now) & (hi[:, 1 : n + 1] >= r_now * (1 - tolerance))
        s_hold = ~np.any(fut < (s_now * (1 - tolerance))[..., None], axis=2)
        r_hold = ~np.any(fut > (r_now * (1 + tolerance))[..., None], axis=2)
    touches = s_touch.sum(axis=1) + r_touch.sum(axis=1)
    held = (s_touch & s_hold).sum(axis=1) + (r_touch & r_hold).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(touches > 0, held / touches, np.nan)
    return RespectStats(touches.astype(np.int64), held.astype(np.int64), rate)
