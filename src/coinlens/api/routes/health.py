"""Liveness (`/healthz`) and readiness (`/readyz`: database reachable, schema at head)."""

from __future__ import annotations

from functools import lru_cache

import sqlalchemy as sa
import structlog
from fastapi import APIRouter

from coinlens import __version__
from coinlens.api.deps import CtxDep
from coinlens.api.errors import problem_responses
from coinlens.api.metrics import freshness
from coinlens.api.schemas import Health, Readiness
from coinlens.domain.errors import TemporaryError
from coinlens.services.ratelimit import redis_status
from coinlens.storage.db import code_revision, current_revision

router = APIRouter(tags=["health"])
log = structlog.get_logger(__name__)


@lru_cache(maxsize=1)
def migration_head() -> str | None:
    """The newest migration revision shipped with this code (read once)."""
    return code_revision()


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Health:
    """Always 200 while the process runs; touches no dependency."""
    return Health(version=__version__)


@router.get(
    "/readyz",
    summary="Readiness: database reachable and migrated; Redis and data freshness reported",
    responses=problem_responses(503),
)
def readyz(ctx: CtxDep) -> Readiness:
    """200 when the database answers and its schema is at the migration head, else 503."""
    try:
        revision = current_revision(ctx.engine)
    except sa.exc.DBAPIError as exc:
        log.warning("readyz.database_unreachable", error=str(exc.orig))
        raise TemporaryError(
            f"database unreachable ({type(exc.orig).__name__}); see the server log"
        ) from exc
    head = migration_head()
    if revision is None or revision != head:
        raise TemporaryError(
            f"database schema at revision {revision or 'none'}, this code needs {head}: "
            "run `coinlens db upgrade`"
        )
    return Readiness(
        version=__version__,
        database=ctx.engine.dialect.name,
        revision=revision,
        redis=redis_status(ctx.settings.redis_url),
        freshness_seconds=freshness(ctx),
    )
