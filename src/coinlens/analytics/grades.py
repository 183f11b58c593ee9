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

import dataclasses
import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from coinlens.analytics.fingerprint import settings_id
from coinlens.analytics.indicators import as_panel, ema, macd, rsi, sma
from coinlens.analytics.ranking import add_percentiles, percentile_rank
from coinlens.analytics.returns import drawdown_from_ath, simple_returns
from coinlens.analytics.rolling import (
    rolling_beta,
    rolling_mean,
    rolling_moments,
    window_max_drawdown,
)
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


def method_id(cfg: GradeConfig) -> str:
    """Fingerprint of the grade settings (weights, windows, thresholds): a track record
    measured under one set is shown only next to grades computed with the same."""
    return settings_id(dataclasses.asdict(cfg))


class Grades(NamedTuple):
    """Trader and Investor Grades and the six sub-grades, each tokens × days, 0–100."""

    trader: F64
    investor: F64
    sub: dict[str, F64]


# --- ranking -------------------------------------------------------------------------------


def combine(features: Iterable[F64], mask: B1, cfg: GradeConfig) -> F64:
    """A sub-grade: the percentile of the mean percentile of its (higher-is-better) features.

    Features are consumed one at a time (a generator keeps one feature panel alive); each
    token's mean is over the features it has that day (e.g. chain TVL only where known).
    """
    total = np.zeros(mask.shape)
    count = np.zeros(mask.shape)
    for f in features:
        add_percentiles(f, total, count, cfg.min_feature_tokens, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(total, np.maximum(count, 1.0), out=total)
    total[count == 0] = np.nan
    return percentile_rank(total, cfg.min_tokens, mask)


def weighted(subs: dict[str, F64], weights: dict[str, float]) -> F64:
    """Σ w·sub with the weights normalised to sum 1; NaN unless every sub-grade is known."""
    total = sum(weights.values())
    if total <= 0:
        raise UserInputError("grade weights must sum to a positive number")
    out = np.zeros_like(next(iter(subs.values())))
    for name, w in weights.items():
        out = out + (w / total) * subs[name]
    return out


def _lag(x: F64, n: int) -> F64:
    out = np.full_like(x, np.nan)
    if n < x.shape[1]:
        out[:, n:] = x[:, : x.shape[1] - n]
    return out


def _log_change(x: F64, n: int) -> F64:
    out = _lag(x, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(x, out, out=out)
        return np.log(out, out=out)


# --- features (higher is better) -----------------------------------------------------------


def _log(x: F64) -> F64:
    """log x where x > 0, NaN elsewhere (one output panel, no temporaries but the mask)."""
    out = np.full(x.shape, np.nan)
    np.log(x, out=out, where=x > 0)
    return out


def _neg(x: F64) -> F64:
    """-x in place (for panels this module just built)."""
    return np.negative(x, out=x)


def _ratio(a: F64, b: F64) -> F64:
    with np.errstate(invalid="ignore", divide="ignore"):
        return a / b


def _dollar_volume(inp: GradeInputs) -> F64:
    dv = inp.close * inp.volume
    if inp.quote_volume is not None:
        qv = inp.quote_volume
        np.copyto(dv, qv, where=np.isfinite(qv) & (qv > 0))
    dv[~(dv > 0)] = np.nan
    return dv


def _relative_strength(close: F64, r: F64, benchmark: int | None) -> F64:
    """30-day log return minus beta × BTC's (beta from 90 days of daily returns)."""
    lr30 = _log_change(close, 30)
    if benchmark is None:
        return lr30
    beta = rolling_beta(r, r[benchmark], 90, 30)
    np.multiply(beta, lr30[benchmark], out=beta)
    return np.subtract(lr30, beta, out=lr30)


SIGNAL_CHUNK = 1024  # tokens per `compute_signals` call: it keeps 8 indicator panels


def _signal_score(inp: GradeInputs) -> F64:
    """The signal score of `analytics.signals` (per token, so computed a chunk at a time)."""
    out = np.empty_like(inp.close)
    for a in range(0, out.shape[0], SIGNAL_CHUNK):
        rows = slice(a, a + SIGNAL_CHUNK)
        signals, _ = compute_signals(
            inp.high[rows], inp.low[rows], inp.close[rows], inp.volume[rows]
        )
        out[rows] = signals.score
    return out


Feature = tuple[str, str, F64]
"""(sub-grade, feature name, tokens × days panel), higher is better."""


def _trader_features(inp: GradeInputs, r: F64) -> Iterator[Feature]:
    """Technical, quant and liquidity features of the Trader Grade, one panel at a time."""
    c = inp.close
    e50 = ema(c, 50)
    yield "technical", "trend", _log(_ratio(c, e50))
    yield "technical", "ema_cross", _log(_ratio(ema(c, 20), e50))
    del e50
    yield "technical", "rsi", rsi(c, 14)
    yield "technical", "macd", _ratio(macd(c).hist, c)
    yield "technical", "signal_score", _signal_score(inp)
    mean30, sd30, _ = rolling_moments(r, 30, 20)
    yield "quant", "sharpe_30", _ratio(mean30, sd30)
    del mean30
    yield "quant", "vol_regime", _neg(_ratio(sd30, rolling_moments(r, 180, 60)[1]))
    del sd30
    yield "quant", "rs_btc", _relative_strength(c, r, inp.benchmark)
    dv = _log(_dollar_volume(inp))
    dv30 = rolling_mean(dv, 30, 20)
    yield "liquidity", "dollar_volume_30", dv30
    trend = rolling_mean(dv, 7, 5)
    yield "liquidity", "volume_trend", np.subtract(trend, dv30, out=trend)
    del dv30, trend
    with np.errstate(invalid="ignore", divide="ignore"):  # |r| / dollar volume, in dv's place
        per_dollar = np.divide(np.abs(r), np.exp(dv, out=dv), out=dv)
    yield "liquidity", "amihud_30", _neg(_log(rolling_mean(per_dollar, 30, 20)))


def _history(close: F64) -> F64:
    """Valid closes seen up to each day (the token's track record in our data)."""
    return np.cumsum(np.isfinite(close), axis=1).astype(np.float64)


def _investor_features(inp: GradeInputs, r: F64) -> Iterator[Feature]:
    """Fundamentals, risk and valuation features of the Investor Grade, one panel at a time.

    A feature whose input is absent (no caps, no chain data) is not built: it would be NaN
    everywhere, which ranks as missing, so skipping it changes no grade.
    """
    c = inp.close
    mcap, tvl = inp.market_cap, inp.tvl
    dv = _dollar_volume(inp)
    if mcap is not None:
        yield "fundamentals", "market_cap", _log(mcap)
    if inp.rank is not None:
        yield "fundamentals", "rank_trend", _lag(inp.rank, 180) - inp.rank
    yield "fundamentals", "liquidity_depth", rolling_mean(_log(dv), 90, 60)
    if mcap is not None:
        yield "fundamentals", "turnover", rolling_mean(_log(_ratio(dv, mcap)), 90, 30)
    del dv
    yield "fundamentals", "age", np.minimum(_history(c), 4 * 365.0)
    if inp.supply is not None:
        yield "fundamentals", "dilution", _neg(_log_change(inp.supply, 365))
    if tvl is not None:
        yield "fundamentals", "tvl_growth", _log_change(tvl, 90)
    if inp.activity is not None:
        yield "fundamentals", "activity_growth", _log_change(inp.activity, 90)
    mean365, _, down365 = rolling_moments(r, 365, 180)
    yield "risk", "sortino_365", _ratio(mean365, down365)
    del mean365
    yield "risk", "max_drawdown_365", window_max_drawdown(c, 365)
    yield "risk", "downside_dev_365", _neg(down365)
    del down365
    yield "valuation", "below_trend", _neg(_log(_ratio(c, sma(c, 200))))
    yield "valuation", "ath_drawdown", _neg(drawdown_from_ath(c))
    if mcap is not None and tvl is not None:
        yield "valuation", "mcap_to_tvl", _neg(_log(_ratio(mcap, tvl)))


def _check_shapes(inp: GradeInputs) -> None:
    shape = inp.close.shape
    for name in (
        "high",
        "low",
        "volume",
        "quote_volume",
        "market_cap",
        "rank",
        "supply",
        "tvl",
        "activity",
    ):
        arr = getattr(inp, name)
        if arr is not None and arr.shape != shape:
            raise UserInputError(f"{name} must have the close panel's shape {shape}")


def feature_stream(inp: GradeInputs) -> Iterator[Feature]:
    """Every feature of both grades, grouped by sub-grade in `SUB_GRADES` order.

    Panels are produced one after another and dropped by this generator once yielded, so a
    consumer that ranks each and lets it go holds one feature panel at a time.
    """
    _check_shapes(inp)
    r = simple_returns(inp.close)
    yield from _trader_features(inp, r)
    yield from _investor_features(inp, r)


def grade_features(inp: GradeInputs) -> dict[str, dict[str, F64]]:
    """All features of both grades by sub-grade (every panel at once: for small panels)."""
    out: dict[str, dict[str, F64]] = {}
    for sub, name, panel in feature_stream(inp):
        out.setdefault(sub, {})[name] = panel
    return out


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


def _grades(sub: dict[str, F64], cfg: GradeConfig) -> Grades:
    trader = weighted({k: sub[k] for k in TRADER_SUBS}, cfg.trader_weights)
    investor = weighted({k: sub[k] for k in INVESTOR_SUBS}, cfg.investor_weights)
    return Grades(trader, investor, sub)


def _mask_of(masks: Masks, sub: str) -> B1:
    return masks.trader if sub in TRADER_SUBS else masks.investor


def grades_from_features(
    features: dict[str, dict[str, F64]], masks: Masks, cfg: GradeConfig
) -> Grades:
    """Rank features per day into sub-grades and add them up into the two grades.

    Works on any set of day columns: pass features and masks sliced to one day to grade
    that day alone (the result equals that column of the full computation).
    """
    sub = {n: combine(features[n].values(), _mask_of(masks, n), cfg) for n in SUB_GRADES}
    return _grades(sub, cfg)


def compute_grades(inp: GradeInputs, cfg: GradeConfig | None = None, first_day: int = 0) -> Grades:
    """Trader and Investor Grades (and sub-grades) for every token, days `first_day` on.

    Features use the whole history given; only days from `first_day` are ranked, so the
    result equals those columns of the full computation. One feature panel at a time is
    alive besides the six sub-grades.
    """
    cfg = cfg or GradeConfig()
    inp = _as_panels(inp)
    full = eligibility(inp, cfg)
    masks = Masks(full.trader[:, first_day:], full.investor[:, first_day:])
    sub: dict[str, F64] = {}
    stream = feature_stream(inp)
    for name, group in itertools.groupby(stream, key=lambda f: f[0]):
        sub[name] = combine((f[2][:, first_day:] for f in group), _mask_of(masks, name), cfg)
    return _grades(sub, cfg)


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
