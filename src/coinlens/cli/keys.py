"""`coinlens keys create|list|revoke|rotate`: manage API keys from the server's shell."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from coinlens.cli.common import cli_context, console, load_settings
from coinlens.cli.options import DataDir, DbUrl
from coinlens.services import keys as key_service

keys_app = typer.Typer(help="API keys: create, list, rotate, revoke.", no_args_is_help=True)

Account = Annotated[str, typer.Option("--account", help="The account (see `keys list`)")]


@keys_app.command("create")
def create(
    name: Annotated[str | None, typer.Option("--name", help="Who or what the key is for")] = None,
    email: Annotated[str | None, typer.Option("--email", help="Contact email")] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="read, alerts:write, admin (repeatable)")
    ] = None,
    plan: Annotated[str, typer.Option("--plan", help="Plan name from settings")] = "free",
    account: Annotated[
        str | None, typer.Option("--account", help="Add to this account (default: a new one)")
    ] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Create a key and print it — the only time the plaintext is shown."""
    spec = key_service.KeySpec(
        name=name,
        email=email,
        scopes=tuple(scope) if scope else key_service.DEFAULT_SCOPES,
        plan=plan,
        account=account,
    )
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        created = key_service.create_key(ctx, spec)
    k = created.key
    console.print(
        f"key id {k.id}, account {k.account}, plan {k.plan}, scopes {', '.join(k.scopes)}"
    )
    console.print("[bold]Store this key now; it is not shown again:[/bold]")
    console.print(created.plaintext, soft_wrap=True, highlight=False)


@keys_app.command("list")
def list_(account: Account, data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """The keys of an account (never their secrets)."""
    table = Table(title=f"keys of {account}")
    for col in ("id", "prefix", "name", "scopes", "plan", "created", "last used", "state"):
        table.add_column(col)
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        cursor: str | None = None
        while True:
            page = key_service.list_keys(ctx, account, cursor=cursor, limit=100)
            for k in page.items:
                state = "revoked" if k.revoked_at else "active"
                if k.expires_at and not k.revoked_at:
                    state = f"expires {k.expires_at:%Y-%m-%d %H:%M}"
                table.add_row(
                    str(k.id),
                    f"{key_service.PREFIX}{k.lookup_id}…",
                    k.name or k.email or "",
                    " ".join(k.scopes),
                    k.plan,
                    f"{k.created_at:%Y-%m-%d %H:%M}",
                    f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never",
                    state,
                )
            cursor = page.next_cursor
            if cursor is None:
                break
    console.print(table)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[int, typer.Argument(help="Key id")],
    account: Account,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Revoke a key at once."""
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        key = key_service.revoke_key(ctx, account, key_id)
    console.print(f"key {key.id} revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


@keys_app.command("rotate")
def rotate(
    key_id: Annotated[int, typer.Argument(help="Key id")],
    account: Account,
    overlap: Annotated[
        int, typer.Option("--overlap", min=0, help="Seconds the old key keeps working")
    ] = 86_400,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Replace a key; the old one works for --overlap seconds more."""
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        created = key_service.rotate_key(ctx, account, key_id, overlap=timedelta(seconds=overlap))
    console.print(f"new key id {created.key.id} (old key {key_id} expires in {overlap} s)")
    console.print("[bold]Store this key now; it is not shown again:[/bold]")
    console.print(created.plaintext, soft_wrap=True, highlight=False)
