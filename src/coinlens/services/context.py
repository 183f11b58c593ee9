"""The runtime context handed to every use-case: settings and the database engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from coinlens.analytics import set_threads
from coinlens.settings import Settings
from coinlens.storage.db import make_engine, upgrade


@dataclass(frozen=True)
class Context:
    """What a use-case needs from the outside: configuration and storage."""

    settings: Settings
    engine: Engine

    @property
    def cache_dir(self) -> Path:
        """Where derived snapshots (e.g. the panel) are kept."""
        return self.settings.data_dir / "cache"


def build_context(settings: Settings, *, migrate: bool = True) -> Context:
    """Create the engine for `settings` and (by default) bring the schema to head."""
    settings.check_safe()
    set_threads(settings.compute_threads or None)
    engine = make_engine(settings.db_url)
    if migrate:
        upgrade(engine)
    return Context(settings=settings, engine=engine)
