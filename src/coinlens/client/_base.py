"""What the sync and async clients share: request building, the retry policy, error mapping.

The retry loop is written once, as a generator (`exchange`) that yields "send this request
after sleeping this long" steps and receives each outcome (a response or a transport
error). `Coinlens` drives it with `time.sleep` + `httpx.Client`, `AsyncCoinlens` with
`asyncio.sleep` + `httpx.AsyncClient`; neither has retry logic of its own.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import uuid
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from coinlens.client import errors

T = TypeVar("T")
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "coinlens-python"


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying again.

    429 waits what `Retry-After` says (when it says more than `max_wait`, the error is
    raised at once instead); 502/503/504 and connection failures back off exponentially
    with full jitter, `backoff_base * 2**attempt` capped at `backoff_cap` seconds.
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    max_wait: float = 60.0
    jitter: bool = True

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0-based) without a server hint."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2**attempt)
        return random.uniform(0, ceiling) if self.jitter else ceiling  # noqa: S311 - jitter, not crypto


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API operation: method, path, query, body and the model its answer parses into."""

    method: str
    path: str
    parse: TypeAdapter[T]
    params: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None
    expect_body: bool = True


def call(
    method: str,
    path: str,
    model: Any,
    *,
    params: Mapping[str, Any] | None = None,
    body: Any = None,
    expect_body: bool = True,
) -> Call[Any]:
    """A `Call` with None-valued query parameters dropped and dates rendered ISO 8601."""
    query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
    return Call(method, path, TypeAdapter(model), query, body, expect_body)


def _query_value(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def build_request(client: httpx.Client | httpx.AsyncClient, spec: Call[Any]) -> httpx.Request:
    """The httpx request of a call; POSTs carry an Idempotency-Key so retries are safe."""
    headers = {}
    if spec.method == "POST":
        headers["Idempotency-Key"] = uuid.uuid4().hex
    body = spec.body.model_dump(mode="json") if isinstance(spec.body, BaseModel) else spec.body
    return client.build_request(
        spec.method,
        spec.path,
        params=dict(spec.params),
        json=body if spec.body is not None else None,
        headers=headers,
    )


def retry_after(response: httpx.Response, now: dt.datetime | None = None) -> float | None:
    """Seconds from `Retry-After` (delta-seconds or an HTTP date); None when absent/invalid."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class Step:
    """Send `request` after sleeping `delay` seconds."""

    request: httpx.Request
    delay: float = 0.0


Outcome = httpx.Response | httpx.TransportError


def exchange(
    request: httpx.Request, policy: RetryPolicy
) -> Generator[Step, Outcome, httpx.Response]:
    """The retry loop: yields steps, receives outcomes, returns the final response or raises."""
    attempt, delay = 0, 0.0
    while True:
        outcome = yield Step(request, delay)
        if isinstance(outcome, httpx.TransportError):
            if attempt >= policy.max_retries:
                raise _connection_error(outcome)
            delay = policy.backoff(attempt)
        elif outcome.status_code in RETRY_STATUSES and attempt < policy.max_retries:
            hint = retry_after(outcome)
            if hint is not None and hint > policy.max_wait:
                raise error_for(outcome)
            delay = hint if hint is not None else policy.backoff(attempt)
        elif outcome.is_success:
            return outcome
        else:
            raise error_for(outcome)
        attempt += 1


def _connection_error(exc: httpx.TransportError) -> errors.APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return errors.APITimeoutError(f"the server did not answer in time: {exc}")
    return errors.APIConnectionError(f"could not reach the server: {type(exc).__name__}: {exc}")


def error_for(response: httpx.Response) -> errors.APIStatusError:
    """The SDK exception for an error response, with its problem document."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {"title": response.reason_phrase, "detail": response.text[:500] or None}
    rid = response.headers.get("x-request-id")
    cls = errors.error_class(response.status_code)
    if cls is errors.RateLimitError:
        return errors.RateLimitError(
            response.status_code, problem, request_id=rid, retry_after=retry_after(response)
        )
    return cls(response.status_code, problem, request_id=rid)


def parse(spec: Call[T], response: httpx.Response) -> T:
    """The typed answer (None for operations without a body)."""
    if not spec.expect_body or response.status_code == 204:
        return spec.parse.validate_python(None)
    return spec.parse.validate_json(response.content)


def client_headers(api_key: str | None) -> dict[str, str]:
    """Headers every request carries: the key (never in the URL) and the user agent."""
    from coinlens import __version__

    headers = {"User-Agent": f"{USER_AGENT}/{__version__}", "Accept": "application/json"}
    if api_key:
        headers["X-API-Key"] = api_key
    return headers


def default_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    """10 s to connect, 30 s per read unless told otherwise."""
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if timeout is None:
        return httpx.Timeout(30.0, connect=10.0)
    return httpx.Timeout(timeout)
