"""Rules whose value comes from the pipeline: `level_break` after a daily update (analytics
recompute the levels from the very close the alert is evaluated on), and `probability_cross`
primed at creation. SQLite, a SYNTHETIC universe."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from coinlens.alerts import evaluate as ev
from coinlens.alerts.rules import AlertRuleCreate
from coinlens.pipeline import synthetic
from coinlens.services import alerts, alerts_state
from coinlens.services.analytics import run_analytics
from coinlens.services.context import Context, build_context
from coinlens.services.keys import KeySpec, create_key
from coinlens.settings import get_settings
from coinlens.storage import repo
from coinlens.storage.tables import candles, markets, tokens
from coinlens.storage.tables_alerts import alert_events
from coinlens.storage.tables_analytics import token_analytics

DAY = 86_400
HOOK = "json://127.0.0.1:9/hook"


@pytest.fixture
def uctx(tmp_path: Path) -> Iterator[Context]:
    """SQLite with 3 synthetic tokens × 300 days and their analytics (key levels) stored."""
    settings = get_settings(env="test", data_dir=tmp_path, alerts_allow_hosts=["127.0.0.1"])
    ctx = build_context(settings)
    synthetic.write_universe(ctx, synthetic.make_universe(3, 300, start=date(2024, 6, 1)))
    run_analytics(ctx)
    yield ctx
    ctx.engine.dispose()


def _btc(ctx: Context) -> tuple[int, int, dict[str, Any]]:
    """BTC's market id, last daily candle open time and stored analytics payload."""
    with ctx.engine.connect() as conn:
        token_id, market_id = conn.execute(
            sa.select(tokens.c.id, tokens.c.primary_market_id).where(tokens.c.symbol == "BTC")
        ).one()
        payload = conn.execute(
            sa.select(token_analytics.c.payload).where(token_analytics.c.token_id == token_id)
        ).scalar_one()
        last = conn.execute(
            sa.select(sa.func.max(candles.c.open_time)).where(
                candles.c.market_id == market_id, candles.c.timeframe == "1d"
            )
        ).scalar_one()
    return int(market_id), int(last), payload


def _close_at(ctx: Context, market_id: int, open_time: int, close: float) -> None:
    row = {"open_time": open_time, "open": close, "high": close * 1.001, "low": close * 0.999,
           "close": close, "volume": 1e6, "quote_volume": 1e6 * close, "trades": None}  # fmt: skip
    with ctx.engine.begin() as conn:
        repo.write_candles(conn, market_id, "1d", [row])
        repo.refresh_token_spans(conn)


def _events(ctx: Context) -> list[Any]:
    with ctx.engine.connect() as conn:
        return list(conn.execute(sa.select(alert_events).order_by(alert_events.c.id)))


def test_a_daily_close_below_the_previous_support_fires(uctx: Context) -> None:
    owner = create_key(uctx, KeySpec(name="levels")).key.id
    market_id, last, payload = _btc(uctx)
    support = payload["levels"]["support"]["price"]
    made = alerts.create_rule(uctx, owner, AlertRuleCreate.model_validate(
        {"symbol": "BTC", "kind": "level_break", "direction": "below", "channels": [HOOK]}
    ))  # fmt: skip
    assert made.armed  # the last close is above its support

    # the pipeline's order on a daily update: the close lands, analytics recompute the
    # levels from it (support is now below that close), then alerts are evaluated
    _close_at(uctx, market_id, last + DAY, support * 0.97)
    run_analytics(uctx)
    _, _, after = _btc(uctx)
    assert (after["levels"]["support"] or {}).get("price", 0) < support * 0.97
    now = datetime.fromtimestamp(last + 2 * DAY, tz=UTC)
    report = alerts.evaluate_alerts(uctx, now=now)

    assert report.events_written == 1
    (event,) = _events(uctx)
    assert event.context["level"] == pytest.approx(support)
    assert f"below support {support:,.2f}" in event.body
    assert f"close {support * 0.97:,.2f}" in event.body
    # the rule now watches the recomputed levels: the same close does not fire again
    assert alerts.evaluate_alerts(uctx, now=now).events_written == 0


def test_a_close_above_the_previous_support_does_not_fire(uctx: Context) -> None:
    owner = create_key(uctx, KeySpec(name="levels")).key.id
    market_id, last, payload = _btc(uctx)
    support = payload["levels"]["support"]["price"]
    alerts.create_rule(uctx, owner, AlertRuleCreate.model_validate(
        {"symbol": "BTC", "kind": "level_break", "direction": "below", "channels": [HOOK]}
    ))  # fmt: skip
    _close_at(uctx, market_id, last + DAY, support * 1.01)
    run_analytics(uctx)
    now = datetime.fromtimestamp(last + 2 * DAY, tz=UTC)
    assert alerts.evaluate_alerts(uctx, now=now).events_written == 0


@pytest.mark.parametrize(("threshold", "armed"), [(0.5, False), (0.9, True)])
def test_probability_rules_are_primed_with_the_current_probability(
    uctx: Context, monkeypatch: pytest.MonkeyPatch, threshold: float, armed: bool
) -> None:
    monkeypatch.setattr(alerts, "_check_forecast", lambda ctx, symbol: None)
    monkeypatch.setattr(alerts_state, "_forecasts", lambda ctx, rows: {r.token_id: object()
                                                                      for r in rows})  # fmt: skip
    monkeypatch.setattr(alerts_state, "_probability", lambda f, spec: 0.8)
    owner = create_key(uctx, KeySpec(name="proba")).key.id
    _, _, payload = _btc(uctx)
    made = alerts.create_rule(uctx, owner, AlertRuleCreate.model_validate(
        {"symbol": "BTC", "kind": "probability_cross", "direction": "above",
         "target": payload["close"] * 1.05, "horizon_days": 7, "threshold": threshold,
         "channels": [HOOK], "cooldown_seconds": 0}
    ))  # fmt: skip
    assert made.armed is armed
    # P = 0.8 still: an armed rule (threshold 0.9) stays silent, a disarmed one too
    assert alerts.evaluate_alerts(uctx).events_written == 0
    monkeypatch.setattr(alerts_state, "_probability", lambda f, spec: 0.95)
    assert alerts.evaluate_alerts(uctx).events_written == int(armed)


def test_market_state_keeps_the_last_close_beside_a_live_price(uctx: Context) -> None:
    with uctx.engine.connect() as conn:
        token_id = int(conn.execute(sa.select(markets.c.token_id).limit(1)).scalar_one())
    state = alerts_state.market_state(uctx, {token_id: 1.0})
    row = int(np.flatnonzero(state.token_ids == token_id)[0])
    assert state.values[row, ev.PRICE] == 1.0
    assert state.values[row, ev.CLOSE] > 1.0 or state.values[row, ev.CLOSE] < 1.0


def test_market_state_skips_tokens_added_after_it_read_the_token_list(uctx: Context) -> None:
    """A load or replay running beside the evaluator: the panel (read second) already holds
    tokens the token list (read first) did not; they wait for the next evaluation."""
    whole = alerts_state.market_state(uctx)
    known = [int(t) for t in whole.token_ids[:-1]]  # the newest token "arrived" in between
    values = np.full((len(known), ev.N_METRICS), np.nan)

    alerts_state._fill_daily(uctx, known, values)

    assert np.array_equal(values[:, ev.CLOSE], whole.values[:-1, ev.CLOSE])
    assert np.isfinite(values[:, ev.CHG_7D]).all()
