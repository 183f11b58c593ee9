"""Option types shared by CLI commands (Annotated aliases, env-var aware)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", envvar="COINLENS_DATA_DIR", help="Data directory")
]
DbUrl = Annotated[
    str | None, typer.Option("--database-url", envvar="COINLENS_DATABASE_URL", help="Database URL")
]
