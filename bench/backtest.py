"""Benchmark: backtest + metrics for 2000 tokens vs vectorbt on the same signals (SYNTHETIC).

Run: .venv/bin/python bench/backtest.py [--tokens 2000] [--days 2000] [--repeat 3]
Needs the `bench` extra (vectorbt 1.0.0). Both sides receive the same entry/exit orders;
"end to end" includes, on both sides, turning signals into orders, the equity simulation
and the per-token metrics (total return, max drawdown, Sharpe, Sortino, trade count, win
rate). First calls run in fresh processes. The last lines check that both sides agree:
equity bit for bit (max |difference|, 0 expected) and the metrics to float rounding, on
tokens listed from day 0 (for later listings vectorbt counts the bars before listing as
zero returns, and gives inf rather than NaN for a Sharpe of a flat curve).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from coinlens.analytics.backtest import BacktestConfig, backtest, entries_exits
from coinlens.analytics.signals import compute_signals

sys.path.insert(0, str(Path(__file__).parent))
from indicators import best, synthetic

CFG = BacktestConfig(fees=0.001, slippage=0.0005, init_cash=100.0)


def opens(c: np.ndarray, seed: int = 1) -> np.ndarray:
    o = np.roll(c, 1, axis=1) * (1 + np.random.default_rng(seed).normal(0, 0.005, c.shape))
    o[:, 0] = c[:, 0]
    return np.where(np.isfinite(c), o, np.nan)


def ours(sig: np.ndarray, o: np.ndarray, c: np.ndarray) -> object:
    return backtest(sig, o, c, CFG)


def theirs(sig: np.ndarray, o: np.ndarray, c: np.ndarray) -> tuple[Any, ...]:
    # imported here so that our first-call figure does not pay for importing vectorbt
    import pandas as pd
    import vectorbt as vbt

    entries, exits = entries_exits(sig)
    en, ex = np.zeros_like(entries), np.zeros_like(exits)
    en[:, 1:], ex[:, 1:] = entries[:, :-1], exits[:, :-1]
    pf = vbt.Portfolio.from_signals(
        close=pd.DataFrame(c.T),
        entries=pd.DataFrame(en.T),
        exits=pd.DataFrame(ex.T),
        price=pd.DataFrame(o.T),
        fees=CFG.fees,
        slippage=CFG.slippage,
        init_cash=CFG.init_cash,
        freq="1D",
    )
    return (
        pf.value(),
        pf.total_return(),
        pf.max_drawdown(),
        pf.sharpe_ratio(),
        pf.sortino_ratio(),
        pf.trades.count(),
        pf.trades.win_rate(),
    )


FIRST = """
import sys, time
sys.path.insert(0, {bench!r})
t0 = time.perf_counter()
import warnings; warnings.simplefilter("ignore")
from backtest import {fn}, synthetic, opens, compute_signals
h, lo, c, v = synthetic(200, 500)
sig = compute_signals(h, lo, c, v)[0].signal
{fn}(sig, opens(c), c)
print(time.perf_counter() - t0)
"""


def first_call(fn: str) -> float:
    code = FIRST.format(bench=str(Path(__file__).parent), fn=fn)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def parity(sig: np.ndarray, o: np.ndarray, c: np.ndarray) -> str:
    """Largest disagreement with vectorbt: equity (absolute) and metrics (relative)."""
    res = backtest(sig, o, c, CFG)
    value, total, mdd, sharpe, sortino, count, win = theirs(sig, o, c)
    eq_diff = np.nanmax(np.abs(res.equity - value.to_numpy().T))
    pairs = [
        (res.strategy.total_return, total),
        (res.strategy.max_drawdown, mdd),
        (res.strategy.sharpe, sharpe),
        (res.strategy.sortino, sortino),
        (res.trades.trades, count),
        (res.trades.win_rate, win),
    ]
    listed = np.isfinite(c[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = max(np.nanmax(np.abs(a / b.to_numpy() - 1)[listed]) for a, b in pairs)
    return f"equity max |diff| {eq_diff:.3g}, metrics max relative diff {rel:.3g} (day-0 tokens)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--days", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    load_before = os.getloadavg()[0]
    h, lo, c, v = synthetic(args.tokens, args.days)
    o = opens(c)
    sig = compute_signals(h, lo, c, v)[0].signal
    t_sig = best(lambda: compute_signals(h, lo, c, v), args.repeat)
    a = best(lambda: ours(sig, o, c), args.repeat)
    b = best(lambda: theirs(sig, o, c), args.repeat)
    print(f"SYNTHETIC panel {args.tokens} tokens × {args.days} days, best of {args.repeat} warm")
    print(f"{'step':<42}{'ours s':>9}{'vectorbt s':>12}{'ratio':>8}")
    print(f"{'backtest + metrics (same signals)':<42}{a:>9.3f}{b:>12.3f}{a / b:>8.2f}")
    print(f"{'signals (ours; vectorbt gets them given)':<42}{t_sig:>9.3f}{'-':>12}")
    print(f"{'signals + backtest + metrics':<42}{t_sig + a:>9.3f}{b:>12.3f}{(t_sig + a) / b:>8.2f}")
    print(
        f"{'first call, fresh process (200×500)':<42}{first_call('ours'):>9.2f}"
        f"{first_call('theirs'):>12.2f}"
    )
    load = f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    print(f"(cores: {os.cpu_count()}, load average {load})")
    print(f"parity vs vectorbt: {parity(sig, o, c)}")


if __name__ == "__main__":
    main()
