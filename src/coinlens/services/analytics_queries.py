"""Read side of the analytics: what the API, the CLI and the pages ask about one token or all.

Stored results come from `run_analytics`; indicator series and backtests with custom costs
or dates are computed on demand from the token's own daily candles (a one-row panel on a
daily calendar, NaN where a day has no candle), with the same kernels as the pipeline.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.engine import Connection, Row

from coinlens.analytics.backtest import (
    BacktestConfig,
    BacktestSummary,
    backtest,
    backtest_with_state,
)
from coinlens.analytics.signals import compute_signals
from coinlens.domain.analytics_models import (
    SIGNAL_LABELS,
    SIGNAL_VALUES,
    BacktestParams,
    EquityPoint,
    IndicatorRow,
    IndicatorSeries,
    Level,
    Metrics,
    Risk,
    SignalEvent,
    SignalLabel,
    SignalListItem,
    SignalPerformance,
    SignalsPage,
    TokenLevels,
    TokenRoi,
    TokenSignal,
    TradeMetrics,
)
from coinlens.domain.errors import DataUnavailable
from coinlens.domain.numbers import significant
from coinlens.services.analytics import (
    DEFAULT_BACKTEST,
    SOURCE,
    backtest_payload,
    indicator_panels,
    num,
    params_key,
)
from coinlens.services.catalog import unknown_sector, unknown_token
from coinlens.services.context import Context
from coinlens.services.paging import decode_cursor, encode_cursor, invalid
from coinlens.storage import analytics_repo
from coinlens.storage.panel import read_daily_panel
from coinlens.storage.tables import tokens

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
ON_DEMAND = "computed on demand from the token's daily candles"
MAX_INDICATOR_ROWS = 5_000
MAX_SIGNALS_LIMIT = 500
STALE_AFTER_DAYS = 2
_EPOCH = date(1970, 1, 1).toordinal()
_NOT_COMPUTED = "analytics not computed yet: run `coinlens pipeline`"


def to_date(day: int) -> date:
    """The UTC calendar date of an epoch day."""
    return date.fromordinal(_EPOCH + int(day))


def to_day(value: date) -> int:
    """The epoch day of a date."""
    return value.toordinal() - _EPOCH


def staleness(as_of_day: int | None, *, today: date | None = None) -> list[str]:
    """A warning when the last candle is more than STALE_AFTER_DAYS days old."""
    if as_of_day is None:
        return []
    age = to_day(today or datetime.now(UTC).date()) - int(as_of_day)
    return [f"stale: last candle is {age} days old"] if age > STALE_AFTER_DAYS else []


def _token(conn: Connection, symbol: str) -> Row[Any]:
    row = analytics_repo.token_by_symbol(conn, symbol)
    if row is None:
        raise unknown_token(conn, symbol)
    return row


def _stored(conn: Connection, symbol: str) -> tuple[Row[Any], Row[Any]]:
    token = _token(conn, symbol)
    row = analytics_repo.read_token_analytics(conn, token.id)
    if row is None:
        raise DataUnavailable(f"{token.symbol}: {_NOT_COMPUTED}")
    return token, row


# --- on-demand series ------------------------------------------------------------------------


def _series(conn: Connection, token: Row[Any]) -> tuple[I64, F64]:
    """The token's daily OHLCV on a gap-aware daily calendar: days, (5, days) array."""
    if token.primary_market_id is None:
        raise DataUnavailable(f"{token.symbol} has no daily candles")
    days, ohlcv = analytics_repo.read_daily_series(conn, token.id)
    if len(days) == 0:
        raise DataUnavailable(f"{token.symbol} has no daily candles")
    calendar = np.arange(days[0], days[-1] + 1, dtype=np.int64)
    grid = np.full((5, len(calendar)), np.nan)
    grid[:, days - days[0]] = ohlcv.T
    return calendar, grid


def _bounds(days: I64, start: date | None, end: date | None) -> tuple[int, int]:
    if start is not None and end is not None and start > end:
        raise invalid("start", "start must not be after end")
    lo = 0 if start is None else int(np.searchsorted(days, to_day(start), side="left"))
    hi = len(days) if end is None else int(np.searchsorted(days, to_day(end), side="right"))
    return lo, hi


def get_indicators(
    ctx: Context,
    symbol: str,
    *,
    start: date | None = None,
    end: date | None = None,
    cursor: str | None = None,
    limit: int = 1_000,
) -> IndicatorSeries:
    """Daily indicator rows of one token in [start, end], oldest first, `limit` candles a page."""
    if not 1 <= limit <= MAX_INDICATOR_ROWS:
        raise invalid("limit", f"must be between 1 and {MAX_INDICATOR_ROWS}")
    with ctx.engine.connect() as conn:
        token = _token(conn, symbol)
        days, (o, h, lo_, c, v) = _series(conn, token)
    lo, hi = _bounds(days, start, end)
    if cursor:
        after = decode_cursor("indicators", cursor).get("v")
        if not isinstance(after, int):
            raise invalid("cursor", "not a cursor for this listing")
        lo = max(lo, int(np.searchsorted(days, after, side="left")))
    panels = indicator_panels(o, h, lo_, c, v)
    # a page holds `limit` candles: days without one (gaps) neither count nor end a page
    candles = lo + np.flatnonzero(np.isfinite(c[lo:hi]))
    page, more = candles[:limit], candles[limit:]
    prices = {"open": o, "high": h, "low": lo_, "close": c, "volume": v}
    rows = [
        IndicatorRow(
            date=to_date(days[j]),
            # the candle as /ohlcv serves it (÷ a contract multiplier leaves float noise)
            **{k: num(significant(arr[j])) for k, arr in prices.items()},
            **{k: num(arr[j]) for k, arr in panels.items()},
        )
        for j in page.tolist()
    ]
    return IndicatorSeries(
        symbol=token.symbol,
        market=token.market_key,
        start=start,
        end=end,
        rows=rows,
        next_cursor=encode_cursor("indicators", v=int(days[more[0]])) if len(more) else None,
        source=f"{ON_DEMAND} ({token.source})",
        as_of=to_date(days[-1]),
        warnings=staleness(int(days[-1])) + ([] if rows else ["no candles in the requested range"]),
    )


# --- stored per-token results -------------------------------------------------------------------


def get_signals(ctx: Context, symbol: str) -> TokenSignal:
    """Current signal and score, the indicator values behind them, and every change."""
    with ctx.engine.connect() as conn:
        token, row = _stored(conn, symbol)
        events = analytics_repo.read_signal_events(conn, token.id)
    return TokenSignal(
        symbol=token.symbol,
        signal=SIGNAL_LABELS[int(row.signal)],
        score=row.score,
        since=None if row.signal_since_day is None else to_date(row.signal_since_day),
        indicators=dict(row.payload["signal_values"]),
        history=[
            SignalEvent(
                date=to_date(e.day),
                from_signal=SIGNAL_LABELS[int(e.from_signal)],
                to_signal=SIGNAL_LABELS[int(e.to_signal)],
                price=e.price,
                score=e.score,
            )
            for e in events
        ],
        source=SOURCE,
        as_of=to_date(row.as_of_day),
        computed_at=row.computed_at,
        warnings=staleness(row.as_of_day) + _pegged(token),
    )


def _pegged(token: Row[Any]) -> list[str]:
    if not token.is_stablecoin:
        return []
    return [
        f"{token.symbol} is a stablecoin: its price is pegged, so its trend signal does not "
        "call a market move"
    ]


def _level(raw: dict[str, Any] | None) -> Level | None:
    if raw is None:
        return None
    return Level(
        price=raw["price"],
        kind=raw["kind"],
        strength=raw["strength"],
        touches=raw["touches"],
        last_touch=to_date(raw["last_touch_day"]),
    )


def get_levels(ctx: Context, symbol: str) -> TokenLevels:
    """Nearest support and resistance around the last close, and the strongest levels."""
    with ctx.engine.connect() as conn:
        token, row = _stored(conn, symbol)
    levels = row.payload["levels"]
    return TokenLevels(
        symbol=token.symbol,
        close=row.payload["close"],
        support=_level(levels["support"]),
        resistance=_level(levels["resistance"]),
        strongest=[lv for lv in map(_level, levels["strongest"]) if lv is not None],
        source=SOURCE,
        as_of=to_date(row.as_of_day),
        warnings=staleness(row.as_of_day),
    )


def get_roi(ctx: Context, symbol: str) -> TokenRoi:
    """ROI over 1d/7d/30d/90d/1y/YTD/since the first close, and 90-day risk and drawdowns.

    The first close (`first_close`) is that of the token's series in our data, which starts
    at its listing only when the data reach back that far."""
    with ctx.engine.connect() as conn:
        token, row = _stored(conn, symbol)
    return TokenRoi(
        symbol=token.symbol,
        close=row.payload["close"],
        roi=dict(row.payload["roi"]),
        risk=Risk(**row.payload["risk"]),
        first_close=None if token.first_candle is None else to_date(token.first_candle // 86_400),
        source=SOURCE,
        as_of=to_date(row.as_of_day),
        warnings=staleness(row.as_of_day),
    )


# --- backtests -------------------------------------------------------------------------------


def _performance(
    symbol: str,
    payload: dict[str, Any],
    origin: tuple[str, datetime],
    span: tuple[Any, Any],
    last_candle: int | None = None,
) -> SignalPerformance:
    """The answer; staleness is about the token's `last_candle` (default: the run's end)."""
    source, computed_at = origin
    eq = payload["equity"]
    start_day, end_day = payload["start_day"], payload["end_day"]
    return SignalPerformance(
        symbol=symbol,
        params=BacktestParams(**payload["params"], start=span[0], end=span[1]),
        start=None if start_day is None else to_date(start_day),
        end=None if end_day is None else to_date(end_day),
        strategy=Metrics(**payload["strategy"]),
        trades=TradeMetrics(**payload["trades"]),
        buy_hold=Metrics(**payload["buy_hold"]),
        equity=[
            EquityPoint(date=to_date(d), strategy=s, buy_hold=b)
            for d, s, b in zip(eq["days"], eq["strategy"], eq["buy_hold"], strict=True)
        ],
        source=source,
        as_of=None if end_day is None else to_date(end_day),
        computed_at=computed_at,
        warnings=staleness(end_day if last_candle is None else last_candle),
    )


def _config(fee: float | None, slippage: float | None) -> BacktestConfig:
    for name, value in (("fee", fee), ("slippage", slippage)):
        if value is not None and not 0.0 <= value < 0.5:
            raise invalid(name, "must be a fraction in [0, 0.5)")
    return BacktestConfig(
        fees=DEFAULT_BACKTEST.fees if fee is None else fee,
        slippage=DEFAULT_BACKTEST.slippage if slippage is None else slippage,
    )


def get_signal_performance(
    ctx: Context,
    symbol: str,
    *,
    fee: float | None = None,
    slippage: float | None = None,
    start: date | None = None,
    end: date | None = None,
) -> SignalPerformance:
    """The strategy vs buy-and-hold: the stored default run, or computed for custom inputs.

    Signals always use the token's whole history (they only look back); `start`/`end` then
    restrict the trading window, and a long signal on its first day enters at the next open.
    """
    cfg = _config(fee, slippage)
    custom = (fee, slippage, start, end) != (None, None, None, None)
    with ctx.engine.connect() as conn:
        token = _token(conn, symbol)
        if not custom:
            row = analytics_repo.read_backtest(conn, token.id, params_key(cfg))
            if row is None:
                raise DataUnavailable(f"{token.symbol}: {_NOT_COMPUTED}")
            return _performance(token.symbol, row.payload, (SOURCE, row.computed_at), (None, None))
        days, (o, h, lo_, c, v) = _series(conn, token)
    sig = compute_signals(h, lo_, c, v)[0].signal
    lo, hi = _bounds(days, start, end)
    if hi - lo < 2:
        raise DataUnavailable(f"{token.symbol} has fewer than 2 days in the requested range")
    result, state = backtest_with_state(sig[:, lo:hi], o[lo:hi], c[lo:hi], cfg)
    summary = BacktestSummary(result.strategy, result.trades, result.buy_hold)
    payload = backtest_payload(days[lo:hi], summary, state, 0, cfg)
    origin = (ON_DEMAND, datetime.now(UTC))
    # a window ending in the past is not stale data: staleness is the token's last candle
    return _performance(token.symbol, payload, origin, (start, end), int(days[-1]))


# --- the universe ------------------------------------------------------------------------------


def list_signals(
    ctx: Context,
    *,
    signal: SignalLabel | None = None,
    sector: str | None = None,
    changed_within_days: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> SignalsPage:
    """Latest signal per token in symbol order; `changed_within_days` keeps recent flips.

    "Within N days" counts back from the newest analysed day (not the wall clock), so an
    old dataset still lists its last flips: N=1 keeps changes on that day only.
    """
    if not 1 <= limit <= MAX_SIGNALS_LIMIT:
        raise invalid("limit", f"must be between 1 and {MAX_SIGNALS_LIMIT}")
    if changed_within_days is not None and changed_within_days < 1:
        raise invalid("changed_within_days", "must be >= 1")
    with ctx.engine.connect() as conn:
        latest = analytics_repo.latest_as_of_day(conn)
        if latest is None:
            raise DataUnavailable(_NOT_COMPUTED)
        since = None if changed_within_days is None else latest - changed_within_days + 1
        value = None if signal is None else SIGNAL_VALUES[signal]
        query = analytics_repo.signals_query(value, sector, since)
        total = int(
            conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
        )
        if cursor:
            after = decode_cursor("signals", cursor).get("v")
            if not isinstance(after, str):
                raise invalid("cursor", "not a cursor for this listing")
            query = query.where(tokens.c.symbol > after)
        rows = conn.execute(query.order_by(tokens.c.symbol).limit(limit + 1)).all()
    page = rows[:limit]
    empty_why = None if total else unknown_sector(ctx, sector)  # an unknown sector, say so
    return SignalsPage(
        items=[_list_item(r) for r in page],
        total=total,
        limit=limit,
        next_cursor=encode_cursor("signals", v=page[-1].symbol) if len(rows) > limit else None,
        source=SOURCE,
        as_of=to_date(latest),
        warnings=staleness(latest) + ([empty_why] if empty_why else []),
    )


def _list_item(r: Row[Any]) -> SignalListItem:
    return SignalListItem(
        symbol=r.symbol,
        name=r.name,
        sector=r.sector,
        signal=SIGNAL_LABELS[int(r.signal)],
        previous_signal=None if r.from_signal is None else SIGNAL_LABELS[int(r.from_signal)],
        score=r.score,
        since=None if r.signal_since_day is None else to_date(r.signal_since_day),
        as_of=to_date(r.as_of_day),
    )


@dataclass(frozen=True)
class UniverseBacktest:
    """Every token's backtest under one config, and the universe summary."""

    config: BacktestConfig
    first_day: date
    last_day: date
    rows: list[dict[str, Any]]  # symbol, strategy/hold total return, max drawdowns, trades
    summary: dict[str, float | int | None]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _summary(rows: list[dict[str, Any]]) -> dict[str, float | int | None]:
    ok = [r for r in rows if r["strategy"] is not None and r["hold"] is not None]
    trades = sum(r["trades"] for r in ok)
    wins = sum(r["wins"] for r in ok)
    return {
        "tokens": len(ok),
        "median_strategy_return": _median([r["strategy"] for r in ok]),
        "median_hold_return": _median([r["hold"] for r in ok]),
        "beat_hold_rate": sum(r["strategy"] > r["hold"] for r in ok) / len(ok) if ok else None,
        "trade_win_rate": wins / trades if trades else None,
        "median_strategy_max_drawdown": _median([r["strategy_mdd"] for r in ok]),
        "median_hold_max_drawdown": _median([r["hold_mdd"] for r in ok]),
        "median_exposure": _median([r["exposure"] for r in ok if r["exposure"] is not None]),
        "trades": trades,
    }


def backtest_universe(
    ctx: Context,
    config: BacktestConfig,
    *,
    start: date | None = None,
    end: date | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 16,
) -> UniverseBacktest:
    """Backtest every token of the panel (signals from full history, trading in range)."""
    p = read_daily_panel(ctx.engine, ctx.cache_dir)
    sig = compute_signals(p.high, p.low, p.close, p.volume)[0].signal
    lo, hi = _bounds(p.days, start, end)
    if hi - lo < 2:
        raise DataUnavailable("fewer than 2 days in the requested range")
    rows: list[dict[str, Any]] = []
    m = len(p.token_ids)
    for a in range(0, m, chunk):
        b = min(m, a + chunk)
        res = backtest(sig[a:b, lo:hi], p.open[a:b, lo:hi], p.close[a:b, lo:hi], config)
        for k in range(b - a):
            trades = int(res.trades.trades[k])
            win = num(res.trades.win_rate[k])
            rows.append(
                {
                    "symbol": p.symbols[a + k],
                    "strategy": num(res.strategy.total_return[k]),
                    "hold": num(res.buy_hold.total_return[k]),
                    "strategy_mdd": num(res.strategy.max_drawdown[k]),
                    "hold_mdd": num(res.buy_hold.max_drawdown[k]),
                    "trades": trades,
                    "wins": round((win or 0.0) * trades),
                    "exposure": num(res.trades.exposure[k]),
                }
            )
        if progress:
            progress(b, m)
    span = (to_date(p.days[lo]), to_date(p.days[hi - 1]))
    return UniverseBacktest(config, span[0], span[1], rows, _summary(rows))
