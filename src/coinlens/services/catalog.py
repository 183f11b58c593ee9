"""The token catalog: search and list tokens, one token's markets, and its OHLCV candles.

Every reader (API, web, CLI, MCP) calls these functions; they speak domain models and
domain errors only. Pagination is keyset-based with opaque cursors, so pages stay stable
while rows are added and cost the same however deep the caller walks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from coinlens.connectors.layouts import TIMEFRAME_SECONDS, token_of
from coinlens.domain.errors import DataUnavailable, NotFound
from coinlens.domain.models import (
    TIMEFRAMES,
    Candle,
    CandleCoverage,
    Market,
    Ohlcv,
    Supply,
    Timeframe,
    Token,
    TokenDetail,
    TokensPage,
)
from coinlens.domain.numbers import significant
from coinlens.services.context import Context
from coinlens.services.paging import decode_cursor, encode_cursor, invalid
from coinlens.storage.tables import candles, markets, tokens

CATALOG_SOURCE = "coinlens catalog"
MAX_TOKENS_LIMIT = 500
MAX_CANDLES_LIMIT = 5_000
_PRICE_FIELDS = ("open", "high", "low", "close")

_TOKEN_COLUMNS = (
    tokens.c.id,
    tokens.c.symbol,
    tokens.c.name,
    tokens.c.sector,
    tokens.c.categories,
    tokens.c.coingecko_id,
    tokens.c.is_stablecoin,
    tokens.c.primary_market_id,
    tokens.c.first_candle,
    tokens.c.last_candle,
    markets.c.market_key.label("primary_market"),
)


# --- cursors -------------------------------------------------------------------------------


def _check_limit(limit: int, maximum: int) -> None:
    if not 1 <= limit <= maximum:
        raise invalid("limit", f"must be between 1 and {maximum}")


# --- time ----------------------------------------------------------------------------------


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(int(epoch), tz=UTC)


def _utc(epoch: int | None) -> datetime | None:
    return None if epoch is None else _at(epoch)


def _epoch_bound(value: date | datetime | None, *, upper: bool) -> int | None:
    """Epoch seconds of an inclusive bound; a date covers its whole UTC day, naive means UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        seconds = aware.timestamp()
        return math.floor(seconds) if upper else math.ceil(seconds)
    day = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if upper:
        return int((day + timedelta(days=1)).timestamp()) - 1
    return int(day.timestamp())


# --- tokens --------------------------------------------------------------------------------


def _token_filters(q: str | None, sector: str | None) -> list[sa.ColumnElement[bool]]:
    filters: list[sa.ColumnElement[bool]] = []
    needle = (q or "").strip().lower()
    if needle:
        filters.append(
            sa.or_(
                sa.func.lower(tokens.c.symbol).contains(needle, autoescape=True),
                sa.func.lower(tokens.c.name).contains(needle, autoescape=True),
            )
        )
    if sector is not None and sector.strip():
        filters.append(sa.func.lower(tokens.c.sector) == sector.strip().lower())
    return filters


def _tokens_select() -> sa.Select[Any]:
    return sa.select(*_TOKEN_COLUMNS).outerjoin(markets, markets.c.id == tokens.c.primary_market_id)


def _token_fields(row: Row[Any]) -> dict[str, Any]:
    return {
        "symbol": row.symbol,
        "name": row.name,
        "sector": row.sector,
        "categories": [str(c) for c in row.categories or []],
        "coingecko_id": row.coingecko_id,
        "is_stablecoin": bool(row.is_stablecoin),
        "primary_market": row.primary_market,
        "first_candle": _utc(row.first_candle),
        "last_candle": _utc(row.last_candle),
    }


def known_sectors(ctx: Context) -> list[str]:
    """Every sector a token is in, sorted case-insensitively."""
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(tokens.c.sector).where(tokens.c.sector.is_not(None)).distinct()
        )
        return sorted((str(r[0]) for r in rows), key=str.lower)


def unknown_sector(ctx: Context, sector: str | None) -> str | None:
    """Why no token can match `sector` (naming the known ones), or None if it is known or unset.
    Sectors match in any case, as the listings filter them."""
    if sector is None or not sector.strip():
        return None
    known = known_sectors(ctx)
    if sector.strip().lower() in {k.lower() for k in known}:
        return None
    return f"no token is in sector {sector!r}; known sectors: " + ", ".join(known)


def list_tokens(
    ctx: Context,
    *,
    q: str | None = None,
    sector: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> TokensPage:
    """Tokens in symbol order whose symbol or name contains `q` (any case), in `sector`."""
    _check_limit(limit, MAX_TOKENS_LIMIT)
    filters = _token_filters(q, sector)
    query = _tokens_select().where(*filters)
    if cursor:
        after = decode_cursor("tokens", cursor).get("after")
        if not isinstance(after, str):
            raise invalid("cursor", "not a cursor for this listing")
        query = query.where(tokens.c.symbol > after)
    with ctx.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(tokens).where(*filters))
        rows = conn.execute(query.order_by(tokens.c.symbol).limit(limit + 1)).all()
        as_of = conn.execute(sa.select(sa.func.max(tokens.c.last_candle))).scalar()
        n_total = int(total.scalar_one())
    page = rows[:limit]
    next_cursor = encode_cursor("tokens", after=page[-1].symbol) if len(rows) > limit else None
    return TokensPage(
        items=[Token(**_token_fields(r)) for r in page],
        total=n_total,
        limit=limit,
        next_cursor=next_cursor,
        source=CATALOG_SOURCE,
        as_of=_utc(as_of),
    )


def _token_row(conn: Connection, symbol: str) -> Row[Any]:
    """The token row for `symbol` (any case), or NotFound."""
    wanted = symbol.strip().upper()
    row = conn.execute(
        _tokens_select().where(sa.func.upper(tokens.c.symbol) == wanted).order_by(tokens.c.id)
    ).first()
    if row is None:
        raise unknown_token(conn, symbol)
    return row


def unknown_token(conn: Connection, symbol: str) -> NotFound:
    """NotFound for `symbol`, pointing at the token it denotes when it is a contract's quoted
    base or an old ticker the dataset files under another token (1000PEPE → PEPE, MATIC → POL)."""
    wanted = symbol.strip().upper()
    token, multiplier = token_of(wanted)
    exists = sa.select(tokens.c.symbol).where(sa.func.upper(tokens.c.symbol) == token).limit(1)
    if token == wanted or conn.execute(exists).first() is None:
        return NotFound(f"no token with symbol {symbol!r}")
    what = f"quotes {multiplier:g} {token}" if multiplier != 1 else f"was renamed {token}"
    return NotFound(
        f"no token with symbol {symbol!r}: {wanted} {what}; its data are under {token} "
        f"(prices per 1 {token})"
    )


def _coverage(conn: Connection, market_ids: Sequence[int]) -> dict[int, list[CandleCoverage]]:
    query = (
        sa.select(
            candles.c.market_id,
            candles.c.timeframe,
            sa.func.count(),
            sa.func.min(candles.c.open_time),
            sa.func.max(candles.c.open_time),
        )
        .where(candles.c.market_id.in_(list(market_ids)))
        .group_by(candles.c.market_id, candles.c.timeframe)
        .order_by(candles.c.market_id, candles.c.timeframe)
    )
    spans: dict[int, list[CandleCoverage]] = {}
    for market_id, timeframe, count, first, last in conn.execute(query):
        expected = (int(last) - int(first)) // TIMEFRAME_SECONDS[timeframe] + 1
        spans.setdefault(market_id, []).append(
            CandleCoverage(
                timeframe=timeframe,
                count=count,
                first=_at(first),
                last=_at(last),
                missing=max(expected - int(count), 0),
            )
        )
    return spans


def _markets_of(
    conn: Connection, token_id: int, primary_id: int | None, history: tuple[Any, Any]
) -> list[Market]:
    """The token's markets, primary first, each with its candle coverage; `history` is
    (history market id, history_until) of the token's series (`repo.series_of`)."""
    rows = conn.execute(
        sa.select(markets)
        .where(markets.c.token_id == token_id)
        .order_by(markets.c.exchange, markets.c.instrument, markets.c.market_key)
    ).all()
    spans = _coverage(conn, [r.id for r in rows])
    result = [
        Market(
            market_key=r.market_key,
            exchange=r.exchange,
            pair=r.pair,
            quote=r.quote,
            instrument=r.instrument,
            contract_multiplier=r.contract_multiplier,
            source=r.source,
            is_primary=r.id == primary_id,
            history_until=_at(history[1]) if r.id == history[0] else None,
            coverage=spans.get(r.id, []),
        )
        for r in rows
    ]
    return sorted(result, key=lambda m: not m.is_primary)


def get_token(ctx: Context, symbol: str) -> TokenDetail:
    """One token with supply, metadata and every market (with candle coverage); NotFound."""
    with ctx.engine.connect() as conn:
        row = _token_row(conn, symbol)
        detail = conn.execute(
            sa.select(
                tokens.c.cmc_symbol,
                tokens.c.circulating_supply,
                tokens.c.total_supply,
                tokens.c.max_supply,
                tokens.c.notes,
                tokens.c.history_market_id,
                tokens.c.history_until,
            ).where(tokens.c.id == row.id)
        ).one()
        market_list = _markets_of(
            conn, row.id, row.primary_market_id, (detail.history_market_id, detail.history_until)
        )
    newest = [c.last for m in market_list for c in m.coverage]
    return TokenDetail(
        **_token_fields(row),
        cmc_symbol=detail.cmc_symbol,
        supply=Supply(
            circulating=detail.circulating_supply,
            total=detail.total_supply,
            max=detail.max_supply,
        ),
        notes=detail.notes,
        markets=market_list,
        source=CATALOG_SOURCE,
        as_of=max(newest) if newest else None,
    )


# --- OHLCV ---------------------------------------------------------------------------------


def _resolve_market(conn: Connection, token: Row[Any], market_key: str | None) -> Row[Any]:
    """The named market of this token, else its primary market."""
    owned = conn.execute(sa.select(markets).where(markets.c.token_id == token.id)).all()
    if market_key is None:
        for row in owned:
            if row.id == token.primary_market_id:
                return row
        if not owned:
            raise DataUnavailable(
                f"{token.symbol} has no markets or candles yet; import its OHLCV history first"
            )
        keys = ", ".join(sorted(r.market_key for r in owned))
        raise DataUnavailable(
            f"{token.symbol} has no primary market yet (token spans not refreshed); "
            f"pass market= one of: {keys}"
        )
    for row in owned:
        if row.market_key == market_key:
            return row
    known = ", ".join(sorted(r.market_key for r in owned)) or "none"
    raise invalid("market", f"{market_key!r} is not a market of {token.symbol}; known: {known}")


def _normalised(row: Row[Any], multiplier: float) -> Candle:
    """A candle quoted per single token: prices ÷ multiplier, base volume × multiplier (the
    quotient without its float noise: 0.007059 / 1000 is 7.059e-06, not 7.0590000000000005e-06)."""
    volume = float(row.volume)
    if multiplier == 1.0:
        prices = {f: float(getattr(row, f)) for f in _PRICE_FIELDS}
    else:
        prices = {f: significant(float(getattr(row, f)) / multiplier) for f in _PRICE_FIELDS}
        volume = significant(volume * multiplier)
    return Candle(
        open_time=_at(row.open_time),
        **prices,
        volume=volume,
        quote_volume=row.quote_volume,
        trades=row.trades,
    )


def _timeframe(value: str) -> Timeframe:
    for known in TIMEFRAMES:
        if value == known:
            return known
    raise invalid("timeframe", f"must be one of {', '.join(TIMEFRAMES)}")


def _check_range(lo: int | None, hi: int | None) -> None:
    if lo is not None and hi is not None and lo > hi:
        raise invalid("start", "start must not be after end")


def _cursor_start(cursor: str, market_key: str, timeframe: str) -> int:
    data = decode_cursor("ohlcv", cursor)
    after = data.get("from")
    if data.get("m") != market_key or data.get("tf") != timeframe or not isinstance(after, int):
        raise invalid("cursor", "cursor belongs to another market, timeframe or listing")
    return after


def get_ohlcv(
    ctx: Context,
    symbol: str,
    *,
    timeframe: str = "1d",
    start: date | datetime | None = None,
    end: date | datetime | None = None,
    market: str | None = None,
    cursor: str | None = None,
    limit: int = MAX_CANDLES_LIMIT,
) -> Ohlcv:
    """Candles of the token's primary (or named) market, quoted per one token.

    `start`/`end` are inclusive; a date covers its whole UTC day and naive datetimes are UTC.
    At most `limit` candles come back; `next_cursor` then continues where the page ended.
    """
    tf = _timeframe(timeframe)
    _check_limit(limit, MAX_CANDLES_LIMIT)
    lo, hi = _epoch_bound(start, upper=False), _epoch_bound(end, upper=True)
    _check_range(lo, hi)
    with ctx.engine.connect() as conn:
        token = _token_row(conn, symbol)
        mkt = _resolve_market(conn, token, market)
        since = _cursor_start(cursor, mkt.market_key, tf) if cursor else lo
        where = [candles.c.market_id == mkt.id, candles.c.timeframe == tf]
        newest = conn.execute(sa.select(sa.func.max(candles.c.open_time)).where(*where)).scalar()
        if since is not None:
            where.append(candles.c.open_time >= since)
        if hi is not None:
            where.append(candles.c.open_time <= hi)
        rows = conn.execute(
            sa.select(candles).where(*where).order_by(candles.c.open_time).limit(limit + 1)
        ).all()
        elsewhere = [] if newest is not None else _markets_with(conn, token.id, tf)
    page = rows[:limit]
    more = len(rows) > limit
    return Ohlcv(
        symbol=token.symbol,
        market=mkt.market_key,
        exchange=mkt.exchange,
        instrument=mkt.instrument,
        quote=mkt.quote,
        timeframe=tf,
        contract_multiplier=mkt.contract_multiplier,
        start=_utc(lo),
        end=_utc(hi),
        candles=[_normalised(r, float(mkt.contract_multiplier)) for r in page],
        next_cursor=(
            encode_cursor("ohlcv", m=mkt.market_key, tf=tf, **{"from": rows[limit].open_time})
            if more
            else None
        ),
        source=mkt.source,
        as_of=_utc(newest),
        warnings=_ohlcv_warnings(token.symbol, mkt.market_key, tf, page, newest, elsewhere),
    )


def _markets_with(conn: Connection, token_id: int, timeframe: str) -> list[str]:
    """The token's markets that have candles of `timeframe`."""
    query = (
        sa.select(markets.c.market_key)
        .where(
            markets.c.token_id == token_id,
            sa.exists().where(
                candles.c.market_id == markets.c.id, candles.c.timeframe == timeframe
            ),
        )
        .order_by(markets.c.market_key)
    )
    return [str(k) for k in conn.execute(query).scalars()]


def _ohlcv_warnings(
    symbol: str,
    market_key: str,
    timeframe: str,
    page: Sequence[Row[Any]],
    newest: int | None,
    elsewhere: Sequence[str] = (),
) -> list[str]:
    if newest is None:
        hint = f"; {', '.join(elsewhere)} has them (pass market=)" if elsewhere else ""
        return [f"{symbol} has no {timeframe} candles on {market_key}{hint}"]
    if not page:
        return [f"no {timeframe} candles for {symbol} on {market_key} in the requested range"]
    return []
