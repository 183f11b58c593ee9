"""The shared HTTP client of the JSON connectors, and the ONE table mapping httpx errors.

`JsonApi.get` is the only place an HTTP connector touches the network: it sends the request,
maps transport errors and HTTP statuses to domain errors with `HTTPX_ERRORS`/`status_error`,
decodes JSON (a malformed body is a `TemporaryError`: venues send truncated pages under load)
and retries by error class (see `retry`).
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from coinlens.connectors.retry import RetryPolicy, call_with_retry
from coinlens.domain.errors import (
    CoinlensError,
    ConfigError,
    DataUnavailable,
    NotFound,
    RateLimited,
    TemporaryError,
    UserInputError,
)

HTTPX_ERRORS: tuple[tuple[type[Exception], type[CoinlensError]], ...] = (
    (httpx.TimeoutException, TemporaryError),
    (httpx.UnsupportedProtocol, ConfigError),
    (httpx.InvalidURL, ConfigError),
    (httpx.TransportError, TemporaryError),
    (httpx.DecodingError, TemporaryError),
)
"""httpx exception → domain error, most specific first (the first match wins)."""

DEFAULT_RETRY_AFTER = 5.0
"""Seconds to back off on a 429 that does not say how long."""


def parse_retry_after(value: str | None, now: datetime | None = None) -> float:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); a default if absent."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def status_error(status: int, detail: str, headers: Mapping[str, str]) -> CoinlensError | None:
    """The domain error an HTTP status means, or None for success."""
    if status < 400:
        return None
    if status == 429 or status == 418:  # 418: Binance's "you ignored our 429s" ban
        return RateLimited(detail, parse_retry_after(headers.get("retry-after")))
    if status >= 500 or status in (408, 425):
        return TemporaryError(detail)
    if status in (401, 403):
        return ConfigError(f"{detail} (check the API key)")
    if status == 404:
        return NotFound(detail)
    if status in (400, 422):
        return UserInputError(detail)
    return DataUnavailable(detail)


def map_httpx_error(exc: Exception, what: str) -> CoinlensError:
    """The domain error for an httpx exception (via `HTTPX_ERRORS`)."""
    for kind, domain in HTTPX_ERRORS:
        if isinstance(exc, kind):
            return domain(f"{what}: {type(exc).__name__}: {exc}")
    return TemporaryError(f"{what}: {type(exc).__name__}: {exc}")


@dataclass
class JsonApi:
    """One JSON HTTP API (base URL, fixed params such as an API key) with retries."""

    name: str
    base_url: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 20.0
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    client: httpx.Client | None = None
    requests: int = 0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{self.name}: base URL {self.base_url!r} is not http(s)")
        if self.client is None:
            self.client = httpx.Client(
                timeout=self.timeout,
                headers={"user-agent": "coinlens", **self.headers},
                trust_env=False,
                follow_redirects=True,
            )

    def close(self) -> None:
        """Release the connection pool."""
        if self.client is not None:
            self.client.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET `path` and return decoded JSON, retried per the policy."""
        url = self.base_url.rstrip("/") + ("/" + path.lstrip("/") if path else "")
        query = {**self.params, **(params or {})}
        return call_with_retry(
            self.policy, f"{self.name} GET {path}", lambda: self._get(url, query)
        )

    def _get(self, url: str, query: Mapping[str, Any]) -> Any:
        assert self.client is not None  # noqa: S101 - set in __post_init__
        what = f"{self.name} GET {url.split('?')[0]}"
        self.requests += 1
        try:
            response = self.client.get(url, params=dict(query))
        except httpx.HTTPError as exc:
            raise map_httpx_error(exc, what) from exc
        error = status_error(
            response.status_code, f"{what}: HTTP {response.status_code}", response.headers
        )
        if error is not None:
            raise error
        try:
            return response.json()
        except ValueError as exc:
            raise TemporaryError(f"{what}: malformed JSON ({exc})") from exc
