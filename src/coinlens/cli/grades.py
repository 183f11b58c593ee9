"""`coinlens grades`: the day's Trader/Investor leaderboard; the grades step of the pipeline."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from coinlens.analytics.grades import SUB_GRADES
from coinlens.cli.common import cli_context, console, load_settings, plural
from coinlens.cli.options import DataDir, DbUrl
from coinlens.domain.errors import ValidationFailed
from coinlens.domain.grades import GradesPage, GradeTrackRecord
from coinlens.services import catalog
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
        if page.total == 0 and (why := catalog.unknown_sector(ctx, sector)):
            raise ValidationFailed(f"sector: {why}")
        record = track_record(ctx)
    title = f"{page.sort} grades on {page.day} ({plural(page.total, 'token')})"
    table = _table(page, title, SUB_GRADES)
    if sum(c.min_width or 0 for c in table.columns) + 3 * len(table.columns) + 12 > console.width:
        # cut cells ("ETH…", "84…") would name another token or grade: leave columns out
        table = _table(page, title, ())
        table.caption = "sub-grades left out: the terminal is too narrow for them"
    console.print(table)
    console.print(_track_line(record), soft_wrap=True)


def _table(page: GradesPage, title: str, subs: tuple[str, ...]) -> Table:
    """The leaderboard with `subs` as extra columns; only the sector may wrap, every other
    column is as wide as its widest cell."""
    rows = [
        (
            e.symbol,
            e.sector or "",
            _num(e.trader),
            e.trader_band,
            _num(e.investor),
            e.investor_band or "",
            *(_num(e.components.get(k)) for k in subs),
        )
        for e in page.items
    ]
    table = Table(title=title)
    for i, col in enumerate(("symbol", "sector", "trader", "band", "investor", "band", *subs)):
        if col == "sector":
            table.add_column(col)
        else:
            width = max([len(col), *(len(r[i]) for r in rows)])
            table.add_column(col, no_wrap=True, min_width=width)
    for r in rows:
        table.add_row(*r)
    return table


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
