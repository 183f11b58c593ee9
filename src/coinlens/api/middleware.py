"""The API's one ASGI middleware: request ids, auth, scopes, rate limits, caching, metrics, logs.

For `/v1/*` (every router, including ones added later) in this order: refuse keys in the
query string, refuse oversized bodies, verify the key (format and checksum before any
database access), check the route's scope, apply the plan's rate limits, meter usage,
honour `Idempotency-Key` on POST, then answer — from the pre-serialised cache when the
endpoint is hot — with `ETag`, `Cache-Control`, `RateLimit*` and `X-Request-ID` headers.
Every path gets a request id, a latency observation and one JSON access-log line.
A `HEAD` request is answered as the `GET` it asks about — through the same gate, cache and
headers (`ETag`, `RateLimit*`, `Content-Length`) — with the body left out (RFC 9110 9.3.2).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coinlens.api.caching import (
    CachedResponse,
    ResponseCache,
    cache_control_for,
    etag_matches,
    etag_of,
    idempotent,
)
from coinlens.api.errors import problem, problem_type
from coinlens.api.logging import REQUEST_ID, configure_logging, redact_keys, request_id_from
from coinlens.api.metrics import ApiMetrics
from coinlens.api.metrics import router as metrics_router
from coinlens.api.security import (
    AUTH_PROBLEMS,
    client_ip,
    install_openapi,
    key_in_query,
    presented_key,
    required_scope,
)
from coinlens.services.context import Context
from coinlens.services.keys import (
    KeyRejected,
    KeyVerifier,
    Principal,
    UsageMeter,
    parse_key,
)
from coinlens.services.ratelimit import Decision, Limit, RateLimiter, plan_limits
from coinlens.settings import Settings

log = structlog.get_logger("coinlens.api.access")
FLUSH_EVERY = 5.0  # seconds between usage-counter writes


class BodyTooLarge(HTTPException):
    """A streamed request body grew past the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


@dataclass
class Runtime:
    """Per-lifespan state of the middleware: verifier, limiter, usage meter."""

    ctx: Context
    verifier: KeyVerifier
    limiter: RateLimiter
    meter: UsageMeter
    flusher: asyncio.Future[None] | None = None


class ApiMiddleware:
    """See the module docstring; one instance per app."""

    def __init__(
        self, app: ASGIApp, settings: Settings, metrics: ApiMetrics, cache: ResponseCache
    ) -> None:
        self.app, self.settings, self.metrics, self.cache = app, settings, metrics, cache
        self.runtime: Runtime | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._policies: dict[tuple[str, str], tuple[bytes, bytes, bytes]] = {}
        self._limits: dict[str, tuple[Limit, ...]] = {}
        self._loading: dict[str, asyncio.Future[Any]] = {}
        self._log_requests = logging.getLevelName(settings.log_level) <= logging.INFO
        # read at scrape time only: no cost per request
        metrics.ratelimit_backend.set_function(self._redis_up)

    def _redis_up(self) -> float:
        runtime = self.runtime
        return 1.0 if runtime is not None and runtime.limiter.backend == "redis" else 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
        else:
            await self.app(scope, receive, send)

    # --- lifecycle ---------------------------------------------------------------------

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.shutdown()
            return message

        return wrapped

    async def shutdown(self) -> None:
        """Write pending usage and close Redis (graceful shutdown)."""
        runtime, self.runtime = self.runtime, None
        if runtime is not None:
            if runtime.flusher is not None:
                runtime.flusher.cancel()
                await asyncio.gather(runtime.flusher, return_exceptions=True)
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await run_in_threadpool(runtime.meter.flush, runtime.ctx)
            await runtime.limiter.close()

    def runtime_for(self, scope: Scope) -> Runtime | None:
        """The runtime, built on the first request once the lifespan made a context."""
        if self.runtime is None:
            ctx = getattr(scope["app"].state, "ctx", None)
            if not isinstance(ctx, Context):
                return None
            self.runtime = Runtime(
                ctx,
                KeyVerifier(ctx),
                RateLimiter(ctx.settings.redis_url, on_fallback=self._on_fallback),
                UsageMeter(),
            )
            # every FLUSH_EVERY s, also when no request comes: an idle worker's counts
            # would otherwise wait for its next request (or its shutdown)
            self.runtime.flusher = asyncio.ensure_future(self._flush_every(self.runtime))
            scope["app"].state.api_runtime = self.runtime
        return self.runtime

    def _on_fallback(self, error: str) -> None:
        self.metrics.ratelimit_fallbacks.labels(error=error).inc()

    # --- every request -----------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        method = scope["method"]
        if method == "HEAD":  # a copy: the server still knows the request was a HEAD
            scope, send = {**scope, "method": "GET"}, _without_body(send)
        headers = dict(scope["headers"])
        rid = request_id_from(headers.get(b"x-request-id"))
        bound = REQUEST_ID.set(rid)
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", rid.encode())]
        status = [0]  # 0 until the response starts

        async def send_with_extras(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            if scope["path"].startswith("/v1/") or scope["path"] == "/v1":
                await self._v1(scope, receive, send_with_extras, headers, extra)
            else:
                await self._other(scope, receive, send_with_extras, headers)
        except Exception as exc:
            if not status[0]:  # failed in this middleware, before any answer
                await _server_error(scope, receive, send_with_extras, exc)
            raise
        finally:
            self._observe(scope, method, status[0] or 500, time.perf_counter() - start)
            REQUEST_ID.reset(bound)

    def _observe(self, scope: Scope, method: str, status: int, elapsed: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or scope.get("coinlens.route") or "unmatched"
        self.metrics.http.observe(template, method, status, elapsed)
        if not self._log_requests:  # below the configured level: skip building the event
            return
        principal = scope.get("state", {}).get("principal")
        log.info(
            "http.request",
            method=method,
            path=redact_keys(scope["path"]),  # a key pasted into the path is not logged
            route=template,
            status=status,
            ms=round(elapsed * 1000, 3),
            key=principal.lookup_id if isinstance(principal, Principal) else None,
        )

    # --- /v1 -------------------------------------------------------------------------------

    async def _v1(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        refusal = self._precheck(scope, headers)
        runtime = self.runtime_for(scope)
        if refusal is None and runtime is not None:
            refusal = await self._admit(scope, headers, extra, runtime)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if _may_have_body(scope, headers):
            receive = self._limit_body(receive)
        idem = headers.get(b"idempotency-key")
        if scope["method"] == "POST" and idem is not None and runtime is not None:
            principal = scope.get("state", {}).get("principal")
            owner = f"key:{principal.key_id}" if principal else f"ip:{scope['coinlens.client']}"
            await idempotent(self.app, scope, receive, send, runtime.ctx, owner, idem)
        else:
            await self._serve(scope, receive, send, headers)

    async def _other(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]
    ) -> None:
        """Pages, their forms, /metrics…: the same body limit as `/v1`, so an anonymous POST
        (a form is parsed before its CSRF check) cannot stream an upload of any size."""
        refusal = self._too_large(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if _may_have_body(scope, headers):
            receive = self._limit_body(receive)
        await self.app(scope, receive, send)

    def _precheck(self, scope: Scope, headers: dict[bytes, bytes]) -> ASGIApp | None:
        if key_in_query(scope["query_string"]):
            return self._auth_problem(scope, "in-query", "send the key in X-API-Key, not the URL")
        return self._too_large(scope, headers)

    def _too_large(self, scope: Scope, headers: dict[bytes, bytes]) -> ASGIApp | None:
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.settings.max_body_bytes:
            return problem(
                Request(scope),
                413,
                detail=f"request body larger than {self.settings.max_body_bytes} bytes",
                type_=problem_type("PayloadTooLarge"),
            )
        return None

    async def _admit(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        extra: list[tuple[bytes, bytes]],
        runtime: Runtime,
    ) -> ASGIApp | None:
        """Authenticate, authorise and rate-limit; a refusal to send, or None to go on."""
        method, path = scope["method"], scope["path"]
        raw = presented_key(headers)
        principal: Principal | None = None
        if raw is not None:
            try:
                principal = self._recently_verified(runtime, raw)
                if principal is None:
                    principal = await self._verify(runtime, raw)
            except KeyRejected as exc:
                return self._auth_problem(scope, exc.reason, exc.detail)
            except sa.exc.DBAPIError as exc:  # the key store is down: a 503, as for any route
                log.warning("auth.database_unavailable", error=type(exc.orig).__name__)
                return problem(
                    Request(scope),
                    503,
                    title="Temporary failure",
                    detail="the database is unavailable; retry later",
                    type_=problem_type("TemporaryError"),
                )
        elif self.settings.require_keys and required_scope(method, path, has_key=False):
            return self._auth_problem(scope, "missing", "send a key in X-API-Key")
        need = required_scope(method, path, has_key=principal is not None)
        if principal is not None and need is not None and need not in principal.scopes:
            return self._auth_problem(scope, "scope", f"this operation needs the {need!r} scope")
        decision = await self._limit(runtime, scope, headers, principal)
        extra.extend(self._rate_headers(principal, decision))
        if not decision.allowed:
            self.metrics.rate_limited.labels(principal.plan if principal else "anonymous").inc()
            wait = max(1, math.ceil(decision.retry_after))
            return problem(
                Request(scope),
                429,
                title="Rate limited",
                detail=f"{decision.binding.limit.name} quota used up; retry in {wait} s",
                type_=problem_type("RateLimited"),
                headers={"Retry-After": str(wait), "Cache-Control": "no-store"},
            )
        if principal is not None:
            # the server gives every request its own shallow copy of the state (ASGI spec)
            scope.setdefault("state", {})["principal"] = principal
            runtime.meter.record(principal.key_id, time.time())
        return None

    def _recently_verified(self, runtime: Runtime, raw: str) -> Principal | None:
        """A key verified here moments ago (most requests: no coroutine, no I/O)."""
        verifier = runtime.verifier
        known = verifier.recently_verified(raw)
        if known is not None and verifier.due(known.lookup_id):
            self._load_row(verifier, known.lookup_id)  # not awaited: the row is still fresh
        return known

    async def _verify(self, runtime: Runtime, raw: str) -> Principal:
        """Format and checksum first (no I/O), then the cached row or one shared database
        read."""
        verifier = runtime.verifier
        lookup = parse_key(raw)
        hit = verifier.cached(lookup)
        if hit is not None:
            return verifier.check(raw, hit[0])
        row = await asyncio.shield(self._load_row(verifier, lookup))
        return verifier.check(raw, row)

    def _load_row(self, verifier: KeyVerifier, lookup: str) -> asyncio.Future[Any]:
        """Read a key's row in a thread; single flight, so a burst on one key reads it once."""
        pending = self._loading.get(lookup)
        if pending is None:
            pending = asyncio.ensure_future(run_in_threadpool(verifier.load, lookup))
            self._loading[lookup] = pending
            pending.add_done_callback(lambda done: self._row_loaded(lookup, done))
        return pending

    def _row_loaded(self, lookup: str, done: asyncio.Future[Any]) -> None:
        self._loading.pop(lookup, None)
        if not done.cancelled() and done.exception() is not None:  # seen by awaiting callers
            log.warning("auth.key_reload_failed", error=type(done.exception()).__name__)

    def _limit(
        self,
        runtime: Runtime,
        scope: Scope,
        headers: dict[bytes, bytes],
        principal: Principal | None,
    ) -> asyncio.Future[Decision]:
        if principal is not None:
            limits = self._plan_limits(principal.plan)  # one bucket per account and plan:
            subject = f"acct:{principal.account}:{principal.plan}"  # each plan its own quota
            return runtime.limiter.hit(subject, limits)
        peer = (scope.get("client") or ("unknown", 0))[0]
        ip = client_ip(peer, headers.get(b"x-forwarded-for"), self.settings.trusted_proxies)
        scope["coinlens.client"] = ip
        return runtime.limiter.hit(f"ip:{ip}", self._plan_limits("anonymous"))

    def _plan_limits(self, plan: str) -> tuple[Limit, ...]:
        limits = self._limits.get(plan)
        if limits is None:
            plans = self.settings.plans
            limits = self._limits[plan] = plan_limits(plans.get(plan, plans["free"]))
        return limits

    def _rate_headers(
        self, principal: Principal | None, decision: Decision
    ) -> list[tuple[bytes, bytes]]:
        plan = principal.plan if principal is not None else "anonymous"
        b = decision.binding
        fixed = self._policies.get((plan, b.limit.name))
        if fixed is None:  # per plan and binding limit: the policy, the name, the quota
            policy = ", ".join(
                f'"{s.limit.name}";q={s.limit.quota};w={s.limit.window}' for s in decision.states
            ).encode()
            fixed = (policy, f'"{b.limit.name}";r='.encode(), str(b.limit.quota).encode())
            self._policies[(plan, b.limit.name)] = fixed
        policy, named, quota = fixed
        reset = str(math.ceil(b.reset)).encode()
        remaining = str(b.remaining).encode()
        return [
            (b"ratelimit-policy", policy),
            (b"ratelimit", b"%s%s;t=%s" % (named, remaining, reset)),
            (b"x-ratelimit-limit", quota),
            (b"x-ratelimit-remaining", remaining),
            (b"x-ratelimit-reset", reset),
        ]

    def _auth_problem(self, scope: Scope, reason: str, detail: str) -> ASGIApp:
        status, suffix, title = AUTH_PROBLEMS[reason]
        self.metrics.auth_failures.labels(reason=reason).inc()
        extra = {"Cache-Control": "no-store"}  # as every other error answer
        if status == 401:
            extra["WWW-Authenticate"] = 'Bearer realm="coinlens"'
        return problem(
            Request(scope),
            status,
            title=title,
            detail=detail,
            type_=f"urn:coinlens:problem:{suffix}",
            headers=extra,
        )

    async def _flush_every(self, runtime: Runtime) -> None:
        """Write the usage counts every FLUSH_EVERY seconds while this runtime lives."""
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            if not runtime.meter.counts:
                continue
            task = asyncio.ensure_future(run_in_threadpool(runtime.meter.flush, runtime.ctx))
            self._tasks.add(task)  # shutdown waits for a write in progress
            task.add_done_callback(self._tasks.discard)
            try:
                await asyncio.shield(task)
            except Exception as exc:
                log.warning("usage.flush_failed", error=type(exc).__name__)

    def _limit_body(self, receive: Receive) -> Receive:
        limit, seen = self.settings.max_body_bytes, [0]

        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    raise BodyTooLarge(limit)
            return message

        return wrapped

    # --- answering with caching ----------------------------------------------------------

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]
    ) -> None:
        method, path = scope["method"], scope["path"]
        if method not in {"GET", "HEAD"}:
            control = cache_control_for(method, path).encode()
            await self.app(scope, receive, _add_headers(send, [(b"cache-control", control)]))
            return
        inm = headers.get(b"if-none-match", b"").decode("latin-1")
        key, hit, rebuild = "", None, False
        eligible = self.cache.eligible(method, path)
        if eligible:
            # the Link header of a cached page names the host it was asked through
            host, query = headers.get(b"host", b""), scope["query_string"]
            key = f"{scope['scheme']}://{host!r}{scope.get('root_path', '')}{path}?{query!r}"
            hit, rebuild = self.cache.lookup(key)
        if hit is not None:
            scope["coinlens.route"] = hit.route
            if inm and etag_matches(inm, hit.etag):
                await _send_not_modified(send, hit.etag, hit.control)
                return
            await send({"type": "http.response.start", "status": 200, "headers": hit.start})
            await send({"type": "http.response.body", "body": hit.body})
            return
        control = cache_control_for(method, path).encode()
        try:
            await self._render(scope, receive, send, (key, eligible, control, inm))
        finally:
            if rebuild:
                self.cache.release(key)

    async def _render(
        self, scope: Scope, receive: Receive, send: Send, how: tuple[str, bool, bytes, str]
    ) -> None:
        """Run the app, add ETag and Cache-Control to a 200 and keep it if the path is hot."""
        key, eligible, control, inm = how
        start: list[Message] = []
        chunks: list[bytes] = []

        streaming = [False]

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                # no Content-Length: a stream (e.g. server-sent events) — pass it through as is
                streaming[0] = not any(k == b"content-length" for k, _ in message["headers"])
                if streaming[0]:
                    message["headers"] = [*message["headers"], (b"cache-control", b"no-store")]
                    await send(message)
                else:
                    start.append(message)
                return
            if streaming[0]:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            first = start[0]
            if first["status"] != 200:
                first["headers"] = [*first.get("headers", ()), (b"cache-control", b"no-store")]
                await send(first)
                await send({"type": "http.response.body", "body": body})
                return
            kept = tuple(
                (k, v) for k, v in first.get("headers", ()) if k in (b"content-type", b"link")
            )
            etag = etag_of(body)
            if eligible:
                route = str(getattr(scope.get("route"), "path", scope["path"]))
                expires = time.monotonic() + self.cache.ttl
                self.cache.put(key, CachedResponse(body, kept, etag, route, expires, control))
            await _send_cached(send, body, kept, etag, control, inm)

        await self.app(scope, receive, capture)


def _may_have_body(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """Whether a request body can follow: an HTTP/1.x request without Content-Length or
    Transfer-Encoding has none (RFC 9112 6.3), so most GETs skip the body-size guard."""
    if scope.get("http_version") not in ("1.0", "1.1"):
        return True
    return b"content-length" in headers or b"transfer-encoding" in headers


async def _server_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """What Starlette's ServerErrorMiddleware does inside: the app's 500 answer (problem+json)."""
    handlers = getattr(scope.get("app"), "exception_handlers", {})
    handler = handlers.get(Exception) or handlers.get(500)
    if handler is not None:
        response = await handler(Request(scope), exc)
        await response(scope, receive, send)


async def _send_cached(
    send: Send,
    body: bytes,
    headers: tuple[tuple[bytes, bytes], ...],
    etag: str,
    control: bytes,
    if_none_match: str,
) -> None:
    if if_none_match and etag_matches(if_none_match, etag):
        await _send_not_modified(send, etag, control)
        return
    common = [(b"etag", etag.encode()), (b"cache-control", control)]
    out = [*headers, (b"content-length", str(len(body)).encode()), *common]
    await send({"type": "http.response.start", "status": 200, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def _send_not_modified(send: Send, etag: str, control: bytes) -> None:
    headers = [(b"etag", etag.encode()), (b"cache-control", control)]
    await send({"type": "http.response.start", "status": 304, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _without_body(send: Send) -> Send:
    """Send the status and headers of the answer, and empty body chunks in place of its own."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return wrapped


def _add_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return wrapped


def install_api(app: FastAPI, settings: Settings) -> None:
    """Wrap the app in the middleware; add `/metrics`, the key routes and the OpenAPI security."""
    from coinlens.api.routes import keys as keys_routes

    configure_logging(settings.log_level)
    metrics = ApiMetrics()
    app.state.metrics = metrics
    cache = ResponseCache(settings.response_cache_seconds)
    build_inner = app.build_middleware_stack

    def build() -> ASGIApp:
        # outermost, around FastAPI's own error/telemetry/body-limit layers: a cached answer
        # then skips them (≈15 % of a hit's time); everything below still has them
        return ApiMiddleware(build_inner(), settings=settings, metrics=metrics, cache=cache)

    app.build_middleware_stack = build  # type: ignore[method-assign]
    app.include_router(metrics_router)
    app.include_router(keys_routes.router)
    app.include_router(keys_routes.usage_router)
    install_openapi(app)
