"""Quantile price forecasts: a global LightGBM model blended with a random walk, conformally
calibrated, plus the random-walk baseline itself. Pure: arrays in, arrays out, no I/O.

Method (see docs/predictions.md):

* Target: the h-day log return standardised by the trailing daily vol, z = y / (σ_t √h),
  so one global model pools tokens of very different volatility.
* One LightGBM quantile regressor per horizon × quantile, trained on origins t whose target
  day t + h is <= the cut-off (no look-ahead; features at t use data <= t).
* Reference distribution: the random walk's z-quantiles Φ⁻¹(q), optionally with the vol pulled
  towards the slow 365-day vol: Φ⁻¹(q) · (σ₃₆₅/σ)^β (β = 0 is the plain random walk).
* Calibration window: the last `calib_days` origins before the cut-off are held out from a
  first fit. On them the reference's β is the one with the lowest pinball loss; the model
  then enters the blend only where the window shows it beats that reference by more than
  noise: two weights, one for the location (the median, wl) and one for the shape (the
  distances of the other levels from the median, ws), are taken only if their gain per
  origin day, minus one standard error from non-overlapping h-day batch means, is > 0 (so
  at 90 days, ~4 independent outcomes per window, the model needs a large, steady gain).
  Then one conformal scale per central interval stretches or shrinks its distance from the
  median until its coverage on the window is nominal; because a window holds only
  calib_days / h independent h-day outcomes, each scale is shrunk towards 1 with weight
  n / (n + n0), n = calib_days / h. The boosters are then refit on every origin up to the
  cut-off (`refit`), keeping the weights and the scales.
* Random walk baseline: log-price quantiles log c_t + Φ⁻¹(q) σ_t √h, drift 0.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import NamedTuple

import lightgbm as lgb
import numpy as np
from numpy.typing import NDArray

from coinlens.analytics._jit import threads
from coinlens.analytics.fingerprint import settings_id
from coinlens.analytics.forecast_features import FeaturePanel, split_cells
from coinlens.analytics.scoring import pinball

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

QUANTILES = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
QUANTILE_NAMES = ("p05", "p10", "p25", "p50", "p75", "p90", "p95")
HORIZONS = (1, 7, 30, 90)
INTERVALS = (50, 80, 90)  # central intervals (%) they bound: p25-p75, p10-p90, p05-p95
Z = np.array([NormalDist().inv_cdf(q) for q in QUANTILES])
MEDIAN = QUANTILES.index(0.5)


@dataclass(frozen=True)
class ForecastConfig:
    """Size and calibration settings of the global model (defaults: the production model)."""

    horizons: tuple[int, ...] = HORIZONS
    n_trees: int = 40
    learning_rate: float = 0.1
    num_leaves: int = 15
    min_data_in_leaf: int = 400
    max_rows: int = 60_000
    calib_days: int = 365
    min_age: int = 120  # days of history a training origin needs
    blend_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    vol_exponents: tuple[float, ...] = (0.0, 0.5)  # β candidates of the reference distribution
    scale_prior: float = 8.0  # n0: shrink conformal scales by n / (n + n0), n = calib_days / h
    evidence_se: float = 1.0  # k: the model joins the blend only if gain - k·SE > 0 on the window
    refit: bool = True
    seed: int = 7


@dataclass(frozen=True)
class HorizonModel:
    """The boosters of one horizon (one per quantile), blend weights and conformal scales.

    `weight` is the model's share of the shape (spread/skew), `loc_weight` its share of the
    median, `vol_exponent` the β of the reference Φ⁻¹(q)·(σ₃₆₅/σ)^β.
    """

    horizon: int
    boosters: tuple[str, ...]
    weight: float
    scales: tuple[float, ...]
    metrics: dict[str, float] = field(default_factory=dict)
    loc_weight: float | None = None  # None: same as `weight` (models stored before the split)
    vol_exponent: float = 0.0

    @property
    def location(self) -> float:
        """The model's weight in the median."""
        return self.weight if self.loc_weight is None else self.loc_weight


@dataclass(frozen=True)
class QuantileModel:
    """A trained global model: features it expects, cut-off column and one entry per horizon."""

    feature_names: tuple[str, ...]
    cutoff: int  # last column (day index) of the data it was trained on
    horizons: tuple[HorizonModel, ...]

    def to_bytes(self) -> bytes:
        """Serialise (boosters via `model_to_string`) as compressed JSON."""
        doc = {
            "feature_names": list(self.feature_names),
            "cutoff": self.cutoff,
            "horizons": [
                {
                    "horizon": h.horizon,
                    "boosters": list(h.boosters),
                    "weight": h.weight,
                    "scales": list(h.scales),
                    "metrics": h.metrics,
                    "loc_weight": h.location,
                    "vol_exponent": h.vol_exponent,
                }
                for h in self.horizons
            ],
        }
        return zlib.compress(json.dumps(doc).encode(), 6)

    @classmethod
    def from_bytes(cls, blob: bytes) -> QuantileModel:
        """Inverse of `to_bytes`."""
        doc = json.loads(zlib.decompress(blob))
        return cls(
            feature_names=tuple(doc["feature_names"]),
            cutoff=int(doc["cutoff"]),
            horizons=tuple(
                HorizonModel(
                    horizon=int(h["horizon"]),
                    boosters=tuple(h["boosters"]),
                    weight=float(h["weight"]),
                    scales=tuple(float(s) for s in h["scales"]),
                    metrics={k: float(v) for k, v in h["metrics"].items()},
                    loc_weight=float(h.get("loc_weight", h["weight"])),
                    vol_exponent=float(h.get("vol_exponent", 0.0)),
                )
                for h in doc["horizons"]
            ),
        )


def random_walk_z(n: int) -> F64:
    """Standardised random-walk quantiles Φ⁻¹(q), one row per origin."""
    return np.asarray(np.broadcast_to(Z, (n, len(QUANTILES))), dtype=np.float64)


def to_log_price(log_close: F64, sigma: F64, horizon: int, zq: F64) -> F64:
    """Log-price quantiles from standardised quantiles: log c + z σ √h."""
    return np.asarray(log_close[:, None] + zq * (sigma * math.sqrt(horizon))[:, None])


def origins(fp: FeaturePanel, first: int, last: int, horizon: int, min_age: int) -> I64:
    """(token, day) pairs with an observed close and enough history, first <= day <= last."""
    return split_cells(_origin_cells(fp, first, last, horizon, min_age), fp.observed.shape[1])


def _origin_cells(fp: FeaturePanel, first: int, last: int, horizon: int, min_age: int) -> I64:
    """The `origins` as flat cells token * days + day, ascending (one array, not two)."""
    obs = fp.observed.copy()
    obs[:, : max(first, 0)] = False
    obs[:, last + 1 :] = False
    obs &= np.cumsum(np.isfinite(fp.log_close), axis=1, dtype=np.int32) >= min_age
    # the target needs an observed close h days later
    end = max(obs.shape[1] - horizon, 0)  # no target day inside the panel from here on
    obs[:, end:] = False
    obs[:, :end] &= fp.observed[:, horizon:]
    return np.flatnonzero(obs)


def _rows(fp: FeaturePanel, idx: I64, horizon: int) -> tuple[NDArray[np.float32], F64]:
    tok, day = idx[:, 0], idx[:, 1]
    y = fp.log_close[tok, day + horizon] - fp.log_close[tok, day]
    zt = y / (fp.sigma[tok, day] * math.sqrt(horizon))
    return fp.at(tok, day), zt


def _fit(
    x: NDArray[np.float32], z: F64, cfg: ForecastConfig, horizon: int
) -> tuple[lgb.Booster, ...]:
    params = {
        "objective": "quantile",
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "max_bin": 63,
        "num_threads": 1,
        "verbose": -1,
        "seed": cfg.seed + horizon,
        "deterministic": True,
        "force_row_wise": True,
    }
    data = lgb.Dataset(x, label=np.clip(z, -12.0, 12.0), free_raw_data=False)
    return tuple(
        lgb.train({**params, "alpha": q}, data, num_boost_round=cfg.n_trees) for q in QUANTILES
    )


def _predict_z(boosters: Sequence[lgb.Booster], x: NDArray[np.float32]) -> F64:
    raw = np.column_stack([b.predict(x, num_threads=1) for b in boosters])
    return np.sort(np.asarray(raw, dtype=np.float64), axis=1)  # no quantile crossing


def _subsample(idx: I64, max_rows: int, rng: np.random.Generator) -> I64:
    if len(idx) <= max_rows:
        return idx
    return idx[np.sort(rng.choice(len(idx), size=max_rows, replace=False))]


def conformal_scales(z: F64, blended: F64) -> tuple[float, ...]:
    """Per central interval (q, 1-q), the factor on its distance from the median that makes
    its empirical coverage on the calibration window nominal (split-conformal, symmetric in
    the two tails so a one-sided regime on the window does not skew the interval)."""
    med = blended[:, MEDIAN]
    scales = [1.0] * len(QUANTILES)
    for k in range(MEDIAN):
        lo = np.maximum(med - blended[:, k], 1e-6)
        hi = np.maximum(blended[:, -1 - k] - med, 1e-6)
        r = np.maximum((med - z) / lo, (z - med) / hi)
        nominal = QUANTILES[-1 - k] - QUANTILES[k]
        s = float(np.clip(np.quantile(r, nominal), 0.2, 5.0))
        scales[k] = scales[-1 - k] = s
    return tuple(scales)


@dataclass(frozen=True)
class Blend:
    """How model and reference z-quantiles combine (chosen on the calibration window)."""

    loc: float  # model's weight in the median
    shape: float  # model's weight in the distances of the other levels from the median
    vol_exponent: float  # β of the reference Φ⁻¹(q)·(σ₃₆₅/σ)^β
    scales: tuple[float, ...] = (1.0,) * len(QUANTILES)


def blend_of(hm: HorizonModel) -> Blend:
    """The blend stored in a trained horizon."""
    return Blend(hm.location, hm.weight, hm.vol_exponent, hm.scales)


def reference_z(ratio: F64, vol_exponent: float) -> F64:
    """Reference z-quantiles Φ⁻¹(q)·ratio^β per origin (β = 0: the random walk's)."""
    return np.asarray(Z[None, :] * (np.asarray(ratio)[:, None] ** vol_exponent), dtype=np.float64)


def _combine(zm: F64, ratio: F64, blend: Blend) -> F64:
    med = zm[:, MEDIAN : MEDIAN + 1]
    shape = blend.shape * (zm - med) + (1.0 - blend.shape) * reference_z(ratio, blend.vol_exponent)
    return np.asarray(blend.loc * med + shape * np.asarray(blend.scales)[None, :])


def apply_calibration(zm: F64, ratio: F64, blend: Blend) -> F64:
    """Median = loc·model median (the RW's is 0); shape = shape·model + (1-shape)·reference;
    then each level's distance from the median times its conformal scale."""
    return np.sort(_combine(zm, ratio, blend), axis=1)


def shrunk_scales(scales: Sequence[float], horizon: int, cfg: ForecastConfig) -> tuple[float, ...]:
    """Shrink conformal scales towards 1 by n / (n + n0), n = calib_days / h independent
    h-day outcomes in the window (a 90-day scale rests on ~4 of them)."""
    n = cfg.calib_days / horizon
    lam = n / (n + cfg.scale_prior) if cfg.scale_prior > 0 else 1.0
    return tuple(1.0 + lam * (s - 1.0) for s in scales)


def row_pinball(z: F64, q: F64) -> F64:
    """Pinball loss of each row averaged over the 7 levels (mean of it = `pinball(...).mean()`)."""
    diff = z[:, None] - q
    tau = np.asarray(QUANTILES)[None, :]
    return np.asarray(np.maximum(tau * diff, (tau - 1.0) * diff).mean(axis=1))


def batch_se(daily: F64, horizon: int) -> float:
    """Standard error of the mean of a daily series whose h-day outcomes overlap (batch means).

    The series is cut into non-overlapping blocks of `horizon` consecutive days, counted back
    from the latest (the oldest remainder is dropped); SE = sd(block means) / √blocks. With
    fewer than 2 blocks the mean has no usable error estimate: +inf.
    """
    blocks = len(daily) // horizon
    if blocks < 2:
        return math.inf
    means = np.asarray(daily)[len(daily) - blocks * horizon :].reshape(blocks, horizon).mean(axis=1)
    return float(means.std(ddof=1) / math.sqrt(blocks))


def _reference(z: F64, ratio: F64, cfg: ForecastConfig) -> tuple[float, F64]:
    """The β whose reference has the lowest window pinball (ties keep the smaller β) and the
    per-row loss of that reference."""
    best: tuple[float, F64] | None = None
    for beta in sorted(cfg.vol_exponents):
        loss = row_pinball(z, reference_z(ratio, beta))
        if best is None or loss.mean() < best[1].mean():
            best = (beta, loss)
    if best is None:
        raise ValueError("vol_exponents is empty")
    return best


def _choose_blend(
    zm: F64, ratio: F64, z: F64, window: tuple[I64, int], cfg: ForecastConfig
) -> tuple[Blend, float]:
    """The blend with the best evidence of beating the reference on the calibration window.

    `window` = (origin day of each row, horizon). The reference is the β with the lowest
    window pinball. A blend that gives the model weight (location or shape) is taken only if
    its gain over the reference, averaged per origin day, minus `evidence_se` standard errors
    (non-overlapping h-day batch means, `batch_se`) is > 0, and the largest such lower bound
    wins; otherwise the reference stays. So at long horizons, where a 365-day window holds
    only ~365/h independent outcomes, the model needs a gain that is large against that noise.
    Returns the blend and that lower bound (0 when the reference stays).
    """
    day, horizon = window
    beta0, base = _reference(z, ratio, cfg)
    _, per_day = np.unique(day, return_inverse=True)
    count = np.bincount(per_day)
    med = zm[:, MEDIAN : MEDIAN + 1]
    dev = zm - med
    best, best_lcb = Blend(0.0, 0.0, beta0), 0.0
    for beta in cfg.vol_exponents:
        ref = reference_z(ratio, beta)
        for shape_w in cfg.blend_grid:
            shape = shape_w * dev + (1.0 - shape_w) * ref
            for loc in cfg.blend_grid:
                gain = base - row_pinball(z, loc * med + shape)
                daily = np.bincount(per_day, weights=gain) / count
                se = batch_se(daily, horizon) if cfg.evidence_se > 0 else 0.0
                lcb = float(daily.mean()) - cfg.evidence_se * se
                if lcb > best_lcb:
                    best, best_lcb = Blend(loc, shape_w, beta), lcb
    return best, best_lcb


def _calibrate(
    hm: tuple[lgb.Booster, ...],
    rows: tuple[NDArray[np.float32], F64, F64, I64],
    horizon: int,
    cfg: ForecastConfig,
) -> tuple[Blend, dict[str, float]]:
    x, z, ratio, day = rows
    zm = _predict_z(hm, x)
    blend, lcb = _choose_blend(zm, ratio, z, (day, horizon), cfg)
    blended = _combine(zm, ratio, blend)
    raw = conformal_scales(z, blended)
    metrics = {
        "calib_rows": float(len(z)),
        "pinball_rw": float(pinball(z, random_walk_z(len(z)), QUANTILES).mean()),
        "pinball_model": float(pinball(z, zm, QUANTILES).mean()),
        "pinball_blend": float(pinball(z, blended, QUANTILES).mean()),
        "blend_gain_lcb": lcb,
    }
    blend = Blend(blend.loc, blend.shape, blend.vol_exponent, shrunk_scales(raw, horizon, cfg))
    return blend, metrics


class Samples(NamedTuple):
    """A horizon's training origins: first fit, calibration window, refit (or None)."""

    fit: I64
    cal: I64
    refit: I64 | None


def samples(fp: FeaturePanel, cutoff: int, horizon: int, cfg: ForecastConfig) -> Samples:
    """The (token, day) origins `train_horizon` fits and calibrates on (seeded sampling:
    needs only the log close and `observed`, so the features can be built for these alone)."""
    rng = np.random.default_rng(cfg.seed + horizon)
    calib_last = cutoff - horizon
    calib_first = calib_last - cfg.calib_days + 1
    days = fp.observed.shape[1]
    fit_cells = _origin_cells(fp, 0, calib_first - horizon - 1, horizon, cfg.min_age)
    cal_cells = _origin_cells(fp, calib_first, calib_last, horizon, cfg.min_age)
    if len(fit_cells) < 2 * cfg.min_data_in_leaf or len(cal_cells) < 100:
        raise ValueError(f"not enough history to train horizon {horizon}d before the cut-off")
    fit = split_cells(_subsample(fit_cells, cfg.max_rows, rng), days)
    cal = split_cells(_subsample(cal_cells, cfg.max_rows, rng), days)
    del fit_cells, cal_cells
    refit = None
    if cfg.refit:
        every = _origin_cells(fp, 0, calib_last, horizon, cfg.min_age)
        refit = split_cells(_subsample(every, cfg.max_rows, rng), days)
    return Samples(fit, cal, refit)


def training_cells(fp: FeaturePanel, cutoff: int, cfg: ForecastConfig | None = None) -> I64:
    """Every (token, day) whose features `train` reads (for `build_features(only=...)`)."""
    c = cfg or ForecastConfig()
    parts = [idx for h in c.horizons for idx in samples(fp, cutoff, h, c) if idx is not None]
    return np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.int64)


def train_horizon(fp: FeaturePanel, cutoff: int, horizon: int, cfg: ForecastConfig) -> HorizonModel:
    """Fit, calibrate on the held-out window, and (optionally) refit one horizon's boosters."""
    fit, cal, refit = samples(fp, cutoff, horizon, cfg)
    boosters = _fit(*_rows(fp, fit, horizon), cfg, horizon)
    xc, zc = _rows(fp, cal, horizon)
    blend, metrics = _calibrate(
        boosters, (xc, zc, fp.vol_ratio[cal[:, 0], cal[:, 1]], cal[:, 1]), horizon, cfg
    )
    if refit is not None:
        boosters = _fit(*_rows(fp, refit, horizon), cfg, horizon)
    return HorizonModel(
        horizon=horizon,
        boosters=tuple(b.model_to_string() for b in boosters),
        weight=blend.shape,
        scales=blend.scales,
        metrics=metrics,
        loc_weight=blend.loc,
        vol_exponent=blend.vol_exponent,
    )


def train(fp: FeaturePanel, cutoff: int, cfg: ForecastConfig | None = None) -> QuantileModel:
    """Train every horizon on data up to column `cutoff` (targets included).

    Horizons are independent (own samples, seeds and boosters, each booster on one thread),
    so they train side by side on up to `set_threads` threads: LightGBM and NumPy release
    the GIL, and the model is the same whatever the thread count.
    """
    c = cfg or ForecastConfig()
    n_threads = min(threads(), len(c.horizons))
    if n_threads <= 1:
        horizons = tuple(train_horizon(fp, cutoff, h, c) for h in c.horizons)
    else:
        with ThreadPoolExecutor(n_threads) as pool:
            horizons = tuple(pool.map(lambda h: train_horizon(fp, cutoff, h, c), c.horizons))
    return QuantileModel(feature_names=fp.names, cutoff=cutoff, horizons=horizons)


def method_id(cfg: ForecastConfig, feature_names: Sequence[str]) -> str:
    """Fingerprint of a method's settings and feature list: a track record measured under one
    method is shown only next to models made by the same one."""
    return settings_id([dataclasses.asdict(cfg), list(feature_names)])


def load_boosters(model: QuantileModel) -> dict[int, tuple[lgb.Booster, ...]]:
    """Deserialise each horizon's boosters once (reuse the result across predictions)."""
    return {h.horizon: tuple(lgb.Booster(model_str=s) for s in h.boosters) for h in model.horizons}


def predict(
    model: QuantileModel,
    fp: FeaturePanel,
    idx: I64,
    boosters: dict[int, tuple[lgb.Booster, ...]] | None = None,
) -> dict[int, F64]:
    """Log-price quantiles per horizon for origins `idx` ((token, day) rows): {h: (n, 7)}."""
    if fp.names != model.feature_names:
        raise ValueError(f"features differ from the model's: {fp.names} vs {model.feature_names}")
    loaded = boosters or load_boosters(model)
    tok, day = idx[:, 0], idx[:, 1]
    x, lc, sigma = fp.at(tok, day), fp.log_close[tok, day], fp.sigma[tok, day]
    ratio = fp.vol_ratio[tok, day]
    out = {}
    for hm in model.horizons:
        zq = apply_calibration(_predict_z(loaded[hm.horizon], x), ratio, blend_of(hm))
        out[hm.horizon] = to_log_price(lc, sigma, hm.horizon, zq)
    return out


def predict_random_walk(fp: FeaturePanel, idx: I64, horizons: Sequence[int]) -> dict[int, F64]:
    """The baseline: log c + Φ⁻¹(q) σ √h with σ the trailing 30-day daily vol, drift 0."""
    tok, day = idx[:, 0], idx[:, 1]
    lc, sigma = fp.log_close[tok, day], fp.sigma[tok, day]
    return {h: to_log_price(lc, sigma, h, random_walk_z(len(idx))) for h in horizons}


def quantiles_at(ret_q: F64, horizons: Sequence[int], days: float) -> F64:
    """Log-return quantiles (7,) at any horizon `days` >= 1 from those at `horizons` ((H, 7)).

    The median is interpolated linearly in time; each level's distance from the median is
    divided by √h, interpolated linearly in time, and multiplied back by √days (random-walk
    spreading). Beyond the longest horizon the last per-day drift and per-√day spread carry on.
    """
    hs = np.asarray(horizons, dtype=np.float64)
    med = ret_q[:, MEDIAN]
    spread = (ret_q - med[:, None]) / np.sqrt(hs)[:, None]
    if days <= hs[0]:
        m = med[0] * days / hs[0]
        s = spread[0]
    elif days >= hs[-1]:
        m = med[-1] * days / hs[-1]
        s = spread[-1]
    else:
        m = float(np.interp(days, hs, med))
        s = np.array([np.interp(days, hs, spread[:, k]) for k in range(len(QUANTILES))])
    return np.sort(m + s * math.sqrt(days))


def cdf(log_q: F64, x: float) -> float:
    """P(log price <= x) from 7 quantiles: inside p05…p95, z = Φ⁻¹(q) interpolated linearly in
    log price; beyond them exponential tails, P(beyond x) = 5 % · exp(-distance / b) with b
    the outer segment's width over ln 2 (p10→p05 halves the tail, so does each further b·ln 2).

    Exponential, not normal, tails: on the walk-forward's development rows the normal-like
    extension put 0.46–0.71 % of 1/7-day outcomes beyond its 0.1 % levels, the exponential
    0.16–0.37 % (docs/predictions.md)."""
    q = np.maximum.accumulate(np.asarray(log_q, dtype=np.float64))
    q = q + np.arange(len(q)) * 1e-12  # strictly increasing for interpolation
    tail = QUANTILES[0]  # the mass beyond each outer quantile (p05, p95)
    if x <= q[0]:
        return tail * math.exp(-(q[0] - x) * math.log(2) / (q[1] - q[0]))
    if x >= q[-1]:
        return 1.0 - tail * math.exp(-(x - q[-1]) * math.log(2) / (q[-1] - q[-2]))
    return NormalDist().cdf(float(np.interp(x, q, Z)))


def probability(
    log_q: F64, horizons: Sequence[int], log_price: float, level: float, days: float, *, above: bool
) -> tuple[float, float]:
    """(P at day D, P by day D) that the close is >= `level` (above) or <= `level` (below).

    `log_q` holds the log-price quantiles (H, 7) forecast from the close `exp(log_price)`.

    "At D" reads the interpolated distribution at horizon `days`. "By D" (touched on any day
    up to D) uses the reflection principle of a driftless random walk: P(max ≥ X) =
    2·P(S_D ≥ X), capped at 1 — an approximation (it ignores drift and daily sampling, so it
    slightly overstates); if the level is already reached the answer is 1.
    """
    x = math.log(level)
    p_below = cdf(quantiles_at(log_q - log_price, horizons, days), x - log_price)
    p_at = 1.0 - p_below if above else p_below
    reached = log_price >= x if above else log_price <= x
    p_by = 1.0 if reached else min(1.0, 2.0 * p_at)
    return p_at, max(p_at, p_by)


def scenarios(log_q: F64) -> dict[str, F64]:
    """Bear / base / bull price per horizon: p10 / p50 / p90 of the forecast (prices)."""
    return {
        "bear": np.exp(log_q[:, QUANTILES.index(0.10)]),
        "base": np.exp(log_q[:, MEDIAN]),
        "bull": np.exp(log_q[:, QUANTILES.index(0.90)]),
    }
