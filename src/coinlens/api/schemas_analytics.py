"""Query parameters of the analytics endpoints (the answers are the domain models)."""

from __future__ import annotations

from datetime import date

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from coinlens.domain.analytics_models import SignalLabel
from coinlens.services.analytics_queries import MAX_INDICATOR_ROWS, MAX_SIGNALS_LIMIT

_CURSOR = "Opaque `next_cursor` of the previous page"


class IndicatorsQuery(BaseModel):
    """Query parameters of `GET /v1/tokens/{symbol}/indicators`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: date | None = Field(
        default=None, description="Inclusive UTC day", examples=["2024-01-01"]
    )
    end: date | None = Field(default=None, description="Inclusive UTC day", examples=["2024-12-31"])
    cursor: str | None = Field(default=None, max_length=512, description=_CURSOR)
    limit: int = Field(default=1_000, ge=1, le=MAX_INDICATOR_ROWS)


class PerformanceQuery(BaseModel):
    """Query parameters of `GET /v1/tokens/{symbol}/signals/performance`.

    Without any parameter the stored default run is served; otherwise it is computed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    fee: float | None = Field(
        default=None,
        ge=0,
        lt=0.5,
        # `fees` is the name `params` echoes back: a caller may pass either, not both
        validation_alias=AliasChoices("fee", "fees"),
        description="Fee per side as a fraction (default 0.001); also accepted as `fees`",
    )
    slippage: float | None = Field(
        default=None, ge=0, lt=0.5, description="Slippage per side as a fraction (default 0.0005)"
    )
    start: date | None = Field(default=None, description="First trading day (inclusive, UTC)")
    end: date | None = Field(default=None, description="Last trading day (inclusive, UTC)")


class SignalsQuery(BaseModel):
    """Query parameters of `GET /v1/signals`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signal: SignalLabel | None = Field(default=None, description="Only this current signal")
    sector: str | None = Field(default=None, max_length=64, description="Exact sector, any case")
    changed_within_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Only signals that changed in the last N analysed days (recent flips)",
    )
    cursor: str | None = Field(default=None, max_length=512, description=_CURSOR)
    limit: int = Field(default=50, ge=1, le=MAX_SIGNALS_LIMIT)
