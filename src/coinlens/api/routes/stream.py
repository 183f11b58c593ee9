"""`GET /v1/stream` (WebSocket): live ticks, signal flips, grade changes and alert firings.

`GET /web/stream` serves the dashboard the same public events without a key.

Protocol (JSON text frames; see docs/streaming.md):

    client → {"type": "auth", "key": "cl_live_…"}         only without an X-API-Key/Bearer header
    client → {"type": "subscribe", "symbols": ["ETH"], "events": ["tick"], "last_event_id": "…"}
    client → {"type": "unsubscribe", "symbols": ["ETH"]}
    server → {"type": "ready" | "subscribed" | "unsubscribed" | "resumed" | "heartbeat" | "error"}
    server → {"id", "type": tick|signal_flip|grade_change|alert, "symbol", "ts", "data"}

One hub per app reads the event bus once and fans out to a bounded queue per connection; a
client whose queue fills (it reads slower than events arrive) is closed with 1013 "try again
later" and counted, so a slow reader can never grow the server's memory. A reconnecting
client sends the last id it saw and gets what it missed (from the ring buffer / stream).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope
from starlette.websockets import WebSocketState

from coinlens.api.security import READ, key_in_query, presented_key
from coinlens.domain.errors import CoinlensError, TemporaryError
from coinlens.services.context import Context
from coinlens.services.events import (
    EVENT_TYPES,
    KEY_HOLDERS,
    Event,
    EventBus,
    EventReader,
    bus_for,
    parse_id,
)
from coinlens.services.keys import KeyRejected, KeyVerifier, Principal
from coinlens.web import auth

router = APIRouter(tags=["stream"])
log = structlog.get_logger(__name__)

POLICY, TRY_AGAIN_LATER, TOO_BIG = 1008, 1013, 1009
ALL = "*"


@dataclass(frozen=True)
class StreamConfig:
    """Limits of the stream; `app.state.stream_config` overrides the defaults."""

    queue_size: int = 512  # events buffered per connection before it is dropped
    heartbeat_seconds: float = 15.0
    auth_timeout: float = 10.0
    max_symbols: int = 200
    max_message_bytes: int = 16_384
    replay_limit: int = 2_000  # events replayed on resume, at most
    read_batch: int = 200
    block_seconds: float = 1.0
    recheck_seconds: float = 2.0  # how often an open stream's key is checked again
    streams_per_key: int = 10  # open streams one key may hold in one API process


_DROP = object()  # queued in place of the flushed backlog: "close this client"


class Subscriber:
    """One connection's filters and its bounded queue."""

    def __init__(self, queue_size: int, audiences: frozenset[str]) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(queue_size)
        self.symbols: set[str] = set()
        self.types: set[str] = set(EVENT_TYPES)
        self.audiences = audiences
        self.dropped = False
        self.last_sent = (0, 0)

    def wants(self, event: Event) -> bool:
        """Whether this connection subscribed to the event (and may see it)."""
        if event.audience is not None and event.audience not in self.audiences:
            return False
        in_symbols = event.symbol in self.symbols or ALL in self.symbols
        return in_symbols and event.type in self.types

    def offer(self, event: Event) -> bool:
        """Queue a wanted event; False (and a DROP marker) when the queue is full."""
        if self.dropped or not self.wants(event):
            return True
        try:
            self.queue.put_nowait(event)
            return True
        except asyncio.QueueFull:
            self.dropped = True
            while not self.queue.empty():  # free the backlog at once
                self.queue.get_nowait()
            self.queue.put_nowait(_DROP)
            return False


class StreamHub:
    """Reads the bus once per app and fans events out; runs only while someone listens."""

    def __init__(self, bus: EventBus, config: StreamConfig) -> None:
        self.bus, self.config = bus, config
        self.subscribers: set[Subscriber] = set()
        self.dropped = 0
        self.open_per_key: Counter[int] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._reading = asyncio.Event()  # set once the pump holds its starting cursor

    def attach(self, sub: Subscriber) -> None:
        """Start delivering to `sub` (and start the pump if it is idle)."""
        self.subscribers.add(sub)
        if self._task is None:
            self._reading = asyncio.Event()
            self._task = asyncio.create_task(self._pump())

    async def reading(self) -> None:
        """Until the pump has its starting cursor: an event published after this reaches every
        attached subscriber (a client told "ready" before the first pump read the bus's head
        could miss the first events it published; seen under load with Redis)."""
        await self._reading.wait()

    def detach(self, sub: Subscriber) -> None:
        """Stop delivering to `sub`; the pump stops by itself when nobody is left."""
        self.subscribers.discard(sub)

    def dispatch(self, events: Iterable[Event]) -> None:
        """Offer events to every subscriber; count and forget those that overflow."""
        for event in events:
            for sub in list(self.subscribers):
                if not sub.offer(event):
                    self.dropped += 1
                    self.subscribers.discard(sub)
                    log.warning("stream.client_dropped", queue=self.config.queue_size)

    async def _fan_out(self, events: list[Event]) -> None:
        # Yield between chunks smaller than a queue, so every sender whose client keeps up
        # drains before the next chunk: a burst larger than one queue (a pipeline run
        # flipping hundreds of signals) drops only clients that really do not read.
        step = max(1, self.config.queue_size // 4)
        for start in range(0, len(events), step):
            self.dispatch(events[start : start + step])
            await asyncio.sleep(0)

    async def _pump(self) -> None:
        reader, reading = self.bus.reader(), self._reading
        try:
            try:
                cursor = await reader.head()
            finally:
                reading.set()  # also when the bus is away: nobody waits on a dead pump
            while True:
                if not self.subscribers:
                    self._task = None  # same step as the check: a new attach starts a new pump
                    return
                try:
                    events = await reader.read(
                        cursor, count=self.config.read_batch, block=self.config.block_seconds
                    )
                except TemporaryError as exc:
                    log.warning("stream.bus_unavailable", detail=exc.detail)
                    await asyncio.sleep(self.config.block_seconds)
                    continue
                if events:
                    cursor = events[-1].id
                    await self._fan_out(events)
        finally:
            if self._task is asyncio.current_task():
                self._task = None
            await reader.aclose()


def hub_of(websocket: WebSocket, ctx: Context) -> StreamHub:
    """The app's hub, made on first use from `app.state.event_bus` or the settings' bus."""
    state = websocket.app.state
    hub = getattr(state, "stream_hub", None)
    if not isinstance(hub, StreamHub):
        bus = getattr(state, "event_bus", None) or bus_for(ctx.settings)
        hub = StreamHub(bus, getattr(state, "stream_config", None) or StreamConfig())
        state.stream_hub = hub
    return hub


# --- authentication ------------------------------------------------------------------------


def _verifier(websocket: WebSocket, ctx: Context) -> KeyVerifier:
    state = websocket.app.state
    runtime = getattr(state, "api_runtime", None)
    verifier = getattr(runtime, "verifier", None) or getattr(state, "stream_verifier", None)
    if not isinstance(verifier, KeyVerifier):
        verifier = state.stream_verifier = KeyVerifier(ctx)
    return verifier


async def _verify(websocket: WebSocket, ctx: Context, raw: str) -> Principal:
    verifier = _verifier(websocket, ctx)
    principal = verifier.recently_verified(raw)
    if principal is None:
        principal = await run_in_threadpool(verifier.verify, raw)
    if READ not in principal.scopes:
        raise KeyRejected("scope", "this key lacks the 'read' scope")
    return principal


def _refused_before_accept(scope: Scope) -> str | None:
    if key_in_query(scope.get("query_string", b"")):
        return "send the key in X-API-Key or a first auth message, never in the URL"
    return None


async def _first_message_auth(
    websocket: WebSocket, ctx: Context, config: StreamConfig
) -> tuple[Principal | None, dict[str, Any] | None, str | None] | None:
    """Without a header key: (principal, first non-auth message, key); None once closed."""
    try:
        first = await asyncio.wait_for(_receive(websocket, config), config.auth_timeout)
    except TimeoutError:
        await websocket.close(POLICY, "authenticate within the time limit")
        return None
    if first is not None and first.get("type") == "auth":
        key = str(first.get("key", ""))
        return await _verify(websocket, ctx, key), None, key
    if ctx.settings.require_keys:
        await websocket.close(POLICY, "authenticate first: {'type': 'auth', 'key': ...}")
        return None
    return None, first, None  # keys not required: the first message is a normal one


async def _receive(websocket: WebSocket, config: StreamConfig) -> dict[str, Any] | None:
    """The next JSON object from the client (None when it is not one)."""
    text = await websocket.receive_text()
    if len(text) > config.max_message_bytes:
        raise _TooBig
    try:
        message = json.loads(text)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


class _TooBig(Exception):
    """A client message over the size limit."""


# --- one connection ------------------------------------------------------------------------


class Connection:
    """Serialises sends; handles subscribe/unsubscribe, resume, events and heartbeats."""

    def __init__(
        self, websocket: WebSocket, hub: StreamHub, sub: Subscriber, key: str | None = None
    ) -> None:
        self.ws, self.hub, self.sub, self.config = websocket, hub, sub, hub.config
        self.key = key  # the key it authenticated with: checked again while it streams
        self.lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        """One frame; sends never interleave."""
        async with self.lock:
            await self.ws.send_text(json.dumps(message, separators=(",", ":"), default=str))

    async def error(self, detail: str) -> None:
        """Tell the client what was wrong with its message; the connection stays."""
        await self.send({"type": "error", "detail": detail})

    async def run(self, first: dict[str, Any] | None) -> None:
        """Until the client leaves, is dropped, or breaks the protocol."""
        tasks = [
            asyncio.create_task(self._receiver(first)),
            asyncio.create_task(self._sender()),
            asyncio.create_task(self._heartbeat()),
        ]
        if self.key is not None:
            tasks.append(asyncio.create_task(self._watch_key(self.key)))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raise what ended the connection
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _sender(self) -> None:
        while True:
            item = await self.sub.queue.get()
            if item is _DROP:
                await self.ws.close(TRY_AGAIN_LATER, "too slow: event queue full; reconnect")
                return
            key = parse_id(item.id)
            async with self.lock:
                if key <= self.sub.last_sent:  # already sent by a resume replay
                    continue
                await self.ws.send_text(json.dumps(item.wire(), separators=(",", ":")))
                self.sub.last_sent = key

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            last = "{}-{}".format(*self.sub.last_sent)
            await self.send({"type": "heartbeat", "ts": now, "last_event_id": last})

    async def _watch_key(self, key: str) -> None:
        """Close the stream once its key is revoked or expires (another process's revocation
        is seen within the verifier's row lifetime); a database outage keeps it open."""
        ctx = self.ws.app.state.ctx
        while True:
            await asyncio.sleep(self.config.recheck_seconds)
            try:
                await _verify(self.ws, ctx, key)
            except KeyRejected as exc:
                await self.ws.close(POLICY, exc.detail)
                return
            except sa.exc.DBAPIError as exc:
                log.warning("stream.key_recheck_failed", error=type(exc.orig).__name__)

    async def _receiver(self, first: dict[str, Any] | None) -> None:
        if first is not None:
            await self.handle(first)
        while True:
            try:
                message = await _receive(self.ws, self.config)
            except _TooBig:
                await self.ws.close(
                    TOO_BIG, f"messages are limited to {self.config.max_message_bytes} bytes"
                )
                return
            if message is None:
                await self.error("send JSON objects with a `type`")
                continue
            await self.handle(message)

    async def handle(self, message: dict[str, Any]) -> None:
        """Apply one client message."""
        kind = message.get("type")
        try:
            if kind == "subscribe":
                await self._subscribe(message)
            elif kind == "unsubscribe":
                self._unsubscribe(message)
                await self.send(self._state("unsubscribed"))
            elif kind == "ping":
                await self.send({"type": "pong"})
            elif kind == "pong":
                pass  # an answer to our heartbeat; nothing to do
            else:
                await self.error(
                    f"unknown message type {kind!r}; use subscribe, unsubscribe or ping"
                )
        except CoinlensError as exc:
            await self.error(exc.detail)

    def _state(self, kind: str) -> dict[str, Any]:
        return {"type": kind, "symbols": sorted(self.sub.symbols), "events": sorted(self.sub.types)}

    async def _subscribe(self, message: dict[str, Any]) -> None:
        symbols = _symbols(message.get("symbols"))
        types = _types(message.get("events"))
        after = message.get("last_event_id")
        if after is not None:
            parse_id(str(after))  # reject a bad id before changing anything
        if len(self.sub.symbols | symbols) > self.config.max_symbols:
            await self.error(f"at most {self.config.max_symbols} symbols per connection")
            return
        self.sub.symbols |= symbols
        if types is not None:
            self.sub.types = types
        await self.send(self._state("subscribed"))
        if after is not None:
            await self._replay(str(after))

    def _unsubscribe(self, message: dict[str, Any]) -> None:
        self.sub.symbols -= _symbols(message.get("symbols"))
        types = _types(message.get("events"))
        if types is not None and message.get("symbols") is None:
            self.sub.types -= types

    async def _replay(self, after: str) -> None:
        """Send what the client missed since `after`, in order, before any newer live event."""
        reader: EventReader = self.hub.bus.reader()
        sent, cursor, complete = 0, after, True
        try:
            gap = await reader.gap(after)
            async with self.lock:
                while True:
                    batch = await reader.read(cursor, count=self.config.read_batch, block=0)
                    if not batch:
                        break
                    for event in batch:
                        cursor = event.id
                        if self.sub.wants(event):
                            await self.ws.send_text(json.dumps(event.wire(), separators=(",", ":")))
                            self.sub.last_sent = max(self.sub.last_sent, parse_id(event.id))
                            sent += 1
                    if sent >= self.config.replay_limit:
                        complete = False
                        break
        finally:
            await reader.aclose()
        resumed = {"type": "resumed", "after": after, "replayed": sent, "gap": gap}
        await self.send({**resumed, "complete": complete, "last_event_id": cursor})


def _symbols(value: object) -> set[str]:
    if value is None:
        return set()
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _bad('`symbols` must be a list of strings (or ["*"] for all)')
    out = {s.strip().upper() for s in value}
    if any(not s or len(s) > 32 for s in out):
        raise _bad("symbols are 1-32 characters")
    return out


def _types(value: object) -> set[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or any(v not in EVENT_TYPES for v in value):
        raise _bad(f"`events` must be a list of {', '.join(EVENT_TYPES)}")
    return set(value)


def _bad(detail: str) -> CoinlensError:
    return CoinlensError(detail)


@router.websocket("/v1/stream", name="stream")
async def stream(websocket: WebSocket) -> None:
    """Authenticate, then stream the subscribed symbols' events until the client leaves."""
    ctx = websocket.app.state.ctx
    refusal = _refused_before_accept(websocket.scope)
    if refusal is not None:
        await websocket.close(POLICY, refusal)  # before accept: the handshake gets a 403
        return
    hub = hub_of(websocket, ctx)
    first: dict[str, Any] | None = None
    try:
        raw = presented_key(dict(websocket.scope["headers"]))
        principal = await _verify(websocket, ctx, raw) if raw is not None else None
        await websocket.accept()
        if raw is None:
            authed = await _first_message_auth(websocket, ctx, hub.config)
            if authed is None:
                return
            principal, first, raw = authed
    except KeyRejected as exc:
        await websocket.close(POLICY, exc.detail)  # before accept: a 403 handshake answer
        return
    except sa.exc.DBAPIError as exc:  # the key cannot be checked now: not refused, not served
        log.warning("stream.key_check_failed", error=type(exc.orig).__name__)
        if websocket.application_state == WebSocketState.CONNECTING:
            await websocket.accept()  # a close before accept is a 403 handshake: "forbidden"
        await websocket.close(TRY_AGAIN_LATER, "the key cannot be checked now: try again later")
        return
    except (WebSocketDisconnect, _TooBig):
        return
    await _serve(websocket, hub, principal, first, key=raw)


def _same_origin(websocket: WebSocket) -> bool:
    """A browser's Origin names this site (X-Forwarded-Host behind a proxy); none: not a browser."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    host = websocket.headers.get("x-forwarded-host") or websocket.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.split(",")[0].strip().lower()


@router.websocket("/web/stream", name="web_stream")
async def web_stream(websocket: WebSocket) -> None:
    """The dashboard's own feed: public market events (ticks, flips, grades), no API key.

    Same protocol as `/v1/stream` minus authentication; events addressed to a key or an
    account (alerts) never reach it. Refused to other sites' pages, and without the owner
    login when the research pages are private.
    """
    ctx = websocket.app.state.ctx
    if not _same_origin(websocket):
        await websocket.close(POLICY, "the web feed serves this site's own pages only")
        return
    session = websocket.cookies.get(auth.SESSION_COOKIE)
    if ctx.settings.web_private and not auth.session_valid(ctx.settings, session):
        await websocket.close(POLICY, "log in to see the research pages")
        return
    await websocket.accept()
    await _serve(websocket, hub_of(websocket, ctx), None, None)


def audiences_of(principal: Principal | None) -> frozenset[str]:
    """The addressed events a stream may see: its key's, its account's and the notices to
    every key holder; none without a key (the public dashboard stream)."""
    if principal is None:
        return frozenset()
    return frozenset({f"key:{principal.key_id}", f"account:{principal.account}", KEY_HOLDERS})


async def _serve(
    websocket: WebSocket,
    hub: StreamHub,
    principal: Principal | None,
    first: dict[str, Any] | None,
    key: str | None = None,
) -> None:
    key_id = principal.key_id if principal is not None else None
    if key_id is not None:
        limit = hub.config.streams_per_key
        if hub.open_per_key[key_id] >= limit:
            await websocket.close(POLICY, f"this key already has {limit} open streams (the limit)")
            return
        hub.open_per_key[key_id] += 1
    sub = Subscriber(hub.config.queue_size, audiences_of(principal))
    conn = Connection(websocket, hub, sub, key if principal is not None else None)
    hub.attach(sub)
    try:
        await hub.reading()
        head = await _head(hub)
        await conn.send(
            {
                "type": "ready",
                "heartbeat_seconds": hub.config.heartbeat_seconds,
                "queue_size": hub.config.queue_size,
                "events": list(EVENT_TYPES),
                "last_event_id": head,
            }
        )
        await conn.run(first)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away (RuntimeError: a send after the close)
    finally:
        hub.detach(sub)
        if key_id is not None:
            hub.open_per_key[key_id] -= 1
            if not hub.open_per_key[key_id]:
                del hub.open_per_key[key_id]


async def _head(hub: StreamHub) -> str:
    reader = hub.bus.reader()
    try:
        return await reader.head()
    finally:
        await reader.aclose()
