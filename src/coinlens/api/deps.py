"""Typed FastAPI dependencies: routes ask for `CtxDep`, never build their own context."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, Response

from coinlens.domain.errors import ConfigError
from coinlens.services.context import Context


def get_ctx(request: Request) -> Context:
    """The service context the app's lifespan built."""
    ctx = getattr(request.app.state, "ctx", None)
    if not isinstance(ctx, Context):
        raise ConfigError("the API was started without its lifespan; no service context")
    return ctx


CtxDep = Annotated[Context, Depends(get_ctx)]


Symbol = Annotated[
    str, Path(min_length=1, max_length=32, description="Token symbol, any case", examples=["ETH"])
]


def link_next(request: Request, response: Response, cursor: str | None) -> None:
    """Advertise the next page as an RFC 8288 `Link: <…>; rel="next"` header."""
    if cursor is not None:
        url = request.url.include_query_params(cursor=cursor)
        response.headers["Link"] = f'<{url}>; rel="next"'
