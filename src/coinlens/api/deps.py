"""Typed FastAPI dependencies: routes ask for `CtxDep`, never build their own context."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from coinlens.domain.errors import ConfigError
from coinlens.services.context import Context


def get_ctx(request: Request) -> Context:
    """The service context the app's lifespan built."""
    ctx = getattr(request.app.state, "ctx", None)
    if not isinstance(ctx, Context):
        raise ConfigError("the API was started without its lifespan; no service context")
    return ctx


CtxDep = Annotated[Context, Depends(get_ctx)]
