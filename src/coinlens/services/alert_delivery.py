"""Alert delivery: the outbox worker over the service context (`coinlens alerts worker`,
the `deliver` job). The sending itself is `alerts.delivery`; this wires it to storage
(claimed rows with their channel URLs decrypted) and to the settings' retry policy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from coinlens.alerts import crypto, delivery, messages
from coinlens.alerts.outbox import RetryPolicy
from coinlens.services.context import Context
from coinlens.storage import alerts_repo as repo


class _Store:
    """The outbox for the worker: repo rows in, `delivery.Job`s out (URLs decrypted)."""

    def __init__(self, ctx: Context) -> None:
        self._repo = repo.SqlDeliveryStore(ctx.engine)
        self._secret = ctx.settings.secret.get_secret_value()

    def claim(self, now: datetime, limit: int, lease: timedelta) -> list[delivery.Job]:
        rows = self._repo.claim(now, limit, lease)
        return [
            delivery.Job(
                id=r["id"], key=r["key"], url=crypto.decrypt(self._secret, r["url_enc"]),
                destination=r["destination"], title=r["title"],
                body=messages.with_ref(r["body"], r["key"]),
                attempts=r["attempts"],
            )
            for r in rows
        ]  # fmt: skip

    def record(self, marks: Sequence[delivery.Mark]) -> None:
        # shallow: `asdict` deep-copies every datetime, a third of a commit's CPU
        self._repo.record([vars(m) for m in marks])


def worker_config(ctx: Context, **overrides: Any) -> delivery.WorkerConfig:
    """Worker knobs from settings (retry policy, allow-list, timeout)."""
    s = ctx.settings
    policy = RetryPolicy(s.alerts_max_attempts, s.alerts_backoff_base, s.alerts_backoff_cap)
    cfg = delivery.WorkerConfig(
        policy=policy, allow_hosts=tuple(s.alerts_allow_hosts), timeout=s.alerts_send_timeout
    )
    for name, value in overrides.items():
        setattr(cfg, name, value)
    return cfg


def deliver_pending(ctx: Context, cfg: delivery.WorkerConfig | None = None) -> int:
    """Send one batch of due deliveries; how many rows were handled."""
    return delivery.process_batch(_Store(ctx), cfg or worker_config(ctx))


def run_delivery_worker(
    ctx: Context,
    stop: threading.Event,
    cfg: delivery.WorkerConfig | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Deliver until `stop` is set (the `coinlens alerts worker` loop); `on_ready` is called
    once the worker is warmed up and about to claim."""
    cfg = cfg or worker_config(ctx)
    return delivery.run_worker(_Store(ctx), cfg, stop, on_ready=on_ready)


def outbox_counts(ctx: Context) -> dict[str, int]:
    """Deliveries by status (pending, sending, sent, dead)."""
    with ctx.engine.connect() as conn:
        return repo.delivery_counts(conn)
