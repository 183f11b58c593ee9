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

from coinlens.analytics._jit import njit, run_rows
from coinlens.analytics.indicators import as_panel
from coinlens.analytics.returns import Performance, performance
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


@njit
def _simulate_rows(
    px: tuple[F64, F64],
    orders: tuple[B, B],
    costs: tuple[float, float, float],
    out: tuple[F64, F64],
    r0: int,
    r1: int,
) -> None:
    """Equity per bar, and per token [trades, wins, sum of trade returns, bars held, bars]."""
    op, cl = px
    entries, exits = orders
    fees, slip, init = costs
    equity, stats = out
    for i in range(r0, r1):
        cash, shares, cost, last = init, 0.0, 0.0, np.nan
        pending = 0
        n_tr = wins = held = bars = 0
        sum_ret = 0.0
        for j in range(cl.shape[1]):
            o = op[i, j]
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
            if math.isfinite(cl[i, j]):
                last = cl[i, j]
            equity[i, j] = cash + shares * last
            if math.isfinite(last):
                bars += 1
                held += shares > 0
            if entries[i, j] and shares == 0.0:
                pending = 1
            elif exits[i, j]:
                pending = -1 if shares > 0.0 else 0
        if shares > 0.0:
            ret = shares * last / cost - 1.0
            n_tr += 1
            wins += ret > 0
            sum_ret += ret
        stats[i, 0], stats[i, 1], stats[i, 2] = n_tr, wins, sum_ret
        stats[i, 3], stats[i, 4] = held, bars


def _simulate(
    px: tuple[F64, F64], orders: tuple[B, B], costs: tuple[float, float, float]
) -> tuple[F64, F64]:
    m, t = px[1].shape
    out = (np.empty((m, t)), np.empty((m, 5)))
    run_rows(_simulate_rows, m, px, orders, costs, out)
    return out


def _buy_hold_orders(op: F64) -> B:
    """An entry on the bar before the first valid open, so it fills at that open."""
    valid = np.isfinite(op)
    has = valid.any(axis=1)
    first = np.argmax(valid, axis=1)
    entries = np.zeros(op.shape, np.bool_)
    rows = np.nonzero(has & (first > 0))[0]
    entries[rows, first[rows] - 1] = True
    return entries


def backtest(
    signal: ArrayLike, open_: ArrayLike, close: ArrayLike, config: BacktestConfig | None = None
) -> BacktestResult:
    """Run the long-only signal strategy and buy-and-hold on every token."""
    cfg = config or BacktestConfig()
    op, cl = as_panel(open_), as_panel(close)
    entries, exits = entries_exits(signal)
    if not (op.shape == cl.shape == entries.shape):
        raise UserInputError("signal, open and close must have the same shape")
    costs = (cfg.fees, cfg.slippage, cfg.init_cash)
    equity, stats = _simulate((op, cl), (entries, exits), costs)
    # Buy-and-hold: shift the panel right by one bar so the first valid open can be
    # reached by an order placed "the bar before", with no order ever closing it.
    pad = np.full((op.shape[0], 1), np.nan)
    op_bh, cl_bh = np.hstack([pad, op]), np.hstack([pad, cl])
    bh_entries = _buy_hold_orders(op_bh)
    bh_equity, _ = _simulate((op_bh, cl_bh), (bh_entries, np.zeros_like(bh_entries)), costs)
    with np.errstate(divide="ignore", invalid="ignore"):
        trades = TradeStats(
            stats[:, 0].astype(np.int64),
            np.where(stats[:, 0] > 0, stats[:, 1] / stats[:, 0], np.nan),
            np.where(stats[:, 0] > 0, stats[:, 2] / stats[:, 0], np.nan),
            np.where(stats[:, 4] > 0, stats[:, 3] / stats[:, 4], np.nan),
        )
    ppy = cfg.periods_per_year
    bh = bh_equity[:, 1:]
    init = cfg.init_cash
    return BacktestResult(
        equity, performance(equity, ppy, init), trades, bh, performance(bh, ppy, init)
    )
