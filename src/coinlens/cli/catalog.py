"""`coinlens tokens`: list and search the token catalog."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from coinlens.cli.common import cli_context, console, load_settings, plural
from coinlens.cli.options import DataDir, DbUrl
from coinlens.domain.errors import ValidationFailed
from coinlens.services.catalog import list_tokens, unknown_sector


def tokens_command(
    query: Annotated[str | None, typer.Argument(help="Symbol or name to search for")] = None,
    sector: Annotated[str | None, typer.Option("--sector", help="Only this sector")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="Rows to show")] = 50,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """List tokens (search by symbol or name, filter by sector)."""
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        page = list_tokens(ctx, q=query, sector=sector, limit=limit)
        if page.total == 0 and (why := unknown_sector(ctx, sector)):
            raise ValidationFailed(f"sector: {why}")
    table = Table(title=plural(page.total, "token") + (f" matching {query!r}" if query else ""))
    for col in ("symbol", "name", "sector", "primary market", "first", "last"):
        table.add_column(col)
    for t in page.items:
        table.add_row(
            t.symbol,
            t.name,
            t.sector or "",
            t.primary_market or "",
            t.first_candle.date().isoformat() if t.first_candle else "",
            t.last_candle.date().isoformat() if t.last_candle else "",
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"… {page.total - len(page.items)} more; use --limit or the API to page")
