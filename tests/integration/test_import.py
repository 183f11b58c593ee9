"""`import_file` on SQLite and PostgreSQL: idempotent, quarantining, strict, crash-safe."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from coinlens.domain.errors import ValidationFailed
from coinlens.services import importer
from coinlens.services.context import Context
from coinlens.services.importer import Hints, ImportOptions, import_file
from coinlens.storage import repo
from coinlens.storage.tables import candles, import_runs, markets, quarantine, tokens

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "import"
YANNIEDOG = FIXTURES / "yanniedog" / "BTCUSDT_1d.csv"
GRAVESTONE = FIXTURES / "gravestone" / "binance_usdm_perp_1d.csv"
VENUE = Hints(exchange="binance", instrument="spot")
BAD_FILE = """symbol,open_time,open,high,low,close,volume
ETHUSDT,2024-01-01T00:00:00Z,10,12,9,11,100
ETHUSDT,2024-01-02T00:00:00Z,11,10,12,11,100
ETHUSDT,2024-01-03T00:00:00Z,11,13,10,12,-1
ETHUSDT,2024-01-04T00:00:00Z,12,14,11,13,100
"""


def _count(ctx: Context, table: sa.Table) -> int:
    with ctx.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _runs(ctx: Context) -> list[Any]:
    with ctx.engine.connect() as conn:
        return list(conn.execute(sa.select(import_runs).order_by(import_runs.c.id)))


def _bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "ETHUSDT_1d.csv"
    path.write_text(BAD_FILE, encoding="utf-8")
    return path


def test_reimporting_the_same_file_changes_nothing(ctx: Context) -> None:
    first = import_file(ctx, YANNIEDOG)
    with ctx.engine.connect() as conn:
        version = repo.read_counter(conn, repo.CANDLES_VERSION)

    again = import_file(ctx, YANNIEDOG)

    assert (first.counts.inserted, first.status) == (30, "ok")
    assert (again.counts.inserted, again.counts.updated, again.counts.unchanged) == (0, 0, 30)
    with ctx.engine.connect() as conn:
        assert repo.read_counter(conn, repo.CANDLES_VERSION) == version
        token = conn.execute(sa.select(tokens).where(tokens.c.symbol == "BTC")).one()
    assert (token.name, token.first_candle) == ("BTC", 1_502_928_000)
    assert (_count(ctx, candles), _count(ctx, markets)) == (30, 1)
    assert [(r.status, r.rows_total, r.rows_unchanged) for r in _runs(ctx)] == [
        ("ok", 30, 0),
        ("ok", 30, 30),
    ]


def test_bad_rows_are_quarantined_with_line_and_reason_and_good_rows_land(
    ctx: Context, tmp_path: Path
) -> None:
    path = _bad_file(tmp_path)

    report = import_file(ctx, path, ImportOptions(hints=VENUE))

    assert (report.status, report.counts.inserted, len(report.rejected)) == ("partial", 2, 2)
    with ctx.engine.connect() as conn:
        stored = conn.execute(
            sa.select(
                quarantine.c.file, quarantine.c.line, quarantine.c.reason, quarantine.c.raw
            ).order_by(quarantine.c.line)
        ).all()
        times = conn.execute(sa.select(candles.c.open_time).order_by(candles.c.open_time))
        assert list(times.scalars()) == [1_704_067_200, 1_704_326_400]
    assert [(f, line, reason) for f, line, reason, _ in stored] == [
        (str(path), 3, "high (10) < low (12)"),
        (str(path), 4, "negative volume (-1)"),
    ]
    assert stored[0][3] == "ETHUSDT,2024-01-02T00:00:00Z,11,10,12,11,100"
    run = _runs(ctx)[-1]
    assert (run.status, run.rows_total, run.rows_inserted, run.rows_rejected) == (
        "partial",
        4,
        2,
        2,
    )


def test_strict_mode_makes_a_file_all_or_nothing(ctx: Context, tmp_path: Path) -> None:
    path = _bad_file(tmp_path)

    report = import_file(ctx, path, ImportOptions(hints=VENUE, strict=True))
    clean = import_file(ctx, YANNIEDOG, ImportOptions(strict=True))

    assert report.status == "rejected"
    assert report.counts.inserted == 0
    assert _count(ctx, quarantine) == 2  # the reasons are still kept
    with ctx.engine.connect() as conn:
        keys = set(conn.execute(sa.select(markets.c.market_key)).scalars())
    assert keys == {"binance:spot:BTCUSDT"}  # nothing at all from the rejected file
    assert (clean.status, clean.counts.inserted, _count(ctx, candles)) == ("ok", 30, 30)
    assert [r.mode for r in _runs(ctx)] == ["strict", "strict"]


def test_a_crash_mid_import_leaves_no_partial_batch(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = repo.write_candles
    calls: list[int] = []

    def crash_after_first_market(*args: Any, **kwargs: Any) -> repo.WriteCounts:
        counts = real(*args, **kwargs)  # really writes the first market's candles
        calls.append(counts.inserted)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return counts

    monkeypatch.setattr(importer.repo, "write_candles", crash_after_first_market)

    with pytest.raises(RuntimeError, match="disk on fire"):
        import_file(ctx, GRAVESTONE)

    assert calls == [10, 10]
    assert [_count(ctx, t) for t in (candles, markets, tokens, quarantine)] == [0, 0, 0, 0]
    (run,) = _runs(ctx)
    assert run.status == "failed"
    assert "disk on fire" in run.message


KILLER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from coinlens.services.context import build_context
    from coinlens.services.importer import import_file
    from coinlens.settings import get_settings
    from coinlens.storage import repo

    real, calls = repo.write_candles, []

    def die_mid_batch(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out)
        if len(calls) == 2:
            os._exit(17)  # no rollback, no cleanup: the process is simply gone
        return out

    repo.write_candles = die_mid_batch
    settings = get_settings(env="test", data_dir=sys.argv[1], database_url=sys.argv[2])
    import_file(build_context(settings), Path(sys.argv[3]))
    """
)


def test_a_killed_process_leaves_no_partial_batch(ctx: Context, tmp_path: Path) -> None:
    args = [str(tmp_path / "data"), ctx.settings.db_url, str(GRAVESTONE)]

    done = subprocess.run(
        [sys.executable, "-c", KILLER, *args], capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 17, done.stderr
    assert [_count(ctx, t) for t in (candles, markets, tokens)] == [0, 0, 0]
    assert [r.status for r in _runs(ctx)] == ["running"]  # honest: it never finished


def test_changed_values_are_corrections_counted_as_updates(ctx: Context, tmp_path: Path) -> None:
    original = tmp_path / "ETHUSDT_1d.csv"
    original.write_text(BAD_FILE, encoding="utf-8")
    import_file(ctx, original, ImportOptions(hints=VENUE))
    corrected = tmp_path / "fixed" / "ETHUSDT_1d.csv"
    corrected.parent.mkdir()
    corrected.write_text(BAD_FILE.replace(",12,14,11,13,100", ",12,14,11,13.5,100"), "utf-8")

    report = import_file(ctx, corrected, ImportOptions(hints=VENUE))

    assert (report.counts.inserted, report.counts.updated, report.counts.unchanged) == (0, 1, 1)
    with ctx.engine.connect() as conn:
        closes = conn.execute(sa.select(candles.c.close).order_by(candles.c.open_time))
        assert list(closes.scalars()) == [11.0, 13.5]


def test_existing_tokens_keep_their_metadata_and_markets_carry_identity(ctx: Context) -> None:
    with ctx.engine.begin() as conn:
        repo.upsert_tokens(
            conn,
            [{"symbol": "BTC", "name": "Bitcoin", "categories": ["L1"], "is_stablecoin": False}],
        )

    import_file(ctx, GRAVESTONE)

    with ctx.engine.connect() as conn:
        names = dict(conn.execute(sa.select(tokens.c.symbol, tokens.c.name)).all())
        pepe = conn.execute(
            sa.select(markets).where(markets.c.market_key == "binance:perp:1000PEPEUSDT")
        ).one()
    assert names == {"BTC": "Bitcoin", "PEPE": "PEPE", "1INCH": "1INCH"}
    assert (pepe.contract_multiplier, pepe.instrument, pepe.quote) == (1000.0, "perp", "USDT")


def test_an_existing_market_keeps_its_token(ctx: Context, tmp_path: Path) -> None:
    """A market the loaded data maps to another token (a rename the importer does not know)
    gets the file's candles; no token named after the file's ticker appears beside it."""
    with ctx.engine.begin() as conn:
        ids = repo.upsert_tokens(
            conn,
            [{"symbol": "NEWETH", "name": "Renamed", "categories": [], "is_stablecoin": False}],
        )
        repo.upsert_markets(
            conn,
            [
                {
                    "market_key": "binance:spot:ETHUSDT",
                    "token_id": ids["NEWETH"],
                    "exchange": "binance",
                    "pair": "ETHUSDT",
                    "quote": "USDT",
                    "instrument": "spot",
                    "contract_multiplier": 1.0,
                    "source": "loaded",
                }
            ],
        )

    report = import_file(ctx, _bad_file(tmp_path), ImportOptions(hints=VENUE))

    assert report.counts.inserted == 2
    with ctx.engine.connect() as conn:
        symbols = set(conn.execute(sa.select(tokens.c.symbol)).scalars())
        market = conn.execute(sa.select(markets)).one()
    assert symbols == {"NEWETH"}
    assert (market.token_id, market.source) == (ids["NEWETH"], "loaded")


def test_an_unusable_file_records_a_failed_run(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")

    with pytest.raises(ValidationFailed, match="unknown column layout"):
        import_file(ctx, path)

    (run,) = _runs(ctx)
    assert run.status == "failed"
    assert "unknown column layout" in run.message
    assert _count(ctx, candles) == 0
