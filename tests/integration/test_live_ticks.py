"""Live prices per token: the ticker and candle jobs name stored markets the way ccxt does,
and ticks (live or replayed) come from one market per token, per token unit, with its quote."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from coinlens.connectors.layouts import unified_symbol
from coinlens.services import events
from coinlens.services.context import Context, build_context
from coinlens.services.replay import ReplayConfig, replay
from coinlens.services.scheduler import poll_tickers, rotating, round_of, sync_candles
from coinlens.settings import get_settings
from coinlens.storage import repo
from contract.fake_venues import NOW_MS, SERIES_START_MS, FakeVenues, daily_series

DAY, HOUR = 86_400, 3_600
D0 = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("exchange", "pair", "quote", "instrument", "expected"),
    [
        ("binance", "ETHUSDT", "USDT", "spot", "ETH/USDT"),
        ("coinbase", "BTC-USD", "USD", "spot", "BTC/USD"),
        ("binance", "1000PEPEUSDT", "USDT", "perp", "1000PEPE/USDT:USDT"),
        ("binance", "BTCUSD", "USD", "perp", None),  # an inverse perpetual: not a linear symbol
        ("binance", "USDT", "USDT", "spot", None),
        ("kraken", "ETHEUR", "USDT", "spot", None),
    ],
)
def test_stored_markets_get_their_ccxt_symbol(
    exchange: str, pair: str, quote: str, instrument: str, expected: str | None
) -> None:
    assert unified_symbol(exchange, pair, quote, instrument) == expected


def test_markets_past_the_round_budget_are_taken_in_turn() -> None:
    """More markets than a round may poll: each round takes the next ones, wrapping around,
    so every market is covered every ceil(n / limit) rounds (the first 50 were always the
    same, and 152 of the 202 embedded tokens on Binance never ticked)."""
    items = list(range(7))
    rounds = [rotating(items, 3, r) for r in range(3)]
    assert rounds == [[0, 1, 2], [3, 4, 5], [6, 0, 1]]
    assert {i for r in rounds for i in r} == set(items)
    assert rotating(items[:2], 3, 5) == [0, 1]
    minute = datetime(2025, 1, 10, 12, 0, 30, tzinfo=UTC)
    assert round_of(minute, 60) + 1 == round_of(minute.replace(minute=1), 60)


def _market(key: str, token_id: int, quote: str, multiplier: float = 1.0) -> dict[str, Any]:
    exchange, instrument, pair = key.split(":")
    return {
        "market_key": key,
        "token_id": token_id,
        "exchange": exchange,
        "pair": pair,
        "quote": quote,
        "instrument": instrument,
        "contract_multiplier": multiplier,
        "source": "test",
    }


def _candles(n: int, price: float, start: int = D0, step: int = DAY) -> list[dict[str, Any]]:
    return [
        {"open_time": start + i * step, "open": price, "high": price * 1.01, "low": price * 0.99,
         "close": price + i, "volume": 10.0, "quote_volume": None, "trades": None}
        for i in range(n)
    ]  # fmt: skip


def _seed(ctx: Context, spec: dict[str, list[tuple[str, str, float, int]]]) -> dict[str, int]:
    """token → [(market key, quote, multiplier, daily candles)]; the longest is primary."""
    with ctx.engine.begin() as conn:
        ids = repo.upsert_tokens(
            conn,
            [{"symbol": t, "name": t, "categories": [], "is_stablecoin": False} for t in spec],
        )
        rows = [_market(k, ids[t], q, m) for t, ms in spec.items() for k, q, m, _ in ms]
        mids = repo.upsert_markets(conn, rows)
        for ms in spec.values():
            for key, _, _, n in ms:
                repo.write_candles(conn, mids[key], "1d", _candles(n, 100.0))
        repo.refresh_token_spans(conn)
    return mids


def _ticks(ctx: Context, after: str) -> list[events.Event]:
    return [e for e in events.bus_for(ctx.settings).after(after, 1000) if e.type == "tick"]


@pytest.fixture
def venues() -> Iterator[FakeVenues]:
    server = FakeVenues(NOW_MS)
    server.reset(daily_series(SERIES_START_MS, 41))
    yield server
    server.close()


def test_live_jobs_poll_and_sync_stored_markets_by_their_ccxt_symbols(
    tmp_path: Path, venues: FakeVenues
) -> None:
    """Stored pairs are `ETHUSDT` / `ETH-USD`, ccxt's are `ETH/USDT`: the jobs used the stored
    spelling and every market failed. One tick per token (its primary market, in its quote);
    a market the venue does not list fails alone."""
    events.reset_buses()
    settings = get_settings(
        env="test",
        data_dir=tmp_path,
        exchanges="binance,coinbase",
        exchange_api_base=venues.base,
    )
    ctx = build_context(settings)
    try:
        _seed(
            ctx,
            {
                "ETH": [
                    ("binance:spot:ETHUSDT", "USDT", 1.0, 30),
                    ("coinbase:spot:ETH-USD", "USD", 1.0, 5),
                ],
                "PEPE": [("binance:perp:1000PEPEUSDT", "USDT", 1000.0, 30)],
            },
        )
        head = events.bus_for(settings).head()

        polled = poll_tickers(ctx, datetime.fromtimestamp(NOW_MS / 1000, UTC))
        synced = sync_candles("1d")(ctx, datetime.fromtimestamp(NOW_MS / 1000, UTC))

        ticks = _ticks(ctx, head)
        assert [(e.symbol, e.data["price"], e.data["quote"]) for e in ticks] == [
            ("ETH", 3281.42, "USDT")
        ]
        assert ticks[0].data["source"].startswith("ccxt:binance")
        assert polled.rules == 0  # the ticked tokens' alert rules were evaluated (none here)
        assert synced == "2 markets synced, 1 failed"  # ETH on both venues; the perp is unlisted
    finally:
        ctx.engine.dispose()
        events.reset_buses()


def test_replayed_ticks_come_from_one_market_per_token_in_token_units(tmp_path: Path) -> None:
    """PEPE's primary market is the 1000PEPE perpetual (daily only); its spot market has
    hourly candles: the replay ticks PEPE once per hour from the spot market, BONK (a
    1000BONK perpetual only) once a day at close / 1000, never a contract's price as the
    token's."""
    events.reset_buses()
    source = build_context(get_settings(env="test", data_dir=tmp_path / "src"))
    target = build_context(get_settings(env="test", data_dir=tmp_path / "dst"))
    try:
        mids = _seed(
            source,
            {
                "PEPE": [
                    ("binance:perp:1000PEPEUSDT", "USDT", 1000.0, 30),
                    ("binance:spot:PEPEUSDT", "USDT", 1.0, 10),
                ],
                "BONK": [("binance:perp:1000BONKUSDT", "USDT", 1000.0, 30)],
            },
        )
        day = D0 + 29 * DAY
        with source.engine.begin() as conn:
            hourly = _candles(24, 0.00001, start=day, step=HOUR)
            repo.write_candles(conn, mids["binance:spot:PEPEUSDT"], "1h", hourly)
        head = events.bus_for(target.settings).head()

        report = replay(
            source,
            target,
            ReplayConfig(start=date(2025, 1, 30), end=date(2025, 1, 30), speed=0),
            lambda ctx, now: None,
        )

        ticks = _ticks(target, head)
        pepe = [e for e in ticks if e.symbol == "PEPE"]
        bonk = [e for e in ticks if e.symbol == "BONK"]
        assert report.ticks == len(ticks) == 25
        assert [e.data["price"] for e in pepe] == [r["close"] for r in hourly]
        assert [(e.data["price"], e.data["volume"], e.data["quote"]) for e in bonk] == [
            ((100.0 + 29) / 1000, 10.0 * 1000, "USDT")
        ]
    finally:
        source.engine.dispose()
        target.engine.dispose()
        events.reset_buses()
