"""The full recompute split into token shards plus one cross-sectional join.

Every per-token output of the analytics step (indicators, signals and their events, ROI,
risk, levels, the default backtest) depends only on that token's row of the daily panel —
and, for beta/correlation, on the BTC and ETH rows. A shard therefore computes on a
sub-panel made of its own rows plus those benchmark rows, on the same calendar, and
writes only its own tokens: `token_analytics` and `backtests` are upserts keyed by token
(and params), `signal_events` are replaced per token, all in one transaction. A re-run of
a shard (a killed worker's task redelivered) rewrites identical rows: no duplicates.

A shard computed from an older panel never overwrites newer results: the write is skipped
when the stored candles version moved on since the shard read the panel (the recompute
triggered by that newer write produces the current rows).

The join (`run_join`) does the cross-sectional steps once all shards are stored: drop rows
of tokens that left the panel, grades (percentiles across tokens), forecasts (retrain if
due, predict) and alert evaluation. Stored rows equal a single-process `run_analytics`
run's rows except their `computed_at` wall-clock stamp.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray

from coinlens.services import analytics as an
from coinlens.services.analytics_state import day_checksums
from coinlens.services.context import Context
from coinlens.services.jobs import call_step, shard_of
from coinlens.storage import analytics_repo
from coinlens.storage.panel import Panel, read_daily_panel
from coinlens.storage.repo import CANDLES_VERSION, read_counter

log = structlog.get_logger(__name__)

BENCHMARKS = ("BTC", "ETH")
I64 = NDArray[np.int64]


@dataclass
class ShardReport:
    """What one shard did."""

    shard: int
    shards: int
    tokens: int = 0
    events: int = 0
    panel_version: int = 0
    written: bool = False
    seconds: float = 0.0


@dataclass
class JoinReport:
    """What the cross-sectional join did (step name → short outcome)."""

    panel_version: int = 0
    steps: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def shard_rows(p: Panel, shard: int, shards: int) -> I64:
    """Panel rows of the tokens in `shard` of `shards` (by token id, stable across runs)."""
    mine = np.array([shard_of(int(t), shards) == shard for t in p.token_ids], dtype=bool)
    return np.nonzero(mine)[0].astype(np.int64)


def _with_benchmarks(p: Panel, rows: I64) -> I64:
    extra = [p.symbols.index(b) for b in BENCHMARKS if b in p.symbols]
    return np.unique(np.concatenate([rows, np.asarray(extra, dtype=np.int64)]))


def compute_shard(
    p: Panel, rows: I64
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(token_analytics rows, backtest rows, signal events) of the tokens at `rows`."""
    sub = p.take(_with_benchmarks(p, rows))
    # The analytics step's own `compute` runs on the sub-panel, so shard rows equal the
    # single-process rows by construction (same kernels, same payload shapes).
    report = an.AnalyticsReport(mode="full", reason="shard")
    _, (analytics, tests), events = an.compute(sub, day_checksums(sub), report)
    keep = {int(t) for t in p.token_ids[rows]}
    return (
        [r for r in analytics if r["token_id"] in keep],
        [r for r in tests if r["token_id"] in keep],
        [e for e in events if e["token_id"] in keep],
    )


def run_shard(ctx: Context, shard: int, shards: int) -> ShardReport:
    """Compute and store one shard's analytics (idempotent; skipped if the panel moved on)."""
    started = time.perf_counter()
    report = ShardReport(shard=shard, shards=shards)
    p = read_daily_panel(ctx.engine, ctx.cache_dir)
    rows = shard_rows(p, shard, shards)
    report.tokens, report.panel_version = len(rows), p.version
    analytics, tests, events = compute_shard(p, rows)
    ids = [int(t) for t in p.token_ids[rows]]
    with ctx.engine.begin() as conn:
        if read_counter(conn, CANDLES_VERSION) == p.version:
            analytics_repo.write_token_analytics(conn, analytics)
            analytics_repo.write_backtests(conn, tests)
            analytics_repo.replace_signal_events(conn, ids, events)
            report.written = True
        else:
            log.info("shard.stale_panel_skipped", shard=shard, version=p.version)
    report.events = len(events)
    report.seconds = time.perf_counter() - started
    return report


def run_join(
    ctx: Context,
    *,
    now: datetime | None = None,
    graded: bool = False,
    predicted_with: str | None = None,
) -> JoinReport:
    """The cross-sectional steps after every shard is stored: prune, grades (unless the
    day-range parts already stored them: `graded`), forecasts (a retrain when due; the
    predictions unless the token parts made them with the newest model: `predicted_with`),
    alerts."""
    started = time.perf_counter()
    report = JoinReport()
    p = read_daily_panel(ctx.engine, ctx.cache_dir)
    report.panel_version = p.version
    with ctx.engine.begin() as conn:
        gone = analytics_repo.delete_token_analytics_except(conn, [int(t) for t in p.token_ids])
    report.steps["prune"] = f"{gone} rows dropped"
    report.steps["grades"] = "by day ranges" if graded else call_step("grades", ctx)
    # run_forecasts raises ValueError when the history is too short to train a model
    report.steps["forecasts"] = call_step(
        "forecasts", ctx, tolerate=(ValueError,), predicted_with=predicted_with
    )
    report.steps["alerts"] = call_step("alerts", ctx, now=now)
    report.seconds = time.perf_counter() - started
    return report


def run_all_local(ctx: Context, shards: int = 1, *, now: datetime | None = None) -> JoinReport:
    """Every shard then the join, in this process (the single-process reference)."""
    for shard in range(shards):
        run_shard(ctx, shard, shards)
    return run_join(ctx, now=now)


def shard_sizes(token_ids: Sequence[int], shards: int) -> list[int]:
    """How many tokens each shard holds (for logs and the bench)."""
    sizes = [0] * shards
    for t in token_ids:
        sizes[shard_of(int(t), shards)] += 1
    return sizes
