"""The Celery app factory: broker and result backend on `settings.redis_url`.

Delivery guarantees for the scale-out deployment (`coinlens worker` × M + `coinlens beat`):

* ``task_acks_late`` — a task is acknowledged after it finished, not when received, so a
  worker killed mid-task leaves its message unacknowledged;
* ``task_reject_on_worker_lost`` — a pool child that dies mid-task requeues its message;
* ``worker_prefetch_multiplier = 1`` — a worker reserves one task at a time, so a killed
  worker holds at most one message hostage;
* Redis ``visibility_timeout`` — an unacknowledged message is redelivered to another worker
  after this many seconds; it must exceed the longest task (default 1 h; tests use less).

Tasks are idempotent (upserts keyed by token, per-day digests), so a redelivered task
re-runs without duplicates.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from coinlens.domain.errors import ConfigError
from coinlens.settings import Settings

DEFAULT_VISIBILITY_TIMEOUT = 3_600.0
QUEUE = "coinlens"


def make_celery(
    settings: Settings, *, visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT, **conf: Any
) -> Celery:
    """A Celery app for `settings` (Redis broker + backend), with the tasks registered."""
    if not settings.redis_url:
        raise ConfigError("Celery needs COINLENS_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
    app = Celery("coinlens", broker=settings.redis_url, backend=settings.redis_url)
    transport = {
        "visibility_timeout": visibility_timeout,
        # sweep for abandoned (unacked) messages often enough for the timeout to matter
        "unacked_restore_interval": max(1, min(10, int(visibility_timeout / 3))),
        "unacked_restore_throttle": 1,
    }
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        result_expires=24 * 3_600,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        enable_utc=True,
        worker_hijack_root_logger=False,
    )
    app.conf.coinlens_settings = settings  # read by each worker process's context
    app.conf.update(conf)
    from coinlens.pipeline import tasks

    tasks.register(app)
    return app
