"""`coinlens evaluate forecasts`: rolling-origin walk-forward of the quantile model vs baselines.

At each origin T (quarterly by default) the model is trained on data <= T only, then scored on
every daily forecast origin t in (T, T + step] whose target t + h has a close. The random
walk is scored on the same rows; statsforecast AutoETS (season_length=1, on the log close)
on a subset of tokens at the quarterly origins only, where it is compared with the model and
the random walk on exactly those rows. Output: reports/forecasts.md + PNG calibration plots.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from coinlens.analytics import forecast as fc
from coinlens.analytics import scoring
from coinlens.analytics.forecast import INTERVALS
from coinlens.analytics.forecast_features import FeaturePanel, build_features
from coinlens.domain.errors import UserInputError
from coinlens.domain.forecasts import CoverageRecord, HorizonRecord, TrackRecord
from coinlens.services import track_records
from coinlens.services.analytics_queries import to_day
from coinlens.services.context import Context
from coinlens.services.forecast_report import write_report
from coinlens.services.forecasts import EVALUATION_KIND, MIN_HISTORY, day_to_date
from coinlens.storage.panel import Panel, read_daily_panel
from coinlens.storage.tables import utcnow

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class EvalConfig:
    """Walk-forward window, retraining step, model size and the AutoETS subset."""

    start: dt.date = dt.date(2021, 1, 1)
    end: dt.date = dt.date(2025, 6, 30)
    step_days: int = 91
    max_origins: int | None = None  # fast mode: only the first N retraining origins
    # development mode: score only rows whose target day is <= this date (e.g. 2024-09-30, so
    # the last 12 months stay untouched while hyper-parameters are chosen)
    score_until: dt.date | None = None
    # the report splits every score at this target day: the development period (before, where
    # the design was chosen) and the held-out last 12 months (from this day on)
    holdout_from: dt.date = dt.date(2024, 10, 1)
    ets_tokens: int = 20
    ets_window: int = 730
    market_features: bool = False
    model: fc.ForecastConfig = field(default_factory=fc.ForecastConfig)


@dataclass
class Collected:
    """Scored rows of one horizon: outcome, model and RW log-price quantiles, origin log close."""

    y: list[F64] = field(default_factory=list)
    model: list[F64] = field(default_factory=list)
    rw: list[F64] = field(default_factory=list)
    lc: list[F64] = field(default_factory=list)
    day: list[NDArray[np.int64]] = field(default_factory=list)
    block: list[NDArray[np.int64]] = field(default_factory=list)  # retraining origin column

    def arrays(self) -> tuple[F64, F64, F64, F64, NDArray[np.int64]]:
        """Concatenated (y, model, rw, lc, day)."""
        cat = np.concatenate
        return cat(self.y), cat(self.model), cat(self.rw), cat(self.lc), cat(self.day)


def _col(panel: Panel, date: dt.date) -> int:
    return int(np.clip(to_day(date) - int(panel.days[0]), 0, len(panel.days) - 1))


def _score_block(
    fp: FeaturePanel,
    model: fc.QuantileModel,
    window: tuple[int, int, int],
    out: dict[int, Collected],
) -> None:
    """Score origins first..last whose target column is <= `target_last` (window)."""
    first, last, target_last = window
    boosters = fc.load_boosters(model)
    for h in model_horizons(model):
        idx = fc.origins(fp, first, min(last, target_last - h), h, MIN_HISTORY)
        if len(idx) == 0:
            continue
        tok, day = idx[:, 0], idx[:, 1]
        pm = fc.predict(model, fp, idx, boosters)[h]
        pr = fc.predict_random_walk(fp, idx, [h])[h]
        c = out.setdefault(h, Collected())
        c.y.append(fp.log_close[tok, day + h])
        c.model.append(pm)
        c.rw.append(pr)
        c.lc.append(fp.log_close[tok, day])
        c.day.append(day)
        c.block.append(np.full(len(idx), first, dtype=np.int64))


def model_horizons(model: fc.QuantileModel) -> list[int]:
    """The horizons a model was trained for."""
    return [hm.horizon for hm in model.horizons]


def _direction(y: F64, q: F64, lc: F64, day: NDArray[np.int64], h: int) -> dict[str, float]:
    acc, hits, n = scoring.directional_accuracy(y - lc, q[:, fc.MEDIAN] - lc)
    thin = day % h == 0  # non-overlapping origins for the test
    _, k, m = scoring.directional_accuracy((y - lc)[thin], (q[:, fc.MEDIAN] - lc)[thin])
    return {
        "direction_accuracy": acc,
        "direction_n": float(n),
        "direction_hits": float(hits),
        "direction_test_n": float(m),
        "direction_test_acc": k / m if m else math.nan,
        "direction_p_value": scoring.binomial_test(k, m),
    }


def _block_ratios(
    num: F64, den: F64, block: NDArray[np.int64], draws: int, seed: int
) -> tuple[F64, F64, F64]:
    """Per-block sums of `num` and `den`, and sum(num) / sum(den) over `draws` resamples of
    whole blocks (with replacement)."""
    ids, inv = np.unique(block, return_inverse=True)
    n = np.bincount(inv, weights=num).astype(np.float64)
    d = np.bincount(inv, weights=den).astype(np.float64)
    pick = np.random.default_rng(seed).integers(0, len(ids), (draws, len(ids)))
    ratio: F64 = n[pick].sum(axis=1) / d[pick].sum(axis=1)
    return n, d, ratio


def block_bootstrap_skill(
    loss: tuple[F64, F64], block: NDArray[np.int64], draws: int = 2000, seed: int = 0
) -> tuple[float, float, int]:
    """5 % and 95 % bootstrap quantiles of the pinball skill, resampling whole retraining
    blocks (a quarter of origins each), and how many blocks alone score below the RW.

    `loss` = per-row (model, RW) pinball losses. Blocks share market moves within themselves
    and, at 30/90 days, overlap their neighbours' target periods, so the interval is still
    somewhat too narrow; it shows how far one quarter can move the headline skill.
    """
    lm, lr, ratio = _block_ratios(loss[0], loss[1], block, draws, seed)
    lo, hi = np.quantile(1.0 - ratio, [0.05, 0.95])
    return float(lo), float(hi), int((lm > lr).sum())


def block_bootstrap_coverage(
    inside: NDArray[np.bool_], block: NDArray[np.int64], draws: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """5 % and 95 % bootstrap quantiles of an interval's coverage, resampling whole retraining
    blocks as `block_bootstrap_skill` does (and as narrow for the same reasons): how far
    the measured coverage could move with other quarters of history."""
    hits = np.asarray(inside, dtype=np.float64)
    _, _, share = _block_ratios(hits, np.ones_like(hits), block, draws, seed)
    lo, hi = np.quantile(share, [0.05, 0.95])
    return float(lo), float(hi)


def _split_metrics(y: F64, q: tuple[F64, F64], part: NDArray[np.bool_]) -> dict[str, float]:
    """Skill and the three coverages of the model on the rows in `part` (NaN when empty)."""
    out = {"rows": float(part.sum()), "pinball_skill": math.nan}
    out.update({f"coverage_{level}_model": math.nan for level in INTERVALS})
    if not part.any():
        return out
    yp, qm, qr = y[part], q[0][part], q[1][part]
    loss_m = float(scoring.pinball(yp, qm, fc.QUANTILES).mean())
    out["pinball_skill"] = scoring.skill(
        loss_m, float(scoring.pinball(yp, qr, fc.QUANTILES).mean())
    )
    for level, k in zip(INTERVALS, (2, 1, 0), strict=True):
        out[f"coverage_{level}_model"] = scoring.coverage(yp, qm[:, k], qm[:, -1 - k])
    return out


def horizon_metrics(c: Collected, h: int, holdout_col: int | None = None) -> dict[str, Any]:
    """Pinball/CRPS skill vs RW (with a block-bootstrap interval), coverage per central level,
    direction with binomial test, and the same split at `holdout_col` (target day)."""
    y, qm, qr, lc, day = c.arrays()
    pm, pr = scoring.pinball(y, qm, fc.QUANTILES), scoring.pinball(y, qr, fc.QUANTILES)
    out: dict[str, Any] = {
        "rows": len(y),
        "pinball_model": float(pm.mean()),
        "pinball_rw": float(pr.mean()),
        "pinball_skill": scoring.skill(float(pm.mean()), float(pr.mean())),
        "crps_model": scoring.crps_from_quantiles(y, qm, fc.QUANTILES),
        "crps_rw": scoring.crps_from_quantiles(y, qr, fc.QUANTILES),
        "pit_model": scoring.pit_histogram(y, qm, fc.QUANTILES).tolist(),
        "freq_model": (y[:, None] <= qm).mean(axis=0).tolist(),
        "freq_rw": (y[:, None] <= qr).mean(axis=0).tolist(),
    }
    out["crps_skill"] = scoring.skill(out["crps_model"], out["crps_rw"])
    rows = (fc.row_pinball(y, qm), fc.row_pinball(y, qr))
    blocks = np.concatenate(c.block)
    lo, hi, worse = block_bootstrap_skill(rows, blocks)
    out.update(skill_lo=lo, skill_hi=hi, blocks_worse=worse, blocks=len(c.block))
    for level, k in zip(INTERVALS, (2, 1, 0), strict=True):
        hits = scoring.inside(y, qm[:, k], qm[:, -1 - k])
        out[f"coverage_{level}_model"] = float(hits.mean())  # rows > 0: the bootstrap needs them
        out[f"coverage_{level}_rw"] = scoring.coverage(y, qr[:, k], qr[:, -1 - k])
        lo_c, hi_c = block_bootstrap_coverage(hits, blocks)
        out.update({f"coverage_{level}_lo": lo_c, f"coverage_{level}_hi": hi_c})
    out.update(_direction(y, qm, lc, day, h))
    if holdout_col is not None:
        held = day + h >= holdout_col
        out["development"] = _split_metrics(y, (qm, qr), ~held)
        out["held_out"] = _split_metrics(y, (qm, qr), held)
    return out


def autoets_quantiles(series: Sequence[F64], horizon: int, n_jobs: int = 1) -> F64:
    """AutoETS (season_length=1) quantiles of each series' value `horizon` steps ahead,
    fitted in `n_jobs` processes (statsforecast's own pool).

    Returns (n, 7, horizon): p05…p95 from the 90/80/50 % prediction intervals and the mean.
    """
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    ids = np.concatenate([np.full(len(s), i) for i, s in enumerate(series)])
    ds = np.concatenate([np.arange(len(s)) for s in series])
    df = pd.DataFrame({"unique_id": ids, "ds": ds, "y": np.concatenate(series)})
    sf = StatsForecast(models=[AutoETS(season_length=1)], freq=1, n_jobs=n_jobs)
    fcst = sf.forecast(df=df, h=horizon, level=list(INTERVALS))
    cols = [f"AutoETS-lo-{lv}" for lv in (90, 80, 50)] + ["AutoETS"]
    cols += [f"AutoETS-hi-{lv}" for lv in INTERVALS]
    vals = fcst.sort_values(["unique_id", "ds"])[cols].to_numpy(dtype=np.float64)
    return np.sort(vals.reshape(len(series), horizon, 7), axis=2).transpose(0, 2, 1)


def _ets_block(
    fp: FeaturePanel, col: int, cfg: EvalConfig, horizons: Sequence[int]
) -> dict[int, tuple[F64, F64, F64, F64]]:
    """AutoETS vs RW vs nothing else at one origin, on the longest-listed eligible tokens."""
    age = np.isfinite(fp.log_close[:, : col + 1]).sum(axis=1)
    ok = fp.observed[:, col] & (age >= MIN_HISTORY)
    toks = np.flatnonzero(ok)[np.argsort(-age[ok], kind="stable")][: cfg.ets_tokens]
    if len(toks) == 0:
        return {}
    series = [fp.log_close[t, max(0, col - cfg.ets_window + 1) : col + 1] for t in toks]
    series = [s[np.isfinite(s)] for s in series]
    q = autoets_quantiles(series, max(horizons))
    out = {}
    for h in horizons:
        if col + h >= fp.log_close.shape[1]:
            continue
        y = fp.log_close[toks, col + h]
        keep = fp.observed[toks, col + h]
        out[h] = (y[keep], q[keep, :, h - 1], toks[keep], np.full(keep.sum(), col))
    return out


def run_walk_forward(
    panel: Panel, cfg: EvalConfig, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Walk forward over [start, end] and return per-horizon metrics and the AutoETS check."""
    btc_eth = _market_rows(panel) if cfg.market_features else None
    fp = build_features(panel.close, panel.volume, market_rows=btc_eth)
    cols = list(range(_col(panel, cfg.start), _col(panel, cfg.end) + 1, cfg.step_days))
    target_last = _col(panel, cfg.score_until) if cfg.score_until else len(panel.days) - 1
    cols = [c for c in cols if c + 1 < target_last]  # origins with something left to score
    cols = cols[: cfg.max_origins] if cfg.max_origins else cols
    if not cols:
        last = cfg.score_until or day_to_date(int(panel.days[-1]))
        raise UserInputError(
            f"nothing to evaluate: no retraining origin in {cfg.start} … {cfg.end} is before "
            f"the last target day {last}"
            + (" (--until)" if cfg.score_until else " (the data's end)")
        )
    collected: dict[int, Collected] = {}
    ets_rows: dict[int, list[tuple[F64, F64, F64]]] = {}
    t0, t_ets = time.perf_counter(), 0.0
    for col in cols:
        model = fc.train(fp, col, cfg.model)
        _score_block(fp, model, (col + 1, col + cfg.step_days, target_last), collected)
        if cfg.ets_tokens > 0:
            t1 = time.perf_counter()
            _ets_compare(fp, model, col, cfg, ets_rows)
            t_ets += time.perf_counter() - t1
        if progress:
            progress(f"origin {day_to_date(int(panel.days[col]))} done")
    result = {
        "horizons": {
            h: horizon_metrics(c, h, _col(panel, cfg.holdout_from))
            for h, c in sorted(collected.items())
        },
        "ets": {h: _ets_metrics(rows) for h, rows in sorted(ets_rows.items())},
        "origins": [str(day_to_date(int(panel.days[c]))) for c in cols],
        "seconds": time.perf_counter() - t0,
        "ets_seconds": t_ets,
        "config": cfg,
        "features": list(fp.names),
        "data_end": str(day_to_date(int(panel.days[-1]))),
    }
    return result


def _market_rows(panel: Panel) -> tuple[int, int | None] | None:
    if "BTC" not in panel.symbols:
        return None
    return panel.symbols.index("BTC"), (
        panel.symbols.index("ETH") if "ETH" in panel.symbols else None
    )


def _ets_compare(
    fp: FeaturePanel,
    model: fc.QuantileModel,
    col: int,
    cfg: EvalConfig,
    rows: dict[int, list[tuple[F64, F64, F64]]],
) -> None:
    block = _ets_block(fp, col, cfg, model_horizons(model))
    for h, (y, q_ets, toks, days) in block.items():
        idx = np.stack([toks, days.astype(np.int64)], axis=1).astype(np.int64)
        q_model = fc.predict(model, fp, idx)[h]
        q_rw = fc.predict_random_walk(fp, idx, [h])[h]
        rows.setdefault(h, []).append((y, q_ets, np.stack([q_model, q_rw])))


def _ets_metrics(rows: list[tuple[F64, F64, F64]]) -> dict[str, float]:
    y = np.concatenate([r[0] for r in rows])
    q_ets = np.concatenate([r[1] for r in rows])
    q_model = np.concatenate([r[2][0] for r in rows])
    q_rw = np.concatenate([r[2][1] for r in rows])
    loss = {
        name: float(scoring.pinball(y, q, fc.QUANTILES).mean())
        for name, q in (("ets", q_ets), ("model", q_model), ("rw", q_rw))
    }
    return {
        "rows": float(len(y)),
        **{f"pinball_{k}": v for k, v in loss.items()},
        "skill_ets_vs_rw": scoring.skill(loss["ets"], loss["rw"]),
        "skill_model_vs_rw": scoring.skill(loss["model"], loss["rw"]),
        "coverage_80_ets": scoring.coverage(y, q_ets[:, 1], q_ets[:, 5]),
        "coverage_80_model": scoring.coverage(y, q_model[:, 1], q_model[:, 5]),
    }


def is_full_run(cfg: EvalConfig) -> bool:
    """Whether a run evaluates the production method, scoring every origin of its window:
    only such runs become the track record served next to the models (quick, development,
    partial and market-feature runs are reports only; the record names its window)."""
    return (
        cfg.model == fc.ForecastConfig()
        and cfg.score_until is None
        and cfg.max_origins is None
        and not cfg.market_features
    )


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def track_record(result: dict[str, Any], evaluated_at: dt.datetime, report: str) -> TrackRecord:
    """The headline figures of a walk-forward result (`run_walk_forward`)."""
    cfg: EvalConfig = result["config"]
    horizons = []
    for h, m in result["horizons"].items():
        coverage = [
            CoverageRecord(
                level=lv,
                observed=_finite(m[f"coverage_{lv}_model"]),
                low=_finite(m.get(f"coverage_{lv}_lo")),
                high=_finite(m.get(f"coverage_{lv}_hi")),
                random_walk=_finite(m.get(f"coverage_{lv}_rw")),
            )
            for lv in INTERVALS
        ]
        held = m.get("held_out") or {}
        horizons.append(
            HorizonRecord(
                horizon=int(h),
                rows=int(m["rows"]),
                pinball_skill=_finite(m.get("pinball_skill")),
                skill_low=_finite(m.get("skill_lo")),
                skill_high=_finite(m.get("skill_hi")),
                coverage=coverage,
                held_out_skill=_finite(held.get("pinball_skill")) if held.get("rows") else None,
                direction_accuracy=_finite(m.get("direction_accuracy")),
                direction_p_value=_finite(m.get("direction_p_value")),
            )
        )
    origins = [dt.date.fromisoformat(o) for o in result["origins"]]
    return TrackRecord(
        evaluated_at=evaluated_at,
        data_end=dt.date.fromisoformat(result["data_end"]),
        first_origin=origins[0],
        last_origin=origins[-1],
        retrains=len(origins),
        step_days=cfg.step_days,
        held_out_from=cfg.holdout_from,
        horizons=horizons,
        report=report,
        method=fc.method_id(cfg.model, result["features"]),
    )


def record_track(ctx: Context, record: TrackRecord) -> None:
    """Keep `record` as the forecasting method's newest track record."""
    track_records.save(ctx, EVALUATION_KIND, record)


def evaluate_forecasts(
    ctx: Context,
    cfg: EvalConfig | None = None,
    out_dir: Path = Path("reports"),
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the walk-forward on the loaded data and write reports/forecasts.md + PNG charts;
    a full run (`is_full_run`) is also stored as the track record `/v1/models` serves."""
    cfg = cfg or EvalConfig()
    panel = read_daily_panel(ctx.engine, ctx.cache_dir)
    result = run_walk_forward(panel, cfg, progress)
    result["report"] = str(write_report(result, out_dir))
    result["recorded"] = is_full_run(cfg) and bool(result["origins"])
    if result["recorded"]:
        record_track(ctx, track_record(result, utcnow(), result["report"]))
    return result
