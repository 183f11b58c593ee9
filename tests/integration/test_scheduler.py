"""Scheduler, jobs, sharded recompute and replay on the embedded SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from coinlens.pipeline import synthetic
from coinlens.pipeline.celery_app import make_celery
from coinlens.pipeline.tasks import beat_schedule
from coinlens.services import jobs, sharded
from coinlens.services.analytics import run_analytics
from coinlens.services.context import Context, build_context
from coinlens.services.replay import ReplayConfig, canonical_dump, replay
from coinlens.services.scheduler import Scheduler, default_jobs, recompute_in_process
from coinlens.settings import get_settings
from coinlens.storage import repo
from coinlens.storage.tables_analytics import backtests, signal_events, token_analytics

T0 = datetime(2025, 4, 1, 12, tzinfo=UTC)


def _ctx(path: Path) -> Context:
    return build_context(get_settings(env="test", data_dir=path))


@pytest.fixture
def universe_ctx(tmp_path: Path) -> Iterator[Context]:
    """SQLite with a small SYNTHETIC universe (10 tokens × 400 days)."""
    ctx = _ctx(tmp_path / "u")
    synthetic.write_universe(ctx, synthetic.make_universe(10, 400, start=date(2024, 3, 1)))
    yield ctx
    ctx.engine.dispose()


def _outputs(ctx: Context) -> bytes:
    return canonical_dump(ctx, [token_analytics, signal_events, backtests])


def test_shards_store_exactly_what_the_single_process_step_stores(
    tmp_path: Path, universe_ctx: Context
) -> None:
    other = _ctx(tmp_path / "v")
    synthetic.write_universe(other, synthetic.make_universe(10, 400, start=date(2024, 3, 1)))

    run_analytics(universe_ctx, full=True)
    reports = [sharded.run_shard(other, s, 3) for s in range(3)]

    assert sum(r.tokens for r in reports) == 10
    assert all(r.written for r in reports)
    assert _outputs(other) == _outputs(universe_ctx)
    sharded.run_shard(other, 1, 3)  # a redelivered shard rewrites identical rows
    assert _outputs(other) == _outputs(universe_ctx)
    other.engine.dispose()


def test_a_shard_computed_on_an_old_panel_does_not_overwrite(
    universe_ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = sharded.read_daily_panel(universe_ctx.engine, universe_ctx.cache_dir)
    with universe_ctx.engine.begin() as conn:
        repo.bump(conn, repo.CANDLES_VERSION)  # a candle write lands while the shard computes
    monkeypatch.setattr(sharded, "read_daily_panel", lambda engine, cache: old)

    stale = sharded.run_shard(universe_ctx, 0, 1)
    monkeypatch.undo()
    fresh = sharded.run_shard(universe_ctx, 0, 1)

    assert not stale.written
    assert fresh.written
    with universe_ctx.engine.connect() as conn:
        versions = {v for (v,) in conn.execute(sa.select(token_analytics.c.panel_version))}
    assert versions == {fresh.panel_version} != {old.version}


def test_scheduler_runs_due_jobs_once_per_idempotency_key(universe_ctx: Context) -> None:
    now = [T0]
    calls: list[str] = []

    def record(name: str):  # type: ignore[no-untyped-def]
        return lambda ctx, at: calls.append(name) or name

    fns = {"recompute": record("recompute"), "freshness": record("freshness")}
    sched = Scheduler(universe_ctx, fns, clock=lambda: now[0])

    assert sorted(sched.run_pending()) == ["freshness", "recompute"]
    now[0] += timedelta(minutes=2)
    assert sched.run_pending() == []  # recompute due, but no candle changed; freshness not due
    with universe_ctx.engine.begin() as conn:
        repo.bump(conn, repo.CANDLES_VERSION)
    now[0] += timedelta(minutes=2)
    assert sched.run_pending() == ["recompute"]
    now[0] += timedelta(minutes=15)
    assert sched.run_pending() == ["freshness"]
    assert calls == ["recompute", "freshness", "recompute", "freshness"]


def test_a_failing_job_is_logged_and_does_not_stop_the_others(universe_ctx: Context) -> None:
    from coinlens.domain.errors import TemporaryError

    def broken(ctx: Context, at: datetime) -> object:
        raise TemporaryError("venue down")

    sched = Scheduler(
        universe_ctx, {"tickers": broken, "deliver": lambda c, a: "ok"}, clock=lambda: T0
    )

    assert sched.run_pending() == ["deliver"]
    assert sched.outcomes["tickers"].startswith("failed")


def test_the_background_thread_runs_and_stops(universe_ctx: Context) -> None:
    ran: list[datetime] = []
    sched = Scheduler(universe_ctx, {"deliver": lambda c, a: ran.append(a)}, tick=0.01).start()
    from coinlens.services.scheduler import wait_until

    assert wait_until(lambda: bool(ran), 5)
    sched.stop()
    assert sched._thread is not None
    assert not sched._thread.is_alive()


def test_freshness_flags_lagging_candles(universe_ctx: Context) -> None:
    last_close = synthetic.day_start(
        synthetic.make_universe(10, 400, start=date(2024, 3, 1)).first_day + 400
    )

    fresh = jobs.check_freshness(universe_ctx, now=last_close + timedelta(hours=2))
    stale = jobs.check_freshness(universe_ctx, now=last_close + timedelta(days=3))

    assert fresh.newest_close == last_close
    assert not fresh.stale
    assert stale.stale
    assert stale.lag == timedelta(days=3)


def test_a_missing_step_is_reported_not_raised(
    universe_ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(jobs.STEPS, "grades", ("coinlens.services.grades", "no_such_function"))
    monkeypatch.setitem(jobs.STEPS, "alerts", ("coinlens.services.not_a_module", "evaluate"))

    assert jobs.call_step("grades", universe_ctx) == "step not available"
    assert jobs.call_step("alerts", universe_ctx) == "step not available"


def test_every_real_step_is_available() -> None:
    assert {name: jobs.resolve_step(name) is not None for name in jobs.STEPS} == dict.fromkeys(
        jobs.STEPS, True
    )


def test_jobs_per_mode_and_sharding_are_stable() -> None:
    assert set(default_jobs("replay")) == {"retrain", "deliver"}
    assert "tickers" in default_jobs("live")
    assert "recompute" in default_jobs("live")
    assert [jobs.shard_of(t, 4) for t in (1, 2, 5, 8)] == [1, 2, 1, 0]
    assert jobs.job("recompute").key(T0, 7) == "recompute:v7"
    assert jobs.job("deliver").key(T0) == jobs.job("deliver").key(T0 + timedelta(seconds=5))


def test_celery_app_redelivers_a_killed_workers_task() -> None:
    settings = get_settings(env="test", redis_url="redis://127.0.0.1:6379/13")
    app = make_celery(settings, visibility_timeout=30)
    schedule = beat_schedule("live", 4, period_scale=0.5)

    assert app.conf.task_acks_late
    assert app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.broker_transport_options["visibility_timeout"] == 30
    names = {"coinlens.shard", "coinlens.grades_part", "coinlens.forecast_part", "coinlens.join"}
    assert names | {"coinlens.recompute", "coinlens.job"} <= set(app.tasks)
    assert schedule["recompute"] == {"task": "coinlens.recompute", "schedule": 30.0, "args": (4,)}
    assert schedule["tickers"]["args"] == ("tickers", "live")


def test_the_join_skips_predictions_only_when_every_forecast_part_made_them() -> None:
    from coinlens.pipeline.tasks import _predicted

    shard = {"shard": 0, "shards": 4, "written": True}
    part = {"forecast_part": 0, "parts": 2, "model_id": "m1"}
    assert _predicted([shard, part, {**part, "forecast_part": 1}]) == "m1"
    assert _predicted([shard, part]) is None  # one part missing
    assert _predicted([part, {**part, "forecast_part": 1, "model_id": None}]) is None  # deferred
    assert _predicted([part, {**part, "forecast_part": 1, "model_id": "m2"}]) is None
    assert _predicted([shard]) is None
    assert _predicted([part, {**part, "forecast_part": 1, "failed": "no model"}]) is None


def test_a_failing_part_reports_domain_errors_and_lets_temporary_ones_retry() -> None:
    from coinlens.domain.errors import DataUnavailable, TemporaryError
    from coinlens.pipeline.tasks import _part_result

    def missing() -> dict[str, Any]:
        raise DataUnavailable("no daily candles")

    def busy() -> dict[str, Any]:
        raise TemporaryError("database busy")

    assert _part_result("grades_part", 1, 2, lambda: {"days": 3}) == {
        "grades_part": 1,
        "parts": 2,
        "days": 3,
    }
    failed = _part_result("grades_part", 1, 2, missing)
    assert failed == {"grades_part": 1, "parts": 2, "failed": "no daily candles"}
    with pytest.raises(TemporaryError):
        _part_result("forecast_part", 0, 2, busy)


def test_the_join_grades_itself_unless_every_grade_part_stored_its_days() -> None:
    from coinlens.pipeline.tasks import _all_done

    part = {"grades_part": 0, "parts": 2, "days": 500}
    assert _all_done([part, {**part, "grades_part": 1}], "grades_part")
    assert not _all_done([part], "grades_part")
    assert not _all_done([part, {**part, "grades_part": 1, "failed": "x"}], "grades_part")
    assert not _all_done([], "grades_part")


def test_replay_is_deterministic_and_paced(tmp_path: Path, universe_ctx: Context) -> None:
    slept: list[float] = []
    cfg = ReplayConfig(start=date(2025, 3, 30), end=date(2025, 4, 1), speed=86_400 * 1000)
    dumps = []
    for name in ("a", "b"):
        target = _ctx(tmp_path / name)
        report = replay(universe_ctx, target, cfg, recompute_in_process, sleep=slept.append)
        dumps.append(canonical_dump(target))
        target.engine.dispose()

    assert report.days == 3
    assert report.candles == 30
    assert report.ticks == 30
    assert dumps[0] == dumps[1]
    assert b"## grades" in dumps[0]
    assert b"## token_analytics" in dumps[0]
    assert len(slept) == 6
    assert all(0 <= s <= 0.001 for s in slept)
