"""Measure how often price respected the support/resistance levels (figures in docs/levels.md).

Usage: .venv/bin/python scripts/evaluate_levels.py DATA_DIR   (a data dir filled by `coinlens load`)
Evaluation only: it looks at prices after each touch on purpose.
"""

from __future__ import annotations

import sys

import numpy as np

from coinlens.analytics.levels import NearestLevels, RespectStats, nearest_levels, respect_rate
from coinlens.services.context import build_context
from coinlens.settings import get_settings
from coinlens.storage.panel import read_daily_panel

BASELINE_SHIFT = 180  # days: the baseline reuses distances from half a year earlier


def _shift(a: np.ndarray, k: int = BASELINE_SHIFT) -> np.ndarray:
    out = np.full_like(a, np.nan)
    out[:, k:] = a[:, :-k]
    return out


def _report(name: str, stats: RespectStats) -> None:
    touches, held = int(stats.touches.sum()), int(stats.respected.sum())
    print(f"{name:<48} touches {touches:>8,}  respected {held:>8,}  rate {held / touches:.3f}")


def main() -> None:
    ctx = build_context(get_settings(data_dir=sys.argv[1] if len(sys.argv) > 1 else "var"))
    p = read_daily_panel(ctx.engine, ctx.cache_dir)
    print(f"{len(p.symbols)} tokens × {p.close.shape[1]} days")
    lv = nearest_levels(p.high, p.low, p.close, p.volume)
    _report("pivot levels", respect_rate(p.low, p.high, p.close, lv))
    strong = NearestLevels(
        np.where(lv.support_strength >= 0.5, lv.support, np.nan),
        lv.support_strength,
        np.where(lv.resistance_strength >= 0.5, lv.resistance, np.nan),
        lv.resistance_strength,
    )
    _report("strength >= 0.5", respect_rate(p.low, p.high, p.close, strong))
    base = NearestLevels(
        p.close * _shift(lv.support / p.close),
        lv.support_strength,
        p.close * _shift(lv.resistance / p.close),
        lv.resistance_strength,
    )
    _report(
        f"baseline: same distances {BASELINE_SHIFT} days earlier",
        respect_rate(p.low, p.high, p.close, base),
    )


if __name__ == "__main__":
    main()
