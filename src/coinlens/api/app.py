"""The application factory: `create_app(settings)`; the app's lifespan owns the context."""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from coinlens import __version__
from coinlens.api.deps import known_query
from coinlens.api.errors import install_error_handlers
from coinlens.api.middleware import install_api
from coinlens.api.routes import alerts as alerts_routes
from coinlens.api.routes import analytics, health, tokens
from coinlens.api.routes import ecosystem as ecosystem_routes
from coinlens.api.routes import grades as grades_routes
from coinlens.api.routes import predictions as predictions_routes
from coinlens.api.routes import stream as stream_routes
from coinlens.domain.errors import TemporaryError
from coinlens.services.context import Context, build_context
from coinlens.settings import Settings, get_settings
from coinlens.web import overview_data
from coinlens.web.routes import install_web

log = structlog.get_logger(__name__)
GC_YOUNG_THRESHOLD = 20_000  # the API worker's; see the lifespan

DESCRIPTION = """Crypto research data from the Coinlens database.

Errors are [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) problem documents
(`application/problem+json`). Times are UTC. Lists paginate with opaque cursors.
"""

TAGS = [
    {"name": "tokens", "description": "The token catalog, markets and OHLCV candles."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def _start_context(settings: Settings) -> Context:
    """Build the context; an unreachable database must not stop the API from starting."""
    try:
        return build_context(settings)
    except TemporaryError as exc:
        log.warning("api.database_unavailable_at_start", detail=exc.detail)
        return build_context(settings, migrate=False)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app for `settings` (default: from the environment); nothing runs until startup."""
    resolved = settings if settings is not None else get_settings()
    resolved.check_safe()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await run_in_threadpool(_start_context, resolved)
        app.state.ctx = ctx
        # Everything alive now (modules, numba/LightGBM, settings) lives as long as the app:
        # frozen, a full collection no longer walks it (it took 150-400 ms per request hit).
        gc.collect()
        gc.freeze()
        # Young-generation collections were set off by requests in flight, not by garbage:
        # at 700 (the default) a burst of ~40 requests waiting for one rate-limit round trip
        # crossed it, ~200 times a second under load, 4.6 % of the worker's time spent finding
        # nothing to free (a request's objects are freed by reference counting; none form
        # cycles). 20,000 net new objects still collect real cycles early.
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
        # the overview's rows for 2,000 tokens take about a second: build them before a visitor
        threading.Thread(target=overview_data.warm, args=(ctx,), daemon=True).start()
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            ctx.engine.dispose()

    app = FastAPI(
        title="Coinlens API",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        # no OpenTelemetry here: FastAPI otherwise probes its providers on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
        dependencies=[Depends(known_query)],  # unknown `/v1` query parameters: 422
    )
    install_error_handlers(app)
    install_api(app, resolved)  # keys, scopes, rate limits, caching, metrics on /v1/*
    app.include_router(health.router)
    app.include_router(tokens.router)
    app.include_router(grades_routes.router)
    app.include_router(analytics.router)
    app.include_router(analytics.signals_router)
    app.include_router(predictions_routes.router)
    app.include_router(ecosystem_routes.router)
    install_web(app)  # dashboard pages, their /web JSON and /static
    app.include_router(stream_routes.router)  # WebSocket /v1/stream
    app.include_router(alerts_routes.router)
    return app
