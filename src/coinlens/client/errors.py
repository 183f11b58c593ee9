"""Exceptions of the Coinlens SDK, named by what the caller should do.

    CoinlensError
    ├── APIConnectionError          the server could not be reached (after the retries)
    │   └── APITimeoutError         it did not answer in time
    └── APIStatusError              it answered with a problem document (4xx/5xx)
        ├── BadRequestError         400: the request is wrong
        ├── AuthenticationError     401: no key, a bad, revoked or expired key
        ├── PermissionDeniedError   403: the key lacks the scope
        ├── NotFoundError           404: no such resource, or its data is not there yet
        ├── UnprocessableError      422: invalid parameters; `errors` lists each one
        ├── RateLimitError          429: quota used up; wait `retry_after` seconds
        └── ServerError             5xx: the server failed (503: retry later)

Every `APIStatusError` carries the RFC 9457 problem fields (`type`, `title`, `detail`),
the HTTP `status` and the `request_id` to quote when reporting an issue.
"""

from __future__ import annotations

from typing import Any


class CoinlensError(Exception):
    """Root of every error the SDK raises."""


class APIConnectionError(CoinlensError):
    """The request never got an answer (DNS, refused connection, reset)."""


class APITimeoutError(APIConnectionError):
    """The server did not answer within the timeout."""


class APIStatusError(CoinlensError):
    """The server answered with an error status and (usually) a problem document."""

    def __init__(
        self,
        status: int,
        problem: dict[str, Any],
        *,
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.problem = problem
        self.type: str = str(problem.get("type", "about:blank"))
        self.title: str = str(problem.get("title", ""))
        self.detail: str | None = problem.get("detail")
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        self.request_id = request_id
        message = f"{status} {self.title}".strip()
        if self.detail:
            message += f": {self.detail}"
        if request_id:
            message += f" (request id {request_id})"
        super().__init__(message)


class BadRequestError(APIStatusError):
    """400: the request is wrong (e.g. an API key in the URL)."""


class AuthenticationError(APIStatusError):
    """401: send a valid, active key."""


class PermissionDeniedError(APIStatusError):
    """403: the key lacks the scope this operation needs."""


class NotFoundError(APIStatusError):
    """404: no such resource, or its data is not available yet."""


class UnprocessableError(APIStatusError):
    """422: invalid parameters; `errors` has one entry per field."""


class RateLimitError(APIStatusError):
    """429: the plan's quota is used up; `retry_after` says for how long (seconds)."""

    def __init__(
        self,
        status: int,
        problem: dict[str, Any],
        *,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, problem, request_id=request_id)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the server failed; a 503 means a dependency is down, try again later."""


ERROR_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: UnprocessableError,
    429: RateLimitError,
}


def error_class(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    if status in ERROR_BY_STATUS:
        return ERROR_BY_STATUS[status]
    return ServerError if status >= 500 else APIStatusError
