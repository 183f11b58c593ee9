"""`coinlens sync candles|metadata|ecosystem`: pull exchange and API data (docs/connectors.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from coinlens.cli.common import cli_context, console, load_settings
from coinlens.cli.options import DataDir, DbUrl
from coinlens.services.ingest import SyncReport, sync_ecosystem, sync_market, sync_metadata

sync_app = typer.Typer(
    help="Sync candles, market caps and ecosystem metrics.", no_args_is_help=True
)


class SyncTimeframe(StrEnum):
    """Candle timeframe."""

    d1 = "1d"
    h1 = "1h"


Exchange = Annotated[str, typer.Option(help="Exchange: binance, coinbase, kraken or okx")]
Symbol = Annotated[str, typer.Option(help="Unified symbol, e.g. ETH/USDT")]
TimeframeOpt = Annotated[SyncTimeframe, typer.Option("--timeframe", help="1d or 1h")]
Since = Annotated[
    datetime | None,
    typer.Option(help="Fetch from this UTC date (default: continue, or backfill from 2017)"),
]


def _print(report: SyncReport) -> None:
    table = Table(title=f"sync {report.market_key} {report.timeframe}", box=box.SIMPLE_HEAD)
    for name in ("mode", "fetched", "inserted", "updated", "unchanged", "merged", "rejected"):
        table.add_column(name, justify="right")
    table.add_column("in progress", justify="right")
    table.add_column("gaps", justify="right")
    c = report.counts
    table.add_row(
        report.mode,
        str(report.fetched),
        str(c.inserted),
        str(c.updated),
        str(c.unchanged),
        str(report.merged),
        str(len(report.rejected)),
        str(report.in_progress_dropped),
        str(len(report.gaps)),
    )
    console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning[/yellow] {warning}")
    for rej in report.rejected[:20]:
        console.print(f"[red]rejected[/red] row {rej['line']}: {rej['reason']}")
    for gap in report.gaps[:20]:
        start = datetime.fromtimestamp(gap.first_missing, UTC).strftime("%Y-%m-%dT%H:%MZ")
        console.print(f"gap: {gap.missing} candle(s) missing from {start} (venue has none)")


@sync_app.command("candles")
def sync_candles(
    exchange: Exchange,
    symbol: Symbol,
    timeframe: TimeframeOpt = SyncTimeframe.d1,
    since: Since = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Backfill or continue one market's closed candles; exits 1 if rows were quarantined."""
    start = since.replace(tzinfo=UTC) if since and since.tzinfo is None else since
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        report = sync_market(ctx, exchange, symbol, timeframe.value, start)
    _print(report)
    if report.rejected:
        raise typer.Exit(1)


@sync_app.command("metadata")
def sync_metadata_command(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Market caps, ranks and supply of known tokens (CoinGecko-shaped API)."""
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        report = sync_metadata(ctx)
    console.print(
        f"{report.source}: {report.fetched} fetched, {report.written} market-cap rows written, "
        f"{report.supply_updated} supplies updated, {len(report.unmatched)} unknown coins skipped, "
        f"{len(report.rejected)} malformed"
    )


@sync_app.command("ecosystem")
def sync_ecosystem_command(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Chain TVL, stablecoin supply, gas and daily transactions; exits 1 if a source failed."""
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        report = sync_ecosystem(ctx)
    for name, n in report.written.items():
        console.print(f"{name}: {n} point(s) written")
    for name, detail in report.failed.items():
        console.print(f"[red]failed[/red] {name}: {detail}")
    if report.failed:
        raise typer.Exit(1)
