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
* Metrics and trade statistics are those of the token's last bar with a close: bars after
  it (a delisted token on the shared calendar) carry the equity on but count for nothing,
  so a token whose data ends early is not annualised over days it has no price for.
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
P_STRATEGY, P_BUY_HOLD, P_WIDTH = 15, 27, 12
PREV, PEAK, LOW, MDD, N_RET, SUM_R, DOWN, FIRST, SPAN, SHIFT, SUM_D, SUM_D2 = range(P_WIDTH)
BAR, CURVE_N, CURVE_K, CURVE_FIRST = 39, 40, 41, 42
# the same books and performance blocks as of the last bar with a valid close (`_commit`)
C_STRATEGY, C_BUY_HOLD = 43, 55
C_N_TR, C_WINS, C_SUM_RET, C_HELD, C_BARS, C_SHARES, C_LAST, C_COST, C_BAR = range(67, 76)
STATE_WIDTH = 76
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
    _store_perf(st, C_STRATEGY, _load_perf(st, P_STRATEGY))
    _store_perf(st, C_BUY_HOLD, _load_perf(st, P_BUY_HOLD))
    st[C_LAST] = np.nan
    st[C_BAR] = -1.0


Perf = tuple[float, float, float, float, float, float, float, float, float, float, float, float]


@njit_ieee
def _load_perf(st: F64, off: int) -> Perf:
    return (
        st[off], st[off + 1], st[off + 2], st[off + 3], st[off + 4], st[off + 5],
        st[off + 6], st[off + 7], st[off + 8], st[off + 9], st[off + 10], st[off + 11],
    )  # fmt: skip


@njit_ieee
def _store_perf(st: F64, off: int, p: Perf) -> None:
    for k in range(P_WIDTH):
        st[off + k] = p[k]


@njit_ieee
def _perf_fold(p: Perf, v: float, j: int) -> Perf:
    """Fold one equity value into a running `returns.performance(eq, ppy, initial=init)`.

    A virtual bar worth `init` precedes the first finite value; sums run left to right. The
    deviation comes from sums of d = r - K and d², K the first return (shifted sums: no
    division per bar, and no cancellation when returns barely vary). The drawdown divides
    once per running-peak segment: division by a fixed positive peak is monotone, so
    min(v / peak) over a segment equals min(v) / peak bit for bit.
    """
    prev, peak, low, mdd, n, s, down, first, span, shift, sd1, sd2 = p
    if not math.isfinite(v):
        return p
    if first < 0:
        first = j
    span = j - first + 1  # bars from the virtual one, gaps included
    r = v / prev - 1.0
    if math.isfinite(r):
        if n == 0.0:
            shift = r
        n += 1.0
        s += r
        down += min(r, 0.0) * min(r, 0.0)
        d = r - shift
        sd1 += d
        sd2 += d * d
    if v > peak:
        mdd = min(mdd, low / peak - 1.0)
        peak = low = v
    elif v < low:
        low = v
    return (v, peak, low, mdd, n, s, down, first, span, shift, sd1, sd2)


@njit_ieee
def _commit(
    st: F64,
    ps: Perf,
    pb: Perf,
    book: tuple[float, float, float, float, float, float, float, float],
    bar: int,
) -> None:
    """Keep the state after `bar`, the last bar with a close so far: what the metrics report.
    Taken when a run of bars without a close starts and at the end of each call, not per bar."""
    _store_perf(st, C_STRATEGY, ps)
    _store_perf(st, C_BUY_HOLD, pb)
    st[C_N_TR], st[C_WINS], st[C_SUM_RET], st[C_HELD] = book[0], book[1], book[2], book[3]
    st[C_BARS], st[C_SHARES], st[C_LAST], st[C_COST] = book[4], book[5], book[6], book[7]
    st[C_BAR] = bar


@njit_ieee
def _advance(
    st: F64,
    curve: F64,
    bars_in: tuple[NDArray[np.int8], F64, F64],
    costs: tuple[float, float],
    out: tuple[F64, F64],
    write: bool,
) -> None:
    """Advance one token's state over the given bars (the strategy, buy-and-hold, both
    performance blocks and the equity sample); equity goes to `out` when `write`.

    The full history and the daily update both run this loop, so they agree bit for bit.
    """
    sig, op, cl = bars_in
    fees, slip = costs
    cash, shares, cost, last = st[CASH], st[SHARES], st[COST], st[LAST]
    pending, was_long = st[PENDING], st[WAS_LONG]
    n_tr, wins, sum_ret, held, bars = st[N_TR], st[WINS], st[SUM_RET], st[HELD], st[BARS]
    b_cash, b_shares, b_last, b_pending = st[B_CASH], st[B_SHARES], st[B_LAST], st[B_PENDING]
    ps, pb = _load_perf(st, P_STRATEGY), _load_perf(st, P_BUY_HOLD)
    j, cn, ck, cf = int(st[BAR]), int(st[CURVE_N]), int(st[CURVE_K]), int(st[CURVE_FIRST])
    nxt = j if cf < 0 else cf + -(-(j - cf) // ck) * ck  # the next bar the sample keeps
    closed = st[C_BAR] == j - 1  # the previous bar had a close (its state is committed)
    for q in range(cl.shape[0]):
        o, c = op[q], cl[q]
        if closed and not math.isfinite(c):  # the bars without a close start: keep the state
            _commit(st, ps, pb, (n_tr, wins, sum_ret, held, bars, shares, last, cost), j - 1)
        closed = math.isfinite(c)
        # the signal strategy: orders decided at a close fill at the next valid open
        if pending != 0.0 and math.isfinite(o):
            if pending > 0.0:
                cost = cash
                shares = cash / (1.0 + fees) / (o * (1.0 + slip))
                cash = 0.0
            else:
                value = shares * (o * (1.0 - slip))
                cash = value - value * fees
                shares = 0.0
                ret = cash / cost - 1.0
                n_tr += 1.0
                wins += 1.0 if ret > 0 else 0.0
                sum_ret += ret
            pending = 0.0
        if math.isfinite(c):
            last = c
        eq = cash + shares * last
        if math.isfinite(last):
            bars += 1.0
            held += 1.0 if shares > 0 else 0.0
        is_long = sig[q] == 1  # entries_exits, bar by bar
        if is_long and was_long == 0.0 and shares == 0.0:
            pending = 1.0
        elif was_long != 0.0 and not is_long:
            pending = -1.0 if shares > 0.0 else 0.0
        was_long = 1.0 if is_long else 0.0
        # buy-and-hold: all cash at the first valid open
        if b_pending != 0.0 and math.isfinite(o):
            b_shares = b_cash / (1.0 + fees) / (o * (1.0 + slip))
            b_cash = 0.0
            b_pending = 0.0
        if math.isfinite(c):
            b_last = c
        bh = b_cash + b_shares * b_last
        ps, pb = _perf_fold(ps, eq, j), _perf_fold(pb, bh, j)
        # the equity sample (see CURVE_CAP)
        if math.isfinite(eq) or math.isfinite(bh):
            if cf < 0:
                cf = nxt = j
            if j == nxt:
                curve[cn, 0], curve[cn, 1], curve[cn, 2] = j, eq, bh
                cn += 1
                if cn > CURVE_CAP:  # keep every other point: the multiples of 2k
                    half = 0
                    for r in range(0, cn, 2):
                        curve[half, :] = curve[r, :]
                        half += 1
                    cn, ck = half, 2 * ck
                nxt = cf + ((j - cf) // ck + 1) * ck
        if write:
            out[0][q], out[1][q] = eq, bh
        j += 1
    if closed:
        _commit(st, ps, pb, (n_tr, wins, sum_ret, held, bars, shares, last, cost), j - 1)
    st[CASH], st[SHARES], st[COST], st[LAST] = cash, shares, cost, last
    st[PENDING], st[WAS_LONG] = pending, was_long
    st[N_TR], st[WINS], st[SUM_RET], st[HELD], st[BARS] = n_tr, wins, sum_ret, held, bars
    st[B_CASH], st[B_SHARES], st[B_LAST], st[B_PENDING] = b_cash, b_shares, b_last, b_pending
    _store_perf(st, P_STRATEGY, ps)
    _store_perf(st, P_BUY_HOLD, pb)
    st[BAR], st[CURVE_N], st[CURVE_K], st[CURVE_FIRST] = j, cn, ck, cf


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
    sd1 = st[off + SUM_D]
    sd = math.sqrt(max(st[off + SUM_D2] - sd1 * sd1 / n, 0.0) / (n - 1))
    dd = math.sqrt(st[off + DOWN] / n)
    scale = math.sqrt(ppy)
    sharpe = mean / sd * scale if sd > 0 else nan
    sortino = mean / dd * scale if dd > 0 else nan
    return total, cagr, sd * scale, sharpe, sortino, mdd


@njit_ieee
def _stats(st: F64, params: tuple[float, float, float, float], row: F64) -> None:
    """Metrics and trade statistics of one token's state as of its last close (an open
    position is marked at that close)."""
    _, _, init, ppy = params
    strategy = _perf_finish(st, C_STRATEGY, init, ppy)
    buy_hold = _perf_finish(st, C_BUY_HOLD, init, ppy)
    for k in range(6):
        row[PERF + k] = strategy[k]
        row[BH_PERF + k] = buy_hold[k]
    n_tr, wins, sum_ret = st[C_N_TR], st[C_WINS], st[C_SUM_RET]
    if st[C_SHARES] > 0.0:
        ret = st[C_SHARES] * st[C_LAST] / st[C_COST] - 1.0
        n_tr += 1.0
        wins += 1.0 if ret > 0 else 0.0
        sum_ret += ret
    row[TRADES] = n_tr
    row[TRADES + 1] = wins / n_tr if n_tr > 0 else np.nan
    row[TRADES + 2] = sum_ret / n_tr if n_tr > 0 else np.nan
    row[TRADES + 3] = st[C_HELD] / st[C_BARS] if st[C_BARS] > 0 else np.nan


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
    costs = (params[0], params[1])
    for i in range(r0, r1):
        _init_row(core[i], params[2])
        _advance(core[i], curve[i], (sig[i], op[i], cl[i]), costs, (equity[i], bh[i]), True)
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
    costs = (params[0], params[1])
    unused = (np.empty(1), np.empty(1))
    for i in range(cl.shape[0]):
        bar = (sig[i : i + 1], op[i : i + 1], cl[i : i + 1])
        _advance(core[i], curve[i], bar, costs, unused, False)
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

    The sampled bars (see `CURVE_CAP`) up to the token's last close, plus that bar; empty
    before the first close.
    """
    st, n = state.core[i], int(state.core[i, CURVE_N])
    last = int(st[C_BAR])
    pts = state.curve[i, :n]
    pts = pts[pts[:, 0] <= last]
    idx, eq, bh = pts[:, 0].astype(np.int64), pts[:, 1], pts[:, 2]
    if len(idx) and idx[-1] != last:
        idx = np.append(idx, last)
        eq = np.append(eq, st[C_STRATEGY + PREV])
        bh = np.append(bh, st[C_BUY_HOLD + PREV])
    return idx, eq, bh
