"""Live tickers as `TickSource`s: REST polling for every venue, ccxt.pro websockets where offered.

Both yield domain `Tick`s; consumers do not care which transport feeds them. Whether a venue
has a websocket ticker is a capability (`Capabilities.websocket_ticker`), not a venue check.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from coinlens.connectors.exchanges import ExchangeConnector, map_ccxt_error, parse_tick, point_at
from coinlens.connectors.payloads import CcxtTicker
from coinlens.domain.errors import DataUnavailable
from coinlens.domain.live import Tick


class PollingTickSource:
    """Poll `fetch_tick` for each symbol every `interval_s` seconds (retried per policy)."""

    def __init__(self, connector: ExchangeConnector, interval_s: float = 5.0) -> None:
        self.connector = connector
        self.interval_s = interval_s
        self.name = f"{connector.name}:poll"

    async def stream(self, symbols: Sequence[str]) -> AsyncIterator[Tick]:
        """Yield one tick per symbol per round, forever."""
        while True:
            for symbol in symbols:
                yield await asyncio.to_thread(self.connector.fetch_tick, symbol)
            await asyncio.sleep(self.interval_s)


class WebsocketTickSource:
    """Stream tickers over ccxt.pro's websocket (only for venues whose capabilities say so)."""

    def __init__(self, connector: ExchangeConnector, api_base: str | None = None) -> None:
        if not connector.capabilities.websocket_ticker:
            raise DataUnavailable(f"{connector.name} has no websocket ticker: poll instead")
        import ccxt.pro

        self.connector = connector
        self.name = f"{connector.name}:ws"
        self.client: Any = getattr(ccxt.pro, connector.capabilities.ccxt_id)(
            {"options": dict(connector.capabilities.options)}
        )
        if api_base:
            point_at(self.client, api_base)

    async def stream(self, symbols: Sequence[str]) -> AsyncIterator[Tick]:
        """Yield ticks as the venue pushes them; ccxt errors are mapped to domain errors."""
        import ccxt

        try:
            while True:
                for symbol in symbols:
                    try:
                        raw = await self.client.watch_ticker(symbol)
                    except ccxt.BaseError as exc:
                        raise map_ccxt_error(exc, f"{self.name} watch_ticker") from exc
                    tick = parse_tick(
                        CcxtTicker.model_validate(raw), self.connector.name, self.connector.clock()
                    )
                    yield tick.model_copy(update={"source": f"ccxt:{self.connector.name}:ws"})
        finally:
            await self.client.close()
