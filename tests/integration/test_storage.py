"""Storage on SQLite and PostgreSQL: migrations, idempotent writes, UTC times, the panel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
import sqlalchemy as sa

from coinlens.domain.errors import DataUnavailable
from coinlens.services.context import Context
from coinlens.settings import Settings
from coinlens.storage import keys_repo, repo
from coinlens.storage.db import current_revision, make_engine, upgrade
from coinlens.storage.panel import read_daily_panel
from coinlens.storage.tables import candles, import_runs, markets, tokens

DAY = 86_400
T0 = 1_600_000_000 // DAY * DAY  # a UTC midnight


def _seed(conn: sa.Connection) -> dict[str, int]:
    ids = repo.upsert_tokens(
        conn,
        [
            {"symbol": "ETH", "name": "Ethereum", "categories": ["L1"], "is_stablecoin": False},
            {"symbol": "PEPE", "name": "Pepe", "categories": [], "is_stablecoin": False},
        ],
    )
    return repo.upsert_markets(
        conn,
        [
            {
                "market_key": "binance:spot:ETHUSDT",
                "token_id": ids["ETH"],
                "exchange": "binance",
                "pair": "ETHUSDT",
                "quote": "USDT",
                "instrument": "spot",
                "contract_multiplier": 1.0,
                "source": "test",
            },
            {
                "market_key": "binance:perp:1000PEPEUSDT",
                "token_id": ids["PEPE"],
                "exchange": "binance",
                "pair": "1000PEPEUSDT",
                "quote": "USDT",
                "instrument": "perp",
                "contract_multiplier": 1000.0,
                "source": "test",
            },
        ],
    )


def _candles(n: int, start: float, step: int = DAY) -> list[dict[str, float | int | None]]:
    rows: list[dict[str, float | int | None]] = []
    for i in range(n):
        price = start * (1 + 0.01 * i)
        rows.append(
            {
                "open_time": T0 + i * step,
                "open": price,
                "high": price * 1.02,
                "low": price * 0.98,
                "close": price * 1.01,
                "volume": 10.0 + i,
                "quote_volume": None,
                "trades": 100 + i,
            }
        )
    return rows


def test_migrations_reach_head_and_are_idempotent(ctx: Context) -> None:
    assert current_revision(ctx.engine) is not None
    upgrade(ctx.engine)  # second run is a no-op
    names = set(sa.inspect(ctx.engine).get_table_names())
    assert {"tokens", "markets", "candles", "market_caps", "metrics", "import_runs"} <= names
    assert {"quarantine", "state"} <= names


def test_candle_writes_are_idempotent_and_count_changes(ctx: Context) -> None:
    rows = _candles(30, 2000.0)
    with ctx.engine.begin() as conn:
        mids = _seed(conn)
        first = repo.write_candles(conn, mids["binance:spot:ETHUSDT"], "1d", rows)
    assert (first.inserted, first.updated, first.unchanged) == (30, 0, 0)
    with ctx.engine.begin() as conn:
        version = repo.read_counter(conn, repo.CANDLES_VERSION)
        again = repo.write_candles(conn, mids["binance:spot:ETHUSDT"], "1d", rows)
        assert repo.read_counter(conn, repo.CANDLES_VERSION) == version  # nothing changed
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 30)
    corrected = [dict(r) for r in rows]
    corrected[5]["close"] = float(corrected[5]["close"] or 0) + 1.0
    with ctx.engine.begin() as conn:
        fix = repo.write_candles(conn, mids["binance:spot:ETHUSDT"], "1d", corrected)
        stored = conn.execute(
            sa.select(candles.c.close).where(candles.c.open_time == T0 + 5 * DAY)
        ).scalar_one()
    assert (fix.inserted, fix.updated, fix.unchanged) == (0, 1, 29)
    assert stored == corrected[5]["close"]


def test_failed_transaction_leaves_no_partial_batch(ctx: Context) -> None:
    with ctx.engine.begin() as conn:
        mids = _seed(conn)

    def good_then_bad() -> None:
        with ctx.engine.begin() as conn:
            repo.write_candles(conn, mids["binance:spot:ETHUSDT"], "1d", _candles(5, 1.0))
            # violates the timeframe check constraint after the good batch went in
            repo.write_candles(conn, mids["binance:spot:ETHUSDT"], "5m", _candles(5, 1.0))

    with pytest.raises(sa.exc.IntegrityError):
        good_then_bad()
    with ctx.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(candles)).scalar_one() == 0


def test_run_timestamps_are_utc_aware_and_naive_is_refused(ctx: Context) -> None:
    with ctx.engine.begin() as conn:
        run_id = repo.start_run(conn, "file.csv", "lenient")
        repo.finish_run(conn, run_id, "ok", rows_total=3)
        started = conn.execute(sa.select(import_runs.c.started_at)).scalar_one()
    assert started.tzinfo is not None
    assert started.utcoffset() == timedelta(0)
    naive = datetime(2024, 1, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(sa.exc.StatementError), ctx.engine.begin() as conn:
        conn.execute(
            import_runs.insert().values(source="x", mode="m", status="s", started_at=naive)
        )
    other_zone = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=5)))
    with ctx.engine.begin() as conn:
        conn.execute(
            import_runs.insert().values(source="y", mode="m", status="s", started_at=other_zone)
        )
        stored = conn.execute(
            sa.select(import_runs.c.started_at).where(import_runs.c.source == "y")
        ).scalar_one()
    assert stored == datetime(2024, 1, 1, 7, tzinfo=UTC)


def test_panel_read_normalises_contracts_and_tracks_versions(ctx: Context) -> None:
    with pytest.raises(DataUnavailable):
        read_daily_panel(ctx.engine, ctx.cache_dir)
    with ctx.engine.begin() as conn:
        mids = _seed(conn)
        repo.write_candles(conn, mids["binance:spot:ETHUSDT"], "1d", _candles(20, 2000.0))
        late = _candles(20, 0.01)[10:]  # PEPE listed 10 days later, quoted per 1000 tokens
        repo.write_candles(conn, mids["binance:perp:1000PEPEUSDT"], "1d", late)
        repo.refresh_token_spans(conn)
    panel = read_daily_panel(ctx.engine, ctx.cache_dir)
    assert panel.symbols == ["ETH", "PEPE"]
    assert panel.close.shape == (2, 20)
    eth, pepe = panel.row("ETH"), panel.row("PEPE")
    assert panel.days[0] == T0 // DAY
    assert np.isnan(panel.close[pepe, :10]).all()
    assert panel.close[pepe, 10] == pytest.approx(0.01 * 1.1 * 1.01 / 1000)
    assert panel.volume[pepe, 10] == pytest.approx(20.0 * 1000)
    assert panel.close[eth, 0] == pytest.approx(2000.0 * 1.01)
    with ctx.engine.begin() as conn:
        repo.write_candles(conn, mids["binance:spot:ETHUSDT"], "1d", _candles(21, 2000.0)[20:])
    newer = read_daily_panel(ctx.engine, ctx.cache_dir)
    assert newer.version > panel.version
    assert newer.close.shape == (2, 21)
    assert len(list(ctx.cache_dir.glob("panel-1d-*.parquet"))) == 1  # stale snapshot removed


def test_primary_market_prefers_longest_history(ctx: Context) -> None:
    with ctx.engine.begin() as conn:
        mids = _seed(conn)
        repo.write_candles(conn, mids["binance:spot:ETHUSDT"], "1d", _candles(5, 2000.0))
        repo.refresh_token_spans(conn)
        row = conn.execute(
            sa.select(
                tokens.c.primary_market_id, tokens.c.first_candle, tokens.c.last_candle
            ).where(tokens.c.symbol == "ETH")
        ).one()
    assert row == (mids["binance:spot:ETHUSDT"], T0, T0 + 4 * DAY)


def test_freshness_is_reported_per_source_not_per_merged_source_list(ctx: Context) -> None:
    """A market merged from several sources (`a,b`, as the embedded BTCUSDT) counts for each
    of them: /readyz and the freshness gauge label sources, not comma-joined lists."""
    with ctx.engine.begin() as conn:
        mids = _seed(conn)
        conn.execute(
            markets.update()
            .where(markets.c.id == mids["binance:spot:ETHUSDT"])
            .values(source="vendor_a,vendor_b")
        )
        conn.execute(
            markets.update()
            .where(markets.c.id == mids["binance:perp:1000PEPEUSDT"])
            .values(source="vendor_b")
        )
        repo.write_candles(conn, mids["binance:spot:ETHUSDT"], "1d", _candles(5, 2000.0))
        repo.write_candles(conn, mids["binance:perp:1000PEPEUSDT"], "1d", _candles(9, 0.01))
        latest = keys_repo.latest_candle_by_source(conn)
    assert latest == {"vendor_a": T0 + 4 * DAY, "vendor_b": T0 + 8 * DAY}


def test_migrations_match_the_table_definitions(ctx: Context) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from coinlens.storage.migrations.env_support import all_metadata

    with ctx.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), all_metadata())
    assert diff == []


def test_embedded_market_sources_fit_and_old_databases_migrate(settings: Settings) -> None:
    """The embedded dataset's merged market sources (77 characters) fit markets.source on
    PostgreSQL, which enforces VARCHAR lengths, also in a database made before 0011 that
    already holds markets and candles (SQLite rebuilds the table under them)."""
    import pyarrow.compute as pc

    from coinlens.connectors.embedded import read_embedded

    sources = read_embedded("markets").column("source")
    longest = str(sources[pc.index(pc.utf8_length(sources), pc.max(pc.utf8_length(sources)))])
    assert len(longest) > 64
    engine = make_engine(settings.db_url)
    try:
        upgrade(engine, "0010")
        with engine.begin() as conn:
            mids = _seed(conn)
            repo.write_candles(conn, mids["binance:spot:ETHUSDT"], "1d", _candles(3, 2000.0))
        upgrade(engine)
        with engine.begin() as conn:
            repo.upsert_markets(
                conn,
                [
                    {
                        "market_key": "binance:spot:BTCUSDT",
                        "token_id": conn.execute(sa.select(tokens.c.id).limit(1)).scalar_one(),
                        "exchange": "binance",
                        "pair": "BTCUSDT",
                        "quote": "USDT",
                        "instrument": "spot",
                        "contract_multiplier": 1.0,
                        "source": longest,
                    }
                ],
            )
            assert conn.execute(sa.select(sa.func.count()).select_from(candles)).scalar() == 3
            stored = conn.execute(
                sa.select(markets.c.source).where(markets.c.market_key == "binance:spot:BTCUSDT")
            ).scalar_one()
        assert stored == longest
    finally:
        engine.dispose()
