"""Every error the API returns is an RFC 9457 problem document; domain errors map here, once.

NotFound → 404          ValidationFailed → 422 (+ errors)     UserInputError → 400
DataUnavailable → 404   RateLimited → 429 (+ Retry-After)     TemporaryError → 503
ConfigError / other CoinlensError / anything unexpected → 500
request validation → 422 (+ errors per field)   unknown route → 404   wrong method → 405
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import sqlalchemy as sa
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from coinlens.api.schemas import ProblemDetails, ProblemItem
from coinlens.domain.errors import (
    CoinlensError,
    ConfigError,
    DataUnavailable,
    NotFound,
    RateLimited,
    TemporaryError,
    UserInputError,
    ValidationFailed,
)

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger(__name__)

STATUS_BY_ERROR: Mapping[type[CoinlensError], int] = {
    NotFound: 404,
    ValidationFailed: 422,
    UserInputError: 400,
    DataUnavailable: 404,
    RateLimited: 429,
    TemporaryError: 503,
    ConfigError: 500,
    CoinlensError: 500,
}

_DESCRIPTIONS = {
    400: "The request is wrong (problem+json)",
    404: "No such resource, or its data is not available (problem+json)",
    422: "Invalid parameters; `errors` lists each one (problem+json)",
    429: "Rate limited; honour Retry-After (problem+json)",
    503: "A dependency is unavailable; retry later (problem+json)",
}


class ProblemResponse(JSONResponse):
    """A JSON response with the problem+json media type."""

    media_type = PROBLEM_JSON


def status_for(exc: CoinlensError) -> int:
    """The HTTP status of a domain error: the entry of its closest mapped ancestor."""
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def problem_type(name: str) -> str:
    """A stable problem type URI from an error class name, e.g. NotFound → ...:not-found."""
    return "urn:coinlens:problem:" + re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def problem(
    request: Request,
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_: str = "about:blank",
    errors: list[ProblemItem] | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProblemResponse:
    """Build a problem+json response for `request`."""
    body = ProblemDetails(
        type=type_,
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )
    return ProblemResponse(body.model_dump(exclude_none=True), status, headers=dict(headers or {}))


async def _domain_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, CoinlensError)  # noqa: S101 - registered for CoinlensError only
    status = status_for(exc)
    errors = None
    headers: dict[str, str] = {}
    if isinstance(exc, ValidationFailed):
        errors = [ProblemItem(location=p.location, reason=p.reason) for p in exc.problems]
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(0, math.ceil(exc.retry_after)))
    detail = exc.detail
    if status >= 500:
        log.error("api.domain_error", error=type(exc).__name__, detail=exc.detail)
        detail = detail if status == 503 else "internal error; see the server log"
    return problem(
        request,
        status,
        title=exc.title,
        detail=detail,
        type_=problem_type(type(exc).__name__),
        errors=errors,
        headers=headers,
    )


async def _request_invalid(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    errors = [
        ProblemItem(location=".".join(str(part) for part in err["loc"]), reason=err["msg"])
        for err in exc.errors()
    ]
    detail = "; ".join(f"{e.location}: {e.reason}" for e in errors) or "invalid request"
    return problem(
        request,
        422,
        title=ValidationFailed.title,
        detail=detail,
        type_=problem_type(ValidationFailed.__name__),
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    detail = exc.detail
    if exc.status_code == 404 and detail == HTTPStatus.NOT_FOUND.phrase:
        detail = f"{request.url.path} is not a route of this API; see /docs"
    elif exc.status_code == 405 and detail == HTTPStatus.METHOD_NOT_ALLOWED.phrase:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem(request, exc.status_code, detail=detail, headers=exc.headers)


async def _database_unavailable(request: Request, exc: Exception) -> ProblemResponse:
    # The one place a driver-level failure (server down, connection lost) becomes an answer:
    # the same 503 a TemporaryError gets, without leaking the driver's message.
    log.warning("api.database_unavailable", path=request.url.path, error=str(exc))
    return problem(
        request,
        503,
        title=TemporaryError.title,
        detail="the database is unavailable; retry later",
        type_=problem_type(TemporaryError.__name__),
    )


async def _unexpected(request: Request, exc: Exception) -> ProblemResponse:
    log.exception("api.unhandled", path=request.url.path, error=type(exc).__name__)
    return problem(request, 500, detail="internal error; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers and document problems in the OpenAPI schema."""
    app.add_exception_handler(CoinlensError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sa.exc.OperationalError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        return _problem_media_types(build())

    app.openapi = openapi  # type: ignore[method-assign]


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem+json answers for `statuses`."""
    return {s: {"model": ProblemDetails, "description": _DESCRIPTIONS[s]} for s in statuses}


def _problem_media_types(schema: dict[str, Any]) -> dict[str, Any]:
    """Move 4xx/5xx bodies from application/json to application/problem+json (idempotent)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses: dict[str, Any] = operation.get("responses", {})
            for code, response in responses.items():
                content = response.get("content", {})
                if code[:1] in {"4", "5"} and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")
    return schema
