"""`coinlens` — the command line entry point; each command calls one service."""

from __future__ import annotations

from typing import Annotated

import typer

from coinlens import __version__
from coinlens.cli.catalog import tokens_command
from coinlens.cli.common import cli_context, console, load_settings
from coinlens.cli.importing import import_command
from coinlens.cli.options import DataDir, DbUrl
from coinlens.cli.platform import load_command, serve_command, up_command

app = typer.Typer(help="Coinlens: self-hosted crypto research on real data.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _version(value: bool) -> None:
    if value:
        console.print(f"coinlens {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version")
    ] = False,
) -> None:
    """Coinlens command line."""


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """Apply database migrations up to the latest revision."""
    from coinlens.storage.db import current_revision

    with cli_context(load_settings(data_dir, database_url)) as ctx:
        console.print(f"database at revision {current_revision(ctx.engine)}")


app.command("up")(up_command)
app.command("serve")(serve_command)
app.command("load")(load_command)
app.command("import")(import_command)
app.command("tokens")(tokens_command)
