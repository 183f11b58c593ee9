"""Helpers every CLI command shares: settings, context, error reporting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from coinlens.domain.errors import CoinlensError, ValidationFailed
from coinlens.services.context import Context, build_context
from coinlens.settings import Settings, get_settings

console = Console()
err_console = Console(stderr=True)


def load_settings(data_dir: Path | None = None, database_url: str | None = None) -> Settings:
    """Settings from the environment, with command-line options winning."""
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    return get_settings(**overrides)


@contextmanager
def cli_context(settings: Settings, *, migrate: bool = True) -> Iterator[Context]:
    """A service context whose domain errors become a readable message and exit code."""
    try:
        ctx = build_context(settings, migrate=migrate)
    except CoinlensError as exc:
        err_console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(2) from exc
    try:
        yield ctx
    except ValidationFailed as exc:
        err_console.print(f"[red]error:[/red] {exc.detail}")
        for problem in exc.problems[:50]:
            line = f"{problem.location}: {problem.reason}"
            if line != exc.detail:  # a single problem is usually the detail itself
                err_console.print(f"  {line}")
        raise typer.Exit(1) from exc
    except CoinlensError as exc:
        err_console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from exc
    finally:
        ctx.engine.dispose()


def plural(n: int, noun: str) -> str:
    """'1 token', '2 tokens' (nouns whose plural ends in -s)."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def signed_pct(x: float, digits: int = 1) -> str:
    """A change as a signed percent ('+3.5%', '-0.4%'); one that rounds to zero is '0.0%'."""
    text = f"{x:+.{digits}%}"
    return text[1:] if float(text[1:-1]) == 0 else text
