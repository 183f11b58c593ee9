"""Helpers every CLI command shares: settings, context, error reporting."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
import typer
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.markup import escape

from coinlens.domain.errors import CoinlensError, ConfigError, Problem, ValidationFailed
from coinlens.services.context import Context, build_context
from coinlens.settings import Settings, get_settings
from coinlens.storage.db import database_error, sqlite_path
from coinlens.storage.writer_lock import writer_lock

console = Console()
err_console = Console(stderr=True)
M = TypeVar("M", bound=BaseModel)


def load_settings(data_dir: Path | None = None, database_url: str | None = None) -> Settings:
    """Settings from the environment, with command-line options winning.

    A setting that does not parse or validate is one line naming its variable (exit 2),
    never a traceback and never the value (a database URL carries its password)."""
    overrides: dict[str, object] = {}
    if data_dir is not None and str(data_dir):
        overrides["data_dir"] = data_dir
    if database_url:  # `COINLENS_DATABASE_URL=` left blank: the default, like any setting
        overrides["database_url"] = database_url
    try:
        return get_settings(**overrides)
    except PydanticValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            where = "COINLENS_" + str(err["loc"][0]).upper() if err["loc"] else "settings"
            inner = ".".join(str(part) for part in err["loc"][1:])
            reason = err["msg"].removeprefix("Value error, ")
            err_console.print(
                f"[red]error:[/red] setting {where}{f' ({inner})' if inner else ''}: "
                f"{escape(reason)}"
            )
    except SettingsError as exc:  # a value pydantic-settings cannot decode (JSON settings)
        field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else ""
        cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
        where = f"COINLENS_{field.upper()}" if field else "a setting"
        err_console.print(f"[red]error:[/red] setting {where} is not valid JSON{escape(cause)}")
    raise typer.Exit(2)


def validation_failed(exc: PydanticValidationError) -> ValidationFailed:
    """A pydantic error as the domain's, one problem per field (never echoing the input)."""
    problems = [
        Problem(
            ".".join(str(part) for part in err["loc"]) or "input",
            err["msg"].removeprefix("Value error, "),
        )
        for err in exc.errors(include_url=False, include_input=False)
    ]
    first = problems[0] if problems else Problem("input", "invalid")
    detail = f"{first.location}: {first.reason}" if len(problems) <= 1 else "invalid input"
    return ValidationFailed(detail, problems)


def parse_model(model: type[M], data: Mapping[str, object]) -> M:
    """`model` validated from `data` (lax: text becomes the field's type); ValidationFailed."""
    try:
        return model.model_validate(dict(data))
    except PydanticValidationError as exc:
        raise validation_failed(exc) from None  # the pydantic chain would repeat the input


def report_error(exc: CoinlensError) -> None:
    """Print a domain error as `error: …` (and its problems), markup-safe."""
    err_console.print(f"[red]error:[/red] {escape(exc.detail)}")
    if isinstance(exc, ValidationFailed):
        for problem in exc.problems[:50]:
            line = f"{problem.location}: {problem.reason}"
            if line != exc.detail:  # a single problem is usually the detail itself
                err_console.print(f"  {escape(line)}")


@contextmanager
def user_errors(code: int = 1, *, database_url: str | None = None) -> Iterator[None]:
    """Domain errors raised inside become a readable message and exit `code`; so do the
    database's own when `database_url` is given (busy, away, a damaged SQLite file):
    a misconfiguration exits 2."""
    try:
        yield
    except PydanticValidationError as exc:
        report_error(validation_failed(exc))
        raise typer.Exit(code) from None
    except CoinlensError as exc:
        report_error(exc)
        raise typer.Exit(code) from exc
    except sa.exc.DBAPIError as exc:
        problem = database_error(exc, database_url) if database_url else None
        if problem is None:
            raise
        report_error(problem)
        raise typer.Exit(2 if isinstance(problem, ConfigError) else code) from exc


@contextmanager
def cli_context(settings: Settings, *, migrate: bool = True) -> Iterator[Context]:
    """A service context whose domain errors become a readable message and exit code."""
    with user_errors(2, database_url=settings.db_url):
        ctx = build_context(settings, migrate=migrate)
    try:
        with user_errors(1, database_url=settings.db_url):
            yield ctx
    finally:
        ctx.engine.dispose()


@contextmanager
def writing(settings: Settings, what: str) -> Iterator[None]:
    """Hold the database's writer lock (`storage.writer_lock`) inside the block: a second
    `coinlens up`/`load`/`pipeline`/`import` on the same SQLite file says whom it waits
    for, waits, then runs (finding the first one's work done)."""

    def waiting(holder: str) -> None:
        err_console.print(
            f"waiting: {escape(holder)} is writing to {sqlite_path(settings.db_url)}; "
            "this starts when it has finished (Ctrl-C to stop)"
        )

    with ExitStack() as stack:
        with user_errors(2):
            stack.enter_context(writer_lock(settings.db_url, what, waiting))
        yield


def http_url(host: str, port: int) -> str:
    """`http://host:port`, an IPv6 address in brackets (`http://[::1]:8765`)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def plural(n: int, noun: str) -> str:
    """'1 token', '2 tokens' (nouns whose plural ends in -s)."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def signed_pct(x: float, digits: int = 1) -> str:
    """A change as a signed percent ('+3.5%', '-0.4%'); one that rounds to zero is '0.0%'."""
    text = f"{x:+.{digits}%}"
    return text[1:] if float(text[1:-1]) == 0 else text
