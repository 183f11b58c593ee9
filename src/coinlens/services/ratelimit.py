"""Rate limits: GCRA, atomic in Redis through one Lua script, with an in-process fallback.

GCRA ("generic cell rate algorithm") keeps one number per subject and limit: the
theoretical arrival time (TAT). A limit of `quota` per `window` has emission interval
T = window / quota; a request is allowed when max(TAT, now) + T − now ≤ quota·T, which
admits a burst of exactly `quota` and then one request every T. All limits of a request
(per minute *and* per day) are checked and updated in one script run, so API processes
sharing a Redis agree exactly. The script runs by EVALSHA and is re-loaded on NOSCRIPT
(a restarted or flushed Redis). When Redis is unreachable the same algorithm runs in
process — limits then hold per process only — and the fallback is logged and counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import redis
import redis.asyncio as aioredis
import structlog
from redis.exceptions import NoScriptError, RedisError

from coinlens.settings import PlanLimits

log = structlog.get_logger(__name__)

_US = 1_000_000
REDIS_CONNECTIONS = 32  # per process
REDIS_DOWN_BACKOFF = 1.0  # seconds before Redis is tried again after a failure

GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local allowed = 1
local retry = 0
local news = {}
local out = {}
for i = 1, n do
  local step = tonumber(ARGV[2 * i - 1])
  local span = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new = tat + step
  if new - now > span then
    allowed = 0
    local wait = new - now - span
    if wait > retry then retry = wait end
  end
  news[i] = new
  out[i] = tat
end
local res = {allowed, string.format('%.0f', retry)}
for i = 1, n do
  local step = tonumber(ARGV[2 * i - 1])
  local span = tonumber(ARGV[2 * i])
  local tat = out[i]
  if allowed == 1 then
    tat = news[i]
    redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  end
  res[#res + 1] = string.format('%.0f', math.floor((span - (tat - now)) / step))
  res[#res + 1] = string.format('%.0f', tat - now)
end
return res
"""


@dataclass(frozen=True, slots=True)
class Limit:
    """A quota of requests per window (seconds), named for the RateLimit-Policy header."""

    name: str
    quota: int
    window: int

    @property
    def step_us(self) -> int:
        """Emission interval T in microseconds (rounded down: never looser than the quota)."""
        return max(1, self.window * _US // self.quota)

    @property
    def span_us(self) -> int:
        """Burst capacity quota·T in microseconds."""
        return self.step_us * self.quota


@dataclass(frozen=True, slots=True)
class LimitState:
    """After a request: how many more fit now, and seconds until the quota is whole again."""

    limit: Limit
    remaining: int
    reset: float


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one request: allowed or not, when to retry, and every limit's state."""

    allowed: bool
    retry_after: float
    states: tuple[LimitState, ...]
    backend: str

    @property
    def binding(self) -> LimitState:
        """The limit closest to exhaustion (the one to advertise)."""
        return min(self.states, key=lambda s: (s.remaining, -s.reset))


def plan_limits(plan: PlanLimits) -> tuple[Limit, ...]:
    """The per-minute and per-day limits of a plan."""
    return (Limit("minute", plan.per_minute, 60), Limit("day", plan.per_day, 86_400))


def _decide(
    allowed: bool, retry_us: float, limits: Sequence[Limit], raw: Sequence[float], backend: str
) -> Decision:
    states = tuple(
        LimitState(lim, max(0, int(raw[2 * i])), max(0.0, raw[2 * i + 1] / _US))
        for i, lim in enumerate(limits)
    )
    return Decision(allowed, max(0.0, retry_us / _US), states, backend)


class LocalGcra:
    """The same GCRA in process memory (thread-safe); the embedded default and the fallback."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def hit(self, keys: Sequence[str], limits: Sequence[Limit]) -> Decision:
        """Check and (if allowed) record one request against every limit."""
        with self._lock:
            now = self._clock() * _US
            tats = [max(self._tat.get(k, now), now) for k in keys]
            news = [t + lim.step_us for t, lim in zip(tats, limits, strict=True)]
            waits = [n - now - lim.span_us for n, lim in zip(news, limits, strict=True)]
            allowed = all(w <= 0 for w in waits)
            if allowed:
                tats = news
                for k, t in zip(keys, news, strict=True):
                    self._tat[k] = t
                self._evict(now)
            raw: list[float] = []
            for t, lim in zip(tats, limits, strict=True):
                raw += [(lim.span_us - (t - now)) // lim.step_us, t - now]
        return _decide(allowed, max([0.0, *waits]), limits, raw, "local")

    def _evict(self, now: float) -> None:
        if len(self._tat) > 100_000:
            self._tat = {k: t for k, t in self._tat.items() if t > now}


class RateLimiter:
    """GCRA across processes via Redis when configured, else (or when Redis fails) local."""

    def __init__(
        self,
        redis_url: str | None,
        *,
        prefix: str = "coinlens:rl",
        on_fallback: Callable[[str], None] | None = None,
    ) -> None:
        self._redis: aioredis.Redis | None = None
        if redis_url:
            # a bounded pool: bursts queue for a connection instead of opening hundreds
            pool = aioredis.BlockingConnectionPool.from_url(
                redis_url,
                max_connections=REDIS_CONNECTIONS,
                timeout=2.0,
                # a slow reply or connect during a burst usually means a starved event loop
                # (32 connections opening while hundreds of requests run), not a dead Redis:
                # 0.5 s connect timeouts sent CI bursts to the local limiter (164 of 200
                # admitted). A dead Redis refuses at once, so 2 s costs only on a black hole.
                socket_timeout=2.0,
                socket_connect_timeout=2.0,
            )
            self._redis = aioredis.Redis(connection_pool=pool)
        self._prefix = prefix
        self._sha: str | None = None
        self._local = LocalGcra()
        self._down_until = 0.0
        self._on_fallback = on_fallback
        self.fallbacks = 0

    @property
    def backend(self) -> str:
        """`redis` while Redis answers, `local` otherwise."""
        if self._redis is None or time.monotonic() < self._down_until:
            return "local"
        return "redis"

    def keys_for(self, subject: str, limits: Sequence[Limit]) -> list[str]:
        """Redis keys of a subject's limits (one hash slot per subject)."""
        return [f"{self._prefix}:{{{subject}}}:{lim.name}" for lim in limits]

    async def hit(self, subject: str, limits: Sequence[Limit]) -> Decision:
        """Count one request of `subject`; never raises for an unreachable Redis."""
        keys = self.keys_for(subject, limits)
        if self._redis is not None and time.monotonic() >= self._down_until:
            try:
                return await self._hit_redis(self._redis, keys, limits)
            except (RedisError, OSError) as exc:
                self._down_until = time.monotonic() + REDIS_DOWN_BACKOFF
                self.fallbacks += 1
                log.warning("ratelimit.redis_unavailable", error=str(exc), fallback="local")
                if self._on_fallback is not None:
                    self._on_fallback(type(exc).__name__)
        return self._local.hit(keys, limits)

    async def _hit_redis(
        self, client: aioredis.Redis, keys: Sequence[str], limits: Sequence[Limit]
    ) -> Decision:
        args: list[int] = []
        for lim in limits:
            args += [lim.step_us, lim.span_us]
        if self._sha is None:
            self._sha = str(await client.script_load(GCRA_LUA))
        try:
            res = await client.evalsha(self._sha, len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted or SCRIPT FLUSH: load again, once
            self._sha = str(await client.script_load(GCRA_LUA))
            res = await client.evalsha(self._sha, len(keys), *keys, *args)
        values = [float(v) for v in res]
        return _decide(values[0] == 1, values[1], limits, values[2:], "redis")

    async def close(self) -> None:
        """Close the Redis connections."""
        if self._redis is not None:
            await self._redis.aclose(close_connection_pool=True)


def redis_status(redis_url: str | None) -> Literal["up", "down", "not configured"]:
    """Whether the rate-limit Redis answers a PING (for /readyz; never raises)."""
    if not redis_url:
        return "not configured"
    client = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        client.ping()
    except (RedisError, OSError):
        return "down"
    finally:
        client.close()
    return "up"
