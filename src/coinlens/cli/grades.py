"""`coinlens grades`: the day's Trader/Investor leaderboard; the grades step of the pipeline."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from coinlens.analytics.grades import SUB_GRADES
from coinlens.cli.common import cli_context, console, load_settings
from coinlens.cli.options import DataDir, DbUrl
from coinlens.services.context import Context
from coinlens.services.grades import LeaderboardQuery, leaderboard, run_grades


def run_grades_step(ctx: Context) -> None:
    """Compute and store grades for every day; only changed days are rewritten."""
    report = run_grades(ctx)
    console.print(
        f"grades: {report.days} days graded, {report.written} written "
        f"({report.rows:,} rows), {report.unchanged} unchanged in {report.seconds:.1f}s"
    )


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.1f}"


def grades_command(
    top: Annotated[int, typer.Option("--top", min=1, max=500, help="Tokens to show")] = 20,
    sector: Annotated[str | None, typer.Option("--sector", help="Only this sector")] = None,
    band: Annotated[
        str | None,
        typer.Option("--band", help="strong_sell, sell, neutral, buy or strong_buy"),
    ] = None,
    sort: Annotated[str, typer.Option("--sort", help="trader or investor")] = "trader",
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """The latest day's grade leaderboard (best first)."""
    query = LeaderboardQuery(sector=sector, band=band, sort=sort, limit=top)
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        page = leaderboard(ctx, query)
    table = Table(title=f"{page.sort} grades on {page.day} ({page.total} tokens)")
    for col in ("symbol", "sector", "trader", "band", "investor", "band", *SUB_GRADES):
        table.add_column(col)
    for e in page.items:
        table.add_row(
            e.symbol,
            e.sector or "",
            _num(e.trader),
            e.trader_band,
            _num(e.investor),
            e.investor_band or "",
            *(_num(e.components.get(k)) for k in SUB_GRADES),
        )
    console.print(table)
