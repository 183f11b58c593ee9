"""`/v1/keys`: self-serve creation, listing, rotation and revocation of API keys; `/v1/usage`.

A caller only ever sees its own account's keys: another account's key id is a 404, never a
403, so ids leak nothing. The plaintext key appears once, in the 201 answer that made it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from coinlens.api.deps import CtxDep
from coinlens.api.errors import problem_responses
from coinlens.api.security import PrincipalDep
from coinlens.domain.errors import Problem, ValidationFailed
from coinlens.services import keys as key_service
from coinlens.services.keys import ApiKey, CreatedKey, KeySpec, Principal

router = APIRouter(prefix="/v1/keys", tags=["keys"])
usage_router = APIRouter(prefix="/v1/usage", tags=["keys"])

Scope = Literal["read", "alerts:write", "admin"]
KeyId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The key's id (from the list)")]
_CURSOR = "Opaque `next_cursor` of the previous page"


class KeyCreate(BaseModel):
    """Body of `POST /v1/keys`: who the key is for (a name or an email) and what it may do."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "research notebook", "scopes": ["read"]}],
            # documented in the schema, not only enforced by the service
            "anyOf": [
                {"required": ["name"], "properties": {"name": {"type": "string"}}},
                {"required": ["email"], "properties": {"email": {"type": "string"}}},
            ],
        },
    )

    name: str | None = Field(default=None, min_length=1, max_length=128)
    email: str | None = Field(
        default=None,
        max_length=254,
        pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$",
    )
    scopes: list[Scope] | None = Field(
        default=None, description="Default: all three for a new account; the caller's otherwise"
    )
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class KeyRotate(BaseModel):
    """Body of `POST /v1/keys/{id}/rotate`: how long the old key keeps working."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"overlap_seconds": 86400}]}
    )

    overlap_seconds: int = Field(default=86_400, ge=0, le=30 * 86_400)


class KeyPublic(BaseModel):
    """A key as its owner sees it: never the secret, never the hash."""

    id: int
    prefix: str = Field(
        description="The key's public start, to recognise it", examples=["cl_live_k3j…"]
    )
    name: str | None
    email: str | None
    scopes: list[str]
    plan: str
    status: Literal["active", "revoked", "expired"]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_from: int | None

    @classmethod
    def of(cls, key: ApiKey) -> KeyPublic:
        """The public view of a stored key."""
        now = datetime.now(UTC)
        status: Literal["active", "revoked", "expired"] = "active"
        if key.revoked_at is not None:
            status = "revoked"
        elif key.expires_at is not None and key.expires_at <= now:
            status = "expired"
        return cls(
            id=key.id,
            prefix=f"{key_service.PREFIX}{key.lookup_id}…",
            name=key.name,
            email=key.email,
            scopes=list(key.scopes),
            plan=key.plan,
            status=status,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            rotated_from=key.rotated_from,
        )


class KeyCreated(KeyPublic):
    """A new key with its plaintext — shown this once; store it now."""

    key: str = Field(description="The API key; it cannot be shown again")

    @classmethod
    def of_created(cls, created: CreatedKey) -> KeyCreated:
        """The one answer that carries the plaintext."""
        return cls(**KeyPublic.of(created.key).model_dump(), key=created.plaintext)


class KeysPage(BaseModel):
    """One page of the caller's keys."""

    items: list[KeyPublic]
    next_cursor: str | None


class UsageRow(BaseModel):
    """Requests one key made on one UTC day."""

    day: date
    key_id: int
    prefix: str
    requests: int


class UsagePage(BaseModel):
    """Usage per key and day, oldest first."""

    items: list[UsageRow]
    next_cursor: str | None


def _caller(request: Request) -> Principal | None:
    principal = request.scope.get("state", {}).get("principal")
    return principal if isinstance(principal, Principal) else None


def _forget(request: Request, lookup_id: str) -> None:
    runtime = getattr(request.app.state, "api_runtime", None)
    if runtime is not None:
        runtime.verifier.forget(lookup_id)


@router.post(
    "",
    status_code=201,
    operation_id="create_key",
    summary="Create an API key (self-serve, or another key of your account)",
    responses=problem_responses(400, 422, 429),
)
def create_key(ctx: CtxDep, request: Request, body: KeyCreate) -> KeyCreated:
    """Without a key: a new account on the free plan. With an `admin` key: one more key
    of that account, with at most the caller's scopes and lifetime. The plaintext is in
    `key`, once."""
    caller = _caller(request)
    expires = (
        datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    )
    if caller is None:
        scopes: list[str] = list(body.scopes or key_service.DEFAULT_SCOPES)
        spec = KeySpec(body.name, body.email, scopes, "free", expires)
    else:
        scopes = list(body.scopes) if body.scopes else sorted(caller.scopes)
        if not set(scopes) <= caller.scopes:
            reason = "a key can only grant scopes its creator has"
            raise ValidationFailed(f"scopes: {reason}", [Problem("body.scopes", reason)])
        if caller.expires_at is not None:  # no more lifetime than its creator has
            expires = min(expires or caller.expires_at, caller.expires_at)
        spec = KeySpec(body.name, body.email, scopes, caller.plan, expires, caller.account)
    return KeyCreated.of_created(key_service.create_key(ctx, spec))


@router.get(
    "", operation_id="list_keys", summary="Your account's keys", responses=problem_responses(422)
)
def list_keys(
    ctx: CtxDep,
    principal: PrincipalDep,
    cursor: Annotated[str | None, Query(max_length=512, description=_CURSOR)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> KeysPage:
    """In creation order; follow `next_cursor`."""
    page = key_service.list_keys(ctx, principal.account, cursor=cursor, limit=limit)
    return KeysPage(items=[KeyPublic.of(k) for k in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{key_id}",
    operation_id="get_key",
    summary="One of your keys",
    responses=problem_responses(404),
)
def get_key(ctx: CtxDep, principal: PrincipalDep, key_id: KeyId) -> KeyPublic:
    """404 for ids of other accounts."""
    return KeyPublic.of(key_service.get_key(ctx, principal.account, key_id))


@router.post(
    "/{key_id}/rotate",
    status_code=201,
    operation_id="rotate_key",
    summary="Replace a key; the old one works for an overlap window",
    responses=problem_responses(400, 404, 422),
)
def rotate_key(
    ctx: CtxDep,
    request: Request,
    principal: PrincipalDep,
    key_id: KeyId,
    body: Annotated[KeyRotate | None, Body()] = None,
) -> KeyCreated:
    """The successor (plaintext once) keeps scopes and plan; the old key expires after
    `overlap_seconds` (default a day, 0 = at once)."""
    overlap = timedelta(seconds=(body or KeyRotate()).overlap_seconds)
    created = key_service.rotate_key(ctx, principal.account, key_id, overlap=overlap)
    old = key_service.get_key(ctx, principal.account, key_id)
    _forget(request, old.lookup_id)
    return KeyCreated.of_created(created)


@router.delete(
    "/{key_id}",
    operation_id="revoke_key",
    summary="Revoke a key now",
    responses=problem_responses(404),
)
def revoke_key(ctx: CtxDep, request: Request, principal: PrincipalDep, key_id: KeyId) -> KeyPublic:
    """Idempotent; a revoked key gets 401 `api-key-revoked` from then on."""
    key = key_service.revoke_key(ctx, principal.account, key_id)
    _forget(request, key.lookup_id)
    return KeyPublic.of(key)


@usage_router.get(
    "",
    operation_id="get_usage",
    summary="Requests per key and day",
    responses=problem_responses(422),
)
def get_usage(
    ctx: CtxDep,
    request: Request,
    response: Response,
    principal: PrincipalDep,
    start: Annotated[date | None, Query(description="First UTC day (default: 30 days ago)")] = None,
    end: Annotated[date | None, Query(description="Last UTC day (default: today)")] = None,
    cursor: Annotated[str | None, Query(max_length=512, description=_CURSOR)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> UsagePage:
    """Your account's metered requests (this process's pending counts are written first)."""
    runtime = getattr(request.app.state, "api_runtime", None)
    if runtime is not None:
        runtime.meter.flush(ctx)
    today = datetime.now(UTC).date()
    end = end or today
    start = start or end - timedelta(days=30)
    page = key_service.usage(
        ctx, principal.account, start=start, end=end, cursor=cursor, limit=limit
    )
    rows = [
        UsageRow(
            day=u.day,
            key_id=u.key_id,
            prefix=f"{key_service.PREFIX}{u.lookup_id}…",
            requests=u.requests,
        )
        for u in page.items
    ]
    return UsagePage(items=rows, next_cursor=page.next_cursor)
