"""Domain events for live streaming: publish from anywhere, read in order, resume by id.

An event is `{id, type, symbol, ts, data}` with `type` one of tick, signal_flip,
grade_change, alert. Two buses implement one protocol and are picked by settings:

* `MemoryEventBus` (embedded default, one process): a bounded ring buffer; ids look like
  Redis stream ids (`<ms>-<seq>`), so clients resume the same way on both.
* `RedisEventBus` (`settings.redis_url`): one Redis stream, `XADD … MAXLEN ~ n`; readers use
  `XREAD BLOCK`; the event id *is* the stream id, so any API replica can resume a client.

Publishing is synchronous and thread-safe (the pipeline and the alert evaluator are sync
code); reading is async (the WebSocket hub). The `publish_*` helpers are the hooks other
services call: events are best-effort notifications — the database stays the source of
truth — so a broken bus is logged and never fails the caller.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, cast, get_args

import structlog

from coinlens.domain.errors import TemporaryError, UserInputError
from coinlens.services.context import Context
from coinlens.settings import Settings

log = structlog.get_logger(__name__)

EventType = Literal["tick", "signal_flip", "grade_change", "alert"]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
KEY_HOLDERS = "keys"
"""The audience of operational notices (e.g. "data stale"): every stream opened with an API
key, never the public dashboard stream."""
DEFAULT_STREAM = "coinlens:events"
DEFAULT_RETAIN = 10_000  # events kept for resume (ring size / approximate MAXLEN)
START = "0-0"


@dataclass(frozen=True, slots=True)
class Event:
    """One domain event; `audience` limits delivery (e.g. `key:12` for a key's alert)."""

    id: str
    type: EventType
    symbol: str
    ts: datetime
    data: Mapping[str, Any]
    audience: str | None = None

    def wire(self) -> dict[str, Any]:
        """The JSON shape clients receive (audience is routing, not content)."""
        return {
            "id": self.id,
            "type": self.type,
            "symbol": self.symbol,
            "ts": self.ts.isoformat().replace("+00:00", "Z"),
            "data": dict(self.data),
        }


def parse_id(event_id: str) -> tuple[int, int]:
    """`<ms>-<seq>` as a comparable pair; `UserInputError` for anything else."""
    ms, sep, seq = event_id.partition("-")
    if not (ms.isdigit() and (not sep or seq.isdigit())) or len(event_id) > 40:
        raise UserInputError(f"not an event id: {event_id[:40]!r} (expected <ms>-<seq>)")
    return int(ms), int(seq) if sep else 0


def _check(type_: str, symbol: str) -> tuple[EventType, str]:
    if type_ not in EVENT_TYPES:
        raise UserInputError(f"unknown event type {type_!r}; choose from {EVENT_TYPES}")
    sym = symbol.strip().upper()
    if not sym or len(sym) > 32:
        raise UserInputError("an event needs a symbol of 1-32 characters")
    return type_, sym


class EventReader(Protocol):
    """An async cursor over a bus, bound to the event loop that uses it."""

    async def head(self) -> str:
        """The id of the newest event (`0-0` when there is none)."""
        ...

    async def read(self, after: str, *, count: int, block: float) -> list[Event]:
        """Up to `count` events after `after`, oldest first; wait up to `block` s for one."""
        ...

    async def gap(self, after: str) -> bool:
        """Whether events after `after` were already trimmed (a resume would miss some)."""
        ...

    async def aclose(self) -> None:
        """Release the reader's connection or wake-up hook."""
        ...


class EventBus(Protocol):
    """Publish (sync, thread-safe) and hand out readers."""

    def publish(
        self,
        type_: str,
        symbol: str,
        data: Mapping[str, Any],
        *,
        ts: datetime | None = None,
        audience: str | None = None,
    ) -> Event:
        """Append an event and return it with its id."""
        ...

    def reader(self) -> EventReader:
        """A new reader for the calling event loop."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


# --- in memory -----------------------------------------------------------------------------


@dataclass
class MemoryEventBus:
    """A bounded ring buffer of events; readers are woken across threads and loops."""

    retain: int = DEFAULT_RETAIN
    _events: deque[tuple[tuple[int, int], Event]] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _last: tuple[int, int] = (0, 0)
    _trimmed: tuple[int, int] = (0, 0)
    _waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(
        default_factory=set, init=False
    )

    def __post_init__(self) -> None:
        self._events = deque(maxlen=self.retain)

    def publish(
        self,
        type_: str,
        symbol: str,
        data: Mapping[str, Any],
        *,
        ts: datetime | None = None,
        audience: str | None = None,
    ) -> Event:
        """Append an event (the oldest falls out past `retain`) and wake every reader."""
        kind, sym = _check(type_, symbol)
        with self._lock:
            ms = max(time.time_ns() // 1_000_000, self._last[0])
            key = (ms, self._last[1] + 1 if ms == self._last[0] else 0)
            self._last = key
            event = Event(f"{key[0]}-{key[1]}", kind, sym, ts or datetime.now(UTC), data, audience)
            if len(self._events) == self.retain:
                self._trimmed = self._events[0][0]
            self._events.append((key, event))
            waiters = list(self._waiters)
        for entry in waiters:
            try:
                entry[0].call_soon_threadsafe(entry[1].set)
            except RuntimeError:  # that loop is closed; its reader is gone
                self.forget(entry)
        return event

    def after(self, after: str, count: int) -> list[Event]:
        """Up to `count` retained events after `after`."""
        key = parse_id(after)
        with self._lock:
            found = [e for k, e in self._events if k > key]
        return found[:count]

    def head(self) -> str:
        """The newest id."""
        with self._lock:
            return f"{self._last[0]}-{self._last[1]}"

    def gap(self, after: str) -> bool:
        """Whether events newer than `after` fell out of the ring."""
        with self._lock:
            return parse_id(after) < self._trimmed

    def reader(self) -> MemoryReader:
        """A reader bound to the running loop."""
        wake = asyncio.Event()
        entry = (asyncio.get_running_loop(), wake)
        with self._lock:
            self._waiters.add(entry)
        return MemoryReader(self, entry)

    def forget(self, entry: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        """Drop a reader's wake-up hook."""
        with self._lock:
            self._waiters.discard(entry)

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class MemoryReader:
    """Reads a `MemoryEventBus` from one event loop."""

    bus: MemoryEventBus
    entry: tuple[asyncio.AbstractEventLoop, asyncio.Event]

    async def head(self) -> str:
        """The newest id."""
        return self.bus.head()

    async def read(self, after: str, *, count: int, block: float) -> list[Event]:
        """Events after `after`; waits up to `block` s for the next publish."""
        wake = self.entry[1]
        wake.clear()  # before looking, so a publish in between still wakes us
        found = self.bus.after(after, count)
        if found or block <= 0:
            return found
        try:
            await asyncio.wait_for(wake.wait(), block)
        except TimeoutError:
            return []
        return self.bus.after(after, count)

    async def gap(self, after: str) -> bool:
        """See `MemoryEventBus.gap`."""
        return self.bus.gap(after)

    async def aclose(self) -> None:
        """Stop being woken."""
        self.bus.forget(self.entry)


# --- Redis streams -------------------------------------------------------------------------


def _decode(entry_id: bytes | str, fields: Mapping[bytes, bytes]) -> Event:
    raw = {k.decode(): v.decode() for k, v in fields.items()}
    audience = raw.get("audience") or None
    return Event(
        entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        cast(EventType, raw["type"]),
        raw["symbol"],
        datetime.fromisoformat(raw["ts"]),
        json.loads(raw["data"]),
        audience,
    )


class RedisEventBus:
    """One Redis stream; `XADD MAXLEN ~ retain` to publish, `XREAD BLOCK` to read."""

    def __init__(
        self, url: str, *, stream: str = DEFAULT_STREAM, retain: int = DEFAULT_RETAIN
    ) -> None:
        import redis

        self.url, self.stream, self.retain = url, stream, retain
        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)

    def publish(
        self,
        type_: str,
        symbol: str,
        data: Mapping[str, Any],
        *,
        ts: datetime | None = None,
        audience: str | None = None,
    ) -> Event:
        """`XADD` the event; its id is the stream id. Redis failures → `TemporaryError`."""
        import redis

        kind, sym = _check(type_, symbol)
        when = ts or datetime.now(UTC)
        fields = {
            "type": kind,
            "symbol": sym,
            "ts": when.isoformat(),
            "data": json.dumps(dict(data), separators=(",", ":"), default=str),
            "audience": audience or "",
        }
        try:
            raw_id = self._client.xadd(
                self.stream,
                fields,  # type: ignore[arg-type]  # redis' stubs want a dict of its own types
                maxlen=self.retain,
                approximate=True,
            )
        except redis.RedisError as exc:
            raise TemporaryError(f"event bus unavailable: {type(exc).__name__}") from exc
        event_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        return Event(event_id, kind, sym, when, dict(data), audience)

    def reader(self) -> RedisReader:
        """A reader with its own async connection (bound to the running loop)."""
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(self.url, socket_connect_timeout=3)
        return RedisReader(client, self.stream)

    def close(self) -> None:
        """Close the publishing connection pool."""
        self._client.close()


@dataclass
class RedisReader:
    """Reads the stream with `XREAD BLOCK` on an async connection."""

    client: Any  # redis.asyncio.Redis; typed loosely, its generics vary across versions
    stream: str

    async def head(self) -> str:
        """The newest stream id (`0-0` when empty)."""
        import redis

        try:
            newest = await self.client.xrevrange(self.stream, count=1)
        except redis.RedisError as exc:
            raise TemporaryError(f"event bus unavailable: {type(exc).__name__}") from exc
        return _decode(*newest[0]).id if newest else START

    async def read(self, after: str, *, count: int, block: float) -> list[Event]:
        """`XREAD COUNT n [BLOCK ms] STREAMS key after`."""
        import redis

        parse_id(after)
        wait = int(block * 1000) if block > 0 else None
        try:
            got = await self.client.xread({self.stream: after}, count=count, block=wait)
        except redis.RedisError as exc:
            raise TemporaryError(f"event bus unavailable: {type(exc).__name__}") from exc
        if not got:
            return []
        return [_decode(i, f) for i, f in got[0][1]]

    async def gap(self, after: str) -> bool:
        """Whether trimming passed `after`: entries were trimmed and the oldest kept is newer.

        Redis does not record the newest *trimmed* id (max-deleted-entry-id counts XDEL
        only), so a client whose id is exactly the last trimmed one is told of a gap that
        is not there: "gap" means "you may have missed events; refetch state".
        """
        import redis

        try:
            info = await self.client.xinfo_stream(self.stream)
        except redis.ResponseError:  # no such stream yet: nothing was ever trimmed
            return False
        except redis.RedisError as exc:
            raise TemporaryError(f"event bus unavailable: {type(exc).__name__}") from exc
        added, length = info.get("entries-added"), info.get("length", 0)
        first = info.get("recorded-first-entry-id")
        if first is None and info.get("first-entry"):
            first = info["first-entry"][0]
        if first is None or (added is not None and added <= length):
            return False
        text = first.decode() if isinstance(first, bytes) else str(first)
        return parse_id(after) < parse_id(text)

    async def aclose(self) -> None:
        """Close the async connection."""
        await self.client.aclose()


# --- one bus per deployment, and the publish hooks -----------------------------------------

_BUSES: dict[tuple[str, str], EventBus] = {}
_BUSES_LOCK = threading.Lock()


def bus_for(settings: Settings) -> EventBus:
    """The process's bus for `settings`: Redis when `redis_url` is set, else in-memory.

    In-memory buses are per data dir, so an embedded instance's pipeline and API (same
    process) share one; a Redis bus is shared by every process on the same server.
    """
    key = (
        ("redis", settings.redis_url)
        if settings.redis_url
        else ("memory", str(settings.data_dir.resolve()))
    )
    with _BUSES_LOCK:
        bus = _BUSES.get(key)
        if bus is None:
            bus = RedisEventBus(key[1]) if settings.redis_url else MemoryEventBus()
            _BUSES[key] = bus
        return bus


def reset_buses() -> None:
    """Close and forget every bus (tests, shutdown)."""
    with _BUSES_LOCK:
        buses = list(_BUSES.values())
        _BUSES.clear()
    for bus in buses:
        bus.close()


def publish(
    ctx: Context,
    type_: EventType,
    symbol: str,
    data: Mapping[str, Any],
    *,
    audience: str | None = None,
) -> Event | None:
    """Publish on the deployment's bus; None (logged) when the bus is down."""
    try:
        return bus_for(ctx.settings).publish(type_, symbol, data, audience=audience)
    except TemporaryError as exc:
        log.warning("events.publish_failed", type=type_, symbol=symbol, detail=exc.detail)
        return None


def publish_tick(
    ctx: Context,
    symbol: str,
    price: float,
    *,
    volume: float | None = None,
    source: str = "",
    quote: str | None = None,
) -> Event | None:
    """A live price for `symbol` (from a ticker poll or a new candle), in `quote` if known."""
    data = {"price": price, "volume": volume, "source": source, "quote": quote}
    return publish(ctx, "tick", symbol, data)


def publish_signal_flip(
    ctx: Context, symbol: str, previous: str | None, current: str, *, score: float | None = None
) -> Event | None:
    """The token's signal changed from `previous` to `current` (long/flat/short)."""
    data = {"previous": previous, "signal": current, "score": score}
    return publish(ctx, "signal_flip", symbol, data)


def publish_grade_change(
    ctx: Context,
    symbol: str,
    kind: str,
    previous: Mapping[str, Any] | None,
    current: Mapping[str, Any],
) -> Event | None:
    """A Trader/Investor grade (`kind`) moved; `previous`/`current` hold grade and band."""
    data = {"kind": kind, "previous": previous, "current": current}
    return publish(ctx, "grade_change", symbol, data)


def publish_alert(
    ctx: Context, symbol: str, owner_key_id: int, rule_id: int, title: str, body: str = ""
) -> Event | None:
    """An alert rule fired; only streams authenticated by the owning key receive it."""
    data = {"rule_id": rule_id, "title": title, "body": body}
    return publish(ctx, "alert", symbol, data, audience=f"key:{owner_key_id}")
