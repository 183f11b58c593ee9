"""`coinlens load`, `serve` and `up`: bring the platform up on the embedded default."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from coinlens.cli.analytics import run_all_steps
from coinlens.cli.common import (
    cli_context,
    console,
    http_url,
    load_settings,
    user_errors,
    writing,
)
from coinlens.cli.options import DataDir, DbUrl
from coinlens.domain.errors import ConfigError, TemporaryError
from coinlens.services.context import Context, build_context
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
    settings = load_settings(data_dir, database_url)
    with writing(settings, "coinlens load"), cli_context(settings) as ctx:
        _load(ctx, force=force)


def check_port(host: str, port: int) -> None:
    """ConfigError now when `host:port` cannot be listened on (another server has it),
    instead of uvicorn's after the banner — and, for `up`, after minutes of loading."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}: {exc.strerror}") from exc
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is already in use (another Coinlens?): "
                    "stop that server or choose another --port / COINLENS_PORT"
                ) from exc
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def _check_database(settings: Settings) -> None:
    """A database that can never work (damaged file, unknown driver) stops `serve` in one
    line before the banner; one that is only away now does not (/readyz says 503)."""
    with suppress(TemporaryError):
        build_context(settings).engine.dispose()


def _serve(settings: Settings, host: str | None, port: int | None, workers: int = 1) -> None:
    import uvicorn

    from coinlens.api.app import create_app

    host = settings.host if host is None else host
    port = settings.port if port is None else port
    with user_errors(2, database_url=settings.db_url):  # one line, before the banner
        settings.check_safe()
        check_port(host, port)
        _check_database(settings)
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
    with user_errors(2):  # before minutes of loading, not after
        check_port(settings.host if host is None else host, settings.port if port is None else port)
    with writing(settings, "coinlens up"), cli_context(settings) as ctx:
        _load(ctx, force=False)
        _print_demo_key(ctx)
    day = replay_from.date() if replay_from else None
    served, stop = start_background(settings, live=live, replay_from=day, speed=speed)
    try:
        _serve(served, host, port)
    finally:
        stop()
