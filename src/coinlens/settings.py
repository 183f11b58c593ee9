"""Settings from COINLENS_* environment variables and `.env`, built by `get_settings()`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from coinlens.domain.errors import ConfigError

DEV_SECRET = "dev-only-insecure-secret"  # noqa: S105 - refused outside dev/test by check_safe


class PlanLimits(BaseModel):
    """One plan's quotas: requests per minute and per UTC day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_minute: int = Field(ge=1)
    per_day: int = Field(ge=1)


DEFAULT_PLANS: dict[str, PlanLimits] = {
    "anonymous": PlanLimits(per_minute=10, per_day=200),
    "free": PlanLimits(per_minute=60, per_day=10_000),
    "pro": PlanLimits(per_minute=600, per_day=250_000),
    "enterprise": PlanLimits(per_minute=6_000, per_day=5_000_000),
}


class Settings(BaseSettings):
    """Runtime configuration; injected, never read at import time."""

    model_config = SettingsConfigDict(
        env_prefix="COINLENS_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # `COINLENS_PORT=` (a value left blank in .env or the environment) means the default,
        # not an empty string that fails to parse or an empty secret
        env_ignore_empty=True,
    )

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Field(default=Path("var"), description="Where the SQLite file and caches live")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite")
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # --- API keys, plans and HTTP hygiene (issue 5) ---
    secret: SecretStr = Field(
        default=SecretStr(DEV_SECRET),
        description="Server secret for API-key HMACs; the dev default is refused in prod",
    )
    plans: dict[str, PlanLimits] = Field(
        default_factory=lambda: dict(DEFAULT_PLANS),
        description="Plan name → quotas; `anonymous` limits unauthenticated callers per IP",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Peers (IPs or CIDRs) whose X-Forwarded-For is believed",
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1, description="Request body size limit")
    require_keys: bool = Field(default=True, description="`/v1/*` needs an API key")
    response_cache_seconds: float = Field(
        default=2.0, ge=0, description="How long hot GET answers are served pre-serialised"
    )
    coingecko_url: str = Field(
        default="https://api.coingecko.com/api/v3", description="CoinGecko-shaped API base"
    )
    coingecko_api_key: str | None = None
    defillama_url: str = Field(default="https://api.llama.fi", description="DefiLlama TVL API")
    defillama_stablecoins_url: str = Field(
        default="https://stablecoins.llama.fi", description="DefiLlama stablecoins API"
    )
    etherscan_url: str = Field(
        default="https://api.etherscan.io/v2/api", description="Etherscan-shaped explorer API"
    )
    etherscan_api_key: str | None = None
    exchanges: str = Field(
        default="binance,coinbase,kraken,okx", description="Comma-separated exchanges to sync"
    )
    exchange_api_base: str | None = Field(
        default=None,
        description="Send all ccxt REST calls to {base}/{venue host}/... (local server, proxy)",
    )
    # --- alerts (issue 7) ---
    alerts_allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts, IPs or CIDRs alert webhooks/SMTP may reach although private/loopback",
    )
    alerts_max_rules_per_key: int = Field(default=100, ge=1, le=100_000)
    alerts_max_attempts: int = Field(default=8, ge=1, le=50, description="Delivery tries")
    alerts_backoff_base: float = Field(default=1.0, gt=0, description="First retry delay, s")
    alerts_backoff_cap: float = Field(default=300.0, gt=0, description="Longest retry delay, s")
    alerts_send_timeout: float = Field(default=10.0, gt=0, description="One send's timeout, s")
    alerts_public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base of token page links in alert messages"
    )

    web_private: bool = Field(
        default=False, description="Require the owner login for the research pages too"
    )
    compute_threads: int = Field(
        default=0,
        ge=0,
        le=1024,
        description="Threads per process for the analytics row kernels (0: every core); give "
        "each of M Celery workers cores/M (and NUMBA_NUM_THREADS the same for numba's own)",
    )

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
        if self.env == "prod" and self.secret.get_secret_value() in {DEV_SECRET, ""}:
            raise ConfigError("prod needs its own COINLENS_SECRET (the dev default is refused)")
        if "free" not in self.plans or "anonymous" not in self.plans:
            raise ConfigError("plans must define at least `free` and `anonymous`")


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides winning."""
    return Settings(**overrides)  # type: ignore[arg-type]
