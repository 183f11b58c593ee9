"""`coinlens import PATH...`: validate OHLCV files, upsert good rows (see docs/import.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from coinlens.cli.common import (
    cli_context,
    console,
    err_console,
    load_settings,
    report_error,
    writing,
)
from coinlens.cli.options import DataDir, DbUrl
from coinlens.domain.errors import UserInputError
from coinlens.services.importer import (
    Hints,
    ImportOptions,
    ImportReport,
    hint_problems,
    import_file,
)


class Instrument(StrEnum):
    """Market instrument."""

    spot = "spot"
    perp = "perp"


class Timeframe(StrEnum):
    """Candle timeframe."""

    d1 = "1d"
    h1 = "1h"


Paths = Annotated[list[Path], typer.Argument(help="CSV, CSV.gz or Parquet OHLCV files")]
Strict = Annotated[
    bool, typer.Option("--strict", help="All-or-nothing per file: any bad row rejects the file")
]
Symbol = Annotated[
    str | None,
    typer.Option(help="Pair or base (BTCUSDT, BTC/USDT, BTC); filters multi-symbol files"),
]
Exchange = Annotated[str | None, typer.Option(help="Exchange, e.g. binance (canonical layout)")]
InstrumentOpt = Annotated[Instrument | None, typer.Option("--instrument", help="spot or perp")]
Quote = Annotated[str | None, typer.Option(help="Quote asset when the symbol does not say")]
TimeframeOpt = Annotated[
    Timeframe | None, typer.Option("--timeframe", help="1d or 1h when the file name does not say")
]
Show = Annotated[int, typer.Option("--show", min=0, help="How many rejections and gaps to list")]


def _summary(reports: list[ImportReport]) -> Table:
    table = Table(title="import summary", box=box.SIMPLE_HEAD)
    table.add_column("file", overflow="fold")
    for name in ("rows", "inserted", "updated", "unchanged", "merged", "rejected", "gaps"):
        table.add_column(name, justify="right", min_width=len(name), no_wrap=True)
    for r in reports:
        rejected = f"[red]{len(r.rejected)}[/red]" if r.rejected else "0"
        table.add_row(
            escape(Path(r.file).name),
            str(r.rows),
            str(r.counts.inserted),
            str(r.counts.updated),
            str(r.counts.unchanged),
            str(r.merged),
            rejected,
            str(len(r.gaps)),
        )
    return table


def _details(report: ImportReport, show: int) -> None:
    name = escape(Path(report.file).name)
    markets = escape(", ".join(report.markets[:5]) + (" …" if len(report.markets) > 5 else ""))
    console.print(
        f"{name}: [bold]{report.status}[/bold] ({report.layout} layout, {report.timeframe}, "
        f"run {report.run_id}) {markets}"
    )
    for warning in report.warnings:
        console.print(f"[yellow]warning[/yellow] {name}: {escape(warning)}")
    for rej in report.rejected[:show]:
        console.print(f"[red]rejected[/red] {name}:{rej.line}: {escape(rej.reason)}")
    if len(report.rejected) > show:
        console.print(f"  … {len(report.rejected) - show} more (quarantine, run {report.run_id})")
    for gap in report.gaps[:show]:
        start = datetime.fromtimestamp(gap.first_missing, UTC).strftime("%Y-%m-%dT%H:%MZ")
        key = escape(gap.market_key)
        console.print(f"gap {key}: {gap.missing} candle(s) missing from {start}")
    if len(report.gaps) > show:
        console.print(f"  … {len(report.gaps) - show} more gaps")


def import_command(
    paths: Paths,
    strict: Strict = False,
    symbol: Symbol = None,
    exchange: Exchange = None,
    instrument: InstrumentOpt = None,
    quote: Quote = None,
    timeframe: TimeframeOpt = None,
    show: Show = 20,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Import OHLCV files; exits 1 if any row or file was rejected."""
    hints = Hints(
        symbol=symbol,
        exchange=exchange,
        instrument=instrument.value if instrument else None,
        quote=quote,
        timeframe=timeframe.value if timeframe else None,
    )
    if wrong := hint_problems(hints):  # once, before any file or database is touched
        for reason in wrong:
            err_console.print(f"[red]error:[/red] {escape(reason)}")
        raise typer.Exit(2)
    options = ImportOptions(hints=hints, strict=strict)
    reports: list[ImportReport] = []
    failed = 0
    settings = load_settings(data_dir, database_url)
    with writing(settings, "coinlens import"), cli_context(settings) as ctx:
        for path in paths:
            try:
                reports.append(import_file(ctx, path, options))
            except UserInputError as exc:  # one bad file does not stop the others
                report_error(exc)
                failed += 1
    if reports:
        console.print(_summary(reports))
    for report in reports:
        _details(report, show)
    if failed or any(r.rejected for r in reports):
        raise typer.Exit(1)
