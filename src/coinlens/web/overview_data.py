"""The market overview's rows: one per token, joined from the panel, grades, signals and caps.

Built once per candle version (and at most every `TTL` seconds for grades/signals), then
filtered, sorted and paged in memory: 2,000 tokens sort in about a millisecond.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import sqlalchemy as sa
import structlog

from coinlens.domain.errors import DataUnavailable
from coinlens.domain.models import SYNTHETIC
from coinlens.services import analytics_queries, catalog
from coinlens.services import grades as grade_service
from coinlens.services.context import Context
from coinlens.storage.panel import Panel, read_daily_panel
from coinlens.storage.repo import CANDLES_VERSION, read_counter
from coinlens.storage.tables import market_caps

log = structlog.get_logger(__name__)

TTL = 30.0
SPARK_DAYS = 30
SORTS = ("symbol", "price", "ch24", "ch7", "mcap", "volume", "trader", "investor", "signal")
BANDS = ("strong_buy", "buy", "neutral", "sell", "strong_sell")
SIGNALS = ("long", "flat", "short")


@dataclass
class Row:
    """One token's line of the overview table."""

    symbol: str
    name: str
    sector: str | None
    synthetic: bool
    stablecoin: bool = False  # pegged: its trend signal says nothing about the market
    price: float | None = None
    last_close: date | None = None
    stale: bool = False  # newest close before the data's as-of day: no current change or volume
    ch24: float | None = None
    ch7: float | None = None
    mcap: float | None = None
    mcap_date: date | None = None
    volume: float | None = None
    volume_approx: bool = False
    market: str | None = None  # the primary market's key: the one venue the volume is from
    trader: float | None = None
    investor: float | None = None
    band: str | None = None
    signal: str | None = None
    signal_since: date | None = None
    previous_signal: str | None = None
    spark: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Overview:
    """Every row plus what the page says about the data behind them."""

    rows: list[Row]
    as_of: date | None
    grades_day: date | None
    signals_day: date | None
    synthetic: bool
    sectors: list[str]
    warnings: list[str]


def _num(x: Any) -> float | None:
    v = float(x)
    return v if math.isfinite(v) else None


def _change(close: np.ndarray[Any, Any], end: int, lag: int) -> float | None:
    if end - lag < 0:
        return None
    then, now = close[end - lag], close[end]
    return _num(now / then - 1.0) if math.isfinite(then) and then > 0 else None


def _panel_fields(rows: dict[str, Row], p: Panel) -> date:
    finite = np.isfinite(p.close)
    t = p.close.shape[1]
    ends = np.where(finite.any(axis=1), t - 1 - np.argmax(finite[:, ::-1], axis=1), -1)
    for i, symbol in enumerate(p.symbols):
        row, end = rows.get(symbol), int(ends[i])
        if row is None or end < 0:
            continue
        close = p.close[i]
        row.price = _num(close[end])
        row.last_close = analytics_queries.to_date(int(p.days[end]))
        tail = close[max(0, end - SPARK_DAYS + 1) : end + 1]
        row.spark = [float(v) for v in tail[np.isfinite(tail)]]
        row.stale = end < t - 1
        if row.stale:
            continue  # a 2021 move is not today's 24h change; the page shows the date instead
        row.ch24, row.ch7 = _change(close, end, 1), _change(close, end, 7)
        qv = p.quote_volume[i, end]
        row.volume_approx = not math.isfinite(qv)
        row.volume = _num(qv) if math.isfinite(qv) else _num(p.volume[i, end] * close[end])
    return analytics_queries.to_date(int(p.days[-1]))


def _grades(ctx: Context, rows: dict[str, Row]) -> date | None:
    query = grade_service.LeaderboardQuery(limit=grade_service.MAX_LEADERBOARD_LIMIT)
    try:
        page = grade_service.leaderboard(ctx, query)
    except DataUnavailable:
        return None
    while True:
        for e in page.items:
            if (row := rows.get(e.symbol)) is not None:
                row.trader, row.investor, row.band = e.trader, e.investor, e.trader_band
        if page.next_cursor is None:
            return page.day
        query = grade_service.LeaderboardQuery(cursor=page.next_cursor, limit=query.limit)
        page = grade_service.leaderboard(ctx, query)


def _signals(ctx: Context, rows: dict[str, Row]) -> date | None:
    cursor: str | None = None
    as_of = None
    while True:
        try:
            page = analytics_queries.list_signals(ctx, cursor=cursor, limit=500)
        except DataUnavailable:
            return None
        as_of = page.as_of
        for s in page.items:
            row = rows.get(s.symbol)
            # a stale token's signal is its last one (of its last close), not a current call
            if row is not None and not row.stale and not row.stablecoin:
                row.signal, row.signal_since = s.signal, s.since
                row.previous_signal = s.previous_signal
        if page.next_cursor is None:
            return as_of
        cursor = page.next_cursor


def _caps(ctx: Context, rows: dict[str, Row], ids: dict[int, str]) -> None:
    """The newest CoinMarketCap snapshot of each token's market cap (monthly, dated)."""
    mc = market_caps.c
    newest = sa.select(mc.token_id, sa.func.max(mc.snapshot_date).label("d")).where(
        mc.market_cap.is_not(None)
    )
    sub = newest.group_by(mc.token_id).subquery()
    query = sa.select(mc.token_id, mc.snapshot_date, mc.market_cap).join(
        sub, sa.and_(mc.token_id == sub.c.token_id, mc.snapshot_date == sub.c.d)
    )
    with ctx.engine.connect() as conn:
        for token_id, day, cap in conn.execute(query):
            row = rows.get(ids.get(int(token_id), ""))
            if row is not None and cap is not None:
                row.mcap, row.mcap_date = float(cap), day


def _catalog(ctx: Context) -> tuple[dict[str, Row], dict[int, str]]:
    rows: dict[str, Row] = {}
    cursor: str | None = None
    while True:
        page = catalog.list_tokens(ctx, cursor=cursor, limit=catalog.MAX_TOKENS_LIMIT)
        for t in page.items:
            rows[t.symbol] = Row(
                symbol=t.symbol,
                name=t.name,
                sector=t.sector,
                synthetic=SYNTHETIC in t.categories or SYNTHETIC in t.name,
                stablecoin=t.is_stablecoin,
                market=t.primary_market,
            )
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    with ctx.engine.connect() as conn:
        ids = {int(i): str(s) for i, s in conn.execute(sa.text("SELECT id, symbol FROM tokens"))}
    return rows, ids


def build_overview(ctx: Context) -> Overview:
    """Assemble every token's row (no cache; see `overview`)."""
    rows, ids = _catalog(ctx)
    warnings: list[str] = []
    as_of = None
    try:
        as_of = _panel_fields(rows, read_daily_panel(ctx.engine, ctx.cache_dir))
    except DataUnavailable as exc:
        warnings.append(str(exc))
    _caps(ctx, rows, ids)
    grades_day = _grades(ctx, rows)
    signals_day = _signals(ctx, rows)
    if grades_day is None:
        warnings.append("grades not computed yet: run `coinlens up` (grades show as —)")
    if signals_day is None:
        warnings.append("signals not computed yet: run `coinlens pipeline` (signals show as —)")
    values = list(rows.values())
    return Overview(
        rows=values,
        as_of=as_of,
        grades_day=grades_day,
        signals_day=signals_day,
        synthetic=any(r.synthetic for r in values),
        sectors=sorted({r.sector for r in values if r.sector}),
        warnings=warnings,
    )


_lock = threading.Lock()
_build = threading.Lock()  # one build at a time; a cold request waits for the running one
_cache: dict[str, tuple[int, float, Overview]] = {}
_refreshing: set[str] = set()


def _cached(key: str, version: int) -> tuple[float, Overview] | None:
    with _lock:
        hit = _cache.get(key)
    return (hit[1], hit[2]) if hit is not None and hit[0] == version else None


def _store(ctx: Context, key: str, version: int) -> Overview:
    with _build:
        hit = _cached(key, version)
        if hit is not None and time.monotonic() - hit[0] < TTL:
            return hit[1]  # built by the request (or warm-up) we waited for
        built = build_overview(ctx)
        with _lock:
            _cache[key] = (version, time.monotonic(), built)
        return built


def _refresh(ctx: Context, key: str, version: int) -> None:
    try:
        _store(ctx, key, version)
    except Exception:
        log.warning("overview.refresh_failed", exc_info=True)  # the old rows stay
    finally:
        with _lock:
            _refreshing.discard(key)


def overview(ctx: Context) -> Overview:
    """The overview rows, rebuilt when candles changed; refreshed in the background after
    `TTL` seconds (that request and those during the rebuild get the previous rows)."""
    with ctx.engine.connect() as conn:
        version = read_counter(conn, CANDLES_VERSION)
    key = str(ctx.engine.url)
    hit = _cached(key, version)
    if hit is None:
        return _store(ctx, key, version)
    with _lock:
        if time.monotonic() - hit[0] >= TTL and key not in _refreshing:
            _refreshing.add(key)
            threading.Thread(target=_refresh, args=(ctx, key, version), daemon=True).start()
    return hit[1]


def warm(ctx: Context) -> None:
    """Build the overview once (at startup, so the first visitor does not wait for it)."""
    try:
        overview(ctx)
    except DataUnavailable:
        pass  # nothing loaded yet
    except Exception:
        log.warning("overview.warm_failed", exc_info=True)


# --- query -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """Filters, sort and page of the overview table (all from the URL)."""

    q: str = ""
    sector: str = ""
    band: str = ""
    signal: str = ""
    sort: str = "mcap"
    order: str = "desc"
    page: int = 1
    per: int = 50

    @classmethod
    def parse(cls, params: dict[str, str]) -> Query:
        """Read and clamp the parameters; unknown values fall back to the defaults."""
        sort = params.get("sort", "mcap")
        order = params.get("order", "desc")
        band = params.get("band", "")
        signal = params.get("signal", "")
        try:
            page = max(1, int(params.get("page", "1")))
            per = min(200, max(10, int(params.get("per", "50"))))
        except ValueError:
            page, per = 1, 50
        return cls(
            q=params.get("q", "").strip()[:64],
            sector=params.get("sector", "").strip()[:64],
            band=band if band in BANDS else "",
            signal=signal if signal in SIGNALS else "",
            sort=sort if sort in SORTS else "mcap",
            order=order if order in ("asc", "desc") else "desc",
            page=page,
            per=per,
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """The query as URL parameters, with `changes` applied (defaults left out)."""
        values = {**self.__dict__, **changes}
        defaults = Query().__dict__
        return {k: str(v) for k, v in values.items() if v != defaults[k]}


def _matches(row: Row, q: Query) -> bool:
    needle = q.q.lower()
    if needle and needle not in row.symbol.lower() and needle not in row.name.lower():
        return False
    if q.sector and (row.sector or "").lower() != q.sector.lower():
        return False
    if q.band and row.band != q.band:
        return False
    return not (q.signal and row.signal != q.signal)


_SIGNAL_ORDER = {"long": 2, "flat": 1, "short": 0}


def _key(row: Row, sort: str) -> Any:
    if sort == "symbol":
        return row.symbol
    if sort == "signal":
        return _SIGNAL_ORDER.get(row.signal or "")
    return getattr(row, sort)


def select(ov: Overview, q: Query) -> tuple[list[Row], int, int]:
    """The rows of the requested page, the number of matching rows and the page count."""
    found = [r for r in ov.rows if _matches(r, q)]
    known = [r for r in found if _key(r, q.sort) is not None]
    unknown = [r for r in found if _key(r, q.sort) is None]
    known.sort(key=lambda r: _key(r, q.sort), reverse=q.order == "desc")
    ordered = known + sorted(unknown, key=lambda r: r.symbol)  # unknown values always last
    pages = max(1, math.ceil(len(ordered) / q.per))
    page = min(q.page, pages)
    return ordered[(page - 1) * q.per : page * q.per], len(ordered), pages


def spark_points(values: list[float], width: float = 100.0, height: float = 24.0) -> str:
    """SVG polyline points of a sparkline scaled into width × height."""
    if len(values) < 2:
        return ""
    lo, hi = min(values), max(values)
    span = hi - lo or 1.0
    step = width / (len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - (v - lo) / span * (height - 2) - 1:.1f}"
        for i, v in enumerate(values)
    )


def movers(ov: Overview, n: int = 5) -> tuple[list[Row], list[Row]]:
    """Biggest 24h gainers and losers among tokens with a close on the as-of day."""
    current = (r for r in ov.rows if r.ch24 is not None and not r.stale)
    changed = sorted(current, key=lambda r: r.ch24 or 0.0)
    return list(reversed(changed[-n:])), changed[:n]


def leaders(ov: Overview, n: int = 5) -> list[Row]:
    """Highest Trader Grades."""
    graded = [r for r in ov.rows if r.trader is not None]
    return sorted(graded, key=lambda r: -(r.trader or 0.0))[:n]


def flips(ov: Overview, n: int = 8) -> list[Row]:
    """Most recent signal changes."""
    changed = [r for r in ov.rows if r.signal_since is not None and r.previous_signal]
    return sorted(changed, key=lambda r: (r.signal_since or date.min, r.symbol), reverse=True)[:n]
