"""Exchanges through ccxt: closed candles (paged), tickers and 24 h volume, as domain types.

Query → fetch → parse: `ExchangeConnector` turns a request into ccxt calls (`_fetch_*`), each
ccxt exception is mapped ONCE by `CCXT_ERRORS`, calls are retried by error class, and the
raw rows (`payloads.CcxtOhlcv`, `payloads.CcxtTicker`) become domain objects only in the
`parse_*` functions. Venue differences come from `exchange_caps.Capabilities`.

Pointing ccxt at another host (a local test server, a proxy) rewrites every REST URL of
the client: ``https://api.binance.com/api/v3`` becomes ``{api_base}/api.binance.com/api/v3``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import ccxt
from pydantic import ValidationError

from coinlens.connectors.exchange_caps import Capabilities, capabilities
from coinlens.connectors.http import parse_retry_after
from coinlens.connectors.payloads import CcxtOhlcv, CcxtTicker
from coinlens.connectors.retry import RetryPolicy, call_with_retry
from coinlens.domain.errors import (
    CoinlensError,
    ConfigError,
    DataUnavailable,
    NotFound,
    RateLimited,
    TemporaryError,
    UserInputError,
)
from coinlens.domain.live import CandleBatch, ExchangeVolume, RejectedRow, Tick
from coinlens.domain.models import Candle, Timeframe

T = TypeVar("T")

TIMEFRAME_MS: dict[str, int] = {"1h": 3_600_000, "1d": 86_400_000}
MAX_PAGES = 2_000
"""Safety stop for one backfill (2,000 pages of 1h candles is > 20 years on any venue)."""

CCXT_ERRORS: tuple[tuple[type[Exception], type[CoinlensError]], ...] = (
    (ccxt.RateLimitExceeded, RateLimited),
    (ccxt.DDoSProtection, RateLimited),
    (ccxt.RequestTimeout, TemporaryError),
    (ccxt.NetworkError, TemporaryError),  # ExchangeNotAvailable, OnMaintenance, 5xx
    (ccxt.BadResponse, TemporaryError),  # malformed or empty body: usually transient
    (ccxt.AuthenticationError, ConfigError),  # also PermissionDenied, AccountSuspended
    (ccxt.BadSymbol, NotFound),
    (ccxt.NotSupported, DataUnavailable),
    (ccxt.BadRequest, UserInputError),
    (ccxt.ArgumentsRequired, UserInputError),
    (ccxt.ExchangeError, DataUnavailable),
    (ccxt.BaseError, TemporaryError),
)
"""ccxt exception → domain error, most specific first (the first match wins)."""


def map_ccxt_error(
    exc: Exception, what: str, headers: Any = None, status: int | None = None
) -> CoinlensError:
    """The domain error for a ccxt exception; RateLimited carries the venue's Retry-After.

    An HTTP 429/418 is a rate limit whatever class ccxt picked from the venue's error body
    (OKX, for one, maps unknown body codes to a plain ExchangeError).
    """
    detail = f"{what}: {type(exc).__name__}: {str(exc)[:300]}"
    if status in (418, 429):
        value = headers.get("Retry-After") if headers else None
        return RateLimited(detail, parse_retry_after(value))
    for kind, domain in CCXT_ERRORS:
        if isinstance(exc, kind):
            if domain is RateLimited:
                value = headers.get("Retry-After") if headers else None
                return RateLimited(detail, parse_retry_after(value))
            return domain(detail)
    return TemporaryError(detail)


def now_ms() -> int:
    """The wall clock in epoch milliseconds (UTC)."""
    return int(time.time() * 1000)


def point_at(client: Any, api_base: str) -> None:
    """Rewrite every https URL of a ccxt client to `{api_base}/{host}/{path}`."""
    base = api_base.rstrip("/")

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        if isinstance(value, str) and value.startswith("https://"):
            return f"{base}/{value.removeprefix('https://')}"
        return value

    client.urls["api"] = rewrite(client.urls["api"])
    client.session.trust_env = False  # never send 127.0.0.1 traffic through an env proxy


def _strict_json(client: Any) -> None:
    """Make ccxt raise BadResponse on a malformed 2xx body instead of returning the text."""
    original = client.on_rest_response

    def hook(
        code: int, reason: str, url: str, method: str, headers: Any, body: Any, *rest: Any
    ) -> Any:
        client.coinlens_last_status = int(code)
        body = original(code, reason, url, method, headers, body, *rest)
        if isinstance(body, str) and body.strip() and int(code) < 400:
            try:
                json.loads(body)
            except ValueError as exc:
                raise ccxt.BadResponse(f"{client.id} {method} {url}: malformed JSON") from exc
        return body

    client.on_rest_response = hook


def parse_candle(raw: CcxtOhlcv) -> Candle:
    """A ccxt row as a domain candle; absent fields become NaN (validation rejects them)."""

    def num(value: float | None) -> float:
        return math.nan if value is None else float(value)

    return Candle(
        open_time=datetime.fromtimestamp(raw.timestamp / 1000, UTC),
        open=num(raw.open),
        high=num(raw.high),
        low=num(raw.low),
        close=num(raw.close),
        volume=num(raw.volume),
    )


def parse_tick(raw: CcxtTicker, exchange: str, fallback_ms: int) -> Tick:
    """A ccxt ticker as a domain tick."""
    stamp = raw.timestamp if raw.timestamp is not None else fallback_ms
    return Tick(
        exchange=exchange,
        symbol=raw.symbol,
        time=datetime.fromtimestamp(stamp / 1000, UTC),
        last=raw.last,
        bid=raw.bid,
        ask=raw.ask,
        base_volume_24h=raw.baseVolume,
        quote_volume_24h=raw.quoteVolume,
        source=f"ccxt:{exchange}:rest",
    )


class ExchangeConnector:
    """One exchange through ccxt (sync), with retries and closed-candle paging."""

    def __init__(
        self,
        name: str,
        *,
        api_base: str | None = None,
        policy: RetryPolicy | None = None,
        timeout_s: float = 20.0,
        clock: Callable[[], int] = now_ms,
        rate_limit_ms: int | None = None,
    ) -> None:
        self.name = name.lower()
        self.capabilities: Capabilities = capabilities(self.name)
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self.requests = 0
        config: dict[str, Any] = {
            "timeout": int(timeout_s * 1000),
            "enableRateLimit": True,
            "options": dict(self.capabilities.options),
        }
        if rate_limit_ms is not None:
            config["rateLimit"] = rate_limit_ms
        self.client: Any = getattr(ccxt, self.capabilities.ccxt_id)(config)
        self.client.has["fetchCurrencies"] = False  # private on most venues; not needed
        if self.capabilities.hostname:
            self.client.hostname = self.capabilities.hostname
        if api_base:
            point_at(self.client, api_base)
        _strict_json(self.client)

    @property
    def source(self) -> str:
        """Provenance string of this connector's data."""
        return f"ccxt:{self.name}"

    def close(self) -> None:
        """Release the HTTP session."""
        self.client.session.close()

    # --- fetch: every ccxt call goes through here ---------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        def once() -> T:
            self.requests += 1
            self.client.coinlens_last_status = None
            try:
                return fn()
            except ccxt.BaseError as exc:
                headers = getattr(self.client, "last_response_headers", None)
                status = self.client.coinlens_last_status
                raise map_ccxt_error(exc, f"{self.name} {what}", headers, status) from exc

        return call_with_retry(self.policy, f"{self.name}.{what}", once)

    def load_markets(self) -> None:
        """Load the venue's market list once (retried)."""
        if not self.client.markets:
            self._call("load_markets", self.client.load_markets)

    def market(self, symbol: str) -> dict[str, Any]:
        """ccxt's market for a unified symbol; NotFound if the venue does not list it."""
        self.load_markets()
        market = self.client.markets.get(symbol)
        if market is None:
            raise NotFound(f"{self.name} lists no market {symbol!r}")
        return dict(market)

    def _fetch_page(self, symbol: str, timeframe: str, since_ms: int) -> list[Any]:
        limit = self.capabilities.page_limit
        rows = self._call(
            "fetch_ohlcv",
            lambda: self.client.fetch_ohlcv(symbol, timeframe, since=since_ms, limit=limit),
        )
        if not isinstance(rows, list):
            raise TemporaryError(
                f"{self.name} fetch_ohlcv: expected a list, got {type(rows).__name__}"
            )
        return rows

    # --- query: candles --------------------------------------------------------------------------

    def fetch_candles(
        self, symbol: str, timeframe: Timeframe, since: datetime, until: datetime | None = None
    ) -> CandleBatch:
        """Closed candles of `symbol` from `since` (inclusive) to `until`, paging the venue.

        The in-progress candle is counted and dropped; rows ccxt could not parse are returned
        as rejections. Duplicates and order are left for the caller's validation.
        """
        if timeframe not in self.capabilities.timeframes:
            raise UserInputError(f"{self.name} does not serve {timeframe} candles")
        self.market(symbol)
        step = TIMEFRAME_MS[timeframe]
        now = self.clock()
        stop = now if until is None else min(now, int(until.timestamp() * 1000) + step)
        pager = _Pager(self, symbol, timeframe, step, stop)
        pager.run(int(since.timestamp() * 1000))
        return CandleBatch(
            exchange=self.name,
            symbol=symbol,
            timeframe=timeframe,
            candles=pager.candles,
            rejected=pager.rejected,
            in_progress_dropped=pager.in_progress,
            requests=pager.pages,
            source=self.source,
            fetched_at=datetime.fromtimestamp(now / 1000, UTC),
            warnings=pager.warnings,
        )

    # --- query: tickers and volume -----------------------------------------------------------

    def fetch_tick(self, symbol: str) -> Tick:
        """The current ticker of `symbol`."""
        self.market(symbol)
        raw = self._call("fetch_ticker", lambda: self.client.fetch_ticker(symbol))
        return self._parse_ticker(raw, symbol)

    def _parse_ticker(self, raw: Any, symbol: str) -> Tick:
        try:
            ticker = CcxtTicker.model_validate(raw)
        except ValidationError as exc:
            raise TemporaryError(f"{self.name} ticker {symbol}: unexpected payload: {exc}") from exc
        return parse_tick(ticker, self.name, self.clock())

    def volume_24h(self, symbol: str) -> ExchangeVolume:
        """24 h volume of one market: from the ticker, or the tickers list where it lacks volume."""
        market = self.market(symbol)
        if self.capabilities.ticker_has_volume:
            tick = self.fetch_tick(symbol)
        else:
            many = self._call("fetch_tickers", lambda: self.client.fetch_tickers([symbol]))
            if symbol not in many:
                raise DataUnavailable(f"{self.name} returned no ticker for {symbol}")
            tick = self._parse_ticker(many[symbol], symbol)
        return ExchangeVolume(
            exchange=self.name,
            symbol=symbol,
            quote=str(market["quote"]),
            base_volume_24h=tick.base_volume_24h,
            quote_volume_24h=tick.quote_volume_24h,
            as_of=tick.time,
            source=self.source,
        )


class _Pager:
    """Walks a venue's candle pages forward until the newest closed candle."""

    def __init__(self, conn: ExchangeConnector, symbol: str, timeframe: str, step: int, stop: int):
        self.conn, self.symbol, self.timeframe = conn, symbol, timeframe
        self.step, self.stop = step, stop
        self.caps = conn.capabilities
        self.candles: list[Candle] = []
        self.rejected: list[RejectedRow] = []
        self.warnings: list[str] = []
        self.in_progress = 0
        self.pages = 0

    def run(self, cursor: int) -> None:
        """Fetch pages from `cursor` (epoch ms) until nothing closed remains."""
        first = True
        while cursor + self.step <= self.stop and self.pages < MAX_PAGES:
            rows = self.conn._fetch_page(self.symbol, self.timeframe, cursor)
            self.pages += 1
            newest = self._take(rows, cursor)
            if first and self.caps.history_candles and newest is not None:
                self._check_depth(cursor)
            first = False
            if newest is None:
                if not self.caps.windowed_pages:
                    break  # nothing at or after `cursor`: the venue has no newer candle
                cursor += self.caps.page_limit * self.step  # a hole in the window: skip it
            elif newest < cursor:
                break  # no progress: the venue ignores `since`
            else:
                cursor = newest + self.step
        if self.pages >= MAX_PAGES:
            self.warnings.append(f"stopped after {MAX_PAGES} pages; run the sync again")

    def _take(self, rows: list[Any], cursor: int) -> int | None:
        newest: int | None = None
        for row in rows:
            try:
                raw = CcxtOhlcv.from_row(list(row))
            except (ValidationError, ValueError, TypeError) as exc:
                reason = f"unparseable candle row: {str(exc).splitlines()[0]}"
                self.rejected.append(RejectedRow(raw=json.dumps(row, default=str), reason=reason))
                continue
            if raw.timestamp + self.step > self.stop:
                self.in_progress += 1
                continue
            newest = raw.timestamp if newest is None else max(newest, raw.timestamp)
            if raw.timestamp >= cursor:
                self.candles.append(parse_candle(raw))
        return newest

    def _check_depth(self, cursor: int) -> None:
        oldest = min((int(c.open_time.timestamp() * 1000) for c in self.candles), default=None)
        if oldest is not None and oldest > cursor:
            self.warnings.append(
                f"{self.conn.name} serves only its newest {self.caps.history_candles} candles: "
                "history before the first one returned must be imported from files"
            )
