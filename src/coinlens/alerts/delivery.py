"""The delivery worker: claim due (event, channel) rows, send, record, retry or dead-letter.

Storage is behind the `DeliveryStore` protocol (implemented in `storage/alerts_repo.py`):
rows are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL or a lease column on SQLite,
so several workers share the outbox. A worker killed mid-send leaves its rows leased; when
the lease expires another worker sends them again with the same idempotency key — a
receiver that dedups by that key sees the message once.

Claimed rows are grouped by destination: one thread per destination sends in order and
respects its pacing (Telegram/Slack ~1/s, Discord bucket headers; generic webhooks and email
are not paced); destinations run in parallel.

Outcomes are recorded in batches: one transaction per `mark_batch` completed sends, and
always before the worker claims more work. A worker killed mid-batch therefore repeats at
most the sends whose outcome was not yet committed: fewer than `mark_batch` completed plus
the in-flight ones (≤ one per destination thread) — all with the same idempotency key.
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
from coinlens.domain.errors import CoinlensError, TemporaryError

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


@dataclass(frozen=True)
class Mark:
    """The outcome of one claimed row: `sent`, `pending` (retry or released) or `dead`."""

    job_id: int
    status: str
    at: datetime  # when sent / when due again
    http_status: int | None = None
    error: str | None = None
    released: bool = False  # handed back untried: its attempt is not counted


class DeliveryStore(Protocol):
    """The outbox table as the worker needs it."""

    def claim(self, now: datetime, limit: int, lease: timedelta) -> list[Job]:
        """Lease up to `limit` due rows (pending or with an expired lease)."""
        ...

    def record(self, marks: Sequence[Mark]) -> None:
        """Store outcomes of claimed rows, all in one transaction."""
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
    mark_batch: int = 8  # outcomes per transaction; bounds repeats after a crash
    dns_ttl: float = 30.0  # seconds a send-time SSRF resolution is reused
    rng: random.Random = field(default_factory=random.Random)


class _Marks:
    """Outcomes waiting to be committed, flushed every `size` and at the end of a batch."""

    def __init__(self, store: DeliveryStore, size: int) -> None:
        self._store, self._size = store, max(1, size)
        self._pending: list[Mark] = []
        self._lock = threading.Lock()

    def add(self, *marks: Mark) -> None:
        with self._lock:
            self._pending.extend(marks)
            if len(self._pending) < self._size:
                return
            full, self._pending = self._pending, []
        self._store.record(full)  # outside the lock: other threads keep sending meanwhile

    def flush(self) -> None:
        with self._lock:
            rest, self._pending = self._pending, []
        if rest:
            self._store.record(rest)


def _attempt(
    job: Job, cfg: WorkerConfig, sender: Sender, dns: channels.DnsCache | None
) -> tuple[channels.SendOutcome, str]:
    try:
        channel = channels.parse_cached(job.url)
        channels.check_ssrf(channel, cfg.allow_hosts, dns=dns)
    except CoinlensError as exc:  # refused at send time (e.g. DNS now points inside)
        # a host that does not resolve right now is retried: a resolver hiccup must not
        # dead-letter the alert
        temporary = isinstance(exc.__cause__, TemporaryError)
        problems = getattr(exc, "problems", None)
        error = problems[0].reason if problems else exc.detail
        return channels.SendOutcome(ok=False, permanent=not temporary, error=error), "unknown"
    try:
        return sender(channel, job.title, job.body, job.key), channel.kind
    except Exception as exc:  # a plugin bug must not kill the worker; the row is retried
        log.exception("alerts.send_crashed", key=job.key)
        return channels.SendOutcome(ok=False, error=f"{type(exc).__name__}: {exc}"), channel.kind


def _outcome_mark(job: Job, out: channels.SendOutcome, cfg: WorkerConfig) -> Mark:
    now = datetime.now(UTC)
    if out.ok:
        return Mark(job.id, "sent", now, out.status)
    error = out.error or "delivery failed"
    if out.permanent or cfg.policy.exhausted(job.attempts):
        log.warning("alerts.dead_letter", key=job.key, attempts=job.attempts, error=error)
        return Mark(job.id, "dead", now, out.status, error)
    delay = cfg.policy.delay(job.attempts, out.retry_after, cfg.rng)
    return Mark(job.id, "pending", now + timedelta(seconds=delay), out.status, error)


@dataclass
class _Batch:
    """What the destination threads of one batch share."""

    cfg: WorkerConfig
    sender: Sender
    pacer: Pacer
    marks: _Marks
    dns: channels.DnsCache | None


def _run_destination(jobs: list[Job], b: _Batch) -> None:
    for n, job in enumerate(jobs):
        wait = b.pacer.wait_time(job.destination, time.monotonic())
        if wait > MAX_PACING_SLEEP:  # do not hold a lease for minutes: hand the rest back
            at = datetime.now(UTC) + timedelta(seconds=wait)
            b.marks.add(*(Mark(rest.id, "pending", at, released=True) for rest in jobs[n:]))
            return
        if wait > 0:
            time.sleep(wait)
        out, kind = _attempt(job, b.cfg, b.sender, b.dns)
        interval = channels.MIN_INTERVAL.get(kind, 0.0)
        hint = out.retry_after if out.status == 429 else out.pace_seconds
        b.pacer.sent(job.destination, time.monotonic(), interval, hint)
        b.marks.add(_outcome_mark(job, out, b.cfg))


def default_sender(timeout: float) -> Sender:
    """Send through Apprise with a per-send timeout, reusing Apprise objects per URL."""
    return channels.SenderPool(timeout).send


@dataclass
class Worker:
    """A worker's long-lived parts: sender (reused Apprise objects), pacer, DNS cache."""

    store: DeliveryStore
    cfg: WorkerConfig
    sender: Sender | None = None
    pacer: Pacer = field(default_factory=Pacer)
    dns: channels.DnsCache | None = None

    def __post_init__(self) -> None:
        self.sender = self.sender or default_sender(self.cfg.timeout)
        if self.dns is None and self.cfg.dns_ttl > 0:
            self.dns = channels.DnsCache(self.cfg.dns_ttl)

    def warm_up(self) -> None:
        """Pay the one-off start-up costs (Apprise's plugin registry) before any work."""
        channels.warm_up()

    def process_batch(self) -> int:
        """Claim one batch, deliver it and commit every outcome; the number of rows handled."""
        jobs = self.store.claim(datetime.now(UTC), self.cfg.batch, self.cfg.lease)
        if not jobs:
            return 0
        assert self.sender is not None  # noqa: S101 - set in __post_init__
        marks = _Marks(self.store, self.cfg.mark_batch)
        shared = _Batch(self.cfg, self.sender, self.pacer, marks, self.dns)
        by_destination: dict[str, list[Job]] = defaultdict(list)
        for job in jobs:
            by_destination[job.destination].append(job)
        try:
            with ThreadPoolExecutor(min(self.cfg.threads, len(by_destination))) as pool:
                futures = [
                    pool.submit(_run_destination, g, shared) for g in by_destination.values()
                ]
                for f in futures:
                    f.result()
        finally:
            marks.flush()  # before claiming more: a crash repeats at most this batch's tail
        return len(jobs)


def process_batch(
    store: DeliveryStore,
    cfg: WorkerConfig,
    sender: Sender | None = None,
    pacer: Pacer | None = None,
) -> int:
    """Claim one batch and deliver it; the number of rows handled."""
    return Worker(store, cfg, sender, pacer or Pacer()).process_batch()


def run_worker(
    store: DeliveryStore,
    cfg: WorkerConfig,
    stop: threading.Event,
    sender: Sender | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Deliver until `stop` is set; the number of rows handled. `on_ready` runs once the
    worker has warmed up, just before its first claim."""
    worker, handled = Worker(store, cfg, sender), 0
    worker.warm_up()
    if on_ready is not None:
        on_ready()
    while not stop.is_set():
        n = worker.process_batch()
        handled += n
        if n == 0:
            stop.wait(cfg.poll)
    return handled
