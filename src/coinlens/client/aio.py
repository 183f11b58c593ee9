"""`AsyncCoinlens`: the asyncio client (httpx). Same methods as `Coinlens`, awaited."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from coinlens.client import _endpoints as ep
from coinlens.client import models as m
from coinlens.client._base import (
    DEFAULT_BASE_URL,
    Call,
    RetryPolicy,
    build_request,
    client_headers,
    default_timeout,
    exchange,
    parse,
)

T = TypeVar("T")
P = TypeVar("P")
Instant = ep.Instant


class AsyncCoinlens:
    """An asyncio Coinlens API client; use it with `async with` or await `aclose()`.

    >>> async with AsyncCoinlens("http://127.0.0.1:8000", api_key="cl_live_…") as cl:
    ...     eth = await cl.token("ETH")
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=client_headers(api_key),
            timeout=default_timeout(timeout),
            transport=transport,
        )

    async def __aenter__(self) -> AsyncCoinlens:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def request(self, spec: Call[T]) -> T:
        """Send one call through the shared retry loop and parse its answer."""
        loop = exchange(build_request(self._http, spec), self.retry)
        step = next(loop)
        while True:
            if step.delay > 0:
                await asyncio.sleep(step.delay)
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = await self._http.send(step.request)
                await outcome.aread()
            except httpx.TransportError as exc:
                outcome = exc
            try:
                step = loop.send(outcome)
            except StopIteration as done:
                return parse(spec, done.value)

    async def _pages(
        self, make: Callable[[str | None], Call[P]], items: Callable[[P], list[T]]
    ) -> AsyncIterator[T]:
        cursor: str | None = None
        while True:
            page = await self.request(make(cursor))
            for item in items(page):
                yield item
            cursor = getattr(page, "next_cursor", None)
            if not cursor:
                return

    # --- tokens ------------------------------------------------------------------------

    async def health(self) -> m.Health:
        """Liveness of the server (no key needed)."""
        return await self.request(ep.health())

    async def tokens(
        self,
        q: str | None = None,
        *,
        sector: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> m.TokensPage:
        """One page of the catalog (symbol order); `q` matches symbol or name."""
        return await self.request(ep.tokens(q, sector, limit, cursor))

    def iter_tokens(
        self, q: str | None = None, *, sector: str | None = None, page_size: int = 200
    ) -> AsyncIterator[m.Token]:
        """Every matching token, following `next_cursor` page by page."""
        return self._pages(lambda c: ep.tokens(q, sector, page_size, c), lambda p: p.items)

    async def token(self, symbol: str) -> m.TokenDetail:
        """One token with supply and markets."""
        return await self.request(ep.token(symbol))

    async def ohlcv(
        self,
        symbol: str,
        *,
        timeframe: str = "1d",
        start: Instant | None = None,
        end: Instant | None = None,
        market: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> m.Ohlcv:
        """One page of candles, oldest first."""
        params = {"timeframe": timeframe, "start": start, "end": end, "market": market}
        return await self.request(ep.ohlcv(symbol, {**params, "limit": limit, "cursor": cursor}))

    def iter_candles(
        self,
        symbol: str,
        *,
        timeframe: str = "1d",
        start: Instant | None = None,
        end: Instant | None = None,
        market: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[m.Candle]:
        """Every candle in the range, across pages."""
        params = {"timeframe": timeframe, "start": start, "end": end, "market": market}
        return self._pages(
            lambda c: ep.ohlcv(symbol, {**params, "limit": page_size, "cursor": c}),
            lambda p: p.candles,
        )

    # --- analytics ---------------------------------------------------------------------

    async def signal(self, symbol: str) -> m.TokenSignal:
        """The token's current signal, its indicators and every flip."""
        return await self.request(ep.signal(symbol))

    async def signal_performance(
        self,
        symbol: str,
        *,
        fee: float | None = None,
        slippage: float | None = None,
        start: Instant | None = None,
        end: Instant | None = None,
    ) -> m.SignalPerformance:
        """Backtest of the signal against buy-and-hold."""
        params = {"fee": fee, "slippage": slippage, "start": start, "end": end}
        return await self.request(ep.signal_performance(symbol, params))

    async def signals(
        self,
        *,
        signal: str | None = None,
        sector: str | None = None,
        changed_within_days: int | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> m.SignalsPage:
        """One page of the universe's latest signals."""
        params = {"signal": signal, "sector": sector, "changed_within_days": changed_within_days}
        return await self.request(ep.signals({**params, "limit": limit, "cursor": cursor}))

    def iter_signals(
        self,
        *,
        signal: str | None = None,
        sector: str | None = None,
        changed_within_days: int | None = None,
        page_size: int = 200,
    ) -> AsyncIterator[m.SignalListItem]:
        """Every matching token's latest signal, across pages."""
        params = {"signal": signal, "sector": sector, "changed_within_days": changed_within_days}
        return self._pages(
            lambda c: ep.signals({**params, "limit": page_size, "cursor": c}), lambda p: p.items
        )

    async def levels(self, symbol: str) -> m.TokenLevels:
        """Support and resistance around the last close."""
        return await self.request(ep.levels(symbol))

    async def roi(self, symbol: str) -> m.TokenRoi:
        """Returns over standard windows and risk figures."""
        return await self.request(ep.roi(symbol))

    # --- grades ------------------------------------------------------------------------

    async def grades(
        self, symbol: str, *, start: Instant | None = None, end: Instant | None = None
    ) -> m.TokenGrades:
        """Current Trader/Investor grades with sub-grades, and their history."""
        return await self.request(ep.grades(symbol, start, end))

    async def leaderboard(
        self,
        *,
        day: dt.date | None = None,
        sector: str | None = None,
        band: str | None = None,
        sort: str = "trader",
        order: str = "desc",
        limit: int | None = None,
        cursor: str | None = None,
    ) -> m.GradesPage:
        """One page of the grade leaderboard."""
        params = {"day": day, "sector": sector, "band": band, "sort": sort, "order": order}
        return await self.request(ep.leaderboard({**params, "limit": limit, "cursor": cursor}))

    def iter_leaderboard(
        self,
        *,
        day: dt.date | None = None,
        sector: str | None = None,
        band: str | None = None,
        sort: str = "trader",
        order: str = "desc",
        page_size: int = 200,
    ) -> AsyncIterator[m.LeaderboardEntry]:
        """The whole leaderboard, across pages."""
        params = {"day": day, "sector": sector, "band": band, "sort": sort, "order": order}
        return self._pages(
            lambda c: ep.leaderboard({**params, "limit": page_size, "cursor": c}),
            lambda p: p.items,
        )

    # --- forecasts ---------------------------------------------------------------------

    async def predictions(self, symbol: str) -> m.Predictions:
        """Quantile forecasts of the close at each horizon."""
        return await self.request(ep.predictions(symbol))

    async def scenarios(self, symbol: str) -> m.Scenarios:
        """Bear/base/bull targets per horizon."""
        return await self.request(ep.scenarios(symbol))

    async def probability(
        self,
        symbol: str,
        *,
        by: Instant,
        above: float | None = None,
        below: float | None = None,
    ) -> m.Probability:
        """P(close past a level on / by a date); give exactly one of `above`/`below`."""
        return await self.request(ep.probability(symbol, by, above, below))

    async def models(self) -> list[m.ModelInfo]:
        """Forecast models with their held-out accuracy."""
        return await self.request(ep.models())

    # --- alerts and keys ---------------------------------------------------------------

    async def create_alert(self, **rule: Any) -> m.AlertRule:
        """Create an alert rule, e.g. `symbol="BTC", kind="price_cross", direction="above",
        level=100000, channels=["https://hooks.example/…"]` (see docs/alerts.md)."""
        return await self.request(ep.create_alert(rule))

    async def alerts(self) -> m.AlertRulesPage:
        """The calling key's alert rules."""
        return await self.request(ep.alerts())

    async def alert(self, rule_id: int) -> m.AlertRule:
        """One alert rule."""
        return await self.request(ep.alert(rule_id))

    async def delete_alert(self, rule_id: int) -> None:
        """Delete an alert rule."""
        await self.request(ep.delete_alert(rule_id))

    async def create_key(
        self,
        *,
        name: str | None = None,
        email: str | None = None,
        scopes: list[str] | None = None,
        expires_in_days: int | None = None,
    ) -> m.KeyCreated:
        """A new key (self-serve without a key; for the caller's account with one)."""
        body = {"name": name, "email": email, "scopes": scopes, "expires_in_days": expires_in_days}
        return await self.request(ep.create_key({k: v for k, v in body.items() if v is not None}))

    def iter_keys(self, *, page_size: int = 100) -> AsyncIterator[m.Key]:
        """Every key of the caller's account."""
        return self._pages(lambda c: ep.keys(page_size, c), lambda p: p.items)

    async def revoke_key(self, key_id: int) -> m.Key:
        """Revoke a key at once."""
        return await self.request(ep.revoke_key(key_id))

    async def rotate_key(self, key_id: int, *, overlap_seconds: int = 86_400) -> m.KeyCreated:
        """A successor key; the old one keeps working for `overlap_seconds`."""
        return await self.request(ep.rotate_key(key_id, overlap_seconds))
