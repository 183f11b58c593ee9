"""Outbox policy: idempotency keys, retry delays (full jitter, Retry-After) and pacing."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Capped attempts with exponential backoff and full jitter."""

    max_attempts: int = 8
    base: float = 1.0
    cap: float = 300.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before try `attempt + 1`: U(0, min(cap, base·2^(attempt−1))), ≥ Retry-After."""
        ceiling = min(self.cap, self.base * 2 ** max(attempt - 1, 0))
        jitter = rng.uniform(0.0, ceiling)
        if retry_after is not None:
            return max(jitter, min(retry_after, self.cap * 4))
        return jitter

    def exhausted(self, attempts: int) -> bool:
        """Whether `attempts` tries used up the budget (the row goes to dead letter)."""
        return attempts >= self.max_attempts


def event_key(rule_id: int, version: int) -> str:
    """The idempotency key of an event: a rule fires at most once per state version."""
    return f"cl-{rule_id}-{version}"


def delivery_key(event_key_: str, channel_index: int) -> str:
    """The idempotency key of one (event, channel) delivery, sent with every try."""
    return f"{event_key_}-c{channel_index}"


class Pacer:
    """Per-destination pacing: a minimum interval and server-given waits (Discord buckets)."""

    def __init__(self) -> None:
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait_time(self, destination: str, now: float) -> float:
        """Seconds to wait before sending to `destination`."""
        with self._lock:
            return max(0.0, self._next.get(destination, 0.0) - now)

    def sent(self, destination: str, now: float, interval: float, hint: float | None) -> None:
        """Record a send at `now`; the next may go after `interval` or the server's hint."""
        with self._lock:
            self._next[destination] = now + max(interval, hint or 0.0)
