"""Everything the token page shows, gathered from the services; a panel whose data is not
computed yet carries the reason instead of numbers."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import numpy as np

from coinlens.analytics.indicators import ema
from coinlens.domain.errors import DataUnavailable
from coinlens.domain.grades import TokenGrades
from coinlens.domain.models import SYNTHETIC, Candle, TokenDetail
from coinlens.services import analytics_queries, catalog, forecasts
from coinlens.services import grades as grade_service
from coinlens.services.context import Context
from coinlens.storage import analytics_repo

T = TypeVar("T")
EMBED_DAYS = 365
# Hourly EMA warm-up before the shown window: the weight left on the seed after 800 bars is
# (1 - 2/201)^800 ≈ 3e-4 for EMA 200.
WARMUP_DAYS = 800
HOURLY_DAYS = 90
EMA_WINDOWS = (20, 50, 200)
RANGES = {"1d": ("1M", "3M", "6M", "1Y", "All"), "1h": ("1W", "1M", "3M")}


def attempt(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T | None, str | None]:
    """(result, None), or (None, reason) when the service says the data is not there."""
    try:
        return fn(*args, **kwargs), None
    except DataUnavailable as exc:
        return None, str(exc)


def _r(x: float | None, digits: int = 6) -> float | None:
    """Round to `digits` significant digits (smaller JSON, no visible change)."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _t(c: Candle) -> int:
    return int(c.open_time.timestamp())


def chart_series(candles: list[Candle], since: datetime | None) -> dict[str, Any]:
    """Candles, volumes and EMA overlays as compact arrays for the chart (from `since`)."""
    close = np.array([c.close for c in candles], dtype=np.float64)
    emas = {w: ema(close[None, :], w)[0] if len(close) else close for w in EMA_WINDOWS}
    lo = 0
    if since is not None:
        cut = since.timestamp()
        lo = next((i for i, c in enumerate(candles) if c.open_time.timestamp() >= cut), 0)
    rows = candles[lo:]
    return {
        "candles": [[_t(c), _r(c.open), _r(c.high), _r(c.low), _r(c.close)] for c in rows],
        "volume": [
            [_t(c), _r(c.quote_volume if c.quote_volume is not None else c.volume * c.close, 4)]
            for c in rows
        ],
        "ema": {
            str(w): [
                [_t(c), _r(float(v))]
                for c, v in zip(rows, emas[w][lo:], strict=True)
                if math.isfinite(v)
            ]
            for w in EMA_WINDOWS
        },
    }


def _daily_arrays(ctx: Context, symbol: str) -> tuple[str, list[Candle]] | None:
    """The token's whole daily series (`repo.in_series`), read columnar (fast), as candles."""
    with ctx.engine.connect() as conn:
        token = analytics_repo.token_by_symbol(conn, symbol)
        if token is None or token.primary_market_id is None:
            return None
        days, ohlcv = analytics_repo.read_daily_series(conn, token.id, quote_volume=True)
    candles = [
        Candle.model_construct(
            open_time=datetime.fromtimestamp(int(d) * 86_400, tz=UTC),
            open=o, high=h, low=lo, close=c, volume=v,
            quote_volume=q if math.isfinite(q) else None,
        )
        for d, (o, h, lo, c, v, q) in zip(days.tolist(), ohlcv.tolist(), strict=True)
    ]  # fmt: skip
    return str(token.market_key), candles


def chart_payload(
    ctx: Context, symbol: str, timeframe: str, full: bool, newest: datetime | None = None
) -> dict[str, Any]:
    """Chart data for one timeframe: the last year (or everything) daily, 90 days hourly.

    Daily EMAs run over the whole history; hourly ones over a warm-up before the window
    (see WARMUP_DAYS). Volume bars are the venue's quote volume where it reports one (Binance
    perpetuals), else base volume × close (≈ quote currency traded), as in the overview.
    """
    if timeframe == "1d":
        found = _daily_arrays(ctx, symbol)
        if found is None:
            raise DataUnavailable(f"{symbol} has no daily candles")
        market, candles = found
        since = None if full or not candles else candles[-1].open_time - timedelta(EMBED_DAYS)
        return {"timeframe": "1d", "market": market, **chart_series(candles, since)}
    detail = catalog.get_token(ctx, symbol)
    hourly, hourly_last = hourly_market(detail)
    last = hourly_last or newest or detail.as_of or datetime.now(UTC)
    shown = timedelta(days=HOURLY_DAYS)
    start = last - shown - timedelta(days=WARMUP_DAYS // 24 + 10)
    ohlcv = catalog.get_ohlcv(
        ctx, symbol, timeframe="1h", start=start, market=hourly, limit=catalog.MAX_CANDLES_LIMIT
    )
    return {"timeframe": "1h", "market": ohlcv.market, **chart_series(ohlcv.candles, last - shown)}


def hourly_market(detail: TokenDetail) -> tuple[str | None, datetime | None]:
    """The market the hourly chart shows, with its newest hourly candle: the primary market
    when it has hourly candles, else the one whose hourly candles end last (PEPE's hourly
    candles are spot PEPEUSDT's, its daily series the 1000PEPEUSDT perpetual's)."""
    spans = [
        (c.last, c.count, m.is_primary, m.market_key)
        for m in detail.markets
        for c in m.coverage
        if c.timeframe == "1h" and c.count
    ]
    if not spans:
        return None, None
    primary = [s for s in spans if s[2]]
    last, _, _, key = primary[0] if primary else max(spans)
    return key, last


def is_synthetic(detail: TokenDetail) -> bool:
    """Whether the token is generated data (benches, tests), labelled SYNTHETIC in its
    categories, name or market source: never to be read as market data."""
    return (
        SYNTHETIC in detail.categories
        or SYNTHETIC in (detail.name or "")
        or any(SYNTHETIC in (m.source or "") for m in detail.markets)
    )


def quote_of(detail: TokenDetail) -> str:
    """The currency the page's prices are in: the primary market's quote (USDT on Binance,
    USD on Coinbase)."""
    return next((m.quote for m in detail.markets if m.is_primary and m.quote), "USD")


def has_hourly(detail: TokenDetail) -> bool:
    """Whether any market of the token has hourly candles."""
    return any(c.timeframe == "1h" and c.count for m in detail.markets for c in m.coverage)


@dataclass
class MarketVolume:
    """One market's traded value over the token's last 30 days; `ended` is the last daily
    candle of a market that has none in them (no value, no share)."""

    market: str
    exchange: str
    instrument: str
    usd: float | None
    days: int
    approx: bool
    share: float | None = None
    ended: date | None = None


def market_volumes(ctx: Context, detail: TokenDetail) -> list[MarketVolume]:
    """Traded value per market (spot vs perp, by exchange) over the same 30 days for every
    market: those ending on the newest daily candle of any of the token's markets. A market
    that stopped before them (a delisted pair) is listed with its last day instead: its own
    last 30 days were once summed with today's and took the largest share."""
    lasts = {
        m.market_key: max((c.last for c in m.coverage if c.timeframe == "1d"), default=None)
        for m in detail.markets
    }
    newest = max((v for v in lasts.values() if v is not None), default=None)
    if newest is None:
        return []
    start = newest - timedelta(days=29)
    out = []
    for m in detail.markets:
        last = lasts[m.market_key]
        if last is None:
            continue
        if last < start:
            out.append(
                MarketVolume(
                    m.market_key, m.exchange, m.instrument, None, 0, False, None, last.date()
                )
            )
            continue
        ohlcv = catalog.get_ohlcv(ctx, detail.symbol, market=m.market_key, start=start, limit=40)
        approx = any(c.quote_volume is None for c in ohlcv.candles)
        usd = sum(
            c.quote_volume if c.quote_volume is not None else c.volume * c.close
            for c in ohlcv.candles
        )
        out.append(
            MarketVolume(m.market_key, m.exchange, m.instrument, usd, len(ohlcv.candles), approx)
        )
    total = sum(v.usd or 0.0 for v in out)
    for v in out:
        if v.usd is not None:
            v.share = v.usd / total if total > 0 else None
    return sorted(out, key=lambda v: -(v.usd or 0.0))


@dataclass
class TokenPage:
    """The token page's data; `missing` maps a panel to why it has no data."""

    detail: TokenDetail
    chart: dict[str, Any]
    signal: Any = None
    levels: Any = None
    roi: Any = None
    grades: Any = None
    performance: Any = None
    predictions: Any = None
    scenarios: Any = None
    volumes: list[MarketVolume] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    newest_day: date | None = None  # the dataset's newest daily candle, over every token

    @property
    def price(self) -> float | None:
        """Newest daily close on the chart."""
        candles = self.chart.get("candles") or []
        return candles[-1][4] if candles else None

    @property
    def price_day(self) -> date | None:
        """The day of that close."""
        candles = self.chart.get("candles") or []
        return datetime.fromtimestamp(candles[-1][0], tz=UTC).date() if candles else None

    @property
    def stale(self) -> bool:
        """Whether the token's newest close is older than the dataset's newest day."""
        return is_stale(self.price_day, self.newest_day)


def dataset_newest_day(ctx: Context) -> date | None:
    """The newest daily candle of any token: the day 'current' prices are as of."""
    as_of = catalog.list_tokens(ctx, limit=1).as_of
    return as_of.date() if as_of else None


def is_stale(day: date | None, newest_day: date | None) -> bool:
    """A close before the dataset's newest day is not a current price."""
    return day is not None and newest_day is not None and day < newest_day


def token_grades(ctx: Context, symbol: str, last_candle: date) -> TokenGrades:
    """The token's grades with the year of history that ends on its last graded day.

    The year is first guessed from the token's newest daily candle (one cheap query; its whole
    history costs 20× more); when its grades end elsewhere it is asked for again.
    """
    start = last_candle - timedelta(days=EMBED_DAYS)
    found = grade_service.get_grades(ctx, symbol, start=start)
    if found.day is None or found.day - timedelta(days=EMBED_DAYS) == start:
        return found
    return grade_service.get_grades(ctx, symbol, start=found.day - timedelta(days=EMBED_DAYS))


def _markers(signal: Any, first_time: int | None) -> list[dict[str, Any]]:
    if signal is None:
        return []
    out = []
    for e in signal.history:
        t = int(datetime(e.date.year, e.date.month, e.date.day, tzinfo=UTC).timestamp())
        if first_time is not None and t < first_time:
            continue
        if e.to_signal == "flat":
            continue
        out.append({"time": t, "kind": "bullish" if e.to_signal == "long" else "bearish"})
    return out


def _forecast(pred: Any) -> dict[str, Any] | None:
    if pred is None:
        return None
    origin = pred.origin
    t0 = int(datetime(origin.year, origin.month, origin.day, tzinfo=UTC).timestamp())
    q = [{"time": t0 + h.horizon * 86_400, **h.quantiles.model_dump()} for h in pred.horizons]
    return {"origin": t0, "last_close": pred.last_close, "points": q}


def build(ctx: Context, symbol: str) -> TokenPage:
    """The token page's data (NotFound for an unknown symbol)."""
    detail = catalog.get_token(ctx, symbol)
    sym = detail.symbol
    last = detail.last_candle or detail.as_of
    last_day = last.date() if last else datetime.now(UTC).date()
    chart, why = attempt(chart_payload, ctx, sym, "1d", False, detail.as_of)
    page = TokenPage(detail=detail, chart=chart or {"candles": [], "volume": [], "ema": {}})
    page.newest_day = dataset_newest_day(ctx)
    if why:
        page.missing["chart"] = why
    loaders: dict[str, Callable[[], Any]] = {
        "signal": lambda: analytics_queries.get_signals(ctx, sym),
        "levels": lambda: analytics_queries.get_levels(ctx, sym),
        "roi": lambda: analytics_queries.get_roi(ctx, sym),
        "grades": lambda: token_grades(ctx, sym, last_day),
        "performance": lambda: analytics_queries.get_signal_performance(ctx, sym),
        "predictions": lambda: forecasts.get_predictions(ctx, sym),
        "scenarios": lambda: forecasts.get_scenarios(ctx, sym),
    }
    for name, load in loaders.items():
        value, reason = attempt(load)
        setattr(page, name, value)
        if reason:
            page.missing[name] = reason
    page.volumes = market_volumes(ctx, detail)
    first = page.chart["candles"][0][0] if page.chart["candles"] else None
    page.chart |= {
        "markers": _markers(page.signal, first),
        "levels": _levels(page.levels),
        "forecast": _forecast(page.predictions),
    }
    return page


def probability_days(scenarios: Any) -> tuple[date, date] | None:
    """The first and last day the probability form may ask about (what the service takes)."""
    return None if scenarios is None else forecasts.probability_dates(scenarios.origin)


def _levels(levels: Any) -> list[dict[str, Any]]:
    if levels is None:
        return []
    return [
        {"price": lv.price, "kind": lv.kind, "strength": round(lv.strength, 2)}
        for lv in levels.distinct()
    ]


def history_json(grades: Any) -> dict[str, list[list[Any]]]:
    """Grade history as [time, value] pairs for the grading-history chart."""
    if grades is None:
        return {"trader": [], "investor": []}

    def t(d: date) -> int:
        return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())

    return {
        "trader": [[t(p.day), round(p.trader, 1)] for p in grades.history],
        "investor": [[t(p.day), round(p.investor, 1)] for p in grades.history if p.investor],
    }


def equity_json(perf: Any) -> dict[str, list[list[Any]]]:
    """Backtest equity curves as [time, value] pairs."""
    if perf is None:
        return {"strategy": [], "buy_hold": []}
    out: dict[str, list[list[Any]]] = {"strategy": [], "buy_hold": []}
    for p in perf.equity:
        t = int(datetime(p.date.year, p.date.month, p.date.day, tzinfo=UTC).timestamp())
        if p.strategy is not None:
            out["strategy"].append([t, _r(p.strategy, 5)])
        if p.buy_hold is not None:
            out["buy_hold"].append([t, _r(p.buy_hold, 5)])
    return out
