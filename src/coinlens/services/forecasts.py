"""Price forecasts: train the global quantile model, predict after each ingest, answer queries.

`run_forecasts(ctx)` is the pipeline step: retrain when the newest model's cut-off is
RETRAIN_DAYS or more behind the data, then predict every token with MIN_HISTORY daily closes
at its latest close. Forecasts are stored per model, so each row names the model (its id,
cut-off and feature list live in `models`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from sqlalchemy.engine import Connection

from coinlens.analytics import forecast as fc
from coinlens.analytics import forecast_features
from coinlens.analytics.fingerprint import settings_id
from coinlens.analytics.forecast_features import TOKEN_FEATURES, FeaturePanel, build_features
from coinlens.domain.errors import DataUnavailable, NotFound, Problem, ValidationFailed
from coinlens.domain.forecasts import (
    HorizonForecast,
    KeyLevel,
    ModelInfo,
    Predictions,
    Probability,
    Quantiles,
    Scenario,
    Scenarios,
    TrackRecord,
)
from coinlens.domain.numbers import change
from coinlens.services import analytics_queries, track_records
from coinlens.services import scenario_levels as sl
from coinlens.services.catalog import unknown_token
from coinlens.services.context import Context
from coinlens.storage import forecasts_repo as repo
from coinlens.storage.panel import Panel, read_daily_panel
from coinlens.storage.tables import utcnow

log = structlog.get_logger(__name__)

KIND = "lgbm-quantile"
RW_KIND = "random-walk"
EVALUATION_KIND = "forecasts"  # `evaluations` rows of the quantile models' walk-forward
PRODUCTION_METHOD = fc.method_id(fc.ForecastConfig(), TOKEN_FEATURES)
MIN_HISTORY = 200
RETRAIN_DAYS = 7
STALE_DAYS = 7  # a token whose last close is older than this at the panel's end is not predicted
day_to_date = analytics_queries.to_date  # epoch day → calendar date (UTC)


@dataclass(frozen=True)
class RunReport:
    """What one `run_forecasts` did."""

    model_id: str
    retrained: bool
    tokens: int
    rows: int


def features_for(
    panel: Panel, only: Callable[[FeaturePanel], np.ndarray[Any, np.dtype[np.int64]]] | None = None
) -> FeaturePanel:
    """The production feature set on a panel (token history only; see docs/predictions.md),
    of every cell or of the cells `only` picks (`build_features`)."""
    return build_features(panel.close, panel.volume, only=only)


def _model_id(model: fc.QuantileModel, cutoff_day: int, blob: bytes) -> str:
    digest = hashlib.sha1(blob, usedforsecurity=False).hexdigest()[:10]
    return f"lgbm-q-{day_to_date(cutoff_day).isoformat()}-{digest}"


@cache
def _code_version() -> str:
    """The training code (its two modules' bytes) and the installed LightGBM's version."""
    import lightgbm

    code = hashlib.sha1(usedforsecurity=False)
    for module in (fc, forecast_features):
        code.update(Path(str(module.__file__)).read_bytes())
    return f"{code.hexdigest()}-lightgbm-{lightgbm.__version__}"


def trainer_id(cfg: fc.ForecastConfig | None = None) -> str:
    """What makes a model: the method (settings, features), the training code and LightGBM's
    version. A model stored under another one is retrained at the next run: an upgrade that
    changes how models are trained must not keep serving the old code's model until the data
    move on (with the embedded data they never do)."""
    method = fc.method_id(cfg or fc.ForecastConfig(), TOKEN_FEATURES)
    return settings_id([method, _code_version()])


def _metrics(model: fc.QuantileModel, cfg: fc.ForecastConfig | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "window": "calibration window held out from the first fit",
        "trainer": trainer_id(cfg),
    }
    for hm in model.horizons:
        m = hm.metrics
        rw, blend = m.get("pinball_rw", math.nan), m.get("pinball_blend", math.nan)
        out[f"{hm.horizon}d"] = {
            "blend_weight": hm.weight,
            "median_weight": hm.location,
            "vol_exponent": hm.vol_exponent,
            "interval_scales": dict(zip(fc.QUANTILE_NAMES, hm.scales, strict=True)),
            "pinball_skill_vs_rw": 1.0 - blend / rw if rw > 0 else None,
            "calibration_rows": int(m.get("calib_rows", 0)),
        }
    return out


def train_model(
    ctx: Context, panel: Panel | None = None, cfg: fc.ForecastConfig | None = None
) -> str:
    """Train on all data up to the panel's last day, store it, return its model_id."""
    panel = panel or read_daily_panel(ctx.engine, ctx.cache_dir)
    cutoff = len(panel.days) - 1
    # the features of the sampled training cells only (the whole panel's: ~0.5 GB at 10,000)
    fp = features_for(panel, only=lambda index: fc.training_cells(index, cutoff, cfg))
    model = fc.train(fp, cutoff, cfg)
    del fp
    blob = model.to_bytes()
    cutoff_day = int(panel.days[cutoff])
    model_id = _model_id(model, cutoff_day, blob)
    row = {
        "model_id": model_id,
        "kind": KIND,
        "trained_at": utcnow(),
        "cutoff_day": cutoff_day,
        "features": list(model.feature_names),
        "metrics": _metrics(model, cfg),
        "artifact": blob,
    }
    with ctx.engine.begin() as conn:
        repo.save_model(conn, row)
    log.info("forecasts.trained", model_id=model_id, cutoff=str(day_to_date(cutoff_day)))
    return model_id


def _ensure_rw_model(ctx: Context, cutoff_day: int) -> str:
    model_id = f"rw-vol30-{day_to_date(cutoff_day).isoformat()}"
    row = {
        "model_id": model_id,
        "kind": RW_KIND,
        "trained_at": utcnow(),
        "cutoff_day": cutoff_day,
        "features": ["vol_30d"],
        "metrics": {"method": "log c + z_q * sigma_30d * sqrt(h), drift 0"},
        "artifact": None,
    }
    with ctx.engine.begin() as conn:
        repo.save_model(conn, row)
    return model_id


def prediction_origins(panel: Panel, fp: FeaturePanel) -> np.ndarray[Any, np.dtype[np.int64]]:
    """(token row, day column) of each token's latest close, if recent and with enough history."""
    last_col = len(panel.days) - 1
    cols = np.where(fp.observed, np.arange(fp.observed.shape[1]), -1).max(axis=1)
    history = fp.observed.sum(axis=1)
    keep = (cols >= last_col - STALE_DAYS) & (history >= MIN_HISTORY)
    rows = np.flatnonzero(keep)
    return np.stack([rows, cols[rows]], axis=1).astype(np.int64)


def _rows(
    panel: Panel, idx: np.ndarray[Any, np.dtype[np.int64]], out: dict[int, Any], model_id: str
) -> list[dict[str, Any]]:
    rows = []
    for h, logq in out.items():
        prices = np.exp(logq)
        for i, (tok, col) in enumerate(idx):
            rec: dict[str, Any] = dict(
                zip(repo.QUANTILE_COLUMNS, map(float, prices[i]), strict=True)
            )
            rec.update(
                token_id=int(panel.token_ids[tok]),
                origin_day=int(panel.days[col]),
                horizon=int(h),
                model_id=model_id,
            )
            rows.append(rec)
    return rows


def _store(ctx: Context, model_id: str, rows: list[dict[str, Any]], part: tuple[int, int]) -> None:
    with ctx.engine.begin() as conn:
        for origin in sorted({r["origin_day"] for r in rows}):
            batch = [r for r in rows if r["origin_day"] == origin]
            repo.replace_forecasts(conn, model_id, origin, batch, part)


def predict_latest(
    ctx: Context, model_id: str, panel: Panel | None = None, *, part: tuple[int, int] = (0, 1)
) -> tuple[int, int]:
    """Predict every eligible token with `model_id` (and the RW baseline); (tokens, rows).

    With `part` = (k, P) only the tokens with id % P == k: features are per token, so the
    parts together store exactly what one call stores (tested), each from 1/P of the panel.
    """
    panel = panel or read_daily_panel(ctx.engine, ctx.cache_dir)
    k, parts = part
    mine = np.flatnonzero(panel.token_ids % parts == k).astype(np.int64)
    with ctx.engine.connect() as conn:
        model_row = repo.get_model(conn, model_id)
    if model_row is None or model_row["artifact"] is None:
        raise NotFound(f"no trained model {model_id!r}")
    model = fc.QuantileModel.from_bytes(model_row["artifact"])
    idx, predicted, baseline = _predict_chunked(panel, mine, model)
    if len(idx) == 0:
        return 0, 0
    rows = _rows(panel, idx, predicted, model_id)
    _store(ctx, model_id, rows, part)
    rw_id = _ensure_rw_model(ctx, int(panel.days[-1]))
    _store(ctx, rw_id, _rows(panel, idx, baseline, rw_id), part)
    return len(idx), len(rows)


PREDICT_CHUNK = 1024
"""Tokens whose full-history features are built at once when predicting (features are per
token, so chunks change nothing but the memory: 10,000 tokens at once held ~1.5 GB)."""


def _predict_chunked(
    panel: Panel, rows: np.ndarray[Any, np.dtype[np.int64]], model: fc.QuantileModel
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], dict[int, Any], dict[int, Any]]:
    """Origins (panel row, day column) among `rows`, model and random-walk quantiles,
    PREDICT_CHUNK tokens at a time; the same arrays as one pass over those rows."""
    boosters = fc.load_boosters(model)
    idx_parts, model_parts, rw_parts = [], [], []
    for a in range(0, len(rows), PREDICT_CHUNK):
        chunk_rows = rows[a : a + PREDICT_CHUNK]
        chunk = panel.take(chunk_rows)
        fp = features_for(chunk)
        idx = prediction_origins(chunk, fp)
        if len(idx):
            model_parts.append(fc.predict(model, fp, idx, boosters))
            rw_parts.append(fc.predict_random_walk(fp, idx, fc.HORIZONS))
            idx_parts.append(np.stack([chunk_rows[idx[:, 0]], idx[:, 1]], axis=1))
    if not idx_parts:
        return np.empty((0, 2), dtype=np.int64), {}, {}

    def joined(parts: list[dict[int, Any]]) -> dict[int, Any]:
        return {h: np.concatenate([p[h] for p in parts]) for h in parts[0]}

    return np.concatenate(idx_parts), joined(model_parts), joined(rw_parts)


def current_model(ctx: Context, last_day: int, cfg: fc.ForecastConfig | None = None) -> str | None:
    """The newest model's id, or None when a retrain is due: no model yet, its cut-off is
    RETRAIN_DAYS or more behind `last_day`, or another trainer made it (`trainer_id`; one
    read, so the answers agree)."""
    with ctx.engine.connect() as conn:
        newest = repo.latest_model(conn, KIND, with_artifact=False)
    if newest is None or last_day - int(newest["cutoff_day"]) >= RETRAIN_DAYS:
        return None
    if (newest["metrics"] or {}).get("trainer") != trainer_id(cfg):
        return None
    return str(newest["model_id"])


def run_forecasts(
    ctx: Context, cfg: fc.ForecastConfig | None = None, *, predicted_with: str | None = None
) -> RunReport:
    """Pipeline step: retrain if due, then predict every eligible token at its latest close.

    `predicted_with`: the model the token parts (`predict_part`) already predicted with;
    when no retrain is due and that is still the newest model, nothing is left to predict.
    """
    panel = read_daily_panel(ctx.engine, ctx.cache_dir)
    model_id = current_model(ctx, int(panel.days[-1]), cfg)
    retrained = model_id is None
    if model_id is None:
        model_id = train_model(ctx, panel, cfg)
    elif predicted_with == model_id:
        return RunReport(model_id=model_id, retrained=False, tokens=0, rows=0)
    tokens, rows = predict_latest(ctx, model_id, panel)
    return RunReport(model_id=model_id, retrained=retrained, tokens=tokens, rows=rows)


def predict_part(
    ctx: Context, part: int, parts: int, cfg: fc.ForecastConfig | None = None
) -> str | None:
    """Predict the tokens of `part` of `parts` with the newest model, unless a retrain is
    due (then the join trains and predicts all); the model used, or None."""
    panel = read_daily_panel(ctx.engine, ctx.cache_dir)
    model_id = current_model(ctx, int(panel.days[-1]), cfg)
    if model_id is not None:
        predict_latest(ctx, model_id, panel, part=(part, parts))
    return model_id


def model_info(row: dict[str, Any], record: TrackRecord | None = None) -> ModelInfo:
    """A stored model row as a domain model; a quantile model carries the method's track
    record when one is stored."""
    return ModelInfo(
        model_id=row["model_id"],
        kind=row["kind"],
        trained_at=row["trained_at"],
        cutoff=day_to_date(row["cutoff_day"]),
        features=list(row["features"]),
        metrics=dict(row["metrics"]),
        track_record=record if row["kind"] == KIND else None,
    )


def latest_track_record(conn: Connection) -> TrackRecord | None:
    """The newest stored full walk-forward evaluation of the quantile models, or None (also
    when it measured another method than the one `train_model` runs now)."""
    return track_records.latest(conn, EVALUATION_KIND, PRODUCTION_METHOD, TrackRecord)


def list_models(ctx: Context) -> list[ModelInfo]:
    """Every stored model, newest first, with its measured accuracy."""
    with ctx.engine.connect() as conn:
        record = latest_track_record(conn)
        return [model_info(r, record) for r in repo.list_models(conn)]


def check_level(level: float) -> None:
    """A price level must be a positive finite number."""
    if not (math.isfinite(level) and level > 0):
        raise ValidationFailed(
            "the price level must be positive", [Problem("level", "must be > 0")]
        )


@dataclass(frozen=True)
class TokenForecast:
    """A token's latest stored forecast: model row, origin, close and log-price quantiles."""

    symbol: str
    model: dict[str, Any]
    origin_day: int
    last_close: float
    horizons: tuple[int, ...]
    prices: np.ndarray[Any, np.dtype[np.float64]]  # (H, 7)
    baseline: np.ndarray[Any, np.dtype[np.float64]] | None


def stale_close(panel: Panel, row: int) -> dt.date | None:
    """The newest close of the token at `row` when it is more than STALE_DAYS before the
    panel's end (such tokens are not predicted, see `prediction_origins`), else None."""
    closes = np.flatnonzero(np.isfinite(panel.close[row]))
    if closes.size and len(panel.days) - 1 - int(closes[-1]) > STALE_DAYS:
        return day_to_date(int(panel.days[closes[-1]]))
    return None


def _history_reason(ctx: Context, symbol: str, token_id: int) -> str:
    try:
        panel = read_daily_panel(ctx.engine, ctx.cache_dir)
    except DataUnavailable:
        return f"no daily candles loaded; {symbol} has no forecast"
    if token_id not in set(panel.token_ids.tolist()):
        return f"{symbol} has no daily candles, so no forecast"
    row = panel.token_ids.tolist().index(token_id)
    n = int(np.isfinite(panel.close[row]).sum())
    if n < MIN_HISTORY:
        return f"{symbol} has {n} daily closes; forecasts need at least {MIN_HISTORY}"
    newest = stale_close(panel, row)
    if newest is not None:
        return (
            f"{symbol}'s newest close is {newest}, more than {STALE_DAYS} days before the "
            f"data's end {day_to_date(int(panel.days[-1]))}: forecasts are made only for "
            "tokens with current prices"
        )
    return f"no forecast stored for {symbol} yet: run `coinlens pipeline` or `coinlens up`"


def _matrix(rows: list[dict[str, Any]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array([[r[c] for c in repo.QUANTILE_COLUMNS] for r in rows], dtype=np.float64)


def latest_forecast(ctx: Context, symbol: str) -> TokenForecast:
    """The newest model's latest forecast of `symbol`; NotFound / DataUnavailable with reason."""
    with ctx.engine.connect() as conn:
        token = repo.token_by_symbol(conn, symbol.strip())  # any case, as `get_grades`
        if token is None:
            raise unknown_token(conn, symbol)
        model = repo.latest_model(conn, KIND, with_artifact=False)
        rows = repo.token_forecasts(conn, token["id"], model["model_id"]) if model else []
        base: list[dict[str, Any]] = []
        if rows:
            base = repo.baseline_forecasts(conn, token["id"], rows[0]["origin_day"], RW_KIND)
        last = repo.close_on(conn, token["id"], rows[0]["origin_day"]) if rows else None
    if not rows or model is None or last is None:
        raise DataUnavailable(_history_reason(ctx, token["symbol"], token["id"]))
    by_h = {r["horizon"]: r for r in base}
    baseline = _matrix([by_h[r["horizon"]] for r in rows]) if len(by_h) == len(rows) else None
    return TokenForecast(
        symbol=token["symbol"],
        model=model,
        origin_day=int(rows[0]["origin_day"]),
        last_close=float(last),
        horizons=tuple(int(r["horizon"]) for r in rows),
        prices=_matrix(rows),
        baseline=baseline,
    )


def _quantiles(row: np.ndarray[Any, np.dtype[np.float64]]) -> Quantiles:
    return Quantiles(**dict(zip(repo.QUANTILE_COLUMNS, map(float, row), strict=True)))


def get_predictions(ctx: Context, symbol: str) -> Predictions:
    """Quantiles of the close at each horizon for `symbol`, with the RW baseline and model."""
    f = latest_forecast(ctx, symbol)
    origin = day_to_date(f.origin_day)
    horizons = [
        HorizonForecast(
            horizon=h,
            target_date=origin + dt.timedelta(days=h),
            quantiles=_quantiles(f.prices[i]),
            baseline=_quantiles(f.baseline[i]) if f.baseline is not None else None,
        )
        for i, h in enumerate(f.horizons)
    ]
    warnings = analytics_queries.staleness(f.origin_day)  # as signals and levels say it
    with ctx.engine.connect() as conn:  # only the predictions carry it (not scenarios, alerts)
        record = latest_track_record(conn)
    model = model_info(f.model, record)
    if (origin - model.cutoff).days >= RETRAIN_DAYS:
        warnings.append(f"model cut-off {model.cutoff} is {(origin - model.cutoff).days} days old")
    return Predictions(
        symbol=f.symbol,
        origin=origin,
        last_close=f.last_close,
        model=model,
        horizons=horizons,
        warnings=warnings,
    )


SCENARIO_METHOD = (
    "bear = p10, base = p50 (median), bull = p90 of the model's forecast close at each horizon"
)
PROBABILITY_METHOD = (
    "At D: the forecast quantiles are interpolated to the horizon D - origin (median linear in "
    "time, spread ∝ √time beyond the fitted horizons), and P(close ≤ X) is read from that "
    "distribution with Φ⁻¹(level) interpolated linearly in log price between p05 and p95 and "
    "exponential tails beyond them (each further p10→p05 width halves the tail). "
    "By D: reflection principle of a driftless random walk, P(reach X by D) ≈ min(1, 2·P(at D)) "
    "— an approximation that ignores drift and daily sampling. See docs/predictions.md."
)


def _scenario_levels(
    ctx: Context, symbol: str, last_close: float, origin: dt.date
) -> tuple[list[KeyLevel], dt.date | None, list[str]]:
    """The stored key levels of `symbol` seen from the forecast; none, with a warning, if absent."""
    try:
        stored = analytics_queries.get_levels(ctx, symbol)
    except DataUnavailable as exc:
        return [], None, [f"key levels unavailable: {exc.detail}"]
    warnings = sl.as_of_warnings(stored.as_of, origin)
    return sl.key_levels(stored, last_close), stored.as_of, warnings


def get_scenarios(ctx: Context, symbol: str) -> Scenarios:
    """Bear / base / bull price targets per horizon from the latest forecast, among key levels."""
    f = latest_forecast(ctx, symbol)
    origin = day_to_date(f.origin_day)
    levels, levels_as_of, warnings = _scenario_levels(ctx, f.symbol, f.last_close, origin)
    sc = {k: v.astype(float).tolist() for k, v in fc.scenarios(np.log(f.prices)).items()}
    items = []
    for i, h in enumerate(f.horizons):
        bear, base, bull = sc["bear"][i], sc["base"][i], sc["bull"][i]
        items.append(
            Scenario(
                horizon=h,
                target_date=origin + dt.timedelta(days=h),
                bear=bear,
                base=base,
                bull=bull,
                bear_change=change(bear, f.last_close),
                base_change=change(base, f.last_close),
                bull_change=change(bull, f.last_close),
                bear_levels=sl.place_target(bear, f.last_close, levels),
                base_levels=sl.place_target(base, f.last_close, levels),
                bull_levels=sl.place_target(bull, f.last_close, levels),
            )
        )
    return Scenarios(
        symbol=f.symbol,
        origin=origin,
        last_close=f.last_close,
        model_id=str(f.model["model_id"]),
        scenarios=items,
        levels=levels,
        levels_as_of=levels_as_of,
        method=f"{SCENARIO_METHOD}; {sl.LEVELS_METHOD}",
        warnings=warnings,
    )


MAX_PROBABILITY_DAYS = 366


def probability_dates(origin: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last date `probability` answers for a forecast made at `origin`."""
    return origin + dt.timedelta(days=1), origin + dt.timedelta(days=MAX_PROBABILITY_DAYS)


def probability(
    ctx: Context, symbol: str, level: float, by: dt.date, *, above: bool = True
) -> Probability:
    """P(close ≥ level) (or ≤ when `above` is False) on and by date `by`, ≤ 1 year ahead."""
    check_level(level)
    f = latest_forecast(ctx, symbol)
    origin = day_to_date(f.origin_day)
    first, last = probability_dates(origin)
    if not first <= by <= last:
        raise ValidationFailed(
            f"`by` must be after the forecast origin {origin} and at most a year after it: "
            f"between {first} and {last}, not {by}",
            [Problem("by", f"must be between {first} and {last}")],
        )
    days = (by - origin).days
    p_at, p_by = fc.probability(
        np.log(f.prices), f.horizons, math.log(f.last_close), level, float(days), above=above
    )
    return Probability(
        symbol=f.symbol,
        origin=origin,
        last_close=f.last_close,
        level=level,
        direction="above" if above else "below",
        by=by,
        days=days,
        p_at=p_at,
        p_by=p_by,
        model_id=str(f.model["model_id"]),
        method=PROBABILITY_METHOD,
    )
