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


# Per-token output columns of the stats table: strategy metrics, buy-and-hold metrics,
# then trade statistics. Metric columns follow `Performance`'s field order.
PERF, BH_PERF, TRADES = 0, 6, 12
N_STATS = 16
Metrics = tuple[float, float, float, float, float, float]

# One token's backtest state (a float64 row): the strategy's book, buy-and-hold's book,
# a running-performance block for each, the bar counter and the equity sampler.
CASH, SHARES, COST, LAST, PENDING, WAS_LONG, N_TR, WINS, SUM_RET, HELD, BARS = range(11)
B_CASH, B_SHARES, B_LAST, B_PENDING = range(11, 15)
P_STRATEGY, P_BUY_HOLD, P_WIDTH = 15, 26, 11
PREV, PEAK, LOW, MDD, N_RET, SUM_R, DOWN, FIRST, SPAN, MEAN, M2 = range(P_WIDTH)
BAR, CURVE_N, CURVE_K, CURVE_FIRST = 37, 38, 39, 40
STATE_WIDTH = 41
# The equity sampler keeps the bars whose offset from the first valued bar is a multiple
# of k, k the smallest power of two leaving at most CURVE_CAP of them; the curve served
# is those plus the last bar. Appending a bar keeps the rule, so it runs incrementally.
CURVE_CAP = 198


class BacktestState(NamedTuple):
    """Where every token's backtest stands after its last bar; `update_backtest` goes on."""

    core: F64  # (tokens, STATE_WIDTH)
    curve: F64  # (tokens, CURVE_CAP + 1, 3): bar index, strategy equity, buy-and-hold


class BacktestSummary(NamedTuple):
    """Metrics and trade statistics per token, without the equity curves."""

    strategy: Performance
    trades: TradeStats
    buy_hold: Performance


@njit_ieee
def _init_row(st: F64, init: float) -> None:
    st[:] = 0.0
    st[CASH] = st[B_CASH] = init
    st[LAST] = st[B_LAST] = np.nan
    st[B_PENDING] = 1.0
    for off in (P_STRATEGY, P_BUY_HOLD):
        st[off + PREV] = st[off + PEAK] = st[off + LOW] = init
        st[off + FIRST] = -1.0
    st[CURVE_K] = 1.0
    st[CURVE_FIRST] = -1.0


@njit_ieee
def _strategy_bar(st: F64, long_flag: int, o: float, c: float, costs: tuple[float, float]) -> float:
    """One bar of the signal strategy; returns the bar's equity."""
    fees, slip = costs
    if st[PENDING] != 0.0 and math.isfinite(o):
        if st[PENDING] > 0.0:
            st[COST] = st[CASH]
            st[SHARES] = st[CASH] / (1.0 + fees) / (o * (1.0 + slip))
            st[CASH] = 0.0
        else:
            value = st[SHARES] * (o * (1.0 - slip))
            st[CASH] = value - value * fees
            st[SHARES] = 0.0
            ret = st[CASH] / st[COST] - 1.0
            st[N_TR] += 1.0
            st[WINS] += 1.0 if ret > 0 else 0.0
            st[SUM_RET] += ret
        st[PENDING] = 0.0
    if math.isfinite(c):
        st[LAST] = c
    eq: float = st[CASH] + st[SHARES] * st[LAST]
    if math.isfinite(st[LAST]):
        st[BARS] += 1.0
        st[HELD] += 1.0 if st[SHARES] > 0 else 0.0
    # entries_exits, bar by bar: the signal turns +1 (entry) or leaves +1 (exit)
    is_long = long_flag == 1
    was_long = st[WAS_LONG] != 0.0
    if is_long and not was_long and st[SHARES] == 0.0:
        st[PENDING] = 1.0
    elif was_long and not is_long:
        st[PENDING] = -1.0 if st[SHARES] > 0.0 else 0.0
    st[WAS_LONG] = 1.0 if is_long else 0.0
    return eq


@njit_ieee
def _buy_hold_bar(st: F64, o: float, c: float, costs: tuple[float, float]) -> float:
    """One bar of buying with all cash at the first valid open and holding."""
    fees, slip = costs
    if st[B_PENDING] != 0.0 and math.isfinite(o):
        st[B_SHARES] = st[B_CASH] / (1.0 + fees) / (o * (1.0 + slip))
        st[B_CASH] = 0.0
        st[B_PENDING] = 0.0
    if math.isfinite(c):
        st[B_LAST] = c
    out: float = st[B_CASH] + st[B_SHARES] * st[B_LAST]
    return out


@njit_ieee
def _perf_bar(st: F64, off: int, v: float, j: int) -> None:
    """Fold one equity value into a running `returns.performance(eq, ppy, initial=init)`.

    A virtual bar worth `init` precedes the first finite value; sums run left to right and
    the deviation uses Welford's update. The drawdown divides once per running-peak
    segment: division by a fixed positive peak is monotone, so min(v / peak) over a
    segment equals min(v) / peak bit for bit.
    """
    if not math.isfinite(v):
        return
    if st[off + FIRST] < 0:
        st[off + FIRST] = j
    st[off + SPAN] = j - st[off + FIRST] + 1  # bars from the virtual one, gaps included
    r = v / st[off + PREV] - 1.0
    if math.isfinite(r):
        n = st[off + N_RET] + 1.0
        st[off + N_RET] = n
        st[off + SUM_R] += r
        st[off + DOWN] += min(r, 0.0) * min(r, 0.0)
        delta = r - st[off + MEAN]
        st[off + MEAN] += delta / n
        st[off + M2] += delta * (r - st[off + MEAN])
    if v > st[off + PEAK]:
        st[off + MDD] = min(st[off + MDD], st[off + LOW] / st[off + PEAK] - 1.0)
        st[off + PEAK] = st[off + LOW] = v
    elif v < st[off + LOW]:
        st[off + LOW] = v
    st[off + PREV] = v


@njit_ieee
def _perf_finish(st: F64, off: int, init: float, ppy: float) -> Metrics:
    """Total return, CAGR, volatility, Sharpe, Sortino and max drawdown so far."""
    nan = math.nan
    span = st[off + SPAN]
    if span == 0:  # no finite value at all
        return nan, nan, nan, nan, nan, nan
    growth = st[off + PREV] / init
    total, cagr = growth - 1.0, growth ** (ppy / span) - 1.0
    mdd = min(st[off + MDD], st[off + LOW] / st[off + PEAK] - 1.0)
    n = st[off + N_RET]
    if n < 2:
        return total, cagr, nan, nan, nan, mdd
    mean = st[off + SUM_R] / n
    sd = math.sqrt(st[off + M2] / (n - 1))
    dd = math.sqrt(st[off + DOWN] / n)
    scale = math.sqrt(ppy)
    sharpe = mean / sd * scale if sd > 0 else nan
    sortino = mean / dd * scale if dd > 0 else nan
    return total, cagr, sd * scale, sharpe, sortino, mdd


@njit_ieee
def _sample(st: F64, curve: F64, j: int, eq: float, bh: float) -> None:
    """Keep bar j in the equity sample when the rule of `CURVE_CAP` says so."""
    if not math.isfinite(eq) and not math.isfinite(bh):
        return
    if st[CURVE_FIRST] < 0:
        st[CURVE_FIRST] = j
    k = int(st[CURVE_K])
    if (j - int(st[CURVE_FIRST])) % k != 0:
        return
    n = int(st[CURVE_N])
    curve[n, 0], curve[n, 1], curve[n, 2] = j, eq, bh
    n += 1
    if n > CURVE_CAP:  # keep every other point: the multiples of 2k
        half = 0
        for q in range(0, n, 2):
            curve[half, :] = curve[q, :]
            half += 1
        n = half
        st[CURVE_K] = 2 * k
    st[CURVE_N] = n


@njit_ieee
def _bar(
    st: F64, curve: F64, bar: tuple[int, float, float], params: tuple[float, float, float, float]
) -> tuple[float, float]:
    """Advance one token by one bar: both books, both performance blocks, the sample."""
    long_flag, o, c = bar
    fees, slip = params[0], params[1]
    j = int(st[BAR])
    eq = _strategy_bar(st, long_flag, o, c, (fees, slip))
    bh = _buy_hold_bar(st, o, c, (fees, slip))
    _perf_bar(st, P_STRATEGY, eq, j)
    _perf_bar(st, P_BUY_HOLD, bh, j)
    _sample(st, curve, j, eq, bh)
    st[BAR] = j + 1
    return eq, bh


@njit_ieee
def _stats(st: F64, params: tuple[float, float, float, float], row: F64) -> None:
    """Metrics and trade statistics of one token's state (an open position is marked)."""
    _, _, init, ppy = params
    strategy = _perf_finish(st, P_STRATEGY, init, ppy)
    buy_hold = _perf_finish(st, P_BUY_HOLD, init, ppy)
    for k in range(6):
        row[PERF + k] = strategy[k]
        row[BH_PERF + k] = buy_hold[k]
    n_tr, wins, sum_ret = st[N_TR], st[WINS], st[SUM_RET]
    if st[SHARES] > 0.0:
        ret = st[SHARES] * st[LAST] / st[COST] - 1.0
        n_tr += 1.0
        wins += 1.0 if ret > 0 else 0.0
        sum_ret += ret
    row[TRADES] = n_tr
    row[TRADES + 1] = wins / n_tr if n_tr > 0 else np.nan
    row[TRADES + 2] = sum_ret / n_tr if n_tr > 0 else np.nan
    row[TRADES + 3] = st[HELD] / st[BARS] if st[BARS] > 0 else np.nan


@njit_ieee
def _backtest_rows(
    sig: NDArray[np.int8],
    px: tuple[F64, F64],
    params: tuple[float, float, float, float],
    out: tuple[F64, F64, F64, F64, F64],
    r0: int,
    r1: int,
) -> None:
    """Tokens r0..r1 over all bars: equity curves, end state and statistics."""
    op, cl = px
    equity, bh, stats, core, curve = out
    for i in range(r0, r1):
        _init_row(core[i], params[2])
        for j in range(cl.shape[1]):
            equity[i, j], bh[i, j] = _bar(
                core[i], curve[i], (sig[i, j], op[i, j], cl[i, j]), params
            )
        _stats(core[i], params, stats[i])


@njit_ieee
def _update_rows(
    sig: NDArray[np.int8],
    px: tuple[F64, F64],
    params: tuple[float, float, float, float],
    out: tuple[F64, F64, F64],
) -> None:
    op, cl = px
    stats, core, curve = out
    for i in range(cl.shape[0]):
        _bar(core[i], curve[i], (sig[i], op[i], cl[i]), params)
        _stats(core[i], params, stats[i])


def _as_long_flags(signal: ArrayLike) -> NDArray[np.int8]:
    """The signal as a C-contiguous int8 panel in which exactly the +1 bars equal 1."""
    sig = np.atleast_2d(np.asarray(signal))
    if sig.dtype != np.int8:
        sig = (sig == 1).view(np.int8)
    return np.ascontiguousarray(sig)


def _params(cfg: BacktestConfig) -> tuple[float, float, float, float]:
    # all floats, so an int in the config does not compile another specialisation
    return (float(cfg.fees), float(cfg.slippage), float(cfg.init_cash), float(cfg.periods_per_year))


def _summary(stats: F64) -> BacktestSummary:
    cols = np.ascontiguousarray(stats.T)
    trades = TradeStats(cols[TRADES].astype(np.int64), *cols[TRADES + 1 : TRADES + 4])
    return BacktestSummary(
        Performance(*cols[PERF : PERF + 6]), trades, Performance(*cols[BH_PERF : BH_PERF + 6])
    )


def backtest_with_state(
    signal: ArrayLike, open_: ArrayLike, close: ArrayLike, config: BacktestConfig | None = None
) -> tuple[BacktestResult, BacktestState]:
    """`backtest`, plus the state from which `update_backtest` continues bar by bar."""
    cfg = config or BacktestConfig()
    op, cl = as_panel(open_), as_panel(close)
    sig = _as_long_flags(signal)
    if not (op.shape == cl.shape == sig.shape):
        raise UserInputError("signal, open and close must have the same shape")
    m, t = cl.shape
    equity, bh, stats = np.empty((m, t)), np.empty((m, t)), np.empty((m, N_STATS))
    state = BacktestState(np.empty((m, STATE_WIDTH)), np.full((m, CURVE_CAP + 1, 3), np.nan))
    run_rows(_backtest_rows, m, sig, (op, cl), _params(cfg), (equity, bh, stats, *state))
    s = _summary(stats)
    return BacktestResult(equity, s.strategy, s.trades, bh, s.buy_hold), state


def backtest(
    signal: ArrayLike, open_: ArrayLike, close: ArrayLike, config: BacktestConfig | None = None
) -> BacktestResult:
    """Run the long-only signal strategy and buy-and-hold on every token.

    Equity equals vectorbt's `Portfolio.from_signals` (size = all cash) on the orders of
    `entries_exits` placed one bar later; metrics equal `returns.performance(equity,
    periods_per_year, initial=init_cash)`.
    """
    return backtest_with_state(signal, open_, close, config)[0]


def update_backtest(
    state: BacktestState,
    signal: ArrayLike,
    open_: ArrayLike,
    close: ArrayLike,
    config: BacktestConfig | None = None,
) -> tuple[BacktestState, BacktestSummary]:
    """Advance every token by one bar (1-D columns); equal to re-running the whole history.

    The config must be the one the state was built with. The input state is not modified.
    """
    cfg = config or BacktestConfig()
    m = state.core.shape[0]
    sig = _as_long_flags(np.asarray(signal).reshape(1, -1))[0]
    op, cl = (np.ascontiguousarray(x, dtype=np.float64) for x in (open_, close))
    if sig.shape != (m,) or op.shape != (m,) or cl.shape != (m,):
        raise UserInputError(f"signal, open and close must have shape ({m},), one per token")
    new = BacktestState(state.core.copy(), state.curve.copy())
    stats = np.empty((m, N_STATS))
    _update_rows(sig, (op, cl), _params(cfg), (stats, *new))
    return new, _summary(stats)


def equity_curve(state: BacktestState, i: int) -> tuple[NDArray[np.int64], F64, F64]:
    """Token i's sampled equity curve: (bar indices, strategy equity, buy-and-hold equity).

    The sampled bars (see `CURVE_CAP`) plus the last bar; empty before the first close.
    """
    st, n = state.core[i], int(state.core[i, CURVE_N])
    pts = state.curve[i, :n]
    idx, eq, bh = pts[:, 0].astype(np.int64), pts[:, 1], pts[:, 2]
    last = int(st[BAR]) - 1
    if n and idx[-1] != last:
        idx = np.append(idx, last)
        eq = np.append(eq, st[CASH] + st[SHARES] * st[LAST])
        bh = np.append(bh, st[B_CASH] + st[B_SHARES] * st[B_LAST])
    return idx, eq, bh
