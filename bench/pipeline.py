"""Bench: full recompute on PostgreSQL with 1 vs 2 Celery workers, and the live update.

SYNTHETIC data only (labelled). Needs PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379.

    .venv/bin/python bench/pipeline.py --tokens 10000 --days 1095          # the issue's size
    .venv/bin/python bench/pipeline.py --tokens 1000 --days 1095 --live-tokens 2000

1. Full recompute (indicators, signals, backtests, grades by day range, predictions by token
   share → the join) of `--tokens` × `--days` with W = 1 then 2 workers (`--pool solo`, one
   process each, so the worker's peak RSS is its VmHWM), each worker limited to
   `--threads-per-worker` cores (default 1: a worker stands for a machine; on this 2-core
   box, 2 workers × 1 thread); each timed run follows one untimed warm-up run (JIT, panel
   snapshot, forecast model trained once). Reports wall time, ratio and peak RSS: of the
   timed run (VmHWM reset after the warm-up) and, separately, of the warm-up (with W = 1 it
   also builds the panel snapshot, writes every grade and trains the forecast model).
2. Live update for `--live-tokens`: one new daily candle per token is written, then the
   incremental analytics step and the alert evaluation run (in process); reports seconds,
   and separately the grades step run afterwards (it recomputes the whole history).
   `--live-only` runs just this part.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from coinlens.pipeline import synthetic
from coinlens.services.context import Context, build_context
from coinlens.settings import Settings, get_settings
from coinlens.storage import repo
from coinlens.storage.db import make_engine

PG = os.environ.get("COINLENS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("COINLENS_BENCH_REDIS", "redis://127.0.0.1:6379/12")
COINLENS = str(Path(sys.executable).with_name("coinlens"))


def _schema() -> tuple[str, str]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with make_engine(PG).begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    return name, f"{PG}?options=-csearch_path%3D{name}"


def _drop(name: str) -> None:
    with make_engine(PG).begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _workers(settings: Settings, n: int, tmp: Path, threads: int) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COINLENS_")}
    env.update(
        COINLENS_ENV="test",
        COINLENS_DATABASE_URL=str(settings.database_url),
        COINLENS_REDIS_URL=REDIS,
        COINLENS_COMPUTE_THREADS=str(threads),  # one worker = one machine of `threads` cores
        NUMBA_NUM_THREADS=str(threads),
    )
    procs = []
    for i in range(n):
        env_i = {**env, "COINLENS_DATA_DIR": str(tmp / f"w{n}-{i}")}
        log = (tmp / f"w{n}-{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [COINLENS, "worker", "--pool", "solo", "--name", f"b{n}-{i}@%h"],
                env=env_i,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all("ready." in (tmp / f"w{n}-{i}.log").read_text() for i in range(n)):
            return procs
        time.sleep(0.2)
    raise RuntimeError("workers did not start")


def recompute_with(
    settings: Settings, workers: int, shards: int, tmp: Path, threads: int
) -> dict[str, Any]:
    """Warm-up then one timed full recompute on `workers` solo workers."""
    import redis

    from coinlens.pipeline.celery_app import make_celery
    from coinlens.pipeline.tasks import dispatch_recompute

    redis.Redis.from_url(REDIS).flushdb()
    app = make_celery(settings.model_copy(update={"redis_url": REDIS}))
    procs = _workers(settings, workers, tmp, threads)
    try:
        t0 = time.perf_counter()
        dispatch_recompute(app, shards).get(timeout=7200)
        warm = time.perf_counter() - t0
        warm_rss = [_peak_rss_mb(p.pid) for p in procs]
        for p in procs:  # the timed run's own peak: reset each worker's VmHWM
            Path(f"/proc/{p.pid}/clear_refs").write_text("5")
        t0 = time.perf_counter()
        joined = dispatch_recompute(app, shards).get(timeout=7200)
        seconds = time.perf_counter() - t0
        rss = [_peak_rss_mb(p.pid) for p in procs]
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(60)
    return {"workers": workers, "seconds": round(seconds, 2), "warmup_seconds": round(warm, 2),
            "peak_rss_mb": [round(r) for r in rss],
            "warmup_peak_rss_mb": [round(r) for r in warm_rss], "join": joined["steps"],
            "join_seconds": round(joined["seconds"], 2)}  # fmt: skip


def live_update(tokens: int, days: int, tmp: Path) -> dict[str, Any]:
    """Seconds from one new daily candle per token to alerts evaluated (in process)."""
    from coinlens.services import jobs
    from coinlens.services.analytics import run_analytics

    name, url = _schema()
    try:
        ctx = build_context(get_settings(env="test", data_dir=tmp / "live", database_url=url))
        u = synthetic.make_universe(tokens, days + 2, start=date(2023, 1, 1), seed=11)
        synthetic.write_universe(ctx, _first_days(u, days))
        run_analytics(ctx)  # full, saves the incremental state
        jobs.call_step("grades", ctx)
        # steady state: one untimed live day first, so every kernel is compiled/loaded
        _append_last_day(ctx, _first_days(u, days + 1))
        run_analytics(ctx)
        jobs.call_step("alerts", ctx)
        t0 = time.perf_counter()
        _append_last_day(ctx, u)
        t_write = time.perf_counter() - t0
        report = run_analytics(ctx)
        t_analytics = time.perf_counter() - t0 - t_write
        alerts = jobs.call_step("alerts", ctx)
        total = time.perf_counter() - t0
        # Not part of the live path: grades still recompute every day of the history.
        t1 = time.perf_counter()
        jobs.call_step("grades", ctx)
        t_grades = time.perf_counter() - t1
        ctx.engine.dispose()
    finally:
        _drop(name)
    return {"tokens": tokens, "mode": report.mode, "write_s": round(t_write, 3),
            "analytics_s": round(t_analytics, 3), "analytics_steps": report.timings,
            "alerts": alerts, "total_s": round(total, 3),
            "grades_after_s (full history, outside the live path)": round(t_grades, 3)}  # fmt: skip


def _first_days(u: synthetic.SyntheticUniverse, n: int) -> synthetic.SyntheticUniverse:
    cols = (u.open, u.high, u.low, u.close, u.volume)
    return synthetic.SyntheticUniverse(u.symbols, u.first_day, *(a[:, :n] for a in cols))


def _append_last_day(ctx: Context, u: synthetic.SyntheticUniverse) -> None:
    n = u.close.shape[1]  # only the newest day's rows are built (not each token's history)
    day = synthetic.SyntheticUniverse(
        u.symbols,
        u.first_day + n - 1,
        *(a[:, -1:] for a in (u.open, u.high, u.low, u.close, u.volume)),
    )
    with ctx.engine.begin() as conn:
        markets = repo.market_ids(conn)
        rows = {
            markets[f"synthetic:{s}/USDT:spot"]: synthetic._candle_rows(day, i)
            for i, s in enumerate(u.symbols)
        }
        repo.write_candles_many(conn, "1d", rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=1_095)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--threads-per-worker", type=int, default=1)
    ap.add_argument("--live-tokens", type=int, default=2_000)
    ap.add_argument("--live-days", type=int, default=400)
    ap.add_argument("--tmp", type=Path, default=Path("var/bench-pipeline"))
    ap.add_argument("--live-only", action="store_true", help="skip the recompute part")
    args = ap.parse_args()
    args.tmp.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"label": synthetic.LABEL, "tokens": args.tokens, "days": args.days}
    if not args.live_only:
        out.update(recompute_scaling(args))
    out["live_update"] = live_update(args.live_tokens, args.live_days, args.tmp)
    print(json.dumps(out, indent=2))


def recompute_scaling(args: argparse.Namespace) -> dict[str, Any]:
    """Seed the synthetic universe, then time the full recompute with 1 and 2 workers."""
    out: dict[str, Any] = {}
    name, url = _schema()
    try:
        settings = get_settings(env="test", data_dir=args.tmp / "seed", database_url=url)
        ctx = build_context(settings)
        t0 = time.perf_counter()
        synthetic.write_universe(ctx, synthetic.make_universe(args.tokens, args.days))
        out["seed_seconds"] = round(time.perf_counter() - t0, 1)
        ctx.engine.dispose()
        runs = [
            recompute_with(settings, w, args.shards, args.tmp, args.threads_per_worker)
            for w in (1, 2)
        ]
        out["threads_per_worker"] = args.threads_per_worker
        out["recompute"] = runs
        out["scaling_ratio"] = round(runs[0]["seconds"] / runs[1]["seconds"], 2)
    finally:
        _drop(name)
    return out


if __name__ == "__main__":
    main()
