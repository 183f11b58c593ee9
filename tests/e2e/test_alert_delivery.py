"""Delivery survives outages and crashes: every alert arrives exactly once per idempotency key.

Real pieces only: the outbox on PostgreSQL, `coinlens alerts worker` processes, and a local
HTTP receiver that goes down and comes back. And `coinlens up --replay`'s background half
delivers what the replay fires (SQLite).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from coinlens.alerts import evaluate as ev
from coinlens.alerts.delivery import WorkerConfig
from coinlens.alerts.rules import AlertRuleCreate
from coinlens.cli.live import start_background
from coinlens.pipeline import synthetic
from coinlens.services import alert_delivery, alerts, jobs
from coinlens.services.context import Context, build_context
from coinlens.services.keys import KeySpec, create_key
from coinlens.settings import get_settings
from coinlens.storage.tables import tokens
from unit.alerts.alert_receivers import HttpReceiver

N_TOKENS = 20


@pytest.fixture
def pg_ctx(pg_url: str, tmp_path: Path) -> Iterator[Context]:
    s = get_settings(env="test", data_dir=tmp_path, database_url=pg_url,
                     alerts_allow_hosts=["127.0.0.1"], alerts_backoff_base=0.5,
                     alerts_backoff_cap=4.0, alerts_max_attempts=30)  # fmt: skip
    ctx = build_context(s)
    with ctx.engine.begin() as conn:
        conn.execute(tokens.insert(), [{"id": i, "symbol": f"T{i}", "name": f"T{i}"}
                                       for i in range(1, N_TOKENS + 1)])  # fmt: skip
    yield ctx
    ctx.engine.dispose()


def _fire_all(ctx: Context, port: int, per_token: int = 1) -> int:
    owner = create_key(ctx, KeySpec(name="e2e")).key.id
    ctx.settings.alerts_max_rules_per_key = N_TOKENS * per_token
    for i in range(1, N_TOKENS + 1):
        for k in range(per_token):
            alerts.create_rule(ctx, owner, AlertRuleCreate.model_validate(
                {"symbol": f"T{i}", "kind": "price_cross", "direction": "above",
                 "level": 100.0 + k, "channels": [f"json://127.0.0.1:{port}/hook"],
                 "cooldown_seconds": 0}))  # fmt: skip
    ids = np.arange(1, N_TOKENS + 1, dtype=np.int64)
    values = np.full((N_TOKENS, ev.N_METRICS), np.nan)
    values[:, ev.PRICE] = 50.0
    alerts.evaluate_alerts(ctx, ev.MarketState(ids, values))
    values[:, ev.PRICE] = 150.0
    return alerts.evaluate_alerts(ctx, ev.MarketState(ids, values)).events_written


def _worker(ctx: Context) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "COINLENS_ENV": "test",
        "COINLENS_DATABASE_URL": ctx.settings.db_url,
        "COINLENS_DATA_DIR": str(ctx.settings.data_dir),
        "COINLENS_ALERTS_ALLOW_HOSTS": '["127.0.0.1"]',
        "COINLENS_ALERTS_BACKOFF_BASE": str(ctx.settings.alerts_backoff_base),
        "COINLENS_ALERTS_BACKOFF_CAP": str(ctx.settings.alerts_backoff_cap),
        "COINLENS_ALERTS_MAX_ATTEMPTS": str(ctx.settings.alerts_max_attempts),
    }
    code = "from coinlens.cli.main import app; app(['alerts', 'worker'])"
    return subprocess.Popen([sys.executable, "-c", code], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _wait(cond: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.1)


@pytest.mark.slow
def test_receiver_down_30s_then_up_every_alert_arrives_exactly_once(pg_ctx: Context) -> None:
    hook = HttpReceiver()  # not started: the receiver is down
    assert _fire_all(pg_ctx, hook.port) == N_TOKENS
    worker = _worker(pg_ctx)
    try:
        time.sleep(30)
        assert hook.received == []
        counts = alert_delivery.outbox_counts(pg_ctx)
        assert counts.get("dead", 0) == 0
        assert counts.get("sent", 0) == 0
        hook.start()
        _wait(lambda: alert_delivery.outbox_counts(pg_ctx).get("sent", 0) == N_TOKENS, 20)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(10)
        hook.stop()
    keys = hook.keys()
    assert len(keys) == N_TOKENS
    assert set(keys.values()) == {1}
    assert alert_delivery.outbox_counts(pg_ctx) == {"sent": N_TOKENS}


def test_worker_killed_mid_batch_loses_nothing(pg_ctx: Context) -> None:
    # A slow endpoint (50 ms a request) keeps the kill inside the batch: with fast sends the
    # worker could deliver all 60 before the test reacts, and then the kill might land
    # between the last receipt and its commit — the repeat this test bounds, not a loss.
    hook = HttpReceiver(delay=0.05).start()
    slow_first = N_TOKENS * 3
    _fire_all(pg_ctx, hook.port, per_token=3)
    worker = _worker(pg_ctx)
    _wait(lambda: len(hook.received) >= 5, 20)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    got_before = len(hook.received)
    assert got_before < slow_first
    # rows the dead worker leased come back when the lease expires (shortened here)
    with pg_ctx.engine.begin() as conn:
        from coinlens.storage.tables_alerts import alert_deliveries as d

        conn.execute(
            d.update().where(d.c.status == "sending").values(lease_until=datetime.now(UTC))
        )
    worker = _worker(pg_ctx)
    try:
        _wait(lambda: alert_delivery.outbox_counts(pg_ctx).get("sent", 0) == slow_first, 60)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(10)
        hook.stop()
    keys = hook.keys()
    assert alert_delivery.outbox_counts(pg_ctx) == {"sent": slow_first}
    assert len(keys) == slow_first  # nothing lost
    # repeated: at most the uncommitted outcomes (< mark_batch) + the one send in flight
    assert sum(n - 1 for n in keys.values()) <= WorkerConfig().mark_batch


def _rising_token(u: synthetic.SyntheticUniverse, days: int) -> tuple[int, float]:
    """A token whose last close tops every close of the `days` before it, and a level between."""
    before = np.nanmax(u.close[:, -days - 1 : -1], axis=1)
    i = int(np.nanargmax(u.close[:, -1] / before))
    assert u.close[i, -1] > before[i] * 1.005
    return i, float((before[i] + u.close[i, -1]) / 2)


def test_up_replay_delivers_what_the_replay_fires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    u = synthetic.make_universe(6, 300, start=date(2024, 6, 1))
    replayed = 4
    token, level = _rising_token(u, replayed)
    settings = get_settings(env="test", data_dir=tmp_path, alerts_allow_hosts=["127.0.0.1"])
    source = build_context(settings)
    synthetic.write_universe(source, u)
    source.engine.dispose()
    fast = [dataclasses.replace(j, every=0.5) if j.name == "deliver" else j for j in jobs.JOBS]
    monkeypatch.setattr(jobs, "JOBS", tuple(fast))  # the 30 s period, shortened for the test
    first = date(1970, 1, 1) + timedelta(days=u.first_day + u.close.shape[1] - replayed)
    hook = HttpReceiver().start()
    served, stop = start_background(settings, live=False, replay_from=first, speed=86_400 / 3)
    target = build_context(served)
    try:
        _wait(lambda: bool(alerts.market_state(target).token_ids.size), 30)
        owner = create_key(target, KeySpec(name="replay")).key.id
        made = alerts.create_rule(target, owner, AlertRuleCreate.model_validate(
            {"symbol": u.symbols[token], "kind": "price_cross", "direction": "above",
             "level": level, "channels": [f"json://127.0.0.1:{hook.port}/hook"],
             "cooldown_seconds": 0}))  # fmt: skip
        assert made.armed
        _wait(lambda: bool(hook.received), 60)
    finally:
        stop()
        hook.stop()
        target.engine.dispose()
    (got,) = hook.received
    key = got["headers"]["Idempotency-Key"]
    assert key.startswith(f"cl-{made.id}-")
    body = json.loads(got["body"])
    assert u.symbols[token] in body["title"]
    assert body["message"].endswith(f"ref: {key}")
