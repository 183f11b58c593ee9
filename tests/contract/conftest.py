"""Contract-test fixtures: the local venue server, fast retry policies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_venues import NOW_MS, SERIES_START_MS, FakeVenues, SleepLog, daily_series

from coinlens.connectors.retry import RetryPolicy


@pytest.fixture
def sleeps() -> SleepLog:
    return SleepLog()


@pytest.fixture
def policy(sleeps: SleepLog) -> RetryPolicy:
    """Four attempts, no real sleeping, deterministic jitter."""
    return RetryPolicy(attempts=4, base_delay=0.01, sleep=sleeps, rand=lambda: 0.5)


@pytest.fixture(scope="module")
def venues() -> Iterator[FakeVenues]:
    server = FakeVenues(NOW_MS)
    server.state.delay_s = 0.6
    yield server
    server.close()


@pytest.fixture
def server(venues: FakeVenues) -> FakeVenues:
    """The module's server reset to a clean 41-day series (the last candle is in progress)."""
    venues.reset(daily_series(SERIES_START_MS, 41))
    return venues
