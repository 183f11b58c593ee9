"""Prometheus metrics of the API (one registry per app) and the `/metrics` endpoint.

Per-process: with `--workers N` each worker counts its own requests (scrape each, or run
one worker per container). Data freshness is read from the database at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import sqlalchemy as sa
import structlog
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from coinlens.services.context import Context
from coinlens.storage import keys_repo

log = structlog.get_logger(__name__)
router = APIRouter(tags=["health"])

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class FreshnessCollector(Collector):
    """`coinlens_data_freshness_seconds{source}`: age of each source's newest daily candle."""

    def __init__(self) -> None:
        self.ctx: Context | None = None

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "coinlens_data_freshness_seconds",
            "Seconds since the open of the newest daily candle, per data source",
            labels=["source"],
        )
        if self.ctx is not None:
            for source, age in freshness(self.ctx).items():
                family.add_metric([source], age)
        yield family

    def describe(self) -> Iterable[Metric]:
        return []


def freshness(ctx: Context) -> dict[str, float]:
    """source → seconds since its newest daily candle opened (empty if unreadable)."""
    try:
        with ctx.engine.connect() as conn:
            latest = keys_repo.latest_candle_by_source(conn)
    except sa.exc.SQLAlchemyError as exc:  # a scrape or probe must not fail on this
        log.warning("metrics.freshness_unavailable", error=type(exc).__name__)
        return {}
    now = time.time()
    return {source: max(0.0, now - last) for source, last in latest.items()}


class ApiMetrics:
    """Every metric the API exports, registered in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.latency = Histogram(
            "coinlens_http_request_duration_seconds",
            "Request latency by route template and method",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.responses = Counter(
            "coinlens_http_responses_total",
            "Responses by route template, method and status class (2xx/3xx/4xx/5xx)",
            ["route", "method", "status"],
            registry=r,
        )
        self.rate_limited = Counter(
            "coinlens_ratelimit_rejections_total", "Requests refused with 429", ["plan"], registry=r
        )
        self.ratelimit_fallbacks = Counter(
            "coinlens_ratelimit_fallbacks_total",
            "Times Redis failed and the in-process limiter took over",
            ["error"],
            registry=r,
        )
        self.ratelimit_backend = Gauge(
            "coinlens_ratelimit_redis_up", "1 while the limiter uses Redis, else 0", registry=r
        )
        self.auth_failures = Counter(
            "coinlens_auth_failures_total", "Requests refused with 401/403", ["reason"], registry=r
        )
        self.pipeline_steps = Histogram(
            "coinlens_pipeline_step_duration_seconds",
            "Duration of pipeline steps run in this process",
            ["step"],
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900),
            registry=r,
        )
        self.freshness = FreshnessCollector()
        r.register(self.freshness)

    def observe_pipeline_step(self, step: str, seconds: float) -> None:
        """Record one pipeline step's duration (for jobs that run inside the API process)."""
        self.pipeline_steps.labels(step=step).observe(seconds)

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)


def metrics_of(request: Request) -> ApiMetrics:
    """The app's metrics object."""
    metrics = request.app.state.metrics
    assert isinstance(metrics, ApiMetrics)  # noqa: S101 - set by install_api
    return metrics


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    operation_id="get_metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def get_metrics(request: Request) -> Response:
    """Latency per route, 4xx/5xx, rate-limit rejections, pipeline steps, data freshness."""
    metrics = metrics_of(request)
    metrics.freshness.ctx = getattr(request.app.state, "ctx", None)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
