"""The GCRA limiter on the real Redis at 127.0.0.1:6379: exactness, NOSCRIPT, fallback, API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from coinlens.api.app import create_app
from coinlens.services.ratelimit import MAX_GROUPS, Limit, RateLimiter
from coinlens.settings import PlanLimits, Settings, get_settings

pytestmark = pytest.mark.redis
# 100 per minute and per day: the day quota keeps "exactly 100" independent of burst duration
HUNDRED = (Limit("minute", 100, 60), Limit("day", 100, 86_400))
ApiHeaders = Callable[..., dict[str, str]]
DOWN_URL = "redis://127.0.0.1:6390/0"  # nothing listens here


REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(autouse=True)
def _redis(redis_url: str) -> None:
    assert redis_url == REDIS_URL


def _limiter(prefix: str | None = None) -> RateLimiter:
    return RateLimiter(REDIS_URL, prefix=prefix or f"test:{uuid.uuid4().hex}")


async def _burst(limiters: list[RateLimiter], subject: str, n: int) -> list[bool]:
    hits = [limiters[i % len(limiters)].hit(subject, HUNDRED) for i in range(n)]
    decisions = await asyncio.gather(*hits)
    for lim in limiters:
        await lim.close()
    return [d.allowed for d in decisions]


def test_200_concurrent_hits_from_two_limiters_admit_exactly_100() -> None:
    prefix = f"test:{uuid.uuid4().hex}"
    for trial in range(5):
        allowed = asyncio.run(_burst([_limiter(prefix), _limiter(prefix)], f"s{trial}", 200))
        assert allowed.count(True) == 100


def test_one_batch_decides_many_subjects_in_order_and_exactly() -> None:
    async def run() -> dict[str, list[int]]:
        limiter = _limiter()
        subjects = [f"s{i % 3}" for i in range(450)]  # interleaved: one tick, one script run
        decisions = await asyncio.gather(*(limiter.hit(s, HUNDRED) for s in subjects))
        await limiter.close()
        remaining: dict[str, list[int]] = {}
        for subject, d in zip(subjects, decisions, strict=True):
            if d.allowed:
                remaining.setdefault(subject, []).append(d.binding.remaining)
        return remaining

    remaining = asyncio.run(run())
    # each subject: exactly 100 admitted, each seeing the one before it (99, 98, …, 0)
    assert {s: sorted(r, reverse=True) for s, r in remaining.items()} == {
        f"s{i}": list(range(99, -1, -1)) for i in range(3)
    }


def test_a_flushed_script_cache_is_reloaded_without_errors() -> None:
    async def run() -> list[str]:
        limiter = _limiter()
        backends = [(await limiter.hit("a", HUNDRED)).backend]
        client = redis.Redis.from_url(REDIS_URL)
        client.script_flush()  # what a Redis restart does to loaded scripts
        client.close()
        backends.append((await limiter.hit("a", HUNDRED)).backend)
        assert limiter.fallbacks == 0
        await limiter.close()
        return backends

    assert asyncio.run(run()) == ["redis", "redis"]


def test_a_dropped_connection_is_reopened_without_falling_back() -> None:
    """A Redis restart (or a proxy's idle timeout) closes the limiter's connection: the next
    batch reconnects and is still decided by Redis, exactly."""

    async def run() -> list[tuple[str, bool]]:
        name = f"limiter-{uuid.uuid4().hex}"  # only this limiter's connection is dropped
        limiter = RateLimiter(f"{REDIS_URL}?client_name={name}", prefix=f"test:{name}")
        out = [await limiter.hit("r", HUNDRED)]
        client = redis.Redis.from_url(REDIS_URL)
        ids = [c["id"] for c in client.client_list() if c["name"] == name]
        assert ids
        for client_id in ids:
            client.client_kill_filter(_id=client_id)
        client.close()
        out += [await limiter.hit("r", HUNDRED) for _ in range(2)]
        assert limiter.fallbacks == 0
        await limiter.close()
        return [(d.backend, d.allowed) for d in out]

    assert asyncio.run(run()) == [("redis", True)] * 3


def test_huge_quotas_work_in_redis_too() -> None:
    async def run() -> None:
        limiter = _limiter()
        decision = await limiter.hit("h", (Limit("minute", 10**9, 60),))
        assert decision.allowed
        assert decision.binding.remaining > 0
        await limiter.close()

    asyncio.run(run())


def test_waiting_retry_after_admits_the_next_request() -> None:
    fast = (Limit("second", 5, 1),)

    async def run() -> None:
        limiter = _limiter()
        results = [await limiter.hit("w", fast) for _ in range(6)]
        assert [r.allowed for r in results] == [True] * 5 + [False]
        await asyncio.sleep(results[-1].retry_after)
        assert (await limiter.hit("w", fast)).allowed
        await limiter.close()

    asyncio.run(run())


def test_an_unreachable_redis_falls_back_to_the_local_limiter() -> None:
    async def run() -> None:
        limiter = RateLimiter(DOWN_URL)
        decisions = [await limiter.hit("d", HUNDRED) for _ in range(101)]
        assert {d.backend for d in decisions} == {"local"}
        assert [d.allowed for d in decisions].count(True) == 100
        assert limiter.fallbacks == 1  # then it waits before trying Redis again
        assert limiter.backend == "local"
        await limiter.close()

    asyncio.run(run())


@pytest.mark.parametrize("url", [REDIS_URL, DOWN_URL], ids=["redis", "down"])
def test_a_tick_with_more_subjects_than_one_script_run_takes(url: str) -> None:
    """Over `MAX_GROUPS` subjects at once go to Redis as runs in a row on the one connection;
    with Redis down, the first failed run sends the rest to the local limiter directly."""
    n = MAX_GROUPS * 2 + 10

    async def run() -> None:
        limiter = RateLimiter(url, prefix=f"test:{uuid.uuid4().hex}")
        decisions = await asyncio.gather(*(limiter.hit(f"s{i}", HUNDRED) for i in range(n)))
        assert all(d.allowed and d.binding.remaining == 99 for d in decisions)
        backends = {d.backend for d in decisions}
        assert backends == ({"redis"} if url == REDIS_URL else {"local"})
        assert limiter.fallbacks == (0 if url == REDIS_URL else 1)
        await limiter.close()

    asyncio.run(run())


def _settings(tmp_path: Path, redis_url: str | None) -> Settings:
    plans = {
        "anonymous": PlanLimits(per_minute=5, per_day=100),
        "free": PlanLimits(per_minute=3, per_day=100),
    }
    return get_settings(
        env="test", data_dir=tmp_path, redis_url=redis_url, plans=plans, response_cache_seconds=0
    )


@pytest.fixture
def redis_client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp_path, REDIS_URL))) as client:
        yield client


def test_the_api_sends_ratelimit_headers_and_an_integer_retry_after(
    redis_client: TestClient, api_headers: ApiHeaders
) -> None:
    headers = api_headers(redis_client.app.state.ctx, plan="free")
    answers = [redis_client.get("/v1/tokens", headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    first, refused = answers[0], answers[-1]
    assert first.headers["RateLimit-Policy"] == '"minute";q=3;w=60, "day";q=100;w=86400'
    assert first.headers["RateLimit"] == '"minute";r=2;t=20'
    assert first.headers["X-RateLimit-Limit"] == "3"
    assert first.headers["X-RateLimit-Remaining"] == "2"
    assert refused.headers["Retry-After"] == "20"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.json()["type"] == "urn:coinlens:problem:rate-limited"
    metrics = redis_client.get("/metrics").text
    assert 'coinlens_ratelimit_rejections_total{plan="free"} 1.0' in metrics
    assert "coinlens_ratelimit_redis_up 1.0" in metrics  # the limiter uses Redis


def test_keys_of_one_account_share_the_limit_of_their_own_plan(tmp_path: Path) -> None:
    """Two keys of one account share a quota; a key of the same account on another plan
    has that plan's own (it used to spend from the free key's bucket with its own quota)."""
    from coinlens.services.keys import KeySpec, create_key

    settings = _settings(tmp_path, None)
    settings.plans["pro"] = PlanLimits(per_minute=5, per_day=100)
    with TestClient(create_app(settings)) as client:
        ctx = client.app.state.ctx
        free = create_key(ctx, KeySpec(name="a", plan="free"))
        account = free.key.account
        twin = create_key(ctx, KeySpec(name="b", plan="free", account=account))
        pro = create_key(ctx, KeySpec(name="c", plan="pro", account=account))

        def status(key: str) -> int:
            return client.get("/v1/tokens", headers={"X-API-Key": key}).status_code

        assert [status(k.plaintext) for k in (free, twin, free, twin)] == [200, 200, 200, 429]
        assert [status(pro.plaintext) for _ in range(6)] == [200] * 5 + [429]


def test_with_redis_down_the_api_answers_and_says_so(
    tmp_path: Path, api_headers: ApiHeaders
) -> None:
    with TestClient(create_app(_settings(tmp_path, DOWN_URL))) as client:
        headers = api_headers(client.app.state.ctx, plan="free")
        codes = [client.get("/v1/tokens", headers=headers).status_code for _ in range(4)]
        metrics = client.get("/metrics").text
    assert codes == [200, 200, 200, 429]
    assert 'coinlens_ratelimit_fallbacks_total{error="ConnectionError"} 1.0' in metrics
    assert "coinlens_ratelimit_redis_up 0.0" in metrics


def test_an_idle_worker_still_writes_its_usage(tmp_path: Path, api_headers: ApiHeaders) -> None:
    """Usage reaches the database within FLUSH_EVERY s even when no request follows (with
    several workers, the one that served a key may get no further request for hours)."""
    import time

    from coinlens.api.middleware import FLUSH_EVERY
    from coinlens.services import keys as ks

    with TestClient(create_app(_settings(tmp_path, REDIS_URL))) as client:
        ctx = client.app.state.ctx
        headers = api_headers(ctx, plan="free")
        assert client.get("/v1/tokens", headers=headers).status_code == 200
        key = ks.KeyVerifier(ctx).verify(headers["X-API-Key"])
        time.sleep(FLUSH_EVERY + 1.5)
        today = datetime.now(UTC).date()
        page = ks.usage(ctx, key.account, start=today, end=today, cursor=None, limit=10)
        assert [u.requests for u in page.items] == [1]
