"""One retry policy for every connector: by error class, backoff with jitter, Retry-After honoured.

Only `TemporaryError` (and its child `RateLimited`) is retried; every other domain error is
final. Each failed attempt is logged (structlog) with the delay chosen. Sleeping and the
random source are injectable so tests run instantly and deterministically.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from coinlens.domain.errors import RateLimited, TemporaryError

T = TypeVar("T")
log = structlog.get_logger("coinlens.connectors.retry")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry a temporary failure."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    """A venue asking us to wait longer than this is treated as final (we do not hang)."""
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rand: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, attempt: int, error: TemporaryError) -> float:
        """Seconds to wait after failed `attempt` (1-based): full jitter, floored by Retry-After."""
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        wait = backoff * (0.5 + self.rand() / 2)
        if isinstance(error, RateLimited):
            wait = max(wait, error.retry_after)
        return float(wait)


NO_RETRY = RetryPolicy(attempts=1)
"""For callers that handle failures themselves."""


def call_with_retry(policy: RetryPolicy, what: str, fn: Callable[[], T]) -> T:
    """Call `fn`, retrying TemporaryError per `policy`; the last error propagates."""
    attempt = 1
    while True:
        try:
            return fn()
        except TemporaryError as exc:
            too_long = isinstance(exc, RateLimited) and exc.retry_after > policy.max_retry_after
            if attempt >= policy.attempts or too_long:
                log.warning("giving up", call=what, attempt=attempt, error=exc.detail)
                raise
            wait = policy.delay(attempt, exc)
            log.info(
                "retrying",
                call=what,
                attempt=attempt,
                error_class=type(exc).__name__,
                error=exc.detail,
                wait_s=round(wait, 3),
            )
            policy.sleep(wait)
            attempt += 1


def retried(method: Callable[..., T]) -> Callable[..., T]:
    """Decorate a connector method: it is retried per `self.policy`, logged as Class.method."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        what = f"{type(self).__name__}.{method.__name__}"
        return call_with_retry(self.policy, what, lambda: method(self, *args, **kwargs))

    return wrapper
