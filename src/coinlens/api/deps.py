"""Typed FastAPI dependencies: routes ask for `CtxDep`, never build their own context."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo
from starlette.requests import HTTPConnection

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


_DECLARED: dict[int, tuple[APIRoute, frozenset[str]]] = {}


def _query_params(dependant: Dependant) -> Iterator[tuple[str, FieldInfo]]:
    for param in dependant.query_params:
        yield param.alias, param.field_info
    for sub in dependant.dependencies:
        yield from _query_params(sub)


def _accepted(alias: str, info: FieldInfo) -> Iterator[str]:
    choices = (
        info.validation_alias.choices
        if isinstance(info.validation_alias, AliasChoices)
        else [alias]
    )
    return (choice for choice in choices if isinstance(choice, str))


def _declared_query(route: APIRoute) -> frozenset[str]:
    """Every query name `route` accepts, the fields of query models included (walked once per
    route: routes live as long as the app, and they are not hashable)."""
    known = _DECLARED.get(id(route))
    if known is not None and known[0] is route:
        return known[1]
    names: set[str] = set()
    for alias, param in _query_params(route.dependant):
        model = param.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for name, info in model.model_fields.items():
                names.update(_accepted(info.alias or name, info))
        else:
            names.update(_accepted(alias, param))
    _DECLARED[id(route)] = (route, frozenset(names))
    return _DECLARED[id(route)][1]


async def known_query(connection: HTTPConnection) -> None:
    """Refuse `/v1` query parameters the operation does not declare, as unknown body fields
    are: a misspelt filter must not be silently ignored (async: no thread for a few lookups)."""
    route = connection.scope.get("route")
    if not (isinstance(route, APIRoute) and connection.url.path.startswith("/v1/")):
        return
    declared = _declared_query(route)
    unknown = [
        {"type": "extra_forbidden", "loc": ("query", name), "msg": "Extra inputs are not permitted",
         "input": value}
        for name, value in connection.query_params.multi_items()
        if name not in declared
    ]  # fmt: skip
    if unknown:
        raise RequestValidationError(unknown)
