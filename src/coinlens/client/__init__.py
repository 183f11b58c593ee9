"""The Coinlens Python SDK: `Coinlens` (sync) and `AsyncCoinlens` (asyncio) over HTTP.

A standalone client: it talks to a Coinlens server through its public API only and never
imports the server's own packages (an import-linter contract keeps it that way).

    from coinlens.client import Coinlens

    with Coinlens("http://127.0.0.1:8000", api_key="cl_live_…") as cl:
        for token in cl.iter_tokens(sector="DeFi"):
            print(token.symbol, cl.signal(token.symbol).signal)

See docs/sdk.md.
"""

from coinlens.client._base import RetryPolicy
from coinlens.client.aio import AsyncCoinlens
from coinlens.client.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CoinlensError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableError,
)
from coinlens.client.sync import Coinlens

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncCoinlens",
    "AuthenticationError",
    "BadRequestError",
    "Coinlens",
    "CoinlensError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "UnprocessableError",
]
