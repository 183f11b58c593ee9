"""API-only models: problem details, health answers and the query types the domain lacks.

Tokens, markets and candles are served as the domain models themselves; only shapes that
exist because of HTTP live here.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, TypeAdapter, WithJsonSchema
from pydantic import ValidationError as PydanticValidationError

from coinlens.domain.models import Timeframe
from coinlens.services.catalog import MAX_CANDLES_LIMIT, MAX_TOKENS_LIMIT

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = TypeAdapter(datetime)


def _parse_instant(value: object) -> date | datetime:
    """`YYYY-MM-DD` stays a date (a whole UTC day); anything else must be a datetime."""
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _DATE_ONLY.fullmatch(value):
        return date.fromisoformat(value)
    try:
        return _DATETIME.validate_python(value)
    except PydanticValidationError as exc:
        raise ValueError("expected a date (YYYY-MM-DD) or an ISO 8601 datetime") from exc


Instant = Annotated[
    date | datetime,
    PlainValidator(_parse_instant),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
            ]
        }
    ),
]
"""A query bound: a date covers its whole UTC day; a datetime without offset is UTC."""


class TokensQuery(BaseModel):
    """Query parameters of `GET /v1/tokens`."""

    model_config = ConfigDict(frozen=True)

    q: str | None = Field(
        default=None,
        max_length=64,
        description="Symbol or name contains this (any case)",
        examples=["eth"],
    )
    sector: str | None = Field(
        default=None, max_length=64, description="Exact sector (any case)", examples=["DeFi"]
    )
    cursor: str | None = Field(
        default=None, max_length=512, description="Opaque `next_cursor` of the previous page"
    )
    limit: int = Field(default=50, ge=1, le=MAX_TOKENS_LIMIT)


class OhlcvQuery(BaseModel):
    """Query parameters of `GET /v1/tokens/{symbol}/ohlcv`."""

    model_config = ConfigDict(frozen=True)

    timeframe: Timeframe = Field(default="1d", description="Candle length")
    start: Instant | None = Field(
        default=None, description="Inclusive; a date is its whole UTC day", examples=["2024-01-01"]
    )
    end: Instant | None = Field(
        default=None, description="Inclusive; a date is its whole UTC day", examples=["2024-12-31"]
    )
    market: str | None = Field(
        default=None,
        max_length=96,
        description="A market_key of the token; default: its primary market",
    )
    cursor: str | None = Field(
        default=None, max_length=512, description="Opaque `next_cursor` of the previous page"
    )
    limit: int = Field(default=MAX_CANDLES_LIMIT, ge=1, le=MAX_CANDLES_LIMIT)


class ProblemItem(BaseModel):
    """One invalid field: where it is (e.g. `query.limit`) and what is wrong."""

    location: str
    reason: str


class ProblemDetails(BaseModel):
    """An RFC 9457 problem document, served as `application/problem+json`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:coinlens:problem:not-found",
                    "title": "Not found",
                    "status": 404,
                    "detail": "no token with symbol 'NOPE'",
                    "instance": "/v1/tokens/NOPE",
                },
                {
                    "type": "urn:coinlens:problem:validation-failed",
                    "title": "Validation failed",
                    "status": 422,
                    "detail": "query.limit: Input should be less than or equal to 500",
                    "instance": "/v1/tokens",
                    "errors": [
                        {
                            "location": "query.limit",
                            "reason": "Input should be less than or equal to 500",
                        }
                    ],
                },
            ]
        }
    )

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[ProblemItem] | None = None


class Health(BaseModel):
    """Liveness: the process answers."""

    status: Literal["ok"] = "ok"
    version: str


class Readiness(BaseModel):
    """Readiness: the database answers and its schema is at the migration head."""

    status: Literal["ready"] = "ready"
    version: str
    database: str
    revision: str
    redis: Literal["up", "down", "not configured"] = Field(
        default="not configured",
        description="Rate-limit store; when down, limits fall back to per-process (still ready)",
    )
    freshness_seconds: dict[str, float] = Field(
        default_factory=dict, description="Per data source: age of its newest daily candle"
    )
