"""The in-process scheduler behind `coinlens up --live|--replay`: the jobs in one process.

One daemon thread wakes every `tick` seconds, runs each due job (`services.jobs.JOBS`
filtered by mode) in turn and records its idempotency key, so a job whose key did not
change (e.g. `recompute` when no candle was written) is not run twice. A failing job is
logged and retried at its next period; it never stops the others. The Celery deployment
runs the same jobs (see `pipeline.tasks`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypeVar

import sqlalchemy as sa
import structlog

from coinlens.domain.errors import CoinlensError
from coinlens.services import jobs
from coinlens.services.context import Context
from coinlens.services.sharded import run_join
from coinlens.services.ticks import TickMarket, one_per_token, publish_market_tick, tick_markets

log = structlog.get_logger(__name__)

JobFn = Callable[[Context, datetime], object]
T = TypeVar("T")
Clock = Callable[[], datetime]
MAX_LIVE_MARKETS = 50  # per venue and round (taken in turn); inside public rate limits


def recompute_in_process(ctx: Context, now: datetime | None = None) -> object:
    """The pipeline in this process: incremental analytics, then the cross-sectional join."""
    outcome = jobs.call_step("analytics", ctx)
    report = run_join(ctx, now=now)
    report.steps["analytics"] = outcome
    return report


def _live_markets(ctx: Context) -> list[TickMarket]:
    """The markets on the configured venues that ccxt can name, primary markets first."""
    venues = set(jobs_venues(ctx))
    found = [m for m in tick_markets(ctx) if m.exchange in venues and m.ccxt_symbol]
    return sorted(found, key=lambda m: (not m.primary, m.market_id))


def _per_venue(found: Iterable[TickMarket], round_no: int) -> dict[str, list[TickMarket]]:
    """Each venue's markets for round `round_no`: MAX_LIVE_MARKETS of them, taken in turn."""
    out: dict[str, list[TickMarket]] = {}
    for m in found:
        out.setdefault(m.exchange, []).append(m)
    return {venue: rotating(ms, MAX_LIVE_MARKETS, round_no) for venue, ms in out.items()}


def rotating(items: Sequence[T], limit: int, round_no: int) -> list[T]:
    """`limit` items for round `round_no`, the next `limit` each round (wrapping around), so
    a list longer than the per-round budget is covered every ceil(n / limit) rounds."""
    if len(items) <= limit:
        return list(items)
    start = (round_no * limit) % len(items)
    return [items[(start + i) % len(items)] for i in range(limit)]


def round_of(now: datetime, every: float) -> int:
    """The number of the job round `now` falls in (rounds of `every` seconds since 1970):
    stateless, so every process takes the same markets in the same round."""
    return int(now.timestamp() // every)


def jobs_venues(ctx: Context) -> list[str]:
    """The venues live jobs talk to (settings.exchanges)."""
    return [v.strip() for v in ctx.settings.exchanges.split(",") if v.strip()]


def poll_tickers(ctx: Context, now: datetime) -> object:
    """One ticker round: a tick per token from its primary market (or, off the configured
    venues, its first market on them), then the ticked tokens' rules are evaluated. A market
    that fails is logged and skipped; the others still tick."""
    from coinlens.services.ingest import make_exchange

    chosen = one_per_token(_live_markets(ctx), lambda m: True)
    prices: dict[str, float] = {}
    failed = 0
    for venue, found in _per_venue(
        chosen.values(), round_of(now, jobs.job("tickers").every)
    ).items():
        conn = make_exchange(ctx.settings, venue)
        try:
            for m in found:
                try:
                    tick = conn.fetch_tick(str(m.ccxt_symbol))
                except CoinlensError as exc:
                    failed += 1
                    log.warning("tickers.market_failed", market=m.ccxt_symbol, error=exc.detail)
                    continue
                if tick.last is not None:
                    prices[m.token] = m.unit_price(tick.last)
                    publish_market_tick(ctx, m, tick.last, volume=None, source=tick.source)
        finally:
            conn.close()
    done = f"{len(prices)} ticks" + (f", {failed} markets failed" if failed else "")
    fn = jobs.resolve_step("alerts")
    if fn is None or not prices:
        return done
    from coinlens.services.alerts import evaluate_ticks

    return evaluate_ticks(ctx, prices, now=now)


def sync_candles(timeframe: Literal["1h", "1d"]) -> JobFn:
    """A job syncing `timeframe` candles of the stored markets on the configured venues, at
    most MAX_LIVE_MARKETS a venue per round, taken in turn."""

    def run(ctx: Context, now: datetime) -> object:
        from coinlens.services.ingest import sync_market

        done, failed = 0, 0
        markets = _per_venue(
            _live_markets(ctx), round_of(now, jobs.job(f"candles_{timeframe}").every)
        )
        for venue, found in markets.items():
            for m in found:
                try:
                    sync_market(ctx, venue, str(m.ccxt_symbol), timeframe)
                except CoinlensError as exc:  # one market failing does not stop the others
                    failed += 1
                    log.warning("candles.market_failed", market=m.ccxt_symbol, error=exc.detail)
                    continue
                done += 1
        return f"{done} markets synced" + (f", {failed} failed" if failed else "")

    return run


def default_jobs(mode: Literal["live", "replay"]) -> dict[str, JobFn]:
    """Job name → function for a deployment in `mode`."""
    fns: dict[str, JobFn] = {
        "tickers": poll_tickers,
        "candles_1h": sync_candles("1h"),
        "candles_1d": sync_candles("1d"),
        "recompute": recompute_in_process,
        "retrain": lambda ctx, now: jobs.call_step("forecasts", ctx),
        "freshness": lambda ctx, now: jobs.check_freshness(ctx, now),
        "deliver": lambda ctx, now: jobs.call_step("deliver", ctx),
    }
    return {j.name: fns[j.name] for j in jobs.JOBS if j.runs_in(mode)}


@dataclass
class Scheduler:
    """Runs due jobs on one background thread; `run_pending` is the testable core."""

    ctx: Context
    fns: Mapping[str, JobFn]
    clock: Clock = field(default=lambda: datetime.now(UTC))
    tick: float = 1.0
    last_run: dict[str, float] = field(default_factory=dict)
    last_key: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def due(self, now: datetime) -> list[jobs.Job]:
        """Jobs whose period has elapsed since their last run (all of them at first)."""
        ts = now.timestamp()
        return [
            j
            for j in jobs.JOBS
            if j.name in self.fns and ts - self.last_run.get(j.name, -1e18) >= j.every
        ]

    def run_pending(self) -> list[str]:
        """Run every due job whose idempotency key changed; names of the jobs that ran."""
        ran = []
        for j in self.due(self.clock()):
            now = self.clock()
            version = jobs.candles_version(self.ctx) if j.key_by == "candles_version" else 0
            key = j.key(now, version)
            self.last_run[j.name] = now.timestamp()
            if self.last_key.get(j.name) == key:
                continue
            try:
                self.outcomes[j.name] = str(self.fns[j.name](self.ctx, now))[:200]
            except (CoinlensError, sa.exc.SQLAlchemyError, OSError) as exc:
                log.warning("scheduler.job_failed", job=j.name, error=str(exc)[:200])
                self.outcomes[j.name] = f"failed: {exc}"[:200]
                continue
            self.last_key[j.name] = key
            ran.append(j.name)
        return ran

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_pending()
            self._stop.wait(self.tick)

    def start(self) -> Scheduler:
        """Start the background thread (daemon: it never blocks interpreter exit)."""
        self._thread = threading.Thread(target=self._loop, name="coinlens-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after the current job and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll `predicate` until true or `timeout` seconds pass (tests, CLI shutdown)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
