"""Benchmark: our panel indicators vs TA-Lib called per token, on a SYNTHETIC 2000×2000 panel.

Run: .venv/bin/python bench/indicators.py [--tokens 2000] [--days 2000] [--repeat 5]
Prints best-of-N warm timings, TA-Lib's per-token loop, their ratio, the first-call
compile time (fresh process, numba cache cleared), the warm first call (fresh process,
cache present) and the incremental daily update of the indicator, signal and backtest
states (one new bar for every token).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import talib
from talib._ta_lib import MA_Type

from coinlens.analytics import backtest as bt
from coinlens.analytics import indicator_state, signals
from coinlens.analytics import indicators as ind

PKG = Path(ind.__file__).parent


def synthetic(n_tokens: int, n_days: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """SYNTHETIC random-walk OHLCV; a third of tokens list late (leading NaNs)."""
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, (n_tokens, n_days)), axis=1))
    h = c * (1 + rng.uniform(0, 0.03, c.shape))
    lo = c * (1 - rng.uniform(0, 0.03, c.shape))
    v = rng.lognormal(10, 1, c.shape)
    for i in range(0, n_tokens, 3):
        k = rng.integers(0, n_days // 2)
        for x in (h, lo, c, v):
            x[i, :k] = np.nan
    return h, lo, c, v


def best(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def cases(
    h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray
) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    rows = range(c.shape[0])
    return {
        "RSI(14)": (lambda: ind.rsi(c), lambda: [talib.RSI(c[i], 14) for i in rows]),
        "EMA(20)": (lambda: ind.ema(c, 20), lambda: [talib.EMA(c[i], 20) for i in rows]),
        "MACD(12,26,9)": (lambda: ind.macd(c), lambda: [talib.MACD(c[i]) for i in rows]),
        "BBANDS(20,2)": (
            lambda: ind.bbands(c),
            lambda: [talib.BBANDS(c[i], 20, 2.0, 2.0, MA_Type.SMA) for i in rows],
        ),
        "ATR(14)": (
            lambda: ind.atr(h, lo, c),
            lambda: [talib.ATR(h[i], lo[i], c[i]) for i in rows],
        ),
        "ADX(14)": (
            lambda: ind.adx(h, lo, c),
            lambda: [talib.ADX(h[i], lo[i], c[i]) for i in rows],
        ),
        "OBV": (lambda: ind.obv(c, v), lambda: [talib.OBV(c[i], v[i]) for i in rows]),
    }


FIRST_CALL = """
import time, numpy as np
t0 = time.perf_counter()
from coinlens.analytics import indicators as ind
x = np.random.default_rng(0).uniform(1, 2, (4, 300))
ind.rsi(x); ind.ema(x); ind.macd(x); ind.bbands(x)
ind.atr(x, x, x); ind.adx(x, x, x); ind.obv(x, x)
print(time.perf_counter() - t0)
"""


def first_call(clear_cache: bool) -> float:
    if clear_cache:
        shutil.rmtree(PKG / "__pycache__", ignore_errors=True)
    out = subprocess.run(
        [sys.executable, "-c", FIRST_CALL],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
    )
    return float(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--days", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    h, lo, c, v = synthetic(args.tokens, args.days)
    print(f"SYNTHETIC panel {args.tokens} tokens × {args.days} days, best of {args.repeat} warm")
    print(f"{'indicator':<15}{'ours ms':>10}{'TA-Lib ms':>11}{'ratio':>8}")
    tot_ours = tot_ref = 0.0
    for name, (ours, ref) in cases(h, lo, c, v).items():
        a, b = best(ours, args.repeat), best(ref, args.repeat)
        tot_ours, tot_ref = tot_ours + a, tot_ref + b
        print(f"{name:<15}{a * 1e3:>10.1f}{b * 1e3:>11.1f}{a / b:>8.2f}")
    print(f"{'TOTAL':<15}{tot_ours * 1e3:>10.1f}{tot_ref * 1e3:>11.1f}{tot_ours / tot_ref:>8.2f}")

    # The pipeline's daily step: every published indicator, the signal and the default
    # backtest advance one bar from their saved states (services/analytics incremental).
    o = c  # the synthetic panel has no separate open; the backtest only needs one
    sp, state = signals.compute_signals(h[:, :-1], lo[:, :-1], c[:, :-1], v[:, :-1])
    _, ind_state = indicator_state.latest_indicators(h[:, :-1], lo[:, :-1], c[:, :-1], v[:, :-1])
    _, bt_state = bt.backtest_with_state(sp.signal, o[:, :-1], c[:, :-1])
    cols = (h[:, -1], lo[:, -1], c[:, -1], v[:, -1])

    def update() -> None:
        _, bar = signals.update_signals(state, *cols)
        indicator_state.update_indicators(ind_state, *cols)
        bt.update_backtest(bt_state, bar.signal, o[:, -1], c[:, -1])

    upd_sig = best(lambda: signals.update_signals(state, *cols), args.repeat * 4)
    upd = best(update, args.repeat * 4)
    full = best(lambda: signals.compute_signals(h, lo, c, v), 1)
    full_ind = best(lambda: indicator_state.latest_indicators(h, lo, c, v), 1)
    print(f"\nsignal state update, 1 bar × {args.tokens} tokens:  {upd_sig * 1e3:.2f} ms")
    print(f"daily update (20 indicators + signal + backtest): {upd * 1e3:.2f} ms  (target ≤ 50 ms)")
    print(f"full recomputation ({args.days} bars): signals {full * 1e3:.1f} ms, "
          f"indicator states {full_ind * 1e3:.1f} ms")  # fmt: skip
    print(f"first call, fresh process, numba cache cleared:   {first_call(True):.2f} s")
    print(f"first call, fresh process, numba cache warm:      {first_call(False):.2f} s")
    print(f"(cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
