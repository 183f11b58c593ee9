"""Forecast benchmark: random-walk baseline, the global LightGBM quantile model (train +
predict, 7 quantiles × 4 horizons) and statsforecast AutoETS, all in one run.

Data: SYNTHETIC 2,000 series × 500 days (bench/synthetic.py), never market data.
Run: .venv/bin/python bench/forecast.py [--tokens 2000 --days 500 --threads 0]
(--threads N: the model trains its horizons on N threads and AutoETS fits in N processes;
0 = every core)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import LABEL, make_panel

from coinlens.analytics import forecast as fc
from coinlens.analytics import set_threads, threads
from coinlens.analytics.forecast_features import FeaturePanel, build_features
from coinlens.services.forecast_eval import autoets_quantiles

# 500 days leave no room for the production 365-day calibration window: same model size,
# a 60-day calibration window and 60 days of history per training origin.
BENCH_MODEL = fc.ForecastConfig(calib_days=60, min_age=60)


def _latest(fp: FeaturePanel) -> np.ndarray:
    rows = np.arange(fp.log_close.shape[0])
    return np.stack([rows, np.full_like(rows, fp.log_close.shape[1] - 1)], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--days", type=int, default=500)
    ap.add_argument("--threads", type=int, default=0, help="cores for each contender (0: all)")
    args = ap.parse_args()
    set_threads(args.threads or None)
    panel = make_panel(tokens=args.tokens, days=args.days, seed=11)
    print(f"{LABEL} panel: {args.tokens} series x {args.days} days")
    # the model trains its horizons on `threads()` threads; AutoETS gets as many processes
    print(f"cores used by each contender: {threads()} (--threads)")

    t0 = time.perf_counter()
    fp = build_features(panel.close, panel.volume)
    idx = _latest(fp)
    rw = fc.predict_random_walk(fp, idx, fc.HORIZONS)
    t_rw = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = fc.train(fp, args.days - 1, BENCH_MODEL)
    out = fc.predict(model, fp, idx)
    t_model = time.perf_counter() - t0 + t_rw  # features are part of the model's cost too

    t0 = time.perf_counter()
    series = [np.log(c[np.isfinite(c)]) for c in panel.close]
    ets = autoets_quantiles(series, max(fc.HORIZONS), n_jobs=threads())
    t_ets = time.perf_counter() - t0

    assert all(np.isfinite(q).all() for q in out.values())
    assert np.isfinite(ets).all()
    assert len(rw[1]) == args.tokens
    print(f"baseline (features + random walk, 4 horizons x 7 quantiles): {t_rw:7.2f} s")
    print(f"global model (features + train 28 boosters + predict):       {t_model:7.2f} s")
    print(f"statsforecast AutoETS (season_length=1, h=90, 3 levels):      {t_ets:7.2f} s")
    print(
        f"ratios: model / AutoETS = {t_model / t_ets:.2f}, baseline / AutoETS = {t_rw / t_ets:.3f}"
    )
    print(
        "targets: baseline <= 5 s: "
        f"{'met' if t_rw <= 5 else 'MISSED'}; model <= 20 s and <= AutoETS: "
        f"{'met' if t_model <= 20 and t_model <= t_ets else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
