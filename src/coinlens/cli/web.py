"""`coinlens web set-password`: set the dashboard owner's password (ends every session)."""

from __future__ import annotations

from typing import Annotated

import typer

from coinlens.cli.common import console, load_settings
from coinlens.cli.options import DataDir
from coinlens.domain.errors import UserInputError
from coinlens.web.auth import MIN_PASSWORD, set_password

web_app = typer.Typer(help="The web dashboard.", no_args_is_help=True)

Password = Annotated[
    str,
    typer.Option(
        "--password",
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        envvar="COINLENS_WEB_PASSWORD",
        help=f"At least {MIN_PASSWORD} characters (prompted when not given)",
    ),
]


@web_app.command("set-password")
def set_password_command(password: Password, data_dir: DataDir = None) -> None:
    """Set the owner password for the alerts and API-keys pages."""
    settings = load_settings(data_dir, None)
    try:
        path = set_password(settings, password)
    except UserInputError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"owner password stored (scrypt hash) in {path}; existing sessions ended")
