"""Returns and risk on close panels (tokens × days), NaN-aware and free of look-ahead.

Every panel function returns, at day t, a value computed from closes at days <= t only.
Returns are simple returns between consecutive valid closes; a missing close gives NaN
that day. Annualisation uses `periods_per_year` (365 for crypto daily bars). Sharpe is
mean/std(ddof=1)·√ppy and Sortino mean/downside-deviation·√ppy with the downside deviation
√mean(min(r, 0)²) over all returns — the definitions vectorbt/empyrical use, risk-free 0.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from coinlens.analytics._jit import njit, njit_parallel, prange
from coinlens.analytics.indicators import as_panel
from coinlens.domain.errors import UserInputError

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
ROI_DAYS = {"1d": 1, "7d": 7, "30d": 30, "90d": 90, "365d": 365}


def _ffill_index(x: F64) -> I64:
    """Per cell, the column of the last finite value at or before it (-1 if none)."""
    cols = np.where(np.isfinite(x), np.arange(x.shape[1]), -1)
    return np.maximum.accumulate(cols, axis=1)


def _take(x: F64, cols: I64) -> F64:
    out = np.take_along_axis(x, np.maximum(cols, 0), axis=1)
    return np.where(cols >= 0, out, np.nan)


def simple_returns(close: ArrayLike) -> F64:
    """c[t] / (last valid close before t) - 1; NaN where c[t] is missing or first."""
    c = as_panel(close)
    last = _ffill_index(c)
    prev = np.full_like(last, -1)
    prev[:, 1:] = last[:, :-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return c / _take(c, prev) - 1


def roi_table(close: ArrayLike, epoch_days: ArrayLike) -> dict[str, F64]:
    """ROI panels for 1d/7d/30d/90d/365d, YTD and since listing.

    `epoch_days` (int64, days since 1970-01-01, increasing) labels the time axis. The n-day
    ROI at t compares c[t] with the last valid close on or before day[t] - n; it is NaN if
    c[t] is missing or the token had no close by then. YTD compares with the last close
    of the previous calendar year, or the first close if the token listed this year.
    """
    c = as_panel(close)
    days = np.asarray(epoch_days, dtype=np.int64)
    if days.shape != (c.shape[1],) or np.any(np.diff(days) <= 0):
        raise UserInputError("epoch_days must be increasing with one entry per time step")
    ff = _ffill_index(c)
    out: dict[str, F64] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, n in ROI_DAYS.items():
            base_col = np.searchsorted(days, days - n, side="right") - 1
            cols = np.where(base_col >= 0, ff[:, np.maximum(base_col, 0)], -1)
            out[name] = c / _take(c, cols) - 1
        years = days.astype("datetime64[D]").astype("datetime64[Y]")
        year_start = years.astype("datetime64[D]").astype(np.int64)
        prev_col = np.searchsorted(days, year_start, side="left") - 1
        cols = np.where(prev_col >= 0, ff[:, np.maximum(prev_col, 0)], -1)
        first = np.argmax(np.isfinite(c), axis=1)[:, None]
        cols = np.where(cols >= 0, cols, np.where(ff >= 0, first, -1))
        out["ytd"] = c / _take(c, cols) - 1
        out["since_listing"] = c / _take(c, np.where(ff >= 0, first, -1)) - 1
    return out


@njit
def _last_finite(row: F64, col: int) -> int:
    """The last column <= col with a finite value (-1 if none)."""
    while col >= 0 and not math.isfinite(row[col]):
        col -= 1
    return col


@njit
def _first_finite(row: F64) -> int:
    for j in range(row.shape[0]):
        if math.isfinite(row[j]):
            return j
    return -1


@njit
def _roi_at(c: F64, base_cols: NDArray[np.int64], ends: NDArray[np.int64], out: F64) -> None:
    """out[k, i] = c[i, ends[i]] / c[i, last finite <= base_cols[k, i]] - 1 (first close if -2)."""
    for i in range(c.shape[0]):
        t = ends[i]
        first = _first_finite(c[i])
        for k in range(base_cols.shape[0]):
            out[k, i] = np.nan
            if t < 0 or not math.isfinite(c[i, t]):
                continue
            col = base_cols[k, i]
            if col == -2:  # since listing: the first close
                base = first
            elif col == -3:  # YTD: the previous year's last close, else the first close
                base = _last_finite(c[i], int(base_cols[k - 1, i]))
                base = base if base >= 0 else first
            else:
                base = _last_finite(c[i], col)
            if base >= 0:
                out[k, i] = c[i, t] / c[i, base] - 1


def roi_at(close: ArrayLike, epoch_days: ArrayLike, ends: ArrayLike) -> dict[str, F64]:
    """`roi_table` read at one column per token (`ends[i]`, -1 for none), without the panel.

    Equal to `roi_table(close, epoch_days)[name][i, ends[i]]` bit for bit; it scans back
    only from the base columns, so a daily update costs O(tokens), not O(history).
    """
    c = as_panel(close)
    days = np.asarray(epoch_days, dtype=np.int64)
    t_end = np.asarray(ends, dtype=np.int64)
    if days.shape != (c.shape[1],) or t_end.shape != (c.shape[0],):
        raise UserInputError("need one epoch day per column and one end column per token")
    day_t = days[np.maximum(t_end, 0)]
    cols = [np.searchsorted(days, day_t - n, side="right") - 1 for n in ROI_DAYS.values()]
    year_start = (
        day_t.astype("datetime64[D]").astype("datetime64[Y]").astype("datetime64[D]")
    ).astype(np.int64)
    cols.append(np.searchsorted(days, year_start, side="left") - 1)  # previous year's end
    cols.append(np.full(len(t_end), -3))  # YTD marker: resolves the column above
    cols.append(np.full(len(t_end), -2))  # since listing: the first close
    base = np.ascontiguousarray(np.stack(cols).astype(np.int64))
    out = np.empty((len(cols), c.shape[0]))
    _roi_at(c, base, t_end, out)
    names = [*ROI_DAYS, "ytd", "since_listing"]
    return {name: out[k] for k, name in zip([0, 1, 2, 3, 4, 6, 7], names, strict=True)}


@njit
def _trailing(c: F64, ends: NDArray[np.int64], width: int, out: F64) -> None:
    for i in range(c.shape[0]):
        for q in range(width + 1):
            col = ends[i] - width + q
            out[i, q] = c[i, col] if col >= 0 else np.nan
        start = ends[i] - width
        if start >= 0:
            first = _last_finite(c[i], start)
            out[i, 0] = c[i, first] if first >= 0 else np.nan


def trailing_closes(close: ArrayLike, ends: ArrayLike, width: int) -> F64:
    """Per token the `width` + 1 closes ending at column `ends[i]`, the first forward-filled.

    The forward fill makes the first return inside the window equal the full history's, so
    rolling statistics of the tail equal those of the whole panel at `ends`.
    """
    c = as_panel(close)
    t_end = np.asarray(ends, dtype=np.int64)
    out = np.empty((c.shape[0], width + 1))
    _trailing(c, t_end, width, out)
    return out


def drawdown_from_ath(close: ArrayLike) -> F64:
    """c[t] / max(c[<=t]) - 1 (the all-time high of closes); NaN where c[t] is missing."""
    c = as_panel(close)
    ath = np.fmax.accumulate(c, axis=1)
    with np.errstate(invalid="ignore"):
        np.divide(c, ath, out=ath)
    return np.subtract(ath, 1, out=ath)


def max_drawdown(close: ArrayLike) -> F64:
    """Deepest drawdown from the running high seen up to each day (<= 0), forward-filled."""
    dd = drawdown_from_ath(close)
    return np.fmin.accumulate(dd, axis=1)


def drawdown_state(close: ArrayLike) -> tuple[F64, F64]:
    """Per token the all-time high close and the deepest drawdown so far (`max_drawdown`)."""
    c = as_panel(close)
    with np.errstate(invalid="ignore"):
        return np.fmax.reduce(c, axis=1), np.fmin.reduce(drawdown_from_ath(c), axis=1)


def update_drawdown_state(ath: F64, mdd: F64, close: ArrayLike) -> tuple[F64, F64]:
    """Advance `drawdown_state` by one bar of closes; equal to recomputing with that bar."""
    c = np.asarray(close, dtype=np.float64)
    new_ath = np.fmax(ath, c)
    with np.errstate(invalid="ignore"):
        return new_ath, np.fmin(mdd, c / new_ath - 1)


class RollingRisk(NamedTuple):
    """Rolling annualised volatility, Sharpe and Sortino."""

    volatility: F64
    sharpe: F64
    sortino: F64


@njit_parallel
def _rolling_risk(r: F64, window: int, min_obs: int, ppy: float) -> tuple[F64, F64, F64]:
    m, t = r.shape
    vol = np.full((m, t), np.nan)
    sharpe = np.full((m, t), np.nan)
    sortino = np.full((m, t), np.nan)
    scale = math.sqrt(ppy)
    for i in prange(m):
        for j in range(t):
            n = 0
            s = 0.0
            for k in range(max(0, j - window + 1), j + 1):
                if math.isfinite(r[i, k]):
                    n += 1
                    s += r[i, k]
            if n < min_obs:
                continue
            mean = s / n
            ss = 0.0
            down = 0.0
            for k in range(max(0, j - window + 1), j + 1):
                x = r[i, k]
                if math.isfinite(x):
                    ss += (x - mean) * (x - mean)
                    down += min(x, 0.0) * min(x, 0.0)
            sd = math.sqrt(ss / (n - 1))
            dd = math.sqrt(down / n)
            vol[i, j] = sd * scale
            sharpe[i, j] = mean / sd * scale if sd > 0 else np.nan
            sortino[i, j] = mean / dd * scale if dd > 0 else np.nan
    return vol, sharpe, sortino


def rolling_risk(
    close: ArrayLike, window: int = 90, periods_per_year: float = 365.0, min_obs: int = 20
) -> RollingRisk:
    """Volatility, Sharpe, Sortino of the returns in the last `window` days (>= min_obs)."""
    if window < 2 or min_obs < 2:
        raise UserInputError("window and min_obs must be >= 2")
    r = simple_returns(close)
    return RollingRisk(*_rolling_risk(r, window, min_obs, float(periods_per_year)))


@njit_parallel
def _rolling_beta(r: F64, b: F64, window: int, min_obs: int) -> tuple[F64, F64]:
    m, t = r.shape
    beta = np.full((m, t), np.nan)
    corr = np.full((m, t), np.nan)
    for i in prange(m):
        for j in range(t):
            n = 0
            sx = sy = 0.0
            for k in range(max(0, j - window + 1), j + 1):
                if math.isfinite(r[i, k]) and math.isfinite(b[k]):
                    n += 1
                    sx += r[i, k]
                    sy += b[k]
            if n < min_obs:
                continue
            mx, my = sx / n, sy / n
            cxy = cxx = cyy = 0.0
            for k in range(max(0, j - window + 1), j + 1):
                if math.isfinite(r[i, k]) and math.isfinite(b[k]):
                    dx, dy = r[i, k] - mx, b[k] - my
                    cxy += dx * dy
                    cxx += dx * dx
                    cyy += dy * dy
            if cyy > 0:
                beta[i, j] = cxy / cyy
            if cxx > 0 and cyy > 0:
                corr[i, j] = cxy / math.sqrt(cxx * cyy)
    return beta, corr


def rolling_beta_corr(
    close: ArrayLike, benchmark: ArrayLike, window: int = 90, min_obs: int = 20
) -> tuple[F64, F64]:
    """Rolling beta and Pearson correlation of each token's returns to a benchmark's.

    `benchmark` is the benchmark's close series (e.g. the BTC row of the panel); only days
    where both returns exist count, and at least `min_obs` of them are required.
    """
    r = simple_returns(close)
    b = simple_returns(benchmark)[0]
    if b.shape[0] != r.shape[1]:
        raise UserInputError("benchmark must have one close per time step")
    return _rolling_beta(r, b, window, min_obs)


def _whole_period_risk(r: F64, ppy: float) -> tuple[F64, F64, F64]:
    valid = np.isfinite(r)
    n = valid.sum(axis=1).astype(np.float64)
    x = np.where(valid, r, 0.0)
    scale = math.sqrt(ppy)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = x.sum(axis=1) / n
        sd = np.sqrt((np.where(valid, r - mean[:, None], 0.0) ** 2).sum(axis=1) / (n - 1))
        dd = np.sqrt((np.minimum(x, 0.0) ** 2).sum(axis=1) / n)
        ok = n >= 2
        vol = np.where(ok, sd * scale, np.nan)
        sharpe = np.where(ok & (sd > 0), mean / sd * scale, np.nan)
        sortino = np.where(ok & (dd > 0), mean / dd * scale, np.nan)
    return vol, sharpe, sortino


class Performance(NamedTuple):
    """Whole-period performance per token, measured from its first to its last valid value."""

    total_return: F64
    cagr: F64
    volatility: F64
    sharpe: F64
    sortino: F64
    max_drawdown: F64


def performance(
    values: ArrayLike, periods_per_year: float = 365.0, initial: float | None = None
) -> Performance:
    """Summary of a close or equity panel; CAGR uses the bar count between first and last.

    With `initial` (an equity curve's starting cash) a virtual bar worth `initial` is put
    just before each token's first valid value, so the first bar's move and costs count.
    """
    v = as_panel(values)
    if initial is not None:
        start = np.argmax(np.isfinite(v), axis=1)
        v = np.hstack([np.full((v.shape[0], 1), np.nan), v])
        v[np.arange(v.shape[0]), start] = np.where(np.isfinite(v).any(axis=1), initial, np.nan)
    valid = np.isfinite(v)
    has = valid.any(axis=1)
    first = np.argmax(valid, axis=1)
    last = v.shape[1] - 1 - np.argmax(valid[:, ::-1], axis=1)
    rows = np.arange(v.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = v[rows, last] / v[rows, first]
        periods = (last - first).astype(np.float64)
        cagr = np.where(periods > 0, growth ** (periods_per_year / periods) - 1, np.nan)
    vol, sharpe, sortino = _whole_period_risk(simple_returns(v), periods_per_year)
    mdd = max_drawdown(v)[rows, last]

    def pick(x: F64) -> F64:
        return np.where(has, x, np.nan)

    return Performance(
        pick(growth - 1),
        pick(cagr),
        pick(vol),
        pick(sharpe),
        pick(sortino),
        pick(mdd),
    )
