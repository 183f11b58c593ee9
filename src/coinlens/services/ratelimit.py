"""Rate limits: GCRA, atomic in Redis through one Lua script, with an in-process fallback.

GCRA ("generic cell rate algorithm") keeps one number per subject and limit: the
theoretical arrival time (TAT). A limit of `quota` per `window` has emission interval
T = window / quota; a request is allowed when max(TAT, now) + T − now ≤ quota·T, which
admits a burst of exactly `quota` and then one request every T. All limits of a request
(per minute *and* per day) are checked and updated in one script run, so API processes
sharing a Redis agree exactly. Requests arriving in the same event-loop tick of one process
go to Redis together, in one run of the script, which still decides them one after another
(so one round trip serves a whole tick; a batch spans subjects, so Redis must be a single
node or primary, not a Cluster). The script runs by EVALSHA and is re-loaded on NOSCRIPT
(a restarted or flushed Redis). When Redis is unreachable the same algorithm runs in
process — limits then hold per process only — and the fallback is logged and counted.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
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
MAX_BATCH = 256  # requests per script run (a bigger tick is split into several runs)

# One run decides a batch of requests. Requests with the same keys and limits form a group;
# KEYS holds each group's keys back to back, and ARGV per group: its request count c, its key
# count n, then n (emission interval, burst span) pairs. The c requests of a group are
# decided one after another, each seeing the previous one's update, so a batch is exactly as
# strict as its requests sent one by one. The reply is one string, per request (in group
# order) "allowed retry_us" and per limit "remaining tat_offset_us", space-separated.
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats, dirty, out = {}, {}, {}
local k, a = 1, 1
while a <= #ARGV do
  local c, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local steps, spans = {}, {}
  for i = 0, n - 1 do
    steps[i], spans[i] = tonumber(ARGV[a + 2 * i]), tonumber(ARGV[a + 2 * i + 1])
    local key = KEYS[k + i]
    if tats[key] == nil then
      tats[key] = tonumber(redis.call('GET', key) or 0)
    end
  end
  for _ = 1, c do
    local allowed, retry, cur = 1, 0, {}
    for i = 0, n - 1 do
      local tat = tats[KEYS[k + i]]
      if tat < now then tat = now end
      cur[i] = tat
      local wait = tat + steps[i] - now - spans[i]
      if wait > 0 then
        allowed = 0
        if wait > retry then retry = wait end
      end
    end
    out[#out + 1] = allowed
    out[#out + 1] = string.format('%.0f', retry)
    for i = 0, n - 1 do
      local key, tat = KEYS[k + i], cur[i]
      if allowed == 1 then
        tat = tat + steps[i]
        tats[key] = tat
        dirty[key] = true
      end
      out[#out + 1] = string.format('%.0f', math.floor((spans[i] - (tat - now)) / steps[i]))
      out[#out + 1] = string.format('%.0f', tat - now)
    end
  end
  k = k + n
  a = a + 2 * n
end
for i = 1, #KEYS do
  local key = KEYS[i]
  if dirty[key] then
    dirty[key] = nil
    local tat = tats[key]
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  end
end
return table.concat(out, ' ')
"""


@dataclass(frozen=True, slots=True)
class Limit:
    """A quota of requests per window (seconds), named for the RateLimit-Policy header."""

    name: str
    quota: int
    window: int
    # derived once: every request of every subject reads them
    step_us: int = field(init=False, repr=False, compare=False)
    span_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # emission interval T (rounded down: never looser than the quota); burst span quota·T
        step = max(1, self.window * _US // self.quota)
        object.__setattr__(self, "step_us", step)
        object.__setattr__(self, "span_us", step * self.quota)


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


@lru_cache(maxsize=256)
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


@dataclass(frozen=True, slots=True)
class _Pending:
    """One request waiting for its batch's script run."""

    keys: list[str]
    limits: Sequence[Limit]
    future: asyncio.Future[Decision]


class RateLimiter:
    """GCRA across processes via Redis when configured, else (or when Redis fails) local.

    Requests that reach the limiter in the same event-loop tick share one script run (one
    round trip): under load a worker pays for Redis once per tick, not once per request.
    """

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
                # a slow reply or connect during a burst usually means a starved event loop,
                # not a dead Redis: 0.5 s connect timeouts sent CI bursts to the local
                # limiter (164 of 200 admitted). A dead Redis refuses at once, so 2 s costs
                # only on a black hole.
                socket_timeout=2.0,
                socket_connect_timeout=2.0,
            )
            self._redis = aioredis.Redis(connection_pool=pool)
        self._prefix = prefix
        self._sha: str | None = None
        self._local = LocalGcra()
        self._down_until = 0.0
        self._on_fallback = on_fallback
        self._queue: list[_Pending] = []
        self._runs: set[asyncio.Task[None]] = set()
        self.fallbacks = 0

    @property
    def backend(self) -> str:
        """`redis` while Redis answers, `local` otherwise."""
        if self._redis is None or time.monotonic() < self._down_until:
            return "local"
        return "redis"

    def keys_for(self, subject: str, limits: Sequence[Limit]) -> list[str]:
        """Redis keys of a subject's limits."""
        return [f"{self._prefix}:{{{subject}}}:{lim.name}" for lim in limits]

    async def hit(self, subject: str, limits: Sequence[Limit]) -> Decision:
        """Count one request of `subject`; never raises for an unreachable Redis."""
        keys = self.keys_for(subject, limits)
        if self._redis is None or time.monotonic() < self._down_until:
            return self._local.hit(keys, limits)
        loop = asyncio.get_running_loop()
        if not self._queue:  # the first of this tick: run the batch once the tick is over
            loop.call_soon(self._flush)
        future: asyncio.Future[Decision] = loop.create_future()
        self._queue.append(_Pending(keys, limits, future))
        return await future

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        for i in range(0, len(queue), MAX_BATCH):
            run = asyncio.ensure_future(self._run(queue[i : i + MAX_BATCH]))
            self._runs.add(run)
            run.add_done_callback(self._runs.discard)

    async def _run(self, batch: list[_Pending]) -> None:
        try:
            decided = await self._hit_redis(batch)
        except (RedisError, OSError) as exc:
            self._fall_back(exc)
            decided = [(p, self._local.hit(p.keys, p.limits)) for p in batch]
        except BaseException as exc:  # cancelled, or a bug: no request may wait forever
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            raise
        for p, decision in decided:
            if not p.future.done():  # its request may have been cancelled meanwhile
                p.future.set_result(decision)

    def _fall_back(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + REDIS_DOWN_BACKOFF
        self.fallbacks += 1
        log.warning("ratelimit.redis_unavailable", error=str(exc), fallback="local")
        if self._on_fallback is not None:
            self._on_fallback(type(exc).__name__)

    async def _hit_redis(self, batch: list[_Pending]) -> list[tuple[_Pending, Decision]]:
        client = self._redis
        assert client is not None  # noqa: S101 - only batched while Redis is configured
        groups: dict[tuple[str, Sequence[Limit]], list[_Pending]] = {}
        for p in batch:
            groups.setdefault((p.keys[0], p.limits), []).append(p)
        keys: list[str] = []
        args: list[int] = []
        for members in groups.values():
            first = members[0]
            keys += first.keys
            args += (len(members), len(first.keys))
            for lim in first.limits:
                args += (lim.step_us, lim.span_us)
        if self._sha is None:
            self._sha = str(await client.script_load(GCRA_LUA))
        try:
            res = await client.evalsha(self._sha, len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted or SCRIPT FLUSH: load again, once
            self._sha = str(await client.script_load(GCRA_LUA))
            res = await client.evalsha(self._sha, len(keys), *keys, *args)
        values = [float(v) for v in res.split()]
        decided, at = [], 0
        for members in groups.values():
            for p in members:
                end = at + 2 + 2 * len(p.limits)
                raw = values[at + 2 : end]
                decided.append(
                    (p, _decide(values[at] == 1, values[at + 1], p.limits, raw, "redis"))
                )
                at = end
        return decided

    async def close(self) -> None:
        """Close the Redis connections (after the batches in flight)."""
        if self._runs:
            await asyncio.gather(*self._runs, return_exceptions=True)
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
