"""Thin Celery tasks over the services: shards, the cross-sectional join, periodic jobs.

* ``coinlens.shard(shard, shards)`` — `services.sharded.run_shard` (idempotent upserts);
* ``coinlens.grades_part(part, parts)`` — `services.grades.run_grades` over one range of days
  (idempotent: days are rewritten by digest). Grades read only the stored candles and caps,
  not the shards' rows, so the parts run side by side with the shards, in the same chord;
* ``coinlens.forecast_part(part, parts)`` — `services.forecasts.predict_part`: the newest
  model's predictions for the tokens with id % parts == part (features are per token), unless
  a retrain is due;
* ``coinlens.join(results, now, graded)`` — `services.sharded.run_join` (prune, grades unless
  the parts stored them, forecasts: a retrain when due, predictions unless every forecast
  part made them with the newest model; alerts), run once every task of the chord is done
  (its callback);
* ``coinlens.recompute(shards)`` — what beat triggers: when the candles version changed since
  the last finished join, fan out a chord of shards and grade parts → join; otherwise nothing;
* ``coinlens.job(name)`` — any other periodic job of `services.jobs.JOBS`.

Each worker process builds its own `Context` (engine) on first use, from the settings the
app was made with; nothing is shared across a fork.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
import structlog
from celery import Celery, chord
from celery.result import AsyncResult

from coinlens.domain.errors import CoinlensError, TemporaryError
from coinlens.services import jobs
from coinlens.services.context import Context, build_context
from coinlens.services.forecasts import predict_part
from coinlens.services.grades import run_grades
from coinlens.services.scheduler import default_jobs
from coinlens.services.sharded import run_join, run_shard

log = structlog.get_logger(__name__)
DONE_KEY = "coinlens:recompute:done"
RETRY_ON = (TemporaryError, sa.exc.OperationalError, sa.exc.IntegrityError)
_CONTEXTS: dict[tuple[int, int], Context] = {}


def context_for(app: Celery) -> Context:
    """This process's context for `app` (built once per process, after any fork)."""
    key = (os.getpid(), id(app))
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        ctx = build_context(app.conf.coinlens_settings, migrate=False)
        _CONTEXTS[key] = ctx
    return ctx


def _redis(app: Celery) -> Any:
    import redis

    return redis.Redis.from_url(app.conf.coinlens_settings.redis_url)


def _now(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value else None


def register(app: Celery) -> None:
    """Define the tasks on `app`."""
    retry: dict[str, Any] = {
        "autoretry_for": RETRY_ON,
        "retry_backoff": 1,
        "retry_backoff_max": 30,
        "max_retries": 8,
        "shared": False,  # per-app tasks: a second app in one process must not clash
    }

    @app.task(name="coinlens.shard", **retry)  # type: ignore[untyped-decorator]
    def shard(index: int, shards: int) -> dict[str, Any]:
        return asdict(run_shard(context_for(app), index, shards))

    @app.task(name="coinlens.grades_part", **retry)  # type: ignore[untyped-decorator]
    def grades_part(part: int, parts: int) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            return asdict(run_grades(context_for(app), part=part, parts=parts))

        return _part_result("grades_part", part, parts, run)

    @app.task(name="coinlens.forecast_part", **retry)  # type: ignore[untyped-decorator]
    def forecast_part(part: int, parts: int) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            return {"model_id": predict_part(context_for(app), part, parts)}

        return {"model_id": None, **_part_result("forecast_part", part, parts, run)}

    @app.task(name="coinlens.join", **retry)  # type: ignore[untyped-decorator]
    def join(
        results: list[dict[str, Any]], now: str | None = None, graded: bool = False
    ) -> dict[str, Any]:
        ctx = context_for(app)
        graded = graded and _all_done(results, "grades_part")
        report = run_join(ctx, now=_now(now), graded=graded, predicted_with=_predicted(results))
        _redis(app).set(DONE_KEY, report.panel_version)
        return {**asdict(report), "parts": len(results)}

    @app.task(name="coinlens.recompute", **retry)  # type: ignore[untyped-decorator]
    def recompute(shards: int) -> str:
        version = jobs.candles_version(context_for(app))
        done = _redis(app).get(DONE_KEY)
        if done is not None and int(done) == version:
            return f"unchanged (v{version})"
        result = dispatch_recompute(app, shards)
        return f"dispatched {result.id} (v{version})"

    @app.task(name="coinlens.job", **retry)  # type: ignore[untyped-decorator]
    def job(name: str, mode: Literal["live", "replay"] = "live") -> str:
        fn = default_jobs(mode)[name]
        return str(fn(context_for(app), datetime.now(UTC)))[:200]


GRADE_PARTS = 2  # day ranges graded side by side (each re-reads the history before its range)
FORECAST_PARTS = 2  # token shares predicted side by side


def _part_result(
    kind: str, part: int, parts: int, run: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """A chord part's result, tagged with its kind and split. A part that fails on a domain
    error reports it instead of failing the chord (which would skip the join): the join
    then does that step itself, degraded as in one process. Temporary errors propagate,
    so Celery retries them (`autoretry_for`)."""
    out: dict[str, Any] = {kind: part, "parts": parts}
    try:
        return {**out, **run()}
    except CoinlensError as exc:
        if isinstance(exc, TemporaryError):
            raise
        log.warning("part.failed", kind=kind, part=part, detail=exc.detail)
        return {**out, "failed": exc.detail}


def _parts(results: list[dict[str, Any]], kind: str) -> list[dict[str, Any]] | None:
    """The chord results of the `kind` parts, if every part of one split is there."""
    parts = [r for r in results if isinstance(r, dict) and kind in r]
    expected = {r["parts"] for r in parts}
    if len(expected) != 1 or len(parts) != expected.pop():
        return None
    return parts


def _all_done(results: list[dict[str, Any]], kind: str) -> bool:
    """Whether every `kind` part ran without a failure."""
    parts = _parts(results, kind)
    return parts is not None and not any("failed" in r for r in parts)


def _predicted(results: list[dict[str, Any]]) -> str | None:
    """The model every forecast part predicted with, if they all did (else None)."""
    parts = _parts(results, "forecast_part") if _all_done(results, "forecast_part") else None
    models = {r["model_id"] for r in parts or []}
    model = models.pop() if len(models) == 1 else None
    return model if isinstance(model, str) else None


def dispatch_recompute(
    app: Celery, shards: int, now: datetime | None = None, grade_parts: int = GRADE_PARTS
) -> AsyncResult:
    """One chord: grade parts, forecast parts and shards side by side, then the join; its
    result.

    The longest tasks go first so the workers take them before the short shards: the grade
    parts (the last range of days, which reads the whole history, at the head), then the
    forecast parts.
    """
    header = [
        app.signature("coinlens.grades_part", args=(k, grade_parts))
        for k in reversed(range(grade_parts))
    ]
    header += [
        app.signature("coinlens.forecast_part", args=(k, FORECAST_PARTS))
        for k in range(FORECAST_PARTS)
    ]
    header += [app.signature("coinlens.shard", args=(i, shards)) for i in range(shards)]
    stamp = now.isoformat() if now else None
    callback = app.signature("coinlens.join", kwargs={"now": stamp, "graded": grade_parts > 0})
    result: AsyncResult = chord(header)(callback)
    return result


def beat_schedule(
    mode: Literal["live", "replay"], shards: int, period_scale: float = 1.0
) -> dict[str, dict[str, Any]]:
    """Celery beat entries for the jobs of `mode` (periods × `period_scale`, for demos/tests)."""
    out: dict[str, dict[str, Any]] = {}
    for j in jobs.JOBS:
        if not j.runs_in(mode):
            continue
        every = max(j.every * period_scale, 1.0)
        if j.name == "recompute":
            out[j.name] = {"task": "coinlens.recompute", "schedule": every, "args": (shards,)}
        else:
            out[j.name] = {"task": "coinlens.job", "schedule": every, "args": (j.name, mode)}
    return out
