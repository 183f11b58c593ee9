"""Ingest from the local venue server into both databases: idempotent, closed-only, repaired."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from coinlens.cli.main import app
from coinlens.connectors.coingecko import CoinGeckoConnector
from coinlens.connectors.defillama import DefiLlamaConnector
from coinlens.connectors.etherscan import EtherscanConnector
from coinlens.connectors.exchanges import ExchangeConnector
from coinlens.connectors.retry import RetryPolicy
from coinlens.services.context import Context
from coinlens.services.ingest import (
    exchange_volumes,
    sync_ecosystem,
    sync_market,
    sync_metadata,
)
from coinlens.storage import repo
from coinlens.storage.tables import (
    candles,
    import_runs,
    market_caps,
    markets,
    metrics,
    quarantine,
    tokens,
)
from contract.fake_venues import (
    DAY_MS,
    NOW_MS,
    SERIES_START_MS,
    FakeVenues,
    SleepLog,
    daily_series,
)

SINCE = datetime(2024, 12, 1, tzinfo=UTC)
POLICY = RetryPolicy(attempts=3, base_delay=0.0, sleep=SleepLog())


@pytest.fixture(scope="module")
def venues() -> Iterator[FakeVenues]:
    server = FakeVenues(NOW_MS)
    yield server
    server.close()


@pytest.fixture
def server(venues: FakeVenues) -> FakeVenues:
    venues.state.now_ms = NOW_MS
    venues.reset(daily_series(SERIES_START_MS, 41))
    return venues


def _binance(server: FakeVenues, now_ms: int = NOW_MS) -> ExchangeConnector:
    return ExchangeConnector(
        "binance", api_base=server.base, policy=POLICY, clock=lambda: now_ms, rate_limit_ms=1
    )


def _times(ctx: Context) -> list[int]:
    with ctx.engine.connect() as db:
        return list(db.execute(sa.select(candles.c.open_time).order_by("open_time")).scalars())


def test_backfill_then_rerun_is_all_unchanged_and_the_open_candle_is_never_stored(
    ctx: Context, server: FakeVenues
) -> None:
    first = sync_market(ctx, "binance", "ETH/USDT", "1d", SINCE, connector=_binance(server))
    again = sync_market(ctx, "binance", "ETH/USDT", "1d", SINCE, connector=_binance(server))
    onwards = sync_market(ctx, "binance", "ETH/USDT", "1d", connector=_binance(server))

    assert first.market_key == "binance:spot:ETHUSDT"
    assert (first.counts.inserted, first.in_progress_dropped, first.gaps) == (40, 1, [])
    assert (again.counts.inserted, again.counts.updated, again.counts.unchanged) == (0, 0, 40)
    assert (onwards.mode, onwards.counts.inserted, onwards.counts.unchanged) == (
        "incremental", 0, 1,
    )  # fmt: skip
    times = _times(ctx)
    assert len(times) == 40
    assert times[-1] * 1000 == NOW_MS - 12 * 3_600_000 - DAY_MS  # 2025-01-09, not the open 01-10


def test_a_coinbase_sync_continues_the_market_spelled_as_coinbase_does(
    ctx: Context, server: FakeVenues
) -> None:
    with ctx.engine.begin() as db:  # as `coinlens load` stores it (dataset/PROVENANCE.md)
        token_id = repo.upsert_tokens(db, [{"symbol": "ETH", "name": "Ethereum"}])["ETH"]
        repo.upsert_markets(
            db,
            [
                {
                    "market_key": "coinbase:spot:ETH-USD",
                    "token_id": token_id,
                    "exchange": "coinbase",
                    "pair": "ETH-USD",
                    "quote": "USD",
                    "instrument": "spot",
                    "contract_multiplier": 1.0,
                    "source": "coinbase_smoothbrainquant",
                }
            ],
        )
    coinbase = ExchangeConnector(
        "coinbase", api_base=server.base, policy=POLICY, clock=lambda: NOW_MS, rate_limit_ms=1
    )

    report = sync_market(ctx, "coinbase", "ETH/USD", "1d", SINCE, connector=coinbase)

    assert report.market_key == "coinbase:spot:ETH-USD"
    assert report.counts.inserted == 40
    with ctx.engine.connect() as db:
        assert list(db.execute(sa.select(markets.c.market_key)).scalars()) == [
            "coinbase:spot:ETH-USD"
        ]


def test_the_open_candle_lands_once_it_has_closed(ctx: Context, server: FakeVenues) -> None:
    sync_market(ctx, "binance", "ETH/USDT", "1d", SINCE, connector=_binance(server))
    later = NOW_MS + DAY_MS
    server.state.series["binance"].append(daily_series(SERIES_START_MS + 41 * DAY_MS, 1)[0])

    report = sync_market(ctx, "binance", "ETH/USDT", "1d", connector=_binance(server, later))

    assert report.counts.inserted == 1  # 2025-01-10, now closed; 2025-01-11 still open
    assert report.in_progress_dropped == 1
    assert len(_times(ctx)) == 41


def test_a_gap_is_reported_then_repaired_on_the_next_sync(ctx: Context, server: FakeVenues) -> None:
    full = list(server.state.series["binance"])
    server.state.series["binance"] = full[:10] + full[13:]  # the venue lost three days

    holey = sync_market(ctx, "binance", "ETH/USDT", "1d", SINCE, connector=_binance(server))
    server.state.series["binance"] = full
    repaired = sync_market(ctx, "binance", "ETH/USDT", "1d", connector=_binance(server))

    assert [(g.missing, g.first_missing * 1000) for g in holey.gaps] == [
        (3, SERIES_START_MS + 10 * DAY_MS)
    ]
    assert (repaired.mode, repaired.gaps_before, repaired.counts.inserted) == ("repair", 1, 3)
    assert repaired.gaps == []
    assert len(_times(ctx)) == 40


def test_bad_duplicate_and_unordered_candles_follow_the_import_rules(
    ctx: Context, server: FakeVenues
) -> None:
    rows = daily_series(SERIES_START_MS, 41)
    bad = list(rows[3])
    bad[2], bad[3] = bad[3] - 1, bad[2]  # high < low
    conflicting = list(rows[7])
    conflicting[4] += 1  # same open time, another close
    garbage = [rows[9][0], "abc", *rows[9][2:]]
    served = [rows[0], rows[2], rows[1], bad, *rows[4:9], garbage, *rows[10:], rows[5], conflicting]
    server.state.series["binance"] = served

    report = sync_market(ctx, "binance", "ETH/USDT", "1d", SINCE, connector=_binance(server))

    reasons = sorted(r["reason"] for r in report.rejected)
    assert len(reasons) == 4  # the bad candle, the garbage one, both conflicting copies
    assert any("high" in r and "< low" in r for r in reasons)
    assert any("open is missing" in r for r in reasons)
    assert sum("conflicting duplicate" in r for r in reasons) == 2
    assert report.merged == 1  # the identical copy of day 5
    assert report.counts.inserted == 40 - 3  # days 3, 7 and 9 not stored
    assert report.fetched == report.counts.inserted + report.merged + len(reasons)
    with ctx.engine.connect() as db:
        run = db.execute(sa.select(import_runs).where(import_runs.c.id == report.run_id)).one()
        stored = db.execute(sa.select(quarantine.c.reason, quarantine.c.raw)).all()
    assert (run.source, run.mode, run.status, run.rows_rejected) == (
        "ccxt:binance",
        "sync",
        "partial",
        4,
    )
    assert len(stored) == 4
    assert _times(ctx) == sorted(set(_times(ctx)))


def test_metadata_and_ecosystem_sync_write_known_tokens_and_metrics(
    ctx: Context, server: FakeVenues
) -> None:
    with ctx.engine.begin() as db:
        repo.upsert_tokens(db, [{"symbol": "ETH", "name": "Ethereum", "categories": []}])
    today = lambda: datetime(2025, 1, 10, tzinfo=UTC).date()  # noqa: E731
    cg = CoinGeckoConnector(f"{server.base}/coingecko/api/v3", policy=POLICY, today=today)
    dl = DefiLlamaConnector(f"{server.base}/llama", f"{server.base}/stablecoins", policy=POLICY)
    ex = EtherscanConnector(f"{server.base}/etherscan/v2/api", api_key="ratelimited", policy=POLICY)

    meta = sync_metadata(ctx, connector=cg)
    eco = sync_ecosystem(ctx, chains=["Ethereum"], llama=dl, explorer=ex)

    assert (meta.fetched, meta.written, meta.unmatched, len(meta.rejected)) == (
        2, 1, ["some-unknown-coin"], 1,
    )  # fmt: skip
    assert eco.written == {"defillama.tvl": 3, "defillama.stablecoins": 6}
    assert set(eco.failed) == {"etherscan.gas", "etherscan.tx"}  # rate limited: degrade
    with ctx.engine.connect() as db:
        cap = db.execute(sa.select(market_caps)).one()
        supply = db.execute(sa.select(tokens.c.circulating_supply, tokens.c.coingecko_id)).one()
        stable = dict(
            db.execute(
                sa.select(metrics.c.entity, metrics.c.value).where(metrics.c.metric == "supply_usd")
            ).all()
        )
    assert (cap.rank, cap.source, cap.market_cap) == (2, "coingecko", 395123456789)
    assert tuple(supply) == (120450000.12, "ethereum")
    # Every asset lands once: a symbol two assets share (USDX) is kept by the larger, the
    # other is named by its name; a euro coin counts at its USD price; no price, no figure.
    assert stable == {
        "USDT": 137123456789.12,
        "USDC": 45123456789.5,
        "USDX": 612000000.0,
        "KAVA USDX": 1250000.0,
        "EURC": pytest.approx(90123456.0 * 1.03),
        "all_stablecoins": pytest.approx(
            137123456789.12 + 45123456789.5 + 612000000.0 + 1250000.0 + 90123456.0 * 1.03
        ),
    }


def test_exchange_volumes_per_venue(sqlite_ctx: Context, server: FakeVenues) -> None:
    conns = [
        ExchangeConnector(n, api_base=server.base, policy=POLICY, rate_limit_ms=1)
        for n in ("binance", "kraken")
    ]

    report = exchange_volumes(sqlite_ctx, "eth", connectors=conns)

    assert [(v.exchange, v.symbol, v.base_volume_24h) for v in report.volumes] == [
        ("binance", "ETH/USDT", 412345.67),
        ("kraken", "ETH/USD", 41234.56789012),
    ]


def test_cli_sync_candles_against_the_local_server(
    tmp_path: object, server: FakeVenues, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COINLENS_EXCHANGE_API_BASE", server.base)
    monkeypatch.setenv("COINLENS_DATA_DIR", str(tmp_path))
    args = ["sync", "candles", "--exchange", "kraken", "--symbol", "ETH/USD"]

    result = CliRunner().invoke(app, [*args, "--timeframe", "1d", "--since", "2024-12-01"])

    assert result.exit_code == 0, result.output
    assert "kraken:spot:ETHUSD" in result.output
    assert "41" in result.output  # the real clock is past the fixture's last candle
