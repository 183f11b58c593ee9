"""`coinlens load`, `serve` and `up`: bring the platform up on the embedded default."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from coinlens.cli.analytics import run_all_steps
from coinlens.cli.common import cli_context, console, http_url, load_settings, user_errors
from coinlens.cli.options import DataDir, DbUrl
from coinlens.services.context import Context
from coinlens.services.loading import count_rows, load_embedded
from coinlens.settings import Settings

Force = Annotated[bool, typer.Option("--force", help="Re-check every row even if loaded before")]


@contextmanager
def _bar() -> Iterator[Progress]:
    with Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        yield bar


def _load(ctx: Context, *, force: bool) -> None:
    tasks: dict[str, object] = {}
    with _bar() as bar:

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)  # type: ignore[arg-type]

        report = load_embedded(ctx, force=force, progress=progress)
    if report.skipped:
        console.print("embedded dataset already loaded and unchanged")
    else:
        c = report.candles
        console.print(
            f"loaded {report.tokens} tokens, {report.markets} markets, candles: "
            f"{c.inserted} new, {c.updated} updated, {c.unchanged} unchanged; "
            f"{report.market_caps} market-cap snapshots, {report.metrics} metric points"
        )
    counts = count_rows(ctx)
    console.print("database: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    run_all_steps(ctx)  # analytics, grades, forecasts, alerts: no-ops when nothing changed


def load_command(
    data_dir: DataDir = None, database_url: DbUrl = None, force: Force = False
) -> None:
    """Load the packaged real dataset (idempotent, with a progress bar)."""
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        _load(ctx, force=force)


def _serve(settings: Settings, host: str | None, port: int | None, workers: int = 1) -> None:
    import uvicorn

    from coinlens.api.app import create_app

    with user_errors(2):  # a settings error is one line, before the banner
        settings.check_safe()
    host = settings.host if host is None else host
    port = settings.port if port is None else port
    base = http_url(host, port)
    console.print(f"\n[bold]Coinlens[/bold] on {base}")
    for path, what in (
        ("/v1/tokens", "tokens"),
        ("/v1/tokens/ETH/ohlcv?timeframe=1d", "ETH daily candles"),
        ("/docs", "API docs"),
        ("/healthz", "health"),
    ):
        console.print(f"  {what:<18} {base}{path}")
    server: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        "access_log": False,  # the API logs each request itself (JSON, with request id)
        # X-Forwarded-For is the API's to judge (COINLENS_TRUSTED_PROXIES): uvicorn's own
        # handling trusts 127.0.0.1 by default and would rewrite the client address
        "proxy_headers": False,
        "timeout_graceful_shutdown": GRACE_SECONDS,
    }
    if workers > 1:  # each worker builds its own app from the environment
        os.environ["COINLENS_DATA_DIR"] = str(settings.data_dir)
        if settings.database_url:
            os.environ["COINLENS_DATABASE_URL"] = settings.database_url
        uvicorn.run("coinlens.api.app:create_app", factory=True, workers=workers, **server)
        return
    uvicorn.run(create_app(settings), **server)


Host = Annotated[str | None, typer.Option("--host", help="Bind address (default from settings)")]
Port = Annotated[
    int | None, typer.Option("--port", min=1, max=65535, help="Port (default from settings)")
]
Workers = Annotated[int, typer.Option("--workers", min=1, max=64, help="API worker processes")]
GRACE_SECONDS = 10  # on SIGTERM: stop accepting, finish in-flight requests, flush usage


def serve_command(
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    host: Host = None,
    port: Port = None,
    workers: Workers = 1,
) -> None:
    """Serve the API on the configured host and port (graceful shutdown on SIGTERM)."""
    _serve(load_settings(data_dir, database_url), host, port, workers)


Live = Annotated[bool, typer.Option("--live", help="Run the periodic jobs (ingest, pipeline)")]
ReplayFrom = Annotated[
    datetime | None,
    typer.Option("--replay", formats=["%Y-%m-%d"], help="Replay stored history from this day"),
]
ReplaySpeed = Annotated[float, typer.Option("--speed", min=0, help="Replay speed factor")]


def _print_demo_key(ctx: Context) -> None:
    from coinlens.services.keys import CreatedKey, ensure_demo_key

    demo = ensure_demo_key(ctx)
    if isinstance(demo, CreatedKey):
        console.print(
            f"\n[bold]demo API key[/bold] (read scope, shown once — keep it): {demo.plaintext}\n"
            f'  curl -H "X-API-Key: {demo.plaintext}" '
            f"{http_url(ctx.settings.host, ctx.settings.port)}/v1/tokens/ETH",
            soft_wrap=True,  # never break the key across lines: it must copy-paste whole
        )
    else:
        console.print(
            f"\ndemo API key {demo.lookup_id}… was shown when it was created; "
            "make another with `coinlens keys create` or at /keys"
        )


def up_command(
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    host: Host = None,
    port: Port = None,
    live: Live = False,
    replay_from: ReplayFrom = None,
    speed: ReplaySpeed = 3600.0,
) -> None:
    """Migrate, load the embedded real data, compute what exists, then serve (live or replay)."""
    from coinlens.cli.live import start_background

    settings = load_settings(data_dir, database_url)
    with cli_context(settings) as ctx:
        _load(ctx, force=False)
        _print_demo_key(ctx)
    day = replay_from.date() if replay_from else None
    served, stop = start_background(settings, live=live, replay_from=day, speed=speed)
    try:
        _serve(served, host, port)
    finally:
        stop()
