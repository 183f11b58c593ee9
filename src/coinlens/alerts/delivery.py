"""The delivery worker: claim due (event, channel) rows, send, record, retry or dead-letter.

Storage is behind the `DeliveryStore` protocol (implemented in `storage/alerts_repo.py`):
rows are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL or a lease column on SQLite,
so several workers share the outbox. A worker killed mid-send leaves its rows leased; when
the lease expires another worker sends them again with the same idempotency key — a
receiver that dedups by that key sees the message once.

Claimed rows are grouped by destination: one thread per destination sends in order and
respects its pacing (Telegram/Slack ~1/s, Discord bucket headers); destinations run in
parallel.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from coinlens.alerts import channels
from coinlens.alerts.outbox import Pacer, RetryPolicy
from coinlens.domain.errors import CoinlensError

log = structlog.get_logger(__name__)
MAX_PACING_SLEEP = 2.0


@dataclass(frozen=True)
class Job:
    """One claimed delivery: where to send what, under which key, and tries so far."""

    id: int
    key: str
    url: str  # decrypted channel URL
    destination: str
    title: str
    body: str
    attempts: int  # including this one


class DeliveryStore(Protocol):
    """The outbox table as the worker needs it."""

    def claim(self, now: datetime, limit: int, lease: timedelta) -> list[Job]:
        """Lease up to `limit` due rows (pending or with an expired lease)."""
        ...

    def sent(self, job: Job, now: datetime, status: int | None) -> None:
        """Mark a row delivered."""
        ...

    def failed(
        self, job: Job, now: datetime, error: str, status: int | None, retry_at: datetime | None
    ) -> None:
        """Record a failed try; `retry_at` None means dead letter."""
        ...

    def release(self, job: Job, at: datetime) -> None:
        """Give a claimed row back untried (pacing), due again at `at`."""
        ...


Sender = Callable[[channels.Channel, str, str, str], channels.SendOutcome]


@dataclass
class WorkerConfig:
    """Knobs of one worker."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    allow_hosts: Sequence[str] = ()
    batch: int = 200
    lease: timedelta = timedelta(seconds=60)
    threads: int = 16
    poll: float = 0.05
    timeout: float = 10.0
    rng: random.Random = field(default_factory=random.Random)


def _attempt(job: Job, cfg: WorkerConfig, sender: Sender) -> tuple[channels.SendOutcome, str]:
    try:
        channel = channels.parse_channel(job.url)
        channels.check_ssrf(channel, cfg.allow_hosts)
    except CoinlensError as exc:  # refused at send time (e.g. DNS now points inside)
        return channels.SendOutcome(ok=False, permanent=True, error=exc.detail), "unknown"
    try:
        return sender(channel, job.title, job.body, job.key), channel.kind
    except Exception as exc:  # a plugin bug must not kill the worker; the row is retried
        log.exception("alerts.send_crashed", key=job.key)
        return channels.SendOutcome(ok=False, error=f"{type(exc).__name__}: {exc}"), channel.kind


def _record(store: DeliveryStore, job: Job, out: channels.SendOutcome, cfg: WorkerConfig) -> None:
    now = datetime.now(UTC)
    if out.ok:
        store.sent(job, now, out.status)
        return
    error = out.error or "delivery failed"
    if out.permanent or cfg.policy.exhausted(job.attempts):
        store.failed(job, now, error, out.status, None)
        log.warning("alerts.dead_letter", key=job.key, attempts=job.attempts, error=error)
        return
    delay = cfg.policy.delay(job.attempts, out.retry_after, cfg.rng)
    store.failed(job, now, error, out.status, now + timedelta(seconds=delay))


def _run_destination(
    jobs: list[Job], store: DeliveryStore, cfg: WorkerConfig, sender: Sender, pacer: Pacer
) -> None:
    for n, job in enumerate(jobs):
        wait = pacer.wait_time(job.destination, time.monotonic())
        if wait > MAX_PACING_SLEEP:  # do not hold a lease for minutes: hand the rest back
            at = datetime.now(UTC) + timedelta(seconds=wait)
            for rest in jobs[n:]:
                store.release(rest, at)
            return
        if wait > 0:
            time.sleep(wait)
        out, kind = _attempt(job, cfg, sender)
        interval = channels.MIN_INTERVAL.get(kind, 0.0)
        hint = out.retry_after if out.status == 429 else out.pace_seconds
        pacer.sent(job.destination, time.monotonic(), interval, hint)
        _record(store, job, out, cfg)


def default_sender(timeout: float) -> Sender:
    """Send through Apprise with a per-send timeout."""

    def send(channel: channels.Channel, title: str, body: str, key: str) -> channels.SendOutcome:
        return channels.send(channel, title, body, key, timeout=timeout)

    return send


def process_batch(
    store: DeliveryStore,
    cfg: WorkerConfig,
    sender: Sender | None = None,
    pacer: Pacer | None = None,
) -> int:
    """Claim one batch and deliver it; the number of rows handled."""
    jobs = store.claim(datetime.now(UTC), cfg.batch, cfg.lease)
    if not jobs:
        return 0
    send = sender or default_sender(cfg.timeout)
    pace = pacer or Pacer()
    by_destination: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        by_destination[job.destination].append(job)
    with ThreadPoolExecutor(max_workers=min(cfg.threads, len(by_destination))) as pool:
        futures = [
            pool.submit(_run_destination, group, store, cfg, send, pace)
            for group in by_destination.values()
        ]
        for f in futures:
            f.result()
    return len(jobs)


def run_worker(
    store: DeliveryStore,
    cfg: WorkerConfig,
    stop: threading.Event,
    sender: Sender | None = None,
) -> int:
    """Deliver until `stop` is set; the number of rows handled."""
    pacer, handled = Pacer(), 0
    while not stop.is_set():
        n = process_batch(store, cfg, sender, pacer)
        handled += n
        if n == 0:
            stop.wait(cfg.poll)
    return handled
