"""Who is calling and what they may do: key extraction, scope rules, client IP, principal.

Keys come in `X-API-Key: cl_live_…` or `Authorization: Bearer cl_live_…`, never in the query
string (a request carrying one there is refused: URLs end up in logs and browser history).

Scope rules for `/v1/*` (one table, checked by the API middleware before any route runs):

    POST /v1/keys without a key        → none (self-serve: a new account and its first key)
    /v1/keys…  (with a key)            → admin   (manage the caller's own account's keys)
    GET/HEAD anything else             → read
    any other method                   → alerts:write
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, Request
from starlette.exceptions import HTTPException

from coinlens.services.keys import PREFIX, Principal

READ, WRITE, ADMIN = "read", "alerts:write", "admin"
_QUERY_KEY_NAMES = {"api_key", "apikey", "api-key", "x-api-key", "access_token", "key"}
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# every name above contains "key" or "token"; "%" may hide either (percent-encoded)
_PREFIX = PREFIX.lower().encode()

# reason → (status, problem type suffix, title)
AUTH_PROBLEMS: dict[str, tuple[int, str, str]] = {
    "missing": (401, "api-key-missing", "API key required"),
    "malformed": (401, "api-key-malformed", "Malformed API key"),
    "invalid": (401, "api-key-invalid", "Invalid API key"),
    "revoked": (401, "api-key-revoked", "API key revoked"),
    "expired": (401, "api-key-expired", "API key expired"),
    "scope": (403, "insufficient-scope", "Insufficient scope"),
    "in-query": (400, "api-key-in-query", "API key in the query string"),
}


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key in `X-API-Key` or `Authorization: Bearer`, if any (X-API-Key wins)."""
    raw = headers.get(b"x-api-key")
    if raw is not None:
        return raw.decode("latin-1").strip()
    auth = headers.get(b"authorization")
    if auth is not None:
        scheme, _, value = auth.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
    return None


def key_in_query(query_string: bytes) -> bool:
    """Whether the query string carries something that looks like a key."""
    if not query_string:
        return False
    lowered = query_string.lower()
    if not (b"key" in lowered or b"token" in lowered or b"%" in lowered or _PREFIX in lowered):
        return False  # nothing key-like, even once decoded: skip parsing (most requests)
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name.lower() in _QUERY_KEY_NAMES or PREFIX in value or PREFIX in name:
            return True
    return False


def required_scope(method: str, path: str, *, has_key: bool) -> str | None:
    """The scope a `/v1` request needs (None: anonymous self-serve key creation)."""
    if path == "/v1/keys" or path.startswith("/v1/keys/"):
        if path == "/v1/keys" and method == "POST" and not has_key:
            return None
        return ADMIN
    return READ if method in _SAFE_METHODS else WRITE


@lru_cache(maxsize=64)
def _networks(
    trusted: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def _is_trusted(address: str, trusted: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(trusted))


def client_ip(peer: str, forwarded_for: bytes | None, trusted: Sequence[str]) -> str:
    """The caller's address: the peer, unless the peer is a trusted proxy.

    Behind trusted proxies, X-Forwarded-For is read right to left and the first address
    that is not itself a trusted proxy is the client; from anyone else the header is
    ignored, so a spoofed value cannot buy a fresh rate-limit bucket.
    """
    trusted_t = tuple(trusted)
    if not forwarded_for or not trusted_t or not _is_trusted(peer, trusted_t):
        return peer
    hops = [h.strip() for h in forwarded_for.decode("latin-1").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted_t):
            return hop
    return hops[0] if hops else peer


def get_principal(request: Request) -> Principal:
    """The verified caller of a route that needs one (set by the API middleware)."""
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise HTTPException(
            401, "this operation needs an API key (X-API-Key)", {"WWW-Authenticate": "Bearer"}
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def security_schemes() -> dict[str, Any]:
    """OpenAPI security schemes: the two ways of presenting a key."""
    return {
        "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "BearerKey": {"type": "http", "scheme": "bearer", "bearerFormat": "cl_live_…"},
    }


def _endpoint_name(operation_id: str, path: str, method: str) -> str | None:
    """The function name inside FastAPI's default id `{name}{path}_{method}` (\\W → _)."""
    suffix = re.sub(r"\W", "_", path) + "_" + method
    if operation_id.endswith(suffix) and len(operation_id) > len(suffix):
        return operation_id[: -len(suffix)]
    return None


def _operation_ids(schema: dict[str, Any]) -> dict[str, Any]:
    """Name operations after their endpoint function when that name is unique (stable ids)."""
    named = [
        (op, _endpoint_name(op.get("operationId", ""), path, method))
        for path, ops in schema.get("paths", {}).items()
        for method, op in ops.items()
    ]
    counts: dict[str, int] = {}
    for _, name in named:
        if name:
            counts[name] = counts.get(name, 0) + 1
    for op, name in named:
        if name and counts[name] == 1:
            op["operationId"] = name
    return schema


_GATE_RESPONSES = {
    "400": "A key sent in the query string (refused: keys belong in headers)",
    "401": "Missing, malformed, invalid, revoked or expired API key",
    "403": "The key lacks the scope this operation needs",
    "413": "Request body over the size limit",
    "422": "A query parameter the operation does not declare (or an invalid one)",
    "429": "Rate limited: see Retry-After and the RateLimit headers",
}


def _problem_content(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The problem+json content block some route already documents (reused for the gate)."""
    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            for response in op.get("responses", {}).values():
                content = response.get("content", {}).get("application/problem+json")
                ref = str((content or {}).get("schema", {}).get("$ref", ""))
                if content and not ref.endswith("/HTTPValidationError"):
                    return {"application/problem+json": content}
    return None


def _document_gate_responses(op: dict[str, Any], problem: dict[str, Any] | None) -> None:
    """Every `/v1` operation can be refused by the key/limit gate in front of it: say so."""
    responses = op.setdefault("responses", {})
    for code, text in _GATE_RESPONSES.items():
        if code not in responses:
            responses[code] = {"description": text, **({"content": problem} if problem else {})}


def _problem_422(op: dict[str, Any], problem: dict[str, Any] | None) -> None:
    """FastAPI documents 422 as its own HTTPValidationError; ours is problem+json."""
    response = op.get("responses", {}).get("422")
    if not (problem and response):
        return
    for media in response.get("content", {}).values():
        if str(media.get("schema", {}).get("$ref", "")).endswith("/HTTPValidationError"):
            response["content"] = problem
            return


def install_openapi(app: FastAPI) -> None:
    """Document the key schemes, require them on `/v1` operations, and stabilise operationIds."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = security_schemes()
        problem = _problem_content(schema)
        for path, ops in schema.get("paths", {}).items():
            for method, op in ops.items():
                _problem_422(op, problem)
                if path.startswith("/v1/"):
                    _document_gate_responses(op, problem)
                    op["security"] = [{"ApiKeyHeader": []}, {"BearerKey": []}]
                    if (path, method) == ("/v1/keys", "post"):
                        op["security"].append({})  # self-serve: no key needed
        app.openapi_schema = _operation_ids(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
