"""The delivery worker's fast paths: reused Apprise objects and connections, the send-time
DNS cache, and outcomes committed in batches before more work is claimed."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coinlens.alerts import channels, delivery
from coinlens.alerts.outbox import Pacer
from coinlens.domain.errors import ValidationFailed
from unit.alerts.alert_receivers import HttpReceiver


@pytest.fixture
def keepalive_hook() -> Iterator[HttpReceiver]:
    r = HttpReceiver(keepalive=True).start()
    yield r
    r.stop()


def test_sender_pool_reuses_one_object_and_connection_with_a_key_per_send(
    keepalive_hook: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    original = channels._notifier

    def counting(channel: channels.Channel, key: str, timeout: float) -> Any:
        built.append(key)
        return original(channel, key, timeout)

    monkeypatch.setattr(channels, "_notifier", counting)
    pool = channels.SenderPool(timeout=5)
    ch = channels.parse_cached(f"json://127.0.0.1:{keepalive_hook.port}/x")
    outcomes = [pool.send(ch, "t", "b", f"k{i}") for i in range(5)]
    assert all(o.ok for o in outcomes)
    assert keepalive_hook.keys() == {f"k{i}": 1 for i in range(5)}
    assert len(built) == 1
    assert len({r["client"] for r in keepalive_hook.received}) == 1  # one kept-alive connection
    # outside the pool, plain sends still open their own connection and carry their key
    assert channels.send(ch, "t", "b", "solo").ok
    assert keepalive_hook.keys()["solo"] == 1
    assert len({r["client"] for r in keepalive_hook.received}) == 2


def test_sender_pool_reports_failures_like_send(keepalive_hook: HttpReceiver) -> None:
    pool = channels.SenderPool(timeout=5)
    ch = channels.parse_cached(f"json://127.0.0.1:{keepalive_hook.port}/x")
    keepalive_hook.script = [(429, {"Retry-After": "3"}), (410, {})]
    first, second = pool.send(ch, "t", "b", "a"), pool.send(ch, "t", "b", "b")
    assert (first.ok, first.status, first.retry_after) == (False, 429, 3.0)
    assert (second.ok, second.permanent) == (False, True)
    assert pool.send(ch, "t", "b", "c").ok


def test_dns_cache_reuses_a_resolution_for_its_ttl_then_checks_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = ["93.184.216.34"]
    calls: list[str] = []

    def fake_getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[0], 0))]

    monkeypatch.setattr(channels.socket, "getaddrinfo", fake_getaddrinfo)
    now = [0.0]
    dns = channels.DnsCache(ttl=30.0, clock=lambda: now[0])
    ch = channels.parse_channel("json://hooks.example.org/x")
    for _ in range(3):
        channels.check_ssrf(ch, (), dns=dns)
    assert calls == ["hooks.example.org"]
    answers[0] = "10.0.0.7"  # DNS now points inside
    now[0] = 29.0
    channels.check_ssrf(ch, (), dns=dns)  # still the cached public answer
    now[0] = 31.0
    with pytest.raises(ValidationFailed) as refused:
        channels.check_ssrf(ch, (), dns=dns)
    assert "not a public internet address" in str(refused.value.problems)
    assert len(calls) == 2


class FakeStore:
    """An in-memory outbox recording each `record` call (one transaction each)."""

    def __init__(self, jobs: list[delivery.Job]) -> None:
        self.jobs, self.batches = jobs, []  # type: ignore[var-annotated]
        self.outstanding = 0

    def claim(self, now: datetime, limit: int, lease: timedelta) -> list[delivery.Job]:
        assert self.outstanding == 0, "claimed before the previous batch was recorded"
        out, self.jobs = self.jobs[:limit], self.jobs[limit:]
        self.outstanding = len(out)
        return out

    def record(self, marks: Sequence[delivery.Mark]) -> None:
        self.batches.append(list(marks))
        self.outstanding -= len(marks)


def _jobs(n: int, destinations: int) -> list[delivery.Job]:
    return [
        delivery.Job(id=i, key=f"k{i}", url="json://93.184.216.34/x",
                     destination=f"webhook:{i % destinations}", title="t", body="b", attempts=1)
        for i in range(n)
    ]  # fmt: skip


def _sender(fail: set[str]) -> delivery.Sender:
    def send(ch: channels.Channel, title: str, body: str, key: str) -> channels.SendOutcome:
        if key in fail:
            return channels.SendOutcome(ok=False, status=503, error="down")
        return channels.SendOutcome(ok=True, status=200)

    return send


def test_outcomes_are_committed_in_batches_before_more_work_is_claimed() -> None:
    store = FakeStore(_jobs(45, 3))
    cfg = delivery.WorkerConfig(batch=20, mark_batch=8, threads=3, dns_ttl=0)
    worker = delivery.Worker(store, cfg, _sender({"k5"}))
    handled = [worker.process_batch() for _ in range(4)]
    assert handled == [20, 20, 5, 0]
    assert store.outstanding == 0
    assert all(len(b) <= 8 for b in store.batches)
    assert len(store.batches) < 45 / 4  # not one transaction per send
    marks = {m.job_id: m for b in store.batches for m in b}
    assert sorted(marks) == list(range(45))
    assert marks[5].status == "pending"
    assert marks[5].at > datetime.now(UTC) - timedelta(seconds=1)
    assert {m.status for i, m in marks.items() if i != 5} == {"sent"}


def test_a_paced_destination_hands_its_rows_back_in_the_same_batch_commit() -> None:
    store = FakeStore(_jobs(6, 2))
    pacer = Pacer()
    pacer.sent("webhook:1", time.monotonic(), 30.0, None)  # next send in 30 s
    cfg = delivery.WorkerConfig(mark_batch=100, dns_ttl=0)
    assert delivery.Worker(store, cfg, _sender(set()), pacer).process_batch() == 6
    assert len(store.batches) == 1
    marks = {m.job_id: m for m in store.batches[0]}
    assert {i for i, m in marks.items() if m.released} == {1, 3, 5}
    assert {marks[i].status for i in (0, 2, 4)} == {"sent"}


def test_the_worker_reports_ready_after_warming_up_and_before_its_first_claim() -> None:
    import threading

    store, events = FakeStore(_jobs(3, 1)), []
    stop = threading.Event()
    claim = store.claim

    def recording_claim(now: datetime, limit: int, lease: timedelta) -> list[delivery.Job]:
        events.append("claim")
        stop.set()
        return claim(now, limit, lease)

    store.claim = recording_claim  # type: ignore[method-assign]
    cfg = delivery.WorkerConfig(dns_ttl=0)
    ready = lambda: events.append("ready")  # noqa: E731
    assert delivery.run_worker(store, cfg, stop, _sender(set()), on_ready=ready) == 3
    assert events == ["ready", "claim"]
    assert channels.parse_cached("json://93.184.216.34/x").kind == "webhook"
