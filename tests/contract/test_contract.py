"""One contract every connector passes, on venue-shaped payloads from 127.0.0.1.

Each case names how to build the connector, one representative call, what its domain
result must look like, and the URL fragment of that call (where faults are injected).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from fake_venues import NOW, NOW_MS, FakeVenues, Fault, SleepLog

from coinlens.connectors.coingecko import CoinGeckoConnector
from coinlens.connectors.defillama import DefiLlamaConnector
from coinlens.connectors.etherscan import EtherscanConnector
from coinlens.connectors.exchanges import ExchangeConnector
from coinlens.connectors.retry import RetryPolicy
from coinlens.domain.errors import RateLimited, TemporaryError
from coinlens.domain.live import CandleBatch, MarketCapSnapshot, MetricPoint, Tick


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[str, RetryPolicy], Any]
    call: Callable[[Any], Any]
    check: Callable[[Any], None]
    path: str


def _exchange(name: str, base: str, policy: RetryPolicy) -> ExchangeConnector:
    return ExchangeConnector(
        name, api_base=base, policy=policy, timeout_s=0.3, clock=lambda: NOW_MS, rate_limit_ms=1
    )


def _candles(batch: CandleBatch) -> None:
    assert len(batch.candles) == 40  # 41 served, the in-progress one dropped
    assert batch.in_progress_dropped == 1
    assert batch.candles[0].open_time.isoformat() == "2024-12-01T00:00:00+00:00"
    assert batch.candles[-1].open_time.isoformat() == "2025-01-09T00:00:00+00:00"
    first = batch.candles[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        3000.0, 3025.0, 2980.0, 3005.0, 1000.0,
    )  # fmt: skip


def _exchange_case(name: str, symbol: str, path: str) -> Case:
    return Case(
        name,
        lambda base, policy: _exchange(name, f"{base}", policy),
        lambda c: (
            c.fetch_candles(symbol, "1d", NOW.replace(year=2024, month=12, day=1, hour=0)),
            c.fetch_tick(symbol),
        ),
        lambda r: (_candles(r[0]), _tick(r[1], name)),
        path,
    )


def _tick(tick: Tick, name: str) -> None:
    assert tick.exchange == name
    assert tick.source == f"ccxt:{name}:rest"
    assert tick.last == 3281.42
    assert tick.bid == 3281.41
    assert tick.ask == 3281.42


def _caps(rows: list[MarketCapSnapshot]) -> None:
    eth = next(r for r in rows if r.coingecko_id == "ethereum")
    assert (eth.symbol, eth.rank, eth.market_cap, eth.max_supply) == ("ETH", 2, 395123456789, None)
    assert eth.snapshot_date == date(2025, 1, 10)
    assert eth.source == "coingecko"
    assert {r.coingecko_id for r in rows} == {"ethereum", "some-unknown-coin"}  # "broken" skipped


def _tvl(points: list[MetricPoint]) -> None:
    assert [(p.entity, p.metric, p.date.isoformat(), p.value) for p in points] == [
        ("ethereum", "tvl_usd", "2025-01-08", 61234567890.5),
        ("ethereum", "tvl_usd", "2025-01-09", 61934567890.25),
        ("ethereum", "tvl_usd", "2025-01-10", 62034567890.0),
    ]


def _gas(points: list[MetricPoint]) -> None:
    assert [(p.entity, p.metric, p.value, p.unit) for p in points] == [
        ("ethereum", "gas_price_gwei", 4.5, "gwei")
    ]


def _today() -> date:
    return date(2025, 1, 10)


CASES = [
    _exchange_case("binance", "ETH/USDT", "/api/v3/klines"),
    _exchange_case("coinbase", "ETH/USD", "/candles"),
    _exchange_case("kraken", "ETH/USD", "/0/public/OHLC"),
    _exchange_case("okx", "ETH/USDT", "/market/candles"),
    Case(
        "coingecko",
        lambda base, policy: CoinGeckoConnector(
            f"{base}/coingecko/api/v3", policy=policy, timeout_s=0.3, today=_today
        ),
        lambda c: c.fetch_markets(),
        _caps,
        "/coins/markets",
    ),
    Case(
        "defillama",
        lambda base, policy: DefiLlamaConnector(
            f"{base}/llama", f"{base}/stablecoins", policy=policy, timeout_s=0.3, today=_today
        ),
        lambda c: c.fetch_chain_tvl(["Ethereum"]),
        _tvl,
        "/historicalChainTvl/",
    ),
    Case(
        "etherscan",
        lambda base, policy: EtherscanConnector(
            f"{base}/etherscan/v2/api", api_key="k", policy=policy, timeout_s=0.3, today=_today
        ),
        lambda c: c.fetch_gas(),
        _gas,
        "gasoracle",
    ),
]


@pytest.fixture(params=CASES, ids=lambda c: c.name)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


def _run(case: Case, server: FakeVenues, policy: RetryPolicy) -> Any:
    conn = case.make(server.base, policy)
    try:
        return case.call(conn)
    finally:
        conn.close()


def test_parses_venue_payloads_into_domain_types(
    case: Case, server: FakeVenues, policy: RetryPolicy
) -> None:
    result = _run(case, server, policy)

    case.check(result)


def test_a_burst_of_5xx_is_retried_and_nothing_changes(
    case: Case, server: FakeVenues, policy: RetryPolicy, sleeps: SleepLog
) -> None:
    server.state.faults.append(Fault(case.path, "500", times=2))

    result = _run(case, server, policy)

    case.check(result)
    assert server.state.count(case.path) >= 3
    assert len(sleeps.waits) == 2


def test_429_waits_at_least_retry_after(
    case: Case, server: FakeVenues, policy: RetryPolicy, sleeps: SleepLog
) -> None:
    server.state.faults.append(Fault(case.path, "429", times=1, retry_after="2"))

    result = _run(case, server, policy)

    case.check(result)
    assert sleeps.waits
    assert sleeps.waits[0] >= 2.0


def test_429_asking_too_long_gives_up_as_rate_limited(
    case: Case, server: FakeVenues, policy: RetryPolicy
) -> None:
    server.state.faults.append(Fault(case.path, "429", times=1, retry_after="3600"))

    with pytest.raises(RateLimited) as err:
        _run(case, server, policy)

    assert err.value.retry_after == 3600.0


def test_persistent_5xx_ends_as_temporary_error(
    case: Case, server: FakeVenues, policy: RetryPolicy
) -> None:
    server.state.faults.append(Fault(case.path, "500", times=99))

    with pytest.raises(TemporaryError):
        _run(case, server, policy)

    assert server.state.count(case.path) == policy.attempts


def test_malformed_json_is_retried_then_parsed(
    case: Case, server: FakeVenues, policy: RetryPolicy
) -> None:
    server.state.faults.append(Fault(case.path, "malformed", times=1))

    result = _run(case, server, policy)

    case.check(result)


def test_always_malformed_json_is_a_temporary_error(
    case: Case, server: FakeVenues, policy: RetryPolicy
) -> None:
    server.state.faults.append(Fault(case.path, "malformed", times=99))

    with pytest.raises(TemporaryError, match="malformed"):
        _run(case, server, policy)


def test_a_timeout_is_retried(case: Case, server: FakeVenues, policy: RetryPolicy) -> None:
    server.state.faults.append(Fault(case.path, "timeout", times=1))

    result = _run(case, server, policy)

    case.check(result)
