"""Settings from COINLENS_* environment variables and `.env`, built by `get_settings()`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from coinlens.domain.errors import ConfigError


class Settings(BaseSettings):
    """Runtime configuration; injected, never read at import time."""

    model_config = SettingsConfigDict(
        env_prefix="COINLENS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Field(default=Path("var"), description="Where the SQLite file and caches live")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite")
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql:// URL")
        return value

    @property
    def db_url(self) -> str:
        """The effective database URL (a SQLite file under data_dir by default)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'coinlens.db').resolve()}"

    def check_safe(self) -> None:
        """Refuse unsafe settings outside dev."""
        if self.env == "prod" and self.host == "0.0.0.0" and self.db_url.startswith("sqlite"):  # noqa: S104
            raise ConfigError("prod on 0.0.0.0 needs PostgreSQL, not the embedded SQLite file")


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides winning."""
    return Settings(**overrides)  # type: ignore[arg-type]
