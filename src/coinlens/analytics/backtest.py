"""Long-only backtest of daily signals for every token at once, against buy-and-hold.

Rules (stated in full in docs/signals.md):

* Decisions are taken at a bar's close from that bar's signal: enter when the signal turns
  +1 (it is +1 and was not on the previous bar), exit when it turns from +1 to 0 or -1.
  A position is therefore held exactly while the signal stays +1.
* Orders fill at the NEXT bar's open — never on the bar that produced them. If that open is
  missing the order waits for the next valid open; an exit before a pending entry fills
  cancels it.
* A buy spends all cash: price × (1 + slippage), fee = fees × traded value, so shares =
  cash / (1 + fees) / (open × (1 + slippage)). A sell receives shares × open × (1 −
  slippage) × (1 − fees). This is vectorbt's `Portfolio.from_signals` convention with
  size = all cash, which the parity tests check.
* Equity is cash + shares × last valid close; NaN before the token's first valid close.
  An open position at the end is valued at the last close without exit costs.
* Buy-and-hold buys at the open of the token's first bar with a valid open, same costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from coinlens.analytics._jit import njit_ieee, run_rows
from coinlens.analytics.indicators import as_panel
from coinlens.analytics.returns import Performance
from coinlens.domain.errors import UserInputError

F64 = NDArray[np.float64]
B = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """Costs and conventions of a backtest; fees and slippage are fractions per side."""

    fees: float = 0.001
    slippage: float = 0.0005
    init_cash: float = 1.0
    periods_per_year: float = 365.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.fees < 1.0 and 0.0 <= self.slippage < 1.0):
            raise UserInputError("fees and slippage must be fractions in [0, 1)")
        if not self.init_cash > 0 or not self.periods_per_year > 0:
            raise UserInputError("init_cash and periods_per_year must be positive")


class TradeStats(NamedTuple):
    """Per-token trade statistics of the strategy."""

    trades: NDArray[np.int64]
    win_rate: F64
    avg_trade_return: F64
    exposure: F64


class BacktestResult(NamedTuple):
    """Equity curves and metrics for the strategy and buy-and-hold, per token."""

    equity: F64
    strategy: Performance
    trades: TradeStats
    buy_hold_equity: F64
    buy_hold: Performance


def entries_exits(signal: ArrayLike) -> tuple[B, B]:
    """Bars whose close turns the signal to +1 (entries) and away from +1 (exits)."""
    sig = np.atleast_2d(np.asarray(signal))
    long = sig == 1
    prev = np.zeros_like(long)
    prev[:, 1:] = long[:, :-1]
    return long & ~prev, ~long & prev


# Per-token output columns of `_backtest_rows`: strategy metrics, buy-and-hold metrics,
# then trade statistics. Metric columns follow `Performance`'s field order.
PERF, BH_PERF, TRADES = 0, 6, 12
N_STATS = 16
Metrics = tuple[float, float, float, float, float, float]


@njit_ieee
def _strategy_row(
    sig: NDArray[np.int8], op: F64, cl: F64, costs: tuple[float, float, float], eq: F64
) -> tuple[int, int, float, int, int]:
    """Equity of one token, and its [trades, wins, sum of trade returns, bars held, bars]."""
    fees, slip, init = costs
    cash, shares, cost, last = init, 0.0, 0.0, np.nan
    pending = 0
    was_long = False
    n_tr = wins = held = bars = 0
    sum_ret = 0.0
    for j in range(cl.shape[0]):
        o = op[j]
        if pending != 0 and math.isfinite(o):
            if pending > 0:
                cost = cash
                shares = cash / (1.0 + fees) / (o * (1.0 + slip))
                cash = 0.0
            else:
                value = shares * (o * (1.0 - slip))
                cash = value - value * fees
                shares = 0.0
                ret = cash / cost - 1.0
                n_tr += 1
                wins += ret > 0
                sum_ret += ret
            pending = 0
        if math.isfinite(cl[j]):
            last = cl[j]
        eq[j] = cash + shares * last
        if math.isfinite(last):
            bars += 1
            held += shares > 0
        # entries_exits, bar by bar: the signal turns +1 (entry) or leaves +1 (exit)
        is_long = sig[j] == 1
        if is_long and not was_long and shares == 0.0:
            pending = 1
        elif was_long and not is_long:
            pending = -1 if shares > 0.0 else 0
        was_long = is_long
    if shares > 0.0:
        ret = shares * last / cost - 1.0
        n_tr += 1
        wins += ret > 0
        sum_ret += ret
    return n_tr, wins, sum_ret, held, bars


@njit_ieee
def _buy_hold_row(op: F64, cl: F64, costs: tuple[float, float, float], eq: F64) -> None:
    """Equity of buying with all cash at the first valid open and holding to the end."""
    fees, slip, init = costs
    cash, shares, last = init, 0.0, np.nan
    pending = True
    for j in range(cl.shape[0]):
        o = op[j]
        if pending and math.isfinite(o):
            shares = cash / (1.0 + fees) / (o * (1.0 + slip))
            cash = 0.0
            pending = False
        if math.isfinite(cl[j]):
            last = cl[j]
        eq[j] = cash + shares * last


@njit_ieee
def _perf_row(eq: F64, init: float, ppy: float, scratch: F64) -> Metrics:
    """`returns.performance(eq, ppy, initial=init)` for one row, in `Performance` order.

    Same definitions in one pass (plus a pass over the returns for the deviation): a
    virtual bar worth `init` precedes the first finite value; sums run left to right.
    The drawdown divides once per running-peak segment: division by a fixed positive peak
    is monotone, so min(v / peak) over a segment equals min(v) / peak bit for bit.
    """
    prev = peak = low = init
    mdd = 0.0
    n, s, down, first, span = 0, 0.0, 0.0, -1, 0
    for j in range(eq.shape[0]):
        v = eq[j]
        if not math.isfinite(v):
            continue
        if first < 0:
            first = j
        span = j - first + 1  # bars from the virtual one to this one, gaps included
        r = v / prev - 1.0
        if math.isfinite(r):
            scratch[n] = r
            n += 1
            s += r
            down += min(r, 0.0) * min(r, 0.0)
        if v > peak:
            mdd = min(mdd, low / peak - 1.0)
            peak = low = v
        elif v < low:
            low = v
        prev = v
    return _finish_perf((init, prev, peak, low, mdd), (n, s, down, span), ppy, scratch)


@njit_ieee
def _finish_perf(
    values: tuple[float, float, float, float, float],
    sums: tuple[int, float, float, int],
    ppy: float,
    scratch: F64,
) -> Metrics:
    """Total return, CAGR, volatility, Sharpe, Sortino and max drawdown from the sums."""
    init, final, peak, low, mdd = values
    n, s, down, span = sums
    nan = math.nan
    if span == 0:  # no finite value at all
        return nan, nan, nan, nan, nan, nan
    growth = final / init
    total, cagr = growth - 1.0, growth ** (ppy / span) - 1.0
    mdd = min(mdd, low / peak - 1.0)
    if n < 2:
        return total, cagr, nan, nan, nan, mdd
    mean = s / n
    ss = 0.0
    for k in range(n):
        d = scratch[k] - mean
        ss += d * d
    sd = math.sqrt(ss / (n - 1))
    dd = math.sqrt(down / n)
    scale = math.sqrt(ppy)
    sharpe = mean / sd * scale if sd > 0 else nan
    sortino = mean / dd * scale if dd > 0 else nan
    return total, cagr, sd * scale, sharpe, sortino, mdd


@njit_ieee
def _backtest_rows(
    sig: NDArray[np.int8],
    px: tuple[F64, F64],
    params: tuple[float, float, float, float],
    out: tuple[F64, F64, F64],
    r0: int,
    r1: int,
) -> None:
    """Strategy and buy-and-hold equity and metrics for tokens r0..r1, one pass each."""
    op, cl = px
    fees, slip, init, ppy = params
    costs = (fees, slip, init)
    equity, bh, stats = out
    scratch = np.empty(cl.shape[1])
    for i in range(r0, r1):
        n_tr, wins, sum_ret, held, bars = _strategy_row(sig[i], op[i], cl[i], costs, equity[i])
        _buy_hold_row(op[i], cl[i], costs, bh[i])
        row = stats[i]
        strategy = _perf_row(equity[i], init, ppy, scratch)
        buy_hold = _perf_row(bh[i], init, ppy, scratch)
        for k in range(6):
            row[PERF + k] = strategy[k]
            row[BH_PERF + k] = buy_hold[k]
        row[TRADES] = n_tr
        row[TRADES + 1] = wins / n_tr if n_tr > 0 else np.nan
        row[TRADES + 2] = sum_ret / n_tr if n_tr > 0 else np.nan
        row[TRADES + 3] = held / bars if bars > 0 else np.nan


def _as_long_flags(signal: ArrayLike) -> NDArray[np.int8]:
    """The signal as a C-contiguous int8 panel in which exactly the +1 bars equal 1."""
    sig = np.atleast_2d(np.asarray(signal))
    if sig.dtype != np.int8:
        sig = (sig == 1).view(np.int8)
    return np.ascontiguousarray(sig)


def backtest(
    signal: ArrayLike, open_: ArrayLike, close: ArrayLike, config: BacktestConfig | None = None
) -> BacktestResult:
    """Run the long-only signal strategy and buy-and-hold on every token.

    Equity equals vectorbt's `Portfolio.from_signals` (size = all cash) on the orders of
    `entries_exits` placed one bar later; metrics equal `returns.performance(equity,
    periods_per_year, initial=init_cash)`.
    """
    cfg = config or BacktestConfig()
    op, cl = as_panel(open_), as_panel(close)
    sig = _as_long_flags(signal)
    if not (op.shape == cl.shape == sig.shape):
        raise UserInputError("signal, open and close must have the same shape")
    m, t = cl.shape
    equity, bh, stats = np.empty((m, t)), np.empty((m, t)), np.empty((m, N_STATS))
    # all floats, so an int in the config does not compile another specialisation
    params = tuple(map(float, (cfg.fees, cfg.slippage, cfg.init_cash, cfg.periods_per_year)))
    run_rows(_backtest_rows, m, sig, (op, cl), params, (equity, bh, stats))
    cols = np.ascontiguousarray(stats.T)
    trades = TradeStats(cols[TRADES].astype(np.int64), *cols[TRADES + 1 : TRADES + 4])
    strategy = Performance(*cols[PERF : PERF + 6])
    return BacktestResult(equity, strategy, trades, bh, Performance(*cols[BH_PERF : BH_PERF + 6]))
