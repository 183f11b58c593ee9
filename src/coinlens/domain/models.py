"""Domain models the services return: frozen, strict, and carrying their provenance.

Times are timezone-aware UTC. Prices of a market quoted per N tokens (e.g. Binance's
1000PEPEUSDT perpetual) are normalised to one token before they reach these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SYNTHETIC = "SYNTHETIC"
"""The label of generated data (benches, scale tests): in a token's name, categories or market
source; such data is never shown as market data."""

Timeframe = Literal["1h", "1d"]
Instrument = Literal["spot", "perp"]
TIMEFRAMES: tuple[Timeframe, ...] = ("1h", "1d")


class DomainModel(BaseModel):
    """Base of every domain model: unknown fields refused, instances immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CandleCoverage(DomainModel):
    """How many candles of one timeframe a market has, and the span they cover."""

    timeframe: Timeframe
    count: int = Field(ge=0)
    first: AwareDatetime = Field(description="Open time of the first candle (UTC)")
    last: AwareDatetime = Field(description="Open time of the last candle (UTC)")
    missing: int = Field(
        0, ge=0, description="Candles absent between first and last (gaps in the history)"
    )


class Market(DomainModel):
    """One venue's instrument for a token, e.g. Binance spot ETH/USDT."""

    market_key: str
    exchange: str
    pair: str
    quote: str
    instrument: Instrument
    contract_multiplier: float = Field(
        gt=0, description="Tokens per quoted unit: 1000 for 1000PEPEUSDT, else 1"
    )
    source: str = Field(description="Where this market's candles come from")
    is_primary: bool = Field(
        description="Whether this is the token's current market: it feeds the token's daily "
        "series (analytics, grades, forecasts) and live prices"
    )
    history_until: AwareDatetime | None = Field(
        None,
        description="Set on the market whose daily candles before this time continue the "
        "primary's series backwards (a delisted spot market followed by a perpetual, a ticker "
        "migration such as MATIC → POL)",
    )
    coverage: list[CandleCoverage] = Field(default_factory=list)


class Token(DomainModel):
    """A token as listed in the catalog."""

    symbol: str
    name: str
    sector: str | None = None
    categories: list[str] = Field(default_factory=list)
    coingecko_id: str | None = None
    is_stablecoin: bool = False
    primary_market: str | None = Field(
        default=None, description="market_key of the market that feeds analytics"
    )
    first_candle: AwareDatetime | None = Field(
        default=None, description="Open time of the first daily candle (UTC)"
    )
    last_candle: AwareDatetime | None = Field(
        default=None, description="Open time of the last daily candle (UTC)"
    )


class Supply(DomainModel):
    """Supply figures from the metadata snapshot (static, not historical)."""

    circulating: float | None = None
    total: float | None = None
    max: float | None = None


class TokenDetail(Token):
    """A token with its supply, notes and every market we hold candles for."""

    cmc_symbol: str | None = None
    supply: Supply = Field(default_factory=Supply)
    notes: str | None = None
    markets: list[Market] = Field(default_factory=list)
    source: str = Field(description="Where the catalog data comes from")
    as_of: AwareDatetime | None = Field(
        default=None, description="Open time of the newest candle of this token (UTC)"
    )


class TokensPage(DomainModel):
    """One page of tokens in symbol order, with an opaque cursor to the next page."""

    items: list[Token]
    total: int = Field(ge=0, description="Tokens matching the filters, over all pages")
    limit: int = Field(ge=1)
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page")
    source: str
    as_of: AwareDatetime | None = Field(
        default=None, description="Open time of the newest daily candle in the catalog (UTC)"
    )


class Candle(DomainModel):
    """One OHLCV bar; prices per single token, volume in tokens."""

    open_time: AwareDatetime = Field(description="Candle open time (UTC)")
    open: float
    high: float
    low: float
    close: float
    volume: float = Field(description="Traded volume in tokens (base units)")
    quote_volume: float | None = Field(default=None, description="Traded volume in quote currency")
    trades: int | None = None


class Ohlcv(DomainModel):
    """A page of candles for one token and market, with what it was normalised by."""

    symbol: str
    market: str = Field(description="market_key the candles come from")
    exchange: str
    instrument: Instrument
    quote: str
    timeframe: Timeframe
    contract_multiplier: float = Field(
        gt=0, description="Prices were divided (and volume multiplied) by this to quote one token"
    )
    start: AwareDatetime | None = Field(default=None, description="Inclusive lower bound (UTC)")
    end: AwareDatetime | None = Field(default=None, description="Inclusive upper bound (UTC)")
    candles: list[Candle]
    next_cursor: str | None = Field(
        default=None, description="More candles remain: pass as `cursor` for the next page"
    )
    source: str
    as_of: AwareDatetime | None = Field(
        default=None, description="Open time of the market's newest candle (UTC)"
    )
    warnings: list[str] = Field(default_factory=list)
