"""`coinlens grades`: the day's Trader/Investor leaderboard; the grades step of the pipeline."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from coinlens.analytics.grades import SUB_GRADES
from coinlens.cli.common import cli_context, console, load_settings, plural
from coinlens.cli.options import DataDir, DbUrl
from coinlens.domain.grades import GradeTrackRecord
from coinlens.services.context import Context
from coinlens.services.grades import LeaderboardQuery, leaderboard, run_grades, track_record


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
        record = track_record(ctx)
    table = Table(title=f"{page.sort} grades on {page.day} ({plural(page.total, 'token')})")
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
    console.print(_track_line(record), soft_wrap=True)


def _track_line(record: GradeTrackRecord | None) -> str:
    """The grades' out-of-sample rank IC, or how to measure it."""
    if record is None:
        return "track record: none stored yet (`make evaluate` or `coinlens evaluate grades`)"
    parts = []
    for g in record.grades:
        oos = next((p for p in g.periods if p.period == "out of sample"), None)
        if oos is not None and oos.rank_ic is not None and oos.rank_ic_t is not None:
            parts.append(
                f"{g.grade} vs {g.horizon}d returns {oos.rank_ic:+.4f} (t {oos.rank_ic_t:.2f})"
            )
    return (
        f"track record: mean daily rank IC out of sample (from {record.out_of_sample_from}): "
        f"{'; '.join(parts) or 'no out-of-sample days'} — {record.report}"
    )
