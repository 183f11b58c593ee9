"""Periodic job definitions shared by the in-process scheduler and Celery beat.

A `Job` names what runs, how often, in which mode (live ingest or replay), its idempotency
key and whether it is sharded by token set. The same definitions drive `coinlens up`
(threads in one process, `services.scheduler`) and `coinlens beat` + `coinlens worker`
(Celery on Redis, `pipeline.tasks`), so both deployments run the same work.

Pipeline steps owned by other services are called through `call_step`, which resolves the
service function at call time and logs ``step not available`` when it does not exist (yet),
so one missing step never stops the others.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
import structlog

from coinlens.domain.errors import CoinlensError
from coinlens.services.context import Context
from coinlens.storage.repo import CANDLES_VERSION, read_counter
from coinlens.storage.tables import candles

log = structlog.get_logger(__name__)

Mode = Literal["live", "replay", "any"]
MINUTE, HOUR, DAY = 60.0, 3_600.0, 86_400.0
STALE_AFTER = timedelta(hours=36)  # a daily candle closes at 00:00 UTC; allow a day and a half


@dataclass(frozen=True)
class Job:
    """One periodic job: its name, period (s), mode and idempotency rule."""

    name: str
    every: float
    mode: Mode
    description: str
    sharded: bool = False
    key_by: Literal["period", "candles_version"] = "period"

    def key(self, at: datetime, candles_version: int = 0) -> str:
        """The idempotency key of a run at `at`: equal keys mean the same work."""
        if self.key_by == "candles_version":
            return f"{self.name}:v{candles_version}"
        return f"{self.name}:{int(at.timestamp() // self.every)}"

    def runs_in(self, mode: Literal["live", "replay"]) -> bool:
        """Whether the job belongs to a deployment in `mode`."""
        return self.mode in ("any", mode)


JOBS: tuple[Job, ...] = (
    Job("tickers", MINUTE, "live", "poll venue tickers, publish ticks, evaluate tick alerts"),
    Job(
        "candles_1h",
        HOUR,
        "live",
        "sync hourly candles of the stored markets (50 a venue, in turn)",
    ),
    Job("candles_1d", DAY / 4, "live", "sync daily candles (a few times a day: catch late closes)"),
    Job(
        "recompute",
        MINUTE,
        "live",  # in replay the replay driver recomputes at each simulated day close
        "after an ingest: sharded analytics, then grades/forecasts/alerts as the join",
        sharded=True,
        key_by="candles_version",
    ),
    Job("retrain", 7 * DAY, "any", "retrain the forecast model weekly (predicts too)"),
    Job("freshness", 15 * MINUTE, "live", "raise a `data stale` alert when candles lag"),
    Job("deliver", 30.0, "any", "send pending alert deliveries from the outbox"),
)


def job(name: str) -> Job:
    """The job called `name`."""
    for j in JOBS:
        if j.name == name:
            return j
    raise KeyError(name)


def shard_of(token_id: int, shards: int) -> int:
    """The shard a token belongs to: stable across runs and processes."""
    return token_id % shards if shards > 1 else 0


def candles_version(ctx: Context) -> int:
    """The stored candles version (bumped by every candle write)."""
    with ctx.engine.connect() as conn:
        return read_counter(conn, CANDLES_VERSION)


# --- pipeline steps, resolved at call time ------------------------------------------------

STEPS: dict[str, tuple[str, str]] = {
    "analytics": ("coinlens.services.analytics", "run_analytics"),
    "grades": ("coinlens.services.grades", "run_grades"),
    "forecasts": ("coinlens.services.forecasts", "run_forecasts"),
    "alerts": ("coinlens.services.alerts", "evaluate_alerts"),
    "deliver": ("coinlens.services.alert_delivery", "deliver_pending"),
}


def resolve_step(name: str) -> Callable[..., Any] | None:
    """The service function behind step `name`, or None when it does not exist."""
    module_name, attr = STEPS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    fn = getattr(module, attr, None)
    return fn if callable(fn) else None


def call_step(
    name: str, ctx: Context, *, tolerate: tuple[type[Exception], ...] = (), **kwargs: Any
) -> str:
    """Run pipeline step `name`; a short outcome, or ``step not available`` when missing.

    Domain errors (and the `tolerate`d ones) degrade this step only: logged, reported.
    """
    fn = resolve_step(name)
    if fn is None:
        log.warning("step not available", step=name)
        return "step not available"
    started = time.perf_counter()
    degrade: tuple[type[Exception], ...] = (CoinlensError, *tolerate)
    try:
        result = fn(ctx, **kwargs)
    except degrade as exc:  # degrade this step, keep the others
        detail = exc.detail if isinstance(exc, CoinlensError) else str(exc)
        log.warning("step.failed", step=name, detail=detail)
        return f"failed: {detail}"
    log.info("step.done", step=name, seconds=round(time.perf_counter() - started, 3))
    return _summary(result)


def _summary(result: Any) -> str:
    for attr in ("mode", "written", "model_id", "events_written"):
        if hasattr(result, attr):
            return f"{attr}={getattr(result, attr)}"
    return "done" if result is None else str(result)[:80]


# --- data freshness ------------------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """How far the newest daily candle lags `now`."""

    newest_close: datetime | None
    lag: timedelta | None
    stale: bool


def check_freshness(
    ctx: Context, now: datetime | None = None, max_lag: timedelta = STALE_AFTER
) -> Freshness:
    """Compare the newest daily candle's close with `now`; log and publish when stale."""
    now = now or datetime.now(UTC)
    with ctx.engine.connect() as conn:
        newest = conn.execute(
            sa.select(sa.func.max(candles.c.open_time)).where(candles.c.timeframe == "1d")
        ).scalar()
    if newest is None:
        result = Freshness(None, None, True)
    else:
        close = datetime.fromtimestamp(int(newest) + int(DAY), tz=UTC)
        result = Freshness(close, now - close, now - close > max_lag)
    if result.stale:
        _raise_stale(ctx, result)
    return result


def _raise_stale(ctx: Context, f: Freshness) -> None:
    lag = "no daily candles at all" if f.lag is None else f"{f.lag.total_seconds() / 3600:.1f} h"
    log.warning("data stale", newest_close=f.newest_close, lag=lag)
    try:
        from coinlens.services.events import KEY_HOLDERS, publish
    except ImportError:  # the event bus is optional for this check
        return
    data = {"title": "data stale", "body": f"candles lag: {lag}"}
    publish(ctx, "alert", "COINLENS", data, audience=KEY_HOLDERS)
