"""Live prices in a token's own units: which market speaks for a token, and its ticks.

A token trades on several markets (spot and perpetual, USDT and USD, contracts of 1000
units). Its page, its alerts and its stream show one price: that of its primary market
(the one the daily panel and the chart use), per unit of the token, in that market's quote.
`coinlens up --live` polls it through ccxt; `coinlens replay` replays its stored candles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from coinlens.connectors.layouts import unified_symbol
from coinlens.services.context import Context
from coinlens.services.events import Event, publish_tick
from coinlens.storage.tables import markets, tokens


@dataclass(frozen=True, slots=True)
class TickMarket:
    """A stored market and the token it prices."""

    market_id: int
    token: str
    exchange: str
    pair: str
    quote: str
    instrument: str
    multiplier: float  # contracts of `multiplier` token units (1000PEPE: 1000)
    primary: bool

    def unit_price(self, price: float) -> float:
        """The market's price (per contract) as the price of one token unit."""
        return price / self.multiplier

    @property
    def ccxt_symbol(self) -> str | None:
        """The venue's symbol for ccxt, or None when it cannot be derived."""
        return unified_symbol(self.exchange, self.pair, self.quote, self.instrument)


def tick_markets(ctx: Context) -> list[TickMarket]:
    """Every market, grouped by token with the token's primary market first (then by id)."""
    not_primary = sa.case((markets.c.id == tokens.c.primary_market_id, 0), else_=1)
    query = (
        sa.select(
            markets.c.id,
            tokens.c.symbol,
            markets.c.exchange,
            markets.c.pair,
            markets.c.quote,
            markets.c.instrument,
            markets.c.contract_multiplier,
            not_primary,
        )
        .join(tokens, tokens.c.id == markets.c.token_id)
        .order_by(tokens.c.symbol, not_primary, markets.c.id)
    )
    with ctx.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        TickMarket(int(i), str(t), str(e), str(p), str(q), str(k), float(m or 1.0), not other)
        for i, t, e, p, q, k, m, other in rows
    ]


def one_per_token(
    candidates: Iterable[TickMarket], usable: Callable[[TickMarket], bool]
) -> dict[str, TickMarket]:
    """Each token's first usable market, in `tick_markets` order (its primary when usable)."""
    chosen: dict[str, TickMarket] = {}
    for m in candidates:
        if m.token not in chosen and usable(m):
            chosen[m.token] = m
    return chosen


def publish_market_tick(
    ctx: Context, market: TickMarket, price: float, *, volume: float | None, source: str
) -> Event | None:
    """A market's price as the token's tick: per token unit, in the market's quote."""
    return publish_tick(
        ctx,
        market.token,
        market.unit_price(price),
        volume=None if volume is None else volume * market.multiplier,
        source=source,
        quote=market.quote,
    )
