"""`coinlens worker`, `beat` and `replay`; the background half of `coinlens up --live|--replay`."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from coinlens.cli.common import cli_context, console, load_settings
from coinlens.cli.options import DataDir, DbUrl
from coinlens.services.context import Context, build_context
from coinlens.services.replay import ReplayConfig, canonical_dump, replay, replay_days
from coinlens.services.scheduler import JobFn, Scheduler, default_jobs, recompute_in_process
from coinlens.settings import Settings

RedisUrl = Annotated[
    str | None, typer.Option("--redis-url", envvar="COINLENS_REDIS_URL", help="Redis URL")
]
Visibility = Annotated[
    float,
    typer.Option(
        "--visibility-timeout",
        envvar="COINLENS_VISIBILITY_TIMEOUT",
        min=1,
        help="Seconds before an unacknowledged task is redelivered (> the longest task)",
    ),
]
Shards = Annotated[
    int, typer.Option("--shards", min=1, max=1024, help="Token shards per recompute")
]
FromDay = Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First UTC day")]
ToDay = Annotated[
    datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="Last UTC day (inclusive)")
]
Speed = Annotated[
    float, typer.Option("--speed", min=0, help="Simulated seconds per second (0: flat out)")
]
Mode = Literal["live", "replay"]


def _settings(data_dir: Path | None, database_url: str | None, redis_url: str | None) -> Settings:
    settings = load_settings(data_dir, database_url)
    return settings.model_copy(update={"redis_url": redis_url}) if redis_url else settings


def _celery(settings: Settings, visibility: float, **conf: object):  # type: ignore[no-untyped-def]
    from coinlens.pipeline.celery_app import make_celery

    return make_celery(settings, visibility_timeout=visibility, **conf)


def worker_command(
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    redis_url: RedisUrl = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=256)] = 1,
    pool: Annotated[str, typer.Option("--pool", help="prefork, solo or threads")] = "prefork",
    name: Annotated[str, typer.Option("--name", help="Worker node name")] = "coinlens@%h",
    visibility: Visibility = 3600.0,
) -> None:
    """A Celery worker running pipeline shards, joins and periodic jobs (Redis broker)."""
    settings = _settings(data_dir, database_url, redis_url)
    with cli_context(settings):  # migrate once, fail early on a bad database
        pass
    app = _celery(settings, visibility)
    argv = ["worker", "-l", "info", f"--concurrency={concurrency}", f"--pool={pool}"]
    app.worker_main([*argv, "-n", name, "-Q", "coinlens", "--without-gossip", "--without-mingle"])


def beat_command(
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    redis_url: RedisUrl = None,
    mode: Annotated[str, typer.Option("--mode", help="live or replay")] = "live",
    shards: Shards = 4,
    period_scale: Annotated[
        float, typer.Option("--period-scale", min=1e-6, help="Multiply every job period (demos)")
    ] = 1.0,
    visibility: Visibility = 3600.0,
) -> None:
    """Celery beat: schedule the periodic jobs of `mode` onto the workers."""
    from coinlens.pipeline.tasks import beat_schedule

    if mode not in ("live", "replay"):
        raise typer.BadParameter("--mode must be live or replay")
    settings = _settings(data_dir, database_url, redis_url)
    schedule = beat_schedule(mode, shards, period_scale)  # type: ignore[arg-type]
    app = _celery(settings, visibility, beat_schedule=schedule)
    path = settings.data_dir / "celerybeat-schedule"
    path.parent.mkdir(parents=True, exist_ok=True)
    app.start(["beat", "-l", "info", "-s", str(path)])


def recompute_via_celery(settings: Settings, shards: int, visibility: float, timeout: float):  # type: ignore[no-untyped-def]
    """A replay `recompute` that fans out shards + join on the Celery workers and waits."""
    from coinlens.pipeline.tasks import dispatch_recompute

    app = _celery(settings, visibility)

    def run(ctx: Context, now: datetime) -> object:
        return dispatch_recompute(app, shards, now).get(
            timeout=timeout, disable_sync_subtasks=False
        )

    return run


def _fresh_target(source: Settings, into: str | None) -> Settings:
    if into:
        return source.model_copy(update={"database_url": into})
    data_dir = source.data_dir / "replay"
    (data_dir / "coinlens.db").unlink(missing_ok=True)
    return source.model_copy(update={"data_dir": data_dir, "database_url": None})


def replay_command(
    start: FromDay,
    end: ToDay = None,
    speed: Speed = 3600.0,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    into: Annotated[
        str | None, typer.Option("--into", help="Empty target database URL (default: fresh SQLite)")
    ] = None,
    executor: Annotated[
        Literal["local", "celery"], typer.Option("--executor", help="local or celery")
    ] = "local",
    shards: Shards = 4,
    redis_url: RedisUrl = None,
    visibility: Visibility = 3600.0,
    dump: Annotated[
        Path | None, typer.Option("--dump", help="Write a canonical dump of the result here")
    ] = None,
) -> None:
    """Replay stored history through the live path (candles → pipeline → alerts → stream)."""
    source = _settings(data_dir, database_url, redis_url)
    cfg = ReplayConfig(start=start.date(), end=end.date() if end else None, speed=speed)
    with cli_context(source) as src:
        replay_days(src, cfg)  # nothing to replay: refuse before the target is emptied
    target = _fresh_target(source, into)
    if executor == "celery":
        recompute = recompute_via_celery(target, shards, visibility, timeout=3600)
    else:
        recompute = recompute_in_process
    with cli_context(source) as src, cli_context(target) as dst:
        report = replay(src, dst, cfg, recompute, on_day=_print_day)
        if dump is not None:
            dump.write_bytes(canonical_dump(dst))
    console.print(
        f"replayed {report.days} days: {report.candles:,} candles, {report.ticks:,} ticks, "
        f"{report.flips} signal flips in {report.seconds:.1f}s into {target.db_url}"
    )


def _print_day(day: int, report: object) -> None:
    console.print(f"  day {date.fromordinal(date(1970, 1, 1).toordinal() + day)} done")


# --- `coinlens up --live | --replay-from` ---------------------------------------------------


def _replay_jobs() -> dict[str, JobFn]:
    """The scheduler's jobs beside a replay: `deliver` (mode "any"), so replayed firings are
    sent. Not `retrain`: the replay's own recompute retrains when due (the join's forecasts
    step), and a second writer of models on the same database would race it."""
    fns = default_jobs("replay")
    return {"deliver": fns["deliver"]}


def start_background(
    settings: Settings, *, live: bool, replay_from: date | None, speed: float
) -> tuple[Settings, Callable[[], None]]:
    """Start the scheduler (live), or a replay thread with the delivery job beside it;
    (settings to serve, stop function)."""
    if replay_from is not None:
        cfg = ReplayConfig(start=replay_from, speed=speed)
        with cli_context(settings) as checked:
            replay_days(checked, cfg)  # nothing to replay: refuse before the target is emptied
        target = _fresh_target(settings, None)
        src, ctx = build_context(settings), build_context(target)
        thread = threading.Thread(
            target=replay, args=(src, ctx, cfg, recompute_in_process), daemon=True, name="replay"
        )
        thread.start()
        sched = Scheduler(ctx, _replay_jobs()).start()
        console.print(
            f"replaying from {replay_from} at {speed:g}x into {target.db_url}; "
            "background jobs: " + ", ".join(sorted(sched.fns))
        )
        return target, _stopper(sched, ctx)
    if not live:
        return settings, lambda: None
    ctx = build_context(settings)
    mode: Mode = "live"
    sched = Scheduler(ctx, default_jobs(mode)).start()
    console.print("live scheduler started: " + ", ".join(sorted(sched.fns)))
    return settings, _stopper(sched, ctx)


def _stopper(sched: Scheduler, ctx: Context) -> Callable[[], None]:
    def stop() -> None:
        sched.stop()
        with contextlib.suppress(Exception):
            ctx.engine.dispose()

    return stop
