"""Evaluating a cross-sectional score against forward returns (pure NumPy).

Per day t: the Spearman rank information coefficient (IC) between the score and the
h-day forward return over the tokens that have both; the top-minus-bottom quintile mean
forward return; the share of top-quintile tokens that beat the day's median. Means over
days come with Newey-West (Bartlett kernel, `lags = horizon`) t-statistics, because the
forward windows of consecutive days overlap by h - 1 days and daily figures are
autocorrelated; a plain t-stat would overstate significance by roughly √h.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from coinlens.analytics.indicators import as_panel
from coinlens.analytics.ranking import percentile_rank
from coinlens.domain.errors import UserInputError

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


def forward_returns(close: ArrayLike, horizon: int) -> F64:
    """close[t + h] / close[t] - 1; NaN if either close is missing or t + h is past the end."""
    if horizon < 1:
        raise UserInputError("horizon must be >= 1")
    c = as_panel(close)
    out = np.full_like(c, np.nan)
    if horizon < c.shape[1]:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, :-horizon] = c[:, horizon:] / c[:, :-horizon] - 1
    return out


def _paired(score: F64, fwd: F64, min_count: int) -> tuple[F64, F64, NDArray[np.bool_]]:
    both = np.isfinite(score) & np.isfinite(fwd)
    ok = both.sum(axis=0) >= min_count
    s = np.where(both & ok, score, np.nan)
    f = np.where(both & ok, fwd, np.nan)
    return s, f, ok


def rank_ic(score: ArrayLike, fwd: ArrayLike, min_count: int = 10) -> F64:
    """Per day, Spearman's rho between score and forward return; NaN below `min_count` pairs.

    Equals `scipy.stats.spearmanr(score[:, t], fwd[:, t])` on the finite pairs of each day.
    """
    s, f, ok = _paired(as_panel(score), as_panel(fwd), min_count)
    rs, rf = percentile_rank(s), percentile_rank(f)
    valid = np.isfinite(rs) & np.isfinite(rf)
    n = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ms = np.nansum(rs, axis=0) / n
        mf = np.nansum(rf, axis=0) / n
        ds = np.where(valid, rs - ms, 0.0)
        df = np.where(valid, rf - mf, 0.0)
        cov = (ds * df).sum(axis=0)
        den = np.sqrt((ds * ds).sum(axis=0) * (df * df).sum(axis=0))
        ic = cov / den
    return np.where(ok & (den > 0), ic, np.nan)


class QuintileStats(NamedTuple):
    """Per day: top-minus-bottom quintile mean forward return, and the top quintile's hit rate."""

    spread: F64
    top_hit: F64


def quintile_stats(score: ArrayLike, fwd: ArrayLike, min_count: int = 10) -> QuintileStats:
    """Top quintile = score percentile >= 80, bottom <= 20, among the day's finite pairs.

    `top_hit` is the share of top-quintile tokens whose forward return beat the day's median.
    """
    s, f, ok = _paired(as_panel(score), as_panel(fwd), min_count)
    pct = percentile_rank(s)
    top = pct >= 80.0
    bottom = pct <= 20.0
    with np.errstate(invalid="ignore", divide="ignore"):
        top_mean = np.where(top, f, 0.0).sum(axis=0) / top.sum(axis=0)
        bottom_mean = np.where(bottom, f, 0.0).sum(axis=0) / bottom.sum(axis=0)
        median = _nanmedian_cols(f)
        beat = (top & (f > median)).sum(axis=0) / top.sum(axis=0)
    spread = np.where(ok, top_mean - bottom_mean, np.nan)
    return QuintileStats(spread, np.where(ok, beat, np.nan))


def _nanmedian_cols(x: F64) -> F64:
    """Column medians over finite values (NaN for empty columns) without warnings."""
    srt = np.sort(x, axis=0)  # NaN last
    n = np.isfinite(x).sum(axis=0)
    lo = np.maximum((n - 1) // 2, 0)
    hi = np.maximum(n // 2, 0)
    cols = np.arange(x.shape[1])
    med = 0.5 * (srt[lo, cols] + srt[hi, cols])
    return np.where(n > 0, med, np.nan)


class MeanStat(NamedTuple):
    """A mean over days with its Newey-West standard error and t-statistic."""

    mean: float
    se: float
    t: float
    n: int


def newey_west(x: ArrayLike, lags: int) -> MeanStat:
    """Mean of the finite values (in time order) with a Newey-West (Bartlett) t-statistic.

    Missing days are dropped and the remaining ones treated as consecutive.
    """
    v = np.asarray(x, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n < 2:
        return MeanStat(float(v.mean()) if n else math.nan, math.nan, math.nan, n)
    mean = float(v.mean())
    d = v - mean
    var = float(d @ d) / n
    for lag in range(1, min(lags, n - 1) + 1):
        var += 2.0 * (1.0 - lag / (lags + 1.0)) * float(d[lag:] @ d[:-lag]) / n
    se = math.sqrt(max(var, 0.0) / n)
    return MeanStat(mean, se, mean / se if se > 0 else math.nan, n)


class Summary(NamedTuple):
    """The track record of one score over a set of days."""

    ic: MeanStat
    spread: MeanStat
    ic_hit_rate: float  # share of days with IC > 0
    top_hit_rate: float  # mean share of top-quintile tokens beating the median
    mean_tokens: float  # average cross-section size on evaluated days


def summarize(
    ic: ArrayLike, stats: QuintileStats, counts: ArrayLike, selected: ArrayLike, horizon: int
) -> Summary:
    """Summary over the days where `selected` is true (and the IC is defined)."""
    sel = np.asarray(selected, dtype=bool)
    ic_all = np.asarray(ic, dtype=np.float64)
    day_ic = ic_all[sel]
    days_ok = np.isfinite(day_ic)
    top = stats.top_hit[sel][days_ok]
    n_tok = np.asarray(counts, dtype=np.float64)[sel][days_ok]
    return Summary(
        ic=newey_west(day_ic, horizon),
        spread=newey_west(stats.spread[sel], horizon),
        ic_hit_rate=float((day_ic[days_ok] > 0).mean()) if days_ok.any() else math.nan,
        top_hit_rate=float(np.nanmean(top)) if np.isfinite(top).any() else math.nan,
        mean_tokens=float(n_tok.mean()) if n_tok.size else math.nan,
    )


def years_of(epoch_days: ArrayLike) -> I64:
    """Calendar year (UTC) of each epoch day."""
    d = np.asarray(epoch_days, dtype=np.int64).astype("datetime64[D]")
    return d.astype("datetime64[Y]").astype(np.int64) + 1970


def pair_counts(score: ArrayLike, fwd: ArrayLike) -> I64:
    """Tokens per day that have both a score and a forward return."""
    both = np.isfinite(as_panel(score)) & np.isfinite(as_panel(fwd))
    counts: I64 = both.sum(axis=0).astype(np.int64)
    return counts
