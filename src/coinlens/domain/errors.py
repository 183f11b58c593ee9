"""The one error tree of Coinlens, named by what the caller must do.

    CoinlensError
    ├── UserInputError        the request or file is wrong: report it (HTTP 4xx)
    │   ├── NotFound          the thing asked for does not exist (HTTP 404)
    │   └── ValidationFailed  rows or fields failed validation; carries the reasons
    ├── DataUnavailable       the data is not there (yet): degrade, say so
    ├── TemporaryError        try again later (network, lock, busy service)
    │   └── RateLimited       back off; carries retry_after seconds
    └── ConfigError           the deployment is misconfigured: stop

Third-party exceptions are translated into these once, at the boundary that meets them.
"""

from __future__ import annotations

from dataclasses import dataclass


class CoinlensError(Exception):
    """Root of every error Coinlens raises on purpose."""

    title = "Coinlens error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UserInputError(CoinlensError):
    """The caller's input is wrong; fixing it is up to them."""

    title = "Invalid input"


class NotFound(UserInputError):
    """The requested resource does not exist."""

    title = "Not found"


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem: where it is and what is wrong."""

    location: str
    reason: str


class ValidationFailed(UserInputError):
    """Input failed validation; `problems` lists each place and reason."""

    title = "Validation failed"

    def __init__(self, detail: str, problems: list[Problem] | None = None) -> None:
        super().__init__(detail)
        self.problems = problems or []


class DataUnavailable(CoinlensError):
    """The data needed is missing or not computed yet; callers degrade."""

    title = "Data unavailable"


class TemporaryError(CoinlensError):
    """A transient failure; retrying later may succeed."""

    title = "Temporary failure"


class RateLimited(TemporaryError):
    """Too many requests; wait `retry_after` seconds."""

    title = "Rate limited"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ConfigError(CoinlensError):
    """The configuration is invalid; the process must stop."""

    title = "Configuration error"
