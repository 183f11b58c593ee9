"""Bulk candle writes and the incremental panel snapshot, on SQLite and PostgreSQL.

Every merged snapshot must equal a full rebuild from the database exactly (same tokens,
calendar and values, NaN where a token has no candle).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
import structlog
from structlog.testing import capture_logs

from coinlens.services import catalog
from coinlens.services.context import Context
from coinlens.storage import analytics_repo, repo
from coinlens.storage.panel import FIELDS, Panel, read_daily_panel
from coinlens.storage.tables import candle_changes, candles, tokens

DAY = 86_400
T0 = 1_600_000_000 // DAY * DAY  # a UTC midnight
SPOT, PERP = "spot", "perp"


def _market(key: str, token_id: int, instrument: str, multiplier: float = 1.0) -> dict[str, Any]:
    exchange, _, pair = key.split(":")
    return {
        "market_key": key,
        "token_id": token_id,
        "exchange": exchange,
        "pair": pair,
        "quote": "USDT",
        "instrument": instrument,
        "contract_multiplier": multiplier,
        "source": "test",
    }


def _seed(conn: sa.Connection, symbols: list[str]) -> dict[str, int]:
    ids = repo.upsert_tokens(
        conn,
        [{"symbol": s, "name": s, "categories": [], "is_stablecoin": False} for s in symbols],
    )
    rows = [_market(f"test:{SPOT}:{s}USDT", ids[s], SPOT) for s in symbols]
    rows.append(_market("test:perp:1000PEPEUSDT", ids["PEPE"], PERP, 1000.0))
    rows.append(_market("test:perp:BTCUSDT", ids["BTC"], PERP))
    return repo.upsert_markets(conn, rows)


def _candles(days: range, start: float) -> list[dict[str, Any]]:
    return [
        {
            "open_time": T0 + d * DAY,
            "open": start * (1 + 0.01 * d),
            "high": start * (1 + 0.01 * d) * 1.02,
            "low": start * (1 + 0.01 * d) * 0.98,
            "close": start * (1 + 0.01 * d) * 1.01,
            "volume": 10.0 + d,
            "quote_volume": None if d % 3 else 1000.0 + d,
            "trades": None,
        }
        for d in days
    ]


def _write(ctx: Context, rows: dict[int, list[dict[str, Any]]]) -> repo.WriteCounts:
    with ctx.engine.begin() as conn:
        counts = repo.write_candles_many(conn, "1d", rows)
        repo.refresh_token_spans(conn)
    return counts


def _read(ctx: Context) -> tuple[Panel, list[str]]:
    """The panel and how its snapshot was made ("merged", "rebuilt"; none if reused)."""
    with _info_logs() as logs:
        panel = read_daily_panel(ctx.engine, ctx.cache_dir)
    return panel, [e["mode"] for e in logs if e["event"] == "panel.snapshot"]


@contextmanager
def _info_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """structlog's captured events, info included whatever level an earlier test in this
    process configured (an app built with log level WARNING filters info events out before
    `capture_logs` sees them: these tests then failed or passed by xdist's test order)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)


def _assert_equals_rebuild(ctx: Context, panel: Panel, tmp_path: Path) -> None:
    full = read_daily_panel(ctx.engine, tmp_path / f"fresh-{panel.version}")
    assert panel.version == full.version
    assert panel.symbols == full.symbols
    np.testing.assert_array_equal(panel.token_ids, full.token_ids)
    np.testing.assert_array_equal(panel.days, full.days)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(panel, name), getattr(full, name), err_msg=name)


@pytest.fixture
def mids(ctx: Context) -> dict[str, int]:
    """ETH, BTC (spot + perp) and PEPE (a 1000× perp) with 30 days each; the panel read once."""
    with ctx.engine.begin() as conn:
        mids = _seed(conn, ["ETH", "BTC", "PEPE"])
    _write(
        ctx,
        {
            mids["test:spot:ETHUSDT"]: _candles(range(30), 2000.0),
            mids["test:spot:BTCUSDT"]: _candles(range(30), 40_000.0),
            mids["test:perp:BTCUSDT"]: _candles(range(20, 30), 40_010.0),
            mids["test:perp:1000PEPEUSDT"]: _candles(range(10, 30), 0.01),
        },
    )
    assert _read(ctx)[1] == ["rebuilt"]
    return mids


def test_unknown_quote_volume_reads_as_nan(ctx: Context, mids: dict[str, int]) -> None:
    panel, _ = _read(ctx)
    eth = panel.quote_volume[panel.row("ETH")]
    days = np.arange(30)
    np.testing.assert_array_equal(eth, np.where(days % 3, np.nan, 1000.0 + days))


def test_bulk_write_counts_and_is_idempotent(ctx: Context) -> None:
    with ctx.engine.begin() as conn:
        mids = _seed(conn, ["ETH", "BTC", "PEPE"])
    eth, btc = mids["test:spot:ETHUSDT"], mids["test:spot:BTCUSDT"]
    rows = {eth: _candles(range(5), 2000.0), btc: _candles(range(3, 8), 40_000.0)}

    first = _write(ctx, rows)
    with ctx.engine.connect() as conn:
        version = repo.read_counter(conn, repo.CANDLES_VERSION)
    again = _write(ctx, rows)
    fixed = [dict(r) for r in rows[btc]]
    fixed[2]["close"] += 1.0
    fix = _write(ctx, {eth: rows[eth] + _candles(range(5, 6), 2000.0), btc: fixed})

    assert (first.inserted, first.updated, first.unchanged) == (10, 0, 0)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 10)
    assert (fix.inserted, fix.updated, fix.unchanged) == (1, 1, 9)
    with ctx.engine.connect() as conn:
        assert repo.read_counter(conn, repo.CANDLES_VERSION) == version + 1  # once per write
        logged = conn.execute(
            sa.select(candle_changes.c.version, candle_changes.c.market_id)
            .add_columns(candle_changes.c.min_open_time)
            .order_by(candle_changes.c.version, candle_changes.c.market_id)
        ).all()
        close = conn.execute(
            sa.select(candles.c.close).where(
                candles.c.market_id == btc, candles.c.open_time == T0 + 5 * DAY
            )
        ).scalar_one()
    assert close == fixed[2]["close"]
    assert logged == sorted(
        [
            (version - 1, eth, T0),
            (version - 1, btc, T0 + 3 * DAY),
            # the tokens' series are new: refresh_token_spans logs their markets once more
            (version, eth, T0),
            (version, btc, T0 + 3 * DAY),
            (version + 1, eth, T0 + 5 * DAY),
            (version + 1, btc, T0 + 5 * DAY),
        ]
    )


def test_failed_bulk_write_leaves_nothing(ctx: Context) -> None:
    with ctx.engine.begin() as conn:
        mids = _seed(conn, ["ETH", "BTC", "PEPE"])
    bad = _candles(range(2), 40_000.0)
    bad[1]["low"] = None  # NOT NULL: the whole batch must roll back

    with pytest.raises(sa.exc.IntegrityError):
        _write(
            ctx,
            {mids["test:spot:ETHUSDT"]: _candles(range(5), 1.0), mids["test:spot:BTCUSDT"]: bad},
        )

    with ctx.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(candles)).scalar_one() == 0
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(candle_changes)).scalar_one() == 0
        )
        assert repo.read_counter(conn, repo.CANDLES_VERSION) == 0


def test_new_day_is_merged_and_equals_a_rebuild(
    ctx: Context, mids: dict[str, int], tmp_path: Path
) -> None:
    _write(ctx, {m: _candles(range(30, 31), 3.0 + m) for m in mids.values()})

    panel, how = _read(ctx)

    assert how == ["merged"]
    assert panel.close.shape == (3, 31)
    _assert_equals_rebuild(ctx, panel, tmp_path)
    assert _read(ctx)[1] == []  # the merged snapshot is reused at the same version
    assert len(list(ctx.cache_dir.glob("panel-1d-*.parquet"))) == 1


def test_corrected_old_candle_and_new_token_are_merged(
    ctx: Context, mids: dict[str, int], tmp_path: Path
) -> None:
    fixed = _candles(range(3, 4), 2000.0)
    fixed[0]["close"] = 1.0
    _write(ctx, {mids["test:spot:ETHUSDT"]: fixed})
    corrected, how = _read(ctx)
    assert how == ["merged"]
    assert corrected.close[corrected.row("ETH"), 3] == 1.0
    _assert_equals_rebuild(ctx, corrected, tmp_path)

    with ctx.engine.begin() as conn:
        ids = repo.upsert_tokens(conn, [{"symbol": "SOL", "name": "Sol", "categories": []}])
        sol = repo.upsert_markets(conn, [_market("test:spot:SOLUSDT", ids["SOL"], SPOT)])
    _write(ctx, {sol["test:spot:SOLUSDT"]: _candles(range(25, 35), 20.0)})
    listed, how = _read(ctx)

    assert how == ["merged"]
    assert listed.symbols == ["ETH", "BTC", "PEPE", "SOL"]
    assert listed.close.shape == (4, 35)
    _assert_equals_rebuild(ctx, listed, tmp_path)


def test_primary_market_and_multiplier_changes_refetch_the_token(
    ctx: Context, mids: dict[str, int], tmp_path: Path
) -> None:
    _write(ctx, {mids["test:perp:BTCUSDT"]: _candles(range(31), 39_990.0)})  # more days: primary
    switched, how = _read(ctx)
    assert how == ["merged"]
    assert switched.close[switched.row("BTC"), 0] == pytest.approx(39_990.0 * 1.01)
    _assert_equals_rebuild(ctx, switched, tmp_path)

    with ctx.engine.begin() as conn:  # the venue re-denominates the contract
        pepe = repo.read_counter(conn, repo.CANDLES_VERSION)
        tokens = repo.token_ids(conn, ["PEPE"])
        repo.upsert_markets(conn, [_market("test:perp:1000PEPEUSDT", tokens["PEPE"], PERP, 100.0)])
    _write(ctx, {mids["test:spot:ETHUSDT"]: _candles(range(30, 31), 9.0)})
    rescaled, how = _read(ctx)

    assert rescaled.version > pepe
    assert how == ["merged"]
    assert rescaled.close[rescaled.row("PEPE"), 10] == pytest.approx(0.01 * 1.1 * 1.01 / 100)
    _assert_equals_rebuild(ctx, rescaled, tmp_path)


def test_a_delisted_spot_market_is_continued_by_its_perp(
    ctx: Context, mids: dict[str, int], tmp_path: Path
) -> None:
    """XMR's spot market stops on day 19; its perp (from day 15) carries the series on: the
    token's panel row is the spot's days before the perp's first, then the perp's."""
    with ctx.engine.begin() as conn:
        ids = repo.upsert_tokens(conn, [{"symbol": "XMR", "name": "Monero", "categories": []}])
        xmr = repo.upsert_markets(
            conn,
            [
                _market("test:spot:XMRUSDT", ids["XMR"], SPOT),
                _market("test:perp:XMRUSDT", ids["XMR"], PERP),
            ],
        )
    spot, perp = xmr["test:spot:XMRUSDT"], xmr["test:perp:XMRUSDT"]
    _write(ctx, {spot: _candles(range(20), 100.0)})
    assert _read(ctx)[1] == ["merged"]

    _write(ctx, {perp: _candles(range(15, 30), 200.0)})  # the spot is now 10 days stale
    stitched, how = _read(ctx)

    assert how == ["merged"]
    close = stitched.close[stitched.row("XMR")]
    assert close[14] == pytest.approx(100.0 * 1.14 * 1.01)  # the spot's, up to the perp's start
    assert close[15] == pytest.approx(200.0 * 1.15 * 1.01)  # the perp's from its first day
    assert np.isfinite(close).all()
    _assert_equals_rebuild(ctx, stitched, tmp_path)
    with ctx.engine.connect() as conn:
        token = conn.execute(sa.select(tokens).where(tokens.c.symbol == "XMR")).one()
        days, ohlcv = analytics_repo.read_daily_series(conn, token.id)
    assert (token.primary_market_id, token.history_market_id) == (perp, spot)
    assert (token.first_candle, token.last_candle) == (T0, T0 + 29 * DAY)
    np.testing.assert_array_equal(ohlcv[:, 3], close[days - stitched.days[0]])
    shown = {m.market_key: m for m in catalog.get_token(ctx, "XMR").markets}
    assert shown["test:perp:XMRUSDT"].is_primary
    assert shown["test:spot:XMRUSDT"].history_until == datetime.fromtimestamp(T0 + 15 * DAY, UTC)
    assert shown["test:perp:XMRUSDT"].history_until is None


def test_coverage_counts_the_candles_missing_inside_the_span(
    ctx: Context, mids: dict[str, int]
) -> None:
    _write(ctx, {mids["test:spot:ETHUSDT"]: _candles(range(35, 37), 2000.0)})  # 30..34 absent

    eth = catalog.get_token(ctx, "ETH").markets[0]

    assert eth.market_key == "test:spot:ETHUSDT"
    assert [(c.count, c.missing) for c in eth.coverage] == [(32, 5)]


def test_series_of_continues_only_adjacent_markets() -> None:
    def span(market: int, first: int, last: int, spot: bool = True) -> repo.Span:
        return repo.Span(market, spot, last - first + 1, first * DAY, last * DAY)

    spot, perp = span(1, 0, 99), span(2, 95, 200, spot=False)
    assert repo.series_of([spot, perp]) == (perp, spot)
    ended = span(1, 0, 88)
    assert repo.series_of([ended, perp]) == (perp, ended)  # 7 days apart: continued
    assert repo.series_of([span(1, 0, 87), perp]) == (perp, None)  # 8: not
    both_current = [span(1, 0, 197), span(2, 50, 200, spot=False)]
    assert repo.series_of(both_current) == (both_current[0], None)  # most candles, not newest
    tie = [span(1, 0, 200, spot=False), span(2, 0, 200)]
    assert repo.series_of(tie)[0] == tie[1]  # spot on ties


def test_uncovered_gaps_and_large_changes_rebuild(
    ctx: Context, mids: dict[str, int], tmp_path: Path
) -> None:
    with ctx.engine.begin() as conn:
        repo.bump(conn, repo.CANDLES_VERSION)  # a version the change log never saw
    assert _read(ctx)[1] == ["rebuilt"]

    _write(ctx, {mids["test:spot:ETHUSDT"]: _candles(range(30, 32), 5.0)})
    _write(ctx, {mids["test:spot:BTCUSDT"]: _candles(range(30, 32), 6.0)})
    with ctx.engine.begin() as conn:
        repo.prune_candle_changes(conn, keep_rows=1)  # the older of the two versions goes
    pruned, how = _read(ctx)
    assert how == ["rebuilt"]
    _assert_equals_rebuild(ctx, pruned, tmp_path)

    _write(ctx, {m: _candles(range(32), 7.0) for m in mids.values()})  # rewrites everything
    rewritten, how = _read(ctx)
    assert how == ["rebuilt"]
    _assert_equals_rebuild(ctx, rewritten, tmp_path)


def test_prune_keeps_whole_recent_versions(ctx: Context, mids: dict[str, int]) -> None:
    for day in range(30, 33):
        _write(ctx, {m: _candles(range(day, day + 1), 1.0) for m in mids.values()})

    with ctx.engine.begin() as conn:
        repo.prune_candle_changes(conn, keep_rows=12)
        left = conn.execute(
            sa.select(candle_changes.c.version, sa.func.count())
            .group_by(candle_changes.c.version)
            .order_by(candle_changes.c.version)
        ).all()
        newest = repo.read_counter(conn, repo.CANDLES_VERSION)

    assert left == [(newest - 1, 5), (newest, 5)]  # 10 of 12 rows: never half a version


def test_span_groups_cover_every_span_within_the_budget() -> None:
    same = repo.span_groups([(m, 5, 5) for m in range(100)])
    varied = [(m, m * 7 % 50, m * 7 % 50 + 3) for m in range(100)]

    widened = repo.span_groups(varied, max_groups=8)

    assert same == [(list(range(100)), 5, 5)]  # one query for the live path's one new candle
    assert len(widened) <= 8
    covered = {m: (lo, hi) for ids, lo, hi in widened for m in ids}
    assert sorted(covered) == list(range(100))
    assert all(covered[m][0] <= lo and hi <= covered[m][1] for m, lo, hi in varied)


def test_many_scattered_corrections_merge_exactly(ctx: Context, tmp_path: Path) -> None:
    symbols = ["BTC", "ETH", "PEPE", *(f"T{i:02d}" for i in range(40))]
    with ctx.engine.begin() as conn:
        mids = _seed(conn, symbols)
    spots = [mids[f"test:spot:{s}USDT"] for s in symbols]
    _write(ctx, {m: _candles(range(100), 1.0 + m) for m in spots})
    assert _read(ctx)[1] == ["rebuilt"]
    fixes = {}
    for i, m in enumerate(spots):  # a different day per market: more ranges than one query each
        row = _candles(range(55 + i, 56 + i), 1.0 + m)
        row[0]["close"] = 0.5
        fixes[m] = row

    _write(ctx, fixes)
    panel, how = _read(ctx)

    assert how == ["merged"]
    assert panel.close[panel.row("T39"), 55 + 42] == 0.5
    _assert_equals_rebuild(ctx, panel, tmp_path)


def test_threads_of_one_process_write_the_same_snapshot_at_once(tmp_path: Path) -> None:
    # e.g. an API request and the overview warm-up both find the snapshot stale
    import threading

    import pyarrow as pa
    import pyarrow.parquet as pq

    from coinlens.storage.panel import _write_snapshot

    table = pa.table({"token_id": np.arange(20_000), "day": np.arange(20_000) % 400})
    path = tmp_path / "panel-1d-abc-v7.parquet"
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def write() -> None:
        start.wait()
        try:
            for _ in range(10):
                _write_snapshot(table, path)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert pq.read_table(path).equals(table)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind
