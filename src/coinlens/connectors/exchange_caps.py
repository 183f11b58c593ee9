"""What each exchange can do and how it misbehaves, as data (no `if venue == ...` elsewhere).

A `Capabilities` value tells the exchange connector how to page candles, whether the newest
candle a venue returns may still be open, how deep its history goes, which market types to
load and whether ccxt offers a websocket ticker. docs/connectors.md renders this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coinlens.domain.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Typed venue capabilities and quirks (the `_ft_has` idea, but typed)."""

    ccxt_id: str
    page_limit: int
    """Candles asked for per request (the venue's maximum)."""
    returns_in_progress: bool = True
    """The newest candle may still be open: it is dropped, never stored as final."""
    short_pages: bool = False
    """Pages may hold fewer candles than asked mid-history: a short page is not the end."""
    limit_from_oldest: bool = True
    """With `since`, the venue (or ccxt) keeps the OLDEST `limit` candles of the window."""
    windowed_pages: bool = False
    """A page covers a fixed start..end window, so an empty page may be a hole, not the end."""
    history_candles: int | None = None
    """Only the newest N candles are served whatever `since` says (Kraken: 720)."""
    timeframes: tuple[str, ...] = ("1h", "1d")
    websocket_ticker: bool = False
    """ccxt.pro can stream this venue's tickers (watch_ticker)."""
    ticker_has_volume: bool = True
    """fetch_ticker carries 24 h volume; otherwise volume comes from fetch_tickers."""
    options: dict[str, Any] = field(default_factory=dict)
    """ccxt options set on the client, e.g. which market types load_markets fetches."""
    hostname: str | None = None
    """ccxt `hostname` for venues whose URLs are templated (OKX: https://{hostname})."""
    quirks: tuple[str, ...] = ()
    """Human-readable notes rendered in docs/connectors.md."""


CAPABILITIES: dict[str, Capabilities] = {
    "binance": Capabilities(
        ccxt_id="binance",
        page_limit=1000,
        websocket_ticker=True,
        options={"fetchMarkets": {"types": ["spot", "linear"]}},
        quirks=(
            "klines include the in-progress candle as the last row",
            "HTTP 418 after ignored 429s: treated as RateLimited",
        ),
    ),
    "coinbase": Capabilities(
        ccxt_id="coinbase",
        page_limit=300,
        short_pages=True,
        windowed_pages=True,
        websocket_ticker=True,
        ticker_has_volume=False,
        quirks=(
            "candles come newest first; ccxt re-sorts them",
            "a start..end window may yield one candle fewer than asked (end is exclusive)",
            "ticker endpoint has no 24 h volume: volume comes from the products list",
        ),
    ),
    "kraken": Capabilities(
        ccxt_id="kraken",
        page_limit=720,
        short_pages=True,
        history_candles=720,
        websocket_ticker=True,
        quirks=(
            "OHLC serves only the newest 720 candles: older history must come from files",
            "`since` is exclusive; ccxt asks for since - 1 candle",
            "the last row is the in-progress candle",
        ),
    ),
    "okx": Capabilities(
        ccxt_id="okx",
        page_limit=300,
        short_pages=True,
        windowed_pages=True,
        websocket_ticker=True,
        options={"fetchMarkets": {"types": ["spot", "swap"]}},
        hostname="www.okx.com",
        quirks=(
            "candles come newest first with a `confirm` flag (0 = in progress)",
            "daily bars are asked as 1Dutc so they open at 00:00 UTC",
            "older than 1440 candles are served by history-candles",
        ),
    ),
}
"""Every exchange Coinlens configures (COINLENS_EXCHANGES picks among them)."""


def capabilities(exchange: str) -> Capabilities:
    """The capabilities of a configured exchange; ConfigError for an unknown one."""
    caps = CAPABILITIES.get(exchange.lower())
    if caps is None:
        known = ", ".join(sorted(CAPABILITIES))
        raise ConfigError(f"unknown exchange {exchange!r}: configured ones are {known}")
    return caps
