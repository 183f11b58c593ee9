"""Live market data: ticks, fetched candle batches and the `TickSource` protocol.

These are the domain shapes connectors hand to services. Venue payloads never leave the
connector layer; each connector converts them with an explicit `parse_*` function.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date
from typing import Protocol, runtime_checkable

from pydantic import AwareDatetime, Field

from coinlens.domain.models import Candle, DomainModel, Timeframe


class Tick(DomainModel):
    """One ticker snapshot of a market on a venue."""

    exchange: str
    symbol: str = Field(description="Unified symbol, e.g. ETH/USDT")
    time: AwareDatetime = Field(description="Venue time of the snapshot (UTC)")
    last: float | None = None
    bid: float | None = None
    ask: float | None = None
    base_volume_24h: float | None = Field(default=None, description="24 h volume in base units")
    quote_volume_24h: float | None = Field(default=None, description="24 h volume in quote units")
    source: str = Field(description="Connector and transport, e.g. ccxt:binance:rest")


class RejectedRow(DomainModel):
    """A venue row that could not become a candle, kept for quarantine."""

    raw: str
    reason: str


class CandleBatch(DomainModel):
    """Closed candles of one market fetched from a venue, oldest first, with provenance."""

    exchange: str
    symbol: str
    timeframe: Timeframe
    candles: list[Candle]
    rejected: list[RejectedRow] = Field(default_factory=list)
    in_progress_dropped: int = Field(
        default=0, ge=0, description="In-progress candles seen and not kept (never stored)"
    )
    requests: int = Field(default=0, ge=0, description="Venue requests the batch took")
    source: str
    fetched_at: AwareDatetime = Field(description="Ingestion time (UTC), not candle time")
    warnings: list[str] = Field(default_factory=list)


class ExchangeVolume(DomainModel):
    """24 h traded volume of one token on one venue market (for the token page)."""

    exchange: str
    symbol: str
    quote: str
    base_volume_24h: float | None = None
    quote_volume_24h: float | None = None
    as_of: AwareDatetime
    source: str


@runtime_checkable
class TickSource(Protocol):
    """Anything that streams ticks for a set of symbols (REST polling or a websocket)."""

    name: str

    def stream(self, symbols: Sequence[str]) -> AsyncIterator[Tick]:
        """Yield ticks for `symbols` until the consumer stops iterating."""
        ...


class MarketCapSnapshot(DomainModel):
    """Market cap, rank, price and supply of one token on one day (CoinGecko-style)."""

    coingecko_id: str
    symbol: str
    name: str
    snapshot_date: date
    rank: int | None = None
    market_cap: float | None = None
    price: float | None = None
    volume_24h: float | None = None
    circulating_supply: float | None = None
    total_supply: float | None = None
    max_supply: float | None = None
    source: str


class MetricPoint(DomainModel):
    """One daily value of an ecosystem metric (chain TVL, stablecoin supply, gas, tx count)."""

    entity: str = Field(description="Chain or asset, e.g. ethereum, USDT, all_stablecoins")
    metric: str = Field(description="e.g. tvl_usd, supply_usd, gas_price_gwei, tx_count")
    date: date
    value: float
    unit: str
    source: str
