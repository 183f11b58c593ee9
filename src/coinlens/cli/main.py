"""`coinlens` — the command line entry point; each command calls one service."""

from __future__ import annotations

from typing import Annotated

import typer

from coinlens import __version__
from coinlens.cli.alerts import alerts_app
from coinlens.cli.analytics import backtest_command, pipeline_command, signals_command
from coinlens.cli.catalog import tokens_command
from coinlens.cli.common import cli_context, console, load_settings
from coinlens.cli.evaluate import evaluate_app
from coinlens.cli.grades import grades_command
from coinlens.cli.importing import import_command
from coinlens.cli.keys import keys_app
from coinlens.cli.live import beat_command, replay_command, worker_command
from coinlens.cli.mcp import mcp_command
from coinlens.cli.options import DataDir, DbUrl
from coinlens.cli.platform import load_command, serve_command, up_command
from coinlens.cli.predict import predict_command
from coinlens.cli.sync import sync_app
from coinlens.cli.web import web_app

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
app.command("worker")(worker_command)
app.command("beat")(beat_command)
app.command("replay")(replay_command)
app.command("serve")(serve_command)
app.command("load")(load_command)
app.command("import")(import_command)
app.command("tokens")(tokens_command)
app.command("grades")(grades_command)
app.command("pipeline")(pipeline_command)
app.command("signals")(signals_command)
app.command("backtest")(backtest_command)
app.command("predict")(predict_command)
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(sync_app, name="sync")
app.add_typer(web_app, name="web")
app.add_typer(keys_app, name="keys")
app.command("mcp")(mcp_command)
app.add_typer(alerts_app, name="alerts")
