"""The analytics pipeline on SQLite and PostgreSQL: full run, incremental day, idempotence.

Candles are a seeded synthetic random walk (labelled as such in the market source), so the
test knows exactly what was appended or changed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from coinlens.services.analytics import run_analytics
from coinlens.services.context import Context
from coinlens.storage import repo
from coinlens.storage.tables_analytics import backtests, signal_events, token_analytics

DAY0 = datetime(2023, 1, 1, tzinfo=UTC)
N_DAYS = 260
SYMBOLS = ("BTC", "ETH", "SOL", "PEPE")
SOURCE = "test fixture (synthetic random walk, not market data)"


def _walk(seed: int, n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.001, 0.04, n)))
    opens = np.concatenate([[100.0], close[:-1]])
    rows = []
    for i in range(n):
        hi = max(opens[i], close[i]) * (1 + rng.uniform(0, 0.02))
        lo = min(opens[i], close[i]) * (1 - rng.uniform(0, 0.02))
        rows.append(
            {
                "open_time": int((DAY0 + timedelta(days=i)).timestamp()),
                "open": float(opens[i]),
                "high": float(hi),
                "low": float(lo),
                "close": float(close[i]),
                "volume": float(rng.uniform(1e3, 5e3)),
                "quote_volume": None,
                "trades": None,
            }
        )
    return rows


def _seed(ctx: Context, n_days: int) -> dict[str, int]:
    """Tokens with n_days candles (SOL listed 60 days late); returns symbol → market id."""
    with ctx.engine.begin() as conn:
        ids = repo.upsert_tokens(
            conn, [{"symbol": s, "name": s.title(), "sector": "Test"} for s in SYMBOLS]
        )
        mids = repo.upsert_markets(
            conn,
            [
                {
                    "market_key": f"test:spot:{s}USDT",
                    "token_id": ids[s],
                    "exchange": "test",
                    "pair": f"{s}USDT",
                    "quote": "USDT",
                    "instrument": "spot",
                    "contract_multiplier": 1.0,
                    "source": SOURCE,
                }
                for s in SYMBOLS
            ],
        )
        for k, s in enumerate(SYMBOLS):
            rows = _walk(k, N_DAYS + 5)[:n_days]
            repo.write_candles(
                conn, mids[f"test:spot:{s}USDT"], "1d", rows[60:] if s == "SOL" else rows
            )
        repo.refresh_token_spans(conn)
    return mids


def _append_day(ctx: Context, mids: dict[str, int], day: int) -> None:
    with ctx.engine.begin() as conn:
        for k, s in enumerate(SYMBOLS):
            row = _walk(k, N_DAYS + 5)[day]
            repo.write_candles(conn, mids[f"test:spot:{s}USDT"], "1d", [row])
        repo.refresh_token_spans(conn)


def _snapshot(ctx: Context) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored analytics row except computed_at, in key order."""
    out = {}
    with ctx.engine.connect() as conn:
        for table in (token_analytics, signal_events, backtests):
            cols = [c for c in table.c if c.name != "computed_at"]
            keys = [c for c in table.primary_key.columns]
            out[table.name] = [tuple(r) for r in conn.execute(sa.select(*cols).order_by(*keys))]
    return out


def test_full_run_writes_every_table(ctx: Context) -> None:
    _seed(ctx, N_DAYS)

    report = run_analytics(ctx)

    assert report.mode == "full"
    assert (report.tokens, report.days) == (len(SYMBOLS), N_DAYS)
    assert {"signals", "indicators", "levels", "backtest", "write"} <= report.timings.keys()
    snap = _snapshot(ctx)
    assert len(snap["token_analytics"]) == len(SYMBOLS)
    assert len(snap["backtests"]) == len(SYMBOLS)
    assert report.events_written == len(snap["signal_events"]) > 0
    payload = snap["token_analytics"][0][-1]
    assert {"indicators", "roi", "risk", "levels", "signal_values", "close"} <= payload.keys()
    assert payload["indicators"]["ema_200"] is not None  # 260 days is enough for EMA200
    assert payload["risk"]["corr_btc_90d"] == pytest.approx(1.0)  # BTC vs itself


def test_incremental_day_equals_full_recompute(ctx: Context) -> None:
    mids = _seed(ctx, N_DAYS)
    run_analytics(ctx)
    _append_day(ctx, mids, N_DAYS)

    report = run_analytics(ctx)
    incremental = _snapshot(ctx)
    again = run_analytics(ctx, full=True)

    assert (report.mode, again.mode) == ("incremental", "full")
    assert report.days == N_DAYS + 1
    assert _snapshot(ctx) == incremental


def test_the_days_a_run_adds_publish_their_signal_flips_once(ctx: Context) -> None:
    from coinlens.services import events

    mids = _seed(ctx, N_DAYS)
    first = run_analytics(ctx)  # a first load: its history is not news
    bus = events.bus_for(ctx.settings)
    head = bus.head()
    published = []
    for day in range(N_DAYS, N_DAYS + 5):
        _append_day(ctx, mids, day)
        published.append(run_analytics(ctx).flips_published)
    unchanged = run_analytics(ctx)

    sent = bus.after(head, 100)
    with ctx.engine.connect() as conn:
        new = conn.execute(
            sa.select(signal_events.c.day, signal_events.c.to_signal)
            .where(signal_events.c.day > (first.as_of_day or 0))
            .order_by(signal_events.c.day, signal_events.c.token_id)
        ).all()
    assert (first.flips_published, unchanged.flips_published) == (0, 0)
    assert sum(published) == len(sent) == len(new) > 0, published
    labels = {-1: "short", 0: "flat", 1: "long"}
    assert [e.data["signal"] for e in sent] == [labels[r.to_signal] for r in new]
    assert {e.type for e in sent} == {"signal_flip"}


def test_rerun_is_idempotent_and_skips(ctx: Context) -> None:
    _seed(ctx, N_DAYS)
    run_analytics(ctx)
    first = _snapshot(ctx)

    skipped = run_analytics(ctx)
    forced = run_analytics(ctx, full=True)

    assert skipped.mode == "unchanged"
    assert forced.mode == "full"
    assert _snapshot(ctx) == first


def test_changed_old_candle_forces_full_recompute(sqlite_ctx: Context) -> None:
    mids = _seed(sqlite_ctx, N_DAYS)
    run_analytics(sqlite_ctx)
    old = _walk(1, N_DAYS)[10] | {"close": 1.0, "low": 0.5}
    with sqlite_ctx.engine.begin() as conn:
        repo.write_candles(conn, mids["test:spot:ETHUSDT"], "1d", [old])
    _append_day(sqlite_ctx, mids, N_DAYS)

    report = run_analytics(sqlite_ctx)

    assert report.mode == "full"
    assert "earlier day" in report.reason
