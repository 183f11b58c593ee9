"""The embedded real dataset loads completely, idempotently, and reads back as a panel."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest
import sqlalchemy as sa

from coinlens.services.context import Context
from coinlens.services.loading import count_rows, load_embedded
from coinlens.storage.panel import read_daily_panel
from coinlens.storage.tables import candles, markets, tokens

pytestmark = pytest.mark.xdist_group("embedded")


def _day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def test_eth_has_every_daily_candle_from_2017_to_cutoff(loaded_ctx: Context) -> None:
    with loaded_ctx.engine.connect() as conn:
        first, last, n = conn.execute(
            sa.select(
                sa.func.min(candles.c.open_time),
                sa.func.max(candles.c.open_time),
                sa.func.count(),
            )
            .join(markets, markets.c.id == candles.c.market_id)
            .where(markets.c.market_key == "binance:spot:ETHUSDT", candles.c.timeframe == "1d")
        ).one()
    assert _day(first) == date(2017, 8, 17)
    assert _day(last) == date(2025, 9, 30)
    assert n == (date(2025, 9, 30) - date(2017, 8, 17)).days + 1


def test_universe_size_and_one_identity_per_token(loaded_ctx: Context) -> None:
    counts = count_rows(loaded_ctx)
    assert counts["tokens"] >= 150
    with loaded_ctx.engine.connect() as conn:
        pepe = conn.execute(
            sa.select(markets.c.market_key, markets.c.contract_multiplier)
            .join(tokens, tokens.c.id == markets.c.token_id)
            .where(tokens.c.symbol == "PEPE")
        ).all()
        latest = conn.execute(sa.select(sa.func.max(candles.c.open_time))).scalar_one()
    assert ("binance:perp:1000PEPEUSDT", 1000.0) in pepe
    assert len(pepe) >= 2
    assert _day(latest) <= date(2025, 9, 30)


def test_reload_changes_nothing(loaded_ctx: Context) -> None:
    before = count_rows(loaded_ctx)
    assert load_embedded(loaded_ctx).skipped
    report = load_embedded(loaded_ctx, force=True)
    assert report.candles.inserted == 0
    assert report.candles.updated == 0
    assert report.candles.unchanged == before["candles"]
    assert count_rows(loaded_ctx) == before


def test_daily_panel_of_the_real_universe(loaded_ctx: Context) -> None:
    panel = read_daily_panel(loaded_ctx.engine, loaded_ctx.cache_dir)
    assert len(panel.symbols) >= 150
    btc = panel.row("BTC")
    # BTC closed near 114k on 2025-09-30
    assert panel.close[btc, -1] == pytest.approx(114_000, rel=0.05)
    assert np.all(panel.high[np.isfinite(panel.high)] >= panel.low[np.isfinite(panel.low)])
    pepe = panel.row("PEPE")
    assert np.nanmax(panel.close[pepe]) < 1e-3  # per token, not per 1000 tokens
