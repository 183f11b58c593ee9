"""Trader and Investor Grades: daily cross-sectional percentile scores (see docs/grades.md).

Every feature at day t is computed from data at days <= t only (closes, volumes and the
point-in-time auxiliary panels the caller aligns to the same calendar). Each day:

1. every feature is oriented so that higher is better and ranked to a percentile 0–100 among
   the eligible tokens that have it that day;
2. a sub-grade is the percentile of the mean of its features' percentiles (features a token
   lacks, e.g. chain TVL, are skipped);
3. a grade is the weighted sum of its sub-grades, so the sub-grades add up exactly:
   trader = Σ w·{technical, quant, liquidity}, investor = Σ w·{fundamentals, risk, valuation}.

A token is eligible on day t when it has a close that day and enough history (60 valid bars
for the Trader Grade, 180 for the Investor Grade); a day needs `min_tokens` eligible tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from coinlens.analytics._jit import njit, njit_parallel, prange, run_rows
from coinlens.analytics.indicators import as_panel, ema, macd, rsi, sma
from coinlens.analytics.returns import drawdown_from_ath, simple_returns
from coinlens.analytics.signals import compute_signals
from coinlens.domain.errors import UserInputError

F64 = NDArray[np.float64]
B1 = NDArray[np.bool_]

TRADER_SUBS = ("technical", "quant", "liquidity")
INVESTOR_SUBS = ("fundamentals", "risk", "valuation")
SUB_GRADES = TRADER_SUBS + INVESTOR_SUBS

# Weights were chosen on 2018-01-01..2022-12-31 only (days whose forward window ends by
# 2022-12-31), by the grid search `coinlens.services.evaluation.tune_weights` (`coinlens
# evaluate grades --tune`): step 0.1, each weight >= 0.1, maximising the mean daily rank IC
# against 7d forward returns (Trader) and 90d forward returns (Investor). In-sample results
# of the 36 candidates each: Trader best IC 0.038 (NW t 2.76), Investor best IC 0.142 (t 2.68).
# Feature directions are fixed priors (momentum, liquidity, low risk, cheapness), not tuned.
# 2023-01-01..2025-09-30 was never used for any choice: it is out of sample.
TRADER_WEIGHTS = {"technical": 0.1, "quant": 0.1, "liquidity": 0.8}
INVESTOR_WEIGHTS = {"fundamentals": 0.1, "risk": 0.6, "valuation": 0.3}

BANDS = (
    (20.5, "strong_sell"),
    (40.5, "sell"),
    (60.5, "neutral"),
    (80.5, "buy"),
    (math.inf, "strong_buy"),
)
"""Upper bounds (exclusive) of the bands on a 0–100 grade: 0–20, 21–40, 41–60, 61–80, 81–100."""


def band_of(grade: float) -> str:
    """The band name of a grade (bands are on the grade rounded to an integer)."""
    for upper, name in BANDS:
        if grade < upper:
            return name
    return BANDS[-1][1]


@dataclass(frozen=True)
class GradeInputs:
    """Daily panels tokens × days on one calendar (consecutive days), NaN where unknown.

    Auxiliary panels must already be point in time: a value at day t was known on day t.
    """

    close: F64
    high: F64
    low: F64
    volume: F64
    quote_volume: F64 | None = None
    benchmark: int | None = None  # row of BTC, for relative strength
    eligible: B1 | None = None  # per token; e.g. stablecoins excluded
    market_cap: F64 | None = None
    rank: F64 | None = None
    supply: F64 | None = None  # circulating supply
    tvl: F64 | None = None  # chain TVL for tokens that map to a chain
    activity: F64 | None = None  # chain activity (transactions or active addresses)


@dataclass(frozen=True)
class GradeConfig:
    """Windows, thresholds and weights of the grades."""

    trader_weights: dict[str, float] = field(default_factory=lambda: dict(TRADER_WEIGHTS))
    investor_weights: dict[str, float] = field(default_factory=lambda: dict(INVESTOR_WEIGHTS))
    trader_history: int = 60
    investor_history: int = 180
    min_tokens: int = 5
    min_feature_tokens: int = 3


class Grades(NamedTuple):
    """Trader and Investor Grades and the six sub-grades, each tokens × days, 0–100."""

    trader: F64
    investor: F64
    sub: dict[str, F64]


# --- ranking -------------------------------------------------------------------------------


@njit
def _percentile_cols(a: F64, out: F64, min_n: int, c0: int, c1: int) -> None:
    """`percentile_rank` of columns c0..c1: sort each column's finite values, average ties."""
    m = a.shape[0]
    rows = np.empty(m, np.int64)
    vals = np.empty(m)
    for j in range(c0, c1):
        n = 0
        for i in range(m):
            out[i, j] = np.nan
            v = a[i, j]
            if math.isfinite(v):
                rows[n], vals[n] = i, v
                n += 1
        if n < min_n:
            continue
        order = np.argsort(vals[:n])
        k = 0
        while k < n:
            e = k
            while e + 1 < n and vals[order[e + 1]] == vals[order[k]]:
                e += 1
            pct = 50.0 * (k + e) / (n - 1)
            for q in range(k, e + 1):
                out[rows[order[q]], j] = pct
            k = e + 1


def percentile_rank(x: ArrayLike, min_count: int = 2) -> F64:
    """Per column (day), the average-rank percentile 0–100 among finite values.

    Equals `100 * (scipy.stats.rankdata(col[finite]) - 1) / (n - 1)` per column; NaN for
    non-finite cells and for columns with fewer than `max(min_count, 2)` finite values.
    """
    a = as_panel(x)
    out = np.empty_like(a)
    run_rows(_percentile_cols, a.shape[1], a, out, max(min_count, 2))
    return out


def _mean_available(parts: list[F64]) -> F64:
    """Cell-wise mean over the finite parts; NaN where none is finite."""
    total = np.zeros_like(parts[0])
    n = np.zeros_like(parts[0])
    for p in parts:
        ok = np.isfinite(p)
        total += np.where(ok, p, 0.0)
        n += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def combine(features: dict[str, F64], mask: B1, cfg: GradeConfig) -> F64:
    """A sub-grade: the percentile of the mean percentile of its (higher-is-better) features."""
    pcts = [
        percentile_rank(np.where(mask, f, np.nan), cfg.min_feature_tokens)
        for f in features.values()
    ]
    return percentile_rank(np.where(mask, _mean_available(pcts), np.nan), cfg.min_tokens)


def weighted(subs: dict[str, F64], weights: dict[str, float]) -> F64:
    """Σ w·sub with the weights normalised to sum 1; NaN unless every sub-grade is known."""
    total = sum(weights.values())
    if total <= 0:
        raise UserInputError("grade weights must sum to a positive number")
    out = np.zeros_like(next(iter(subs.values())))
    for name, w in weights.items():
        out = out + (w / total) * subs[name]
    return out


# --- rolling helpers (O(tokens × days)) ----------------------------------------------------


@njit
def _rolling_sum_rows(x: F64, window: int, out: tuple[F64, F64], r0: int, r1: int) -> None:
    s_out, n_out = out
    t = x.shape[1]
    cs = np.zeros(t + 1)
    cn = np.zeros(t + 1)
    for i in range(r0, r1):
        for j in range(t):  # prefix sums, left to right (as np.cumsum)
            v = x[i, j]
            ok = math.isfinite(v)
            cs[j + 1] = cs[j] + (v if ok else 0.0)
            cn[j + 1] = cn[j] + (1.0 if ok else 0.0)
        for j in range(t):
            lo = max(j + 1 - window, 0)
            s_out[i, j] = cs[j + 1] - cs[lo]
            n_out[i, j] = cn[j + 1] - cn[lo]


def _rolling_sum(x: F64, window: int) -> tuple[F64, F64]:
    """Sum and count of the finite values in (t - window, t] (prefix-sum differences)."""
    a = np.ascontiguousarray(x, dtype=np.float64)
    out = (np.empty_like(a), np.empty_like(a))
    run_rows(_rolling_sum_rows, a.shape[0], a, window, out)
    return out


def rolling_mean(x: F64, window: int, min_obs: int) -> F64:
    """Mean of the finite values in the last `window` days (NaN below `min_obs`)."""
    s, n = _rolling_sum(x, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= min_obs, s / n, np.nan)


def rolling_moments(r: F64, window: int, min_obs: int) -> tuple[F64, F64, F64]:
    """Mean, sample std (ddof=1) and downside deviation √mean(min(r,0)²) over a window.

    Same definitions as `returns.rolling_risk` (before annualising), via running sums.
    """
    s1, n = _rolling_sum(r, window)
    s2, _ = _rolling_sum(r * r, window)
    d2, _ = _rolling_sum(np.minimum(r, 0.0) ** 2, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = n >= max(min_obs, 2)
        mean = np.where(ok, s1 / n, np.nan)
        var = np.maximum(s2 - s1 * s1 / n, 0.0) / (n - 1)
        return mean, np.where(ok, np.sqrt(var), np.nan), np.where(ok, np.sqrt(d2 / n), np.nan)


def _lag(x: F64, n: int) -> F64:
    out = np.full_like(x, np.nan)
    if n < x.shape[1]:
        out[:, n:] = x[:, : x.shape[1] - n]
    return out


def _log_change(x: F64, n: int) -> F64:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(x / _lag(x, n))


@njit_parallel
def window_max_drawdown(close: F64, window: int) -> F64:
    """Deepest peak-to-trough fall of the valid closes within the last `window` days (<= 0)."""
    m, t = close.shape
    out = np.full((m, t), np.nan)
    for i in prange(m):
        for j in range(t):
            if not math.isfinite(close[i, j]):
                continue
            peak = -math.inf
            worst = 0.0
            for k in range(max(0, j - window + 1), j + 1):
                c = close[i, k]
                if math.isfinite(c):
                    peak = max(peak, c)
                    worst = min(worst, c / peak - 1.0)
            out[i, j] = worst
    return out


# --- features (higher is better) -----------------------------------------------------------


def _log(x: F64) -> F64:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)


def _ratio(a: F64, b: F64) -> F64:
    with np.errstate(invalid="ignore", divide="ignore"):
        return a / b


def _dollar_volume(inp: GradeInputs) -> F64:
    dv = inp.close * inp.volume
    if inp.quote_volume is not None:
        qv = inp.quote_volume
        dv = np.where(np.isfinite(qv) & (qv > 0), qv, dv)
    return np.where(dv > 0, dv, np.nan)


def _relative_strength(close: F64, r: F64, benchmark: int | None) -> F64:
    """30-day log return minus beta × BTC's (beta from 90 days of daily returns)."""
    lr30 = _log_change(close, 30)
    if benchmark is None:
        return lr30
    b = np.broadcast_to(r[benchmark], r.shape)
    both = np.isfinite(r) & np.isfinite(b)
    x, y = np.where(both, r, np.nan), np.where(both, b, np.nan)
    sxy, n = _rolling_sum(x * y, 90)
    sx, _ = _rolling_sum(x, 90)
    sy, _ = _rolling_sum(y, 90)
    syy, _ = _rolling_sum(y * y, 90)
    with np.errstate(invalid="ignore", divide="ignore"):
        var_b = syy - sy * sy / n
        beta = np.where((n >= 30) & (var_b > 0), (sxy - sx * sy / n) / var_b, np.nan)
    out: F64 = lr30 - beta * lr30[benchmark]
    return out


def trader_features(inp: GradeInputs) -> dict[str, dict[str, F64]]:
    """Technical, quant and liquidity features of the Trader Grade (higher is better)."""
    c = inp.close
    e50 = ema(c, 50)
    hist = macd(c).hist
    signals, _ = compute_signals(inp.high, inp.low, c, inp.volume)
    r = simple_returns(c)
    mean30, sd30, _ = rolling_moments(r, 30, 20)
    _, sd180, _ = rolling_moments(r, 180, 60)
    dv = _log(_dollar_volume(inp))
    dv30 = rolling_mean(dv, 30, 20)
    with np.errstate(invalid="ignore", divide="ignore"):
        illiquidity = rolling_mean(np.abs(r) / np.exp(dv), 30, 20)
    return {
        "technical": {
            "trend": _log(_ratio(c, e50)),
            "ema_cross": _log(_ratio(ema(c, 20), e50)),
            "rsi": rsi(c, 14),
            "macd": _ratio(hist, c),
            "signal_score": signals.score,
        },
        "quant": {
            "sharpe_30": _ratio(mean30, sd30),
            "vol_regime": -_ratio(sd30, sd180),
            "rs_btc": _relative_strength(c, r, inp.benchmark),
        },
        "liquidity": {
            "dollar_volume_30": dv30,
            "volume_trend": rolling_mean(dv, 7, 5) - dv30,
            "amihud_30": -_log(illiquidity),
        },
    }


def _history(close: F64) -> F64:
    """Valid closes seen up to each day (the token's track record in our data)."""
    return np.cumsum(np.isfinite(close), axis=1).astype(np.float64)


def _nan_panel(like: F64) -> F64:
    return np.full_like(like, np.nan)


def investor_features(inp: GradeInputs) -> dict[str, dict[str, F64]]:
    """Fundamentals, risk and valuation features of the Investor Grade (higher is better)."""
    c = inp.close
    nan = _nan_panel(c)
    mcap = inp.market_cap if inp.market_cap is not None else nan
    rank = inp.rank if inp.rank is not None else nan
    supply = inp.supply if inp.supply is not None else nan
    tvl = inp.tvl if inp.tvl is not None else nan
    activity = inp.activity if inp.activity is not None else nan
    dv = _dollar_volume(inp)
    r = simple_returns(c)
    mean365, _, down365 = rolling_moments(r, 365, 180)
    return {
        "fundamentals": {
            "market_cap": _log(mcap),
            "rank_trend": _lag(rank, 180) - rank,
            "liquidity_depth": rolling_mean(_log(dv), 90, 60),
            "turnover": rolling_mean(_log(_ratio(dv, mcap)), 90, 30),
            "age": np.minimum(_history(c), 4 * 365.0),
            "dilution": -_log_change(supply, 365),
            "tvl_growth": _log_change(tvl, 90),
            "activity_growth": _log_change(activity, 90),
        },
        "risk": {
            "sortino_365": _ratio(mean365, down365),
            "max_drawdown_365": window_max_drawdown(c, 365),
            "downside_dev_365": -down365,
        },
        "valuation": {
            "below_trend": -_log(_ratio(c, sma(c, 200))),
            "ath_drawdown": -drawdown_from_ath(c),
            "mcap_to_tvl": -_log(_ratio(mcap, tvl)),
        },
    }


def grade_features(inp: GradeInputs) -> dict[str, dict[str, F64]]:
    """All features of both grades by sub-grade; validates the panel shapes."""
    shape = inp.close.shape
    for name in ("high", "low", "volume", "quote_volume", "market_cap", "rank", "supply"):
        arr = getattr(inp, name)
        if arr is not None and arr.shape != shape:
            raise UserInputError(f"{name} must have the close panel's shape {shape}")
    for name in ("tvl", "activity"):
        arr = getattr(inp, name)
        if arr is not None and arr.shape != shape:
            raise UserInputError(f"{name} must have the close panel's shape {shape}")
    return {**trader_features(inp), **investor_features(inp)}


class Masks(NamedTuple):
    """Who is graded on which day: tokens × days booleans."""

    trader: B1
    investor: B1


def eligibility(inp: GradeInputs, cfg: GradeConfig) -> Masks:
    """Tokens with a close that day, enough history, and not excluded by `eligible`."""
    c = inp.close
    has = np.isfinite(c)
    if inp.eligible is not None:
        has = has & np.asarray(inp.eligible, dtype=bool)[:, None]
    hist = _history(c)
    return Masks(has & (hist >= cfg.trader_history), has & (hist >= cfg.investor_history))


def grades_from_features(
    features: dict[str, dict[str, F64]], masks: Masks, cfg: GradeConfig
) -> Grades:
    """Rank features per day into sub-grades and add them up into the two grades.

    Works on any set of day columns: pass features and masks sliced to one day to grade
    that day alone (the result equals that column of the full computation).
    """
    sub: dict[str, F64] = {}
    for name in TRADER_SUBS:
        sub[name] = combine(features[name], masks.trader, cfg)
    for name in INVESTOR_SUBS:
        sub[name] = combine(features[name], masks.investor, cfg)
    trader = weighted({k: sub[k] for k in TRADER_SUBS}, cfg.trader_weights)
    investor = weighted({k: sub[k] for k in INVESTOR_SUBS}, cfg.investor_weights)
    return Grades(trader, investor, sub)


def compute_grades(inp: GradeInputs, cfg: GradeConfig | None = None) -> Grades:
    """Trader and Investor Grades (and sub-grades) for every token and day."""
    cfg = cfg or GradeConfig()
    inp = _as_panels(inp)
    return grades_from_features(grade_features(inp), eligibility(inp, cfg), cfg)


def _as_panels(inp: GradeInputs) -> GradeInputs:
    def conv(x: F64 | None) -> F64 | None:
        return None if x is None else as_panel(x)

    return GradeInputs(
        close=as_panel(inp.close),
        high=as_panel(inp.high),
        low=as_panel(inp.low),
        volume=as_panel(inp.volume),
        quote_volume=conv(inp.quote_volume),
        benchmark=inp.benchmark,
        eligible=inp.eligible,
        market_cap=conv(inp.market_cap),
        rank=conv(inp.rank),
        supply=conv(inp.supply),
        tvl=conv(inp.tvl),
        activity=conv(inp.activity),
    )
