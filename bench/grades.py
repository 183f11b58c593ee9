"""Grades benchmark: one day's Trader/Investor Grades for a 2,000-token universe (target 100 ms).

Data: a SYNTHETIC 2,000 tokens × 2,000 days panel (bench/synthetic.py), never shown as market data.
Measures (1) grading one day from its feature vectors — the per-day cross-sectional ranking and
combination, next to a naive anchor that ranks each feature with scipy.stats.rankdata; and
(2) the full-history computation (features + grades for all 2,000 days), for scale.
Run: .venv/bin/python bench/grades.py [--tokens 2000 --days 2000 --repeat 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import LABEL, make_panel

from coinlens.analytics import grades as g

TARGET_MS = 100.0


def _best_ms(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best


def _naive_day(
    features: dict[str, dict[str, np.ndarray]], masks: g.Masks, cfg: g.GradeConfig
) -> None:
    """The anchor: rankdata per feature column with Python-level NaN handling."""

    def pct(col: np.ndarray) -> np.ndarray:
        out = np.full(col.shape, np.nan)
        ok = np.isfinite(col)
        if ok.sum() >= 2:
            out[ok] = 100 * (rankdata(col[ok]) - 1) / (ok.sum() - 1)
        return out

    for sub, feats in features.items():
        mask = (masks.trader if sub in g.TRADER_SUBS else masks.investor)[:, 0]
        parts = [pct(np.where(mask, f[:, 0], np.nan)) for f in feats.values()]
        stacked = np.vstack(parts)
        n = np.isfinite(stacked).sum(axis=0)
        mean = np.where(n > 0, np.nansum(stacked, axis=0) / np.maximum(n, 1), np.nan)
        pct(np.where(mask, mean, np.nan))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--days", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    p = make_panel(args.tokens, args.days)
    inp = g.GradeInputs(close=p.close, high=p.high, low=p.low, volume=p.volume, benchmark=0)
    cfg = g.GradeConfig()
    g.compute_grades(
        g.GradeInputs(
            close=p.close[:50, :400],
            high=p.high[:50, :400],
            low=p.low[:50, :400],
            volume=p.volume[:50, :400],
            benchmark=0,
        )
    )  # warm the JIT
    t0 = time.perf_counter()
    feats = g.grade_features(inp)
    masks = g.eligibility(inp, cfg)
    full = g.grades_from_features(feats, masks, cfg)
    full_s = time.perf_counter() - t0
    t = args.days - 1
    day_feats = {k: {n: f[:, [t]] for n, f in v.items()} for k, v in feats.items()}
    day_masks = g.Masks(masks.trader[:, [t]], masks.investor[:, [t]])
    ours = _best_ms(lambda: g.grades_from_features(day_feats, day_masks, cfg), args.repeat)
    naive = _best_ms(lambda: _naive_day(day_feats, day_masks, cfg), args.repeat)
    one = g.grades_from_features(day_feats, day_masks, cfg)
    assert np.array_equal(one.trader[:, 0], full.trader[:, t], equal_nan=True)
    graded = int(np.isfinite(one.trader).sum())
    print(
        f"data: {LABEL} {args.tokens} tokens × {args.days} days ({graded} graded on the last day)"
    )
    print(
        f"one day's grades (ranking + sub-grades + grades): {ours:.2f} ms "
        f"(target {TARGET_MS:.0f} ms: {'OK' if ours <= TARGET_MS else 'MISSED'})"
    )
    print(
        f"naive anchor (scipy.stats.rankdata per feature column): {naive:.2f} ms, "
        f"ratio {naive / ours:.1f}×"
    )
    print(
        f"full history (features + grades, {args.days} days): {full_s:.2f} s "
        f"= {full_s / args.days * 1000:.2f} ms per day amortised"
    )


if __name__ == "__main__":
    main()
