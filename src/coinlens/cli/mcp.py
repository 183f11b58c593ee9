"""`coinlens mcp`: serve the MCP tools over stdio (default) or streamable HTTP."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

import structlog
import typer
from rich.markup import escape

from coinlens.api.logging import stderr_logger
from coinlens.cli.common import cli_context, err_console, http_url, load_settings
from coinlens.cli.options import DataDir, DbUrl

Transport = Literal["stdio", "http"]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mcp_command(
    data_dir: DataDir = None,
    database_url: DbUrl = None,
    transport: Annotated[
        str, typer.Option("--transport", "-t", help="stdio (for a local assistant) or http")
    ] = "stdio",
    host: Annotated[str, typer.Option(help="HTTP bind address (loopback only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port", min=1, max=65535)] = 8765,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="COINLENS_MCP_API_KEY",
            help="Key (alerts:write scope) that owns alerts the assistant creates",
        ),
    ] = None,
) -> None:
    """Serve Coinlens research tools to AI assistants (Model Context Protocol)."""
    if transport not in ("stdio", "http"):
        err_console.print("[red]error:[/red] --transport must be stdio or http")
        raise typer.Exit(2)
    if transport == "http" and not _loopback(host):
        # The HTTP transport has no authentication of its own: keep it on this machine.
        err_console.print("[red]error:[/red] the MCP HTTP transport binds to loopback only")
        raise typer.Exit(2)
    # stdout belongs to the JSON-RPC stream under stdio: every log line goes to stderr.
    structlog.configure(logger_factory=stderr_logger)  # sys.stderr as it is when a line is logged
    from coinlens.mcp.server import build_server

    settings = load_settings(data_dir, database_url)
    if settings.database_url is None and not settings.data_dir.is_dir():
        # an assistant would otherwise get answers from a new, empty database
        err_console.print(
            f"[red]error:[/red] data directory {escape(str(settings.data_dir))} does not exist "
            "(run `coinlens load` there first, or pass --data-dir / --database-url)"
        )
        raise typer.Exit(2)
    with cli_context(settings) as ctx:
        server = build_server(ctx, api_key=api_key)
        if transport == "stdio":
            server.run("stdio")
        else:
            err_console.print(f"MCP (streamable HTTP) on {http_url(host, port)}/mcp")
            server.run("streamable-http", host=host, port=port)
