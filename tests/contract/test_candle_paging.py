"""Candle paging per venue quirk, live tickers, and the online smoke test (opt-in)."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import pytest
from fake_venues import DAY_MS, NOW, NOW_MS, FakeVenues, daily_series

from coinlens.connectors.exchanges import ExchangeConnector
from coinlens.connectors.retry import RetryPolicy
from coinlens.connectors.tickers import PollingTickSource
from coinlens.domain.live import TickSource

SYMBOLS = {"binance": "ETH/USDT", "coinbase": "ETH/USD", "kraken": "ETH/USD", "okx": "ETH/USDT"}
LONG_DAYS = 1200  # > every venue's page, > Kraken's 720-candle window


def _conn(name: str, base: str, policy: RetryPolicy) -> ExchangeConnector:
    return ExchangeConnector(
        name, api_base=base, policy=policy, timeout_s=2, clock=lambda: NOW_MS, rate_limit_ms=1
    )


@pytest.mark.parametrize("name", ["binance", "coinbase", "okx"])
def test_long_backfill_pages_through_every_closed_candle_once(
    name: str, venues: FakeVenues, policy: RetryPolicy
) -> None:
    start = NOW_MS - 12 * 3_600_000 - (LONG_DAYS - 1) * DAY_MS
    venues.reset(daily_series(start, LONG_DAYS))
    conn = _conn(name, venues.base, policy)

    batch = conn.fetch_candles(SYMBOLS[name], "1d", datetime.fromtimestamp(start / 1000, UTC))

    times = [int(c.open_time.timestamp() * 1000) for c in batch.candles]
    assert times == [start + i * DAY_MS for i in range(LONG_DAYS - 1)]  # none lost, none twice
    assert batch.in_progress_dropped == 1
    assert batch.requests > 1


def test_kraken_serves_only_its_newest_720_and_says_so(
    venues: FakeVenues, policy: RetryPolicy
) -> None:
    start = NOW_MS - 12 * 3_600_000 - (LONG_DAYS - 1) * DAY_MS
    venues.reset(daily_series(start, LONG_DAYS))
    conn = _conn("kraken", venues.base, policy)

    batch = conn.fetch_candles("ETH/USD", "1d", datetime.fromtimestamp(start / 1000, UTC))

    assert len(batch.candles) == 719  # the newest 720 minus the one still open
    assert any("720" in w for w in batch.warnings)


def test_empty_okx_windows_before_listing_are_skipped(
    venues: FakeVenues, policy: RetryPolicy
) -> None:
    venues.reset(daily_series(NOW_MS - 12 * 3_600_000 - 40 * DAY_MS, 41))
    conn = _conn("okx", venues.base, policy)

    batch = conn.fetch_candles("ETH/USDT", "1d", NOW - timedelta(days=1000))

    assert len(batch.candles) == 40
    assert batch.requests >= 4  # three empty 300-day windows, then the data


def test_a_garbage_price_reaches_validation_as_nan_not_a_crash(
    venues: FakeVenues, policy: RetryPolicy
) -> None:
    series = daily_series(NOW_MS - 12 * 3_600_000 - 40 * DAY_MS, 41)
    series[5] = [series[5][0], "abc", 1, 1, 1, 1]  # the venue sent garbage in one row
    venues.reset(series)
    conn = _conn("binance", venues.base, policy)

    batch = conn.fetch_candles("ETH/USDT", "1d", NOW - timedelta(days=41))

    assert len(batch.candles) == 40
    assert math.isnan(batch.candles[5].open)  # ingest validation quarantines it
    assert batch.candles[5].close == series[5][4]


def test_polling_tick_source_streams_ticks(venues: FakeVenues, policy: RetryPolicy) -> None:
    venues.reset(daily_series(NOW_MS - 40 * DAY_MS, 2))
    source = PollingTickSource(_conn("okx", venues.base, policy), interval_s=0.01)

    async def take_three() -> list[float | None]:
        ticks = []
        async for tick in source.stream(["ETH/USDT"]):
            ticks.append(tick.last)
            if len(ticks) == 3:
                break
        return ticks

    assert isinstance(source, TickSource)
    assert asyncio.run(take_three()) == [3281.42] * 3


@pytest.mark.online
@pytest.mark.parametrize("name", sorted(SYMBOLS))
def test_online_real_venue_serves_closed_daily_candles(name: str) -> None:
    conn = ExchangeConnector(name)
    try:
        batch = conn.fetch_candles(SYMBOLS[name], "1d", datetime.now(UTC) - timedelta(days=10))
    finally:
        conn.close()

    assert 8 <= len(batch.candles) <= 10
    newest = batch.candles[-1].open_time
    assert newest + timedelta(days=1) <= datetime.now(UTC)  # closed candles only
