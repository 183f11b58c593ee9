"""`/v1/stream` on a real uvicorn server: filters, auth, heartbeat, resume, slow clients.

Each behaviour runs on the in-memory bus and on a real Redis stream (127.0.0.1:6379; under
CI=true a missing Redis fails). Clients are the `websockets` library's sync client, so every
receive has a timeout and a broken server fails fast instead of hanging.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect
from websockets.uri import parse_uri

from coinlens.api.app import create_app
from coinlens.api.routes.stream import StreamConfig, StreamHub, Subscriber, audiences_of
from coinlens.services import events
from coinlens.services.context import build_context
from coinlens.services.events import EventBus, MemoryEventBus, RedisEventBus
from coinlens.settings import Settings

TIMEOUT = 5.0
RETAIN = 500  # events the test buses keep for resume


@dataclass
class LiveServer:
    """A uvicorn server on 127.0.0.1 in a thread, serving one app."""

    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"


def start_server(app: FastAPI) -> LiveServer:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the uvicorn thread died"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return LiveServer(app, server, thread)


def stop_server(live: LiveServer) -> None:
    live.server.should_exit = True
    live.thread.join(10)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def bus(request: pytest.FixtureRequest) -> Iterator[EventBus]:
    """An in-memory bus, or a Redis stream of its own (deleted afterwards)."""
    if request.param == "memory":
        yield MemoryEventBus(retain=RETAIN)
        return
    # conftest's `redis_url`: skipped locally without Redis, a failure under CI=true
    url = request.getfixturevalue("redis_url")
    stream = f"coinlens:test:{uuid.uuid4().hex[:10]}"
    redis_bus = RedisEventBus(url, stream=stream, retain=RETAIN)
    yield redis_bus
    redis_bus._client.delete(stream)
    redis_bus.close()


@pytest.fixture
def keyed(sqlite_settings: Settings, api_headers: Callable[..., dict[str, str]]) -> Settings:
    """Settings whose (migrated) database holds keys made by the tests."""
    build_context(sqlite_settings).engine.dispose()
    return sqlite_settings


@pytest.fixture
def stream_config() -> StreamConfig:
    return StreamConfig(
        queue_size=16,
        heartbeat_seconds=0.3,
        auth_timeout=2.0,
        block_seconds=0.2,
        recheck_seconds=0.3,
        streams_per_key=3,
    )


@pytest.fixture
def live(keyed: Settings, bus: EventBus, stream_config: StreamConfig) -> Iterator[LiveServer]:
    app = create_app(keyed)
    app.state.event_bus = bus
    app.state.stream_config = stream_config
    server = start_server(app)
    yield server
    stop_server(server)


def recv(ws: ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return message


def recv_until(ws: ClientConnection, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The next message of `kind` (skipping heartbeats and the like)."""
    deadline = time.monotonic() + timeout
    while True:
        message = recv(ws, max(0.01, deadline - time.monotonic()))
        if message["type"] == kind:
            return message


@contextmanager
def open_stream(live: LiveServer, headers: dict[str, str]) -> Iterator[ClientConnection]:
    with connect(live.ws_url, additional_headers=headers, open_timeout=TIMEOUT) as ws:
        assert recv(ws)["type"] == "ready"
        yield ws


def subscribe(ws: ClientConnection, **message: Any) -> dict[str, Any]:
    ws.send(json.dumps({"type": "subscribe", **message}))
    return recv_until(ws, "subscribed")


def events_of(ws: ClientConnection, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The next `n` events (heartbeats skipped): fails after `timeout` s instead of waiting on
    heartbeats for ever when some never come."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        assert time.monotonic() < deadline, f"{len(out)} of {n} events in {timeout} s"
        message = recv(ws)
        if message["type"] in events.EVENT_TYPES:
            out.append(message)
    return out


# --- behaviour -----------------------------------------------------------------------------


def test_only_subscribed_symbols_and_types_arrive(
    live: LiveServer, bus: EventBus, keyed: Settings, api_headers: Callable[..., dict[str, str]]
) -> None:
    with open_stream(live, api_headers(keyed)) as ws:
        ack = subscribe(ws, symbols=["eth", "btc"], events=["tick", "signal_flip"])
        assert ack["symbols"] == ["BTC", "ETH"]
        assert ack["events"] == ["signal_flip", "tick"]
        bus.publish("tick", "DOGE", {"price": 0.1})  # not subscribed
        bus.publish("grade_change", "ETH", {"kind": "trader"})  # type not subscribed
        tick = bus.publish("tick", "ETH", {"price": 3000.5})
        flip = bus.publish("signal_flip", "BTC", {"previous": "flat", "signal": "long"})
        got = events_of(ws, 2)
        assert [(e["id"], e["type"], e["symbol"]) for e in got] == [
            (tick.id, "tick", "ETH"),
            (flip.id, "signal_flip", "BTC"),
        ]
        assert got[0]["data"] == {"price": 3000.5}
        ws.send(json.dumps({"type": "unsubscribe", "symbols": ["ETH"]}))
        assert recv_until(ws, "unsubscribed")["symbols"] == ["BTC"]
        bus.publish("tick", "ETH", {"price": 1.0})
        last = bus.publish("tick", "BTC", {"price": 2.0})
        assert events_of(ws, 1)[0]["id"] == last.id  # ETH no longer arrives


def test_alerts_reach_only_the_owning_key(live: LiveServer, bus: EventBus, keyed: Settings) -> None:
    from coinlens.services.keys import KeySpec, create_key

    ctx = build_context(keyed, migrate=False)
    created = create_key(ctx, KeySpec(name="alerts", scopes=("read",), plan="enterprise"))
    ctx.engine.dispose()
    with open_stream(live, {"X-API-Key": created.plaintext}) as ws:
        subscribe(ws, symbols=["*"])
        bus.publish("alert", "ETH", {"rule_id": 1}, audience=f"key:{created.key.id + 1}")
        mine = bus.publish("alert", "ETH", {"rule_id": 2}, audience=f"key:{created.key.id}")
        public = bus.publish("tick", "SOL", {"price": 150.0})
        got = events_of(ws, 2)
        assert [e["id"] for e in got] == [mine.id, public.id]
        assert got[0]["data"] == {"rule_id": 2}


@pytest.fixture
def default_bus(keyed: Settings, stream_config: StreamConfig) -> Iterator[tuple[LiveServer, Any]]:
    """A server on the deployment's own bus (`events.bus_for`, as the pipeline publishes to)
    and a context to publish with."""
    events.reset_buses()
    app = create_app(keyed)
    app.state.stream_config = stream_config
    server = start_server(app)
    ctx = build_context(keyed, migrate=False)
    try:
        yield server, ctx
    finally:
        ctx.engine.dispose()
        stop_server(server)
        events.reset_buses()


def test_publish_hooks_reach_a_stream_on_the_default_bus(
    default_bus: tuple[LiveServer, Any], keyed: Settings, api_headers: Callable[..., dict[str, str]]
) -> None:
    server, ctx = default_bus
    with open_stream(server, api_headers(keyed)) as ws:
        subscribe(ws, symbols=["ETH"])
        sent = events.publish_tick(ctx, "eth", 3012.25, source="test")
        flip = events.publish_signal_flip(ctx, "ETH", "flat", "long", score=0.4)
        grade = events.publish_grade_change(
            ctx, "ETH", "trader", {"grade": 60, "band": "B"}, {"grade": 72, "band": "A"}
        )
        assert sent is not None
        assert flip is not None
        assert grade is not None
        got = events_of(ws, 3)
        assert [e["type"] for e in got] == ["tick", "signal_flip", "grade_change"]
        assert got[0]["data"]["price"] == 3012.25
        assert got[2]["data"]["current"]["band"] == "A"


def test_the_data_stale_notice_reaches_key_holders_not_the_dashboard(
    default_bus: tuple[LiveServer, Any], keyed: Settings, api_headers: Callable[..., dict[str, str]]
) -> None:
    from coinlens.services import jobs

    server, ctx = default_bus
    with open_stream(server, api_headers(keyed)) as ws:
        subscribe(ws, symbols=["*"])
        jobs._raise_stale(ctx, jobs.Freshness(None, None, stale=True))
        (notice,) = events_of(ws, 1)
    assert (notice["type"], notice["symbol"]) == ("alert", "COINLENS")
    assert notice["data"]["title"] == "data stale"
    dashboard = Subscriber(4, audiences_of(None))  # /web/stream: no key
    dashboard.symbols.add("*")
    stored = events.bus_for(keyed).after("0-0", 10)
    assert [e.type for e in stored] == ["alert"]
    assert not dashboard.wants(stored[0])


def test_heartbeat_arrives_without_events(
    live: LiveServer, keyed: Settings, api_headers: Callable[..., dict[str, str]]
) -> None:
    with open_stream(live, api_headers(keyed)) as ws:
        subscribe(ws, symbols=["ETH"])
        beat = recv_until(ws, "heartbeat", timeout=2.0)
        assert beat["ts"].endswith("Z")
        ws.send(json.dumps({"type": "ping"}))
        assert recv_until(ws, "pong")["type"] == "pong"


def test_resume_replays_what_was_missed_in_order(
    live: LiveServer, bus: EventBus, keyed: Settings, api_headers: Callable[..., dict[str, str]]
) -> None:
    headers = api_headers(keyed)
    with open_stream(live, headers) as ws:
        subscribe(ws, symbols=["ETH"])
        first = bus.publish("tick", "ETH", {"price": 1.0})
        assert events_of(ws, 1)[0]["id"] == first.id
    # disconnected: three more happen, one for a symbol we do not follow
    missed = [bus.publish("tick", "ETH", {"price": p}) for p in (2.0, 3.0)]
    bus.publish("tick", "BTC", {"price": 9.0})
    missed.append(bus.publish("signal_flip", "ETH", {"signal": "long"}))
    with open_stream(live, headers) as ws:
        subscribe(ws, symbols=["ETH"], last_event_id=first.id)
        replayed = events_of(ws, 3)
        assert [e["id"] for e in replayed] == [e.id for e in missed]
        resumed = recv_until(ws, "resumed")
        assert resumed["replayed"] == 3
        assert resumed["gap"] is False
        live_one = bus.publish("tick", "ETH", {"price": 4.0})
        assert events_of(ws, 1)[0]["id"] == live_one.id  # no duplicates, no reordering


def test_resume_past_the_retained_window_reports_a_gap(
    live: LiveServer, bus: EventBus, keyed: Settings, api_headers: Callable[..., dict[str, str]]
) -> None:
    first = bus.publish("tick", "ETH", {"price": 0.0})
    for i in range(3 * RETAIN):  # the first falls out (Redis trims approximately)
        bus.publish("tick", "ETH", {"price": float(i)})
    with open_stream(live, api_headers(keyed)) as ws:
        subscribe(ws, symbols=["ETH"], last_event_id=first.id)
        resumed = recv_until(ws, "resumed")
        assert resumed["gap"] is True
        assert RETAIN <= resumed["replayed"] < 3 * RETAIN


class StalledClient:
    """A WebSocket client on a raw socket that stops reading once subscribed.

    A fixed small receive buffer (no autotuning up to tcp_rmem's 32 MB) makes the server's
    socket fill within a few MB, as for a real client on a slow link.
    """

    def __init__(self, live: LiveServer, headers: dict[str, str]) -> None:
        self.proto = ClientProtocol(parse_uri(live.ws_url))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32_768)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", live.port))
        request = self.proto.connect()
        request.headers.update(headers)
        self.proto.send_request(request)
        self._flush()
        while self.proto.state is not State.OPEN:  # the 101 answer
            self.proto.receive_data(self.sock.recv(65_536))
        self.proto.events_received()

    def _flush(self) -> None:
        for data in self.proto.data_to_send():
            self.sock.sendall(data)

    def send(self, message: dict[str, Any]) -> None:
        self.proto.send_text(json.dumps(message).encode())
        self._flush()

    def read_until_closed(self) -> tuple[list[Frame], int | None]:
        """Read everything the server sent; the data frames and the close code."""
        frames: list[Frame] = []
        while (chunk := self.sock.recv(1 << 20)) != b"":
            self.proto.receive_data(chunk)
            frames.extend(e for e in self.proto.events_received() if isinstance(e, Frame))
            if any(f.opcode is Opcode.CLOSE for f in frames):
                break
        self.sock.close()
        closing = [f for f in frames if f.opcode is Opcode.CLOSE]
        code = Close.parse(closing[0].data).code if closing else None
        return [f for f in frames if f.opcode is Opcode.TEXT], code


def test_a_slow_client_is_dropped_with_1013_and_memory_stays_bounded(
    live: LiveServer, bus: EventBus, keyed: Settings, api_headers: Callable[..., dict[str, str]]
) -> None:
    client = StalledClient(live, api_headers(keyed))
    client.send({"type": "subscribe", "symbols": ["ETH"]})
    time.sleep(0.3)  # the subscription is applied before we flood
    hub = live.app.state.stream_hub
    probe: list[int] = []
    pad = "x" * 32_768
    for i in range(400):  # ~13 MB: more than the socket buffers hold
        bus.publish("tick", "ETH", {"price": float(i), "pad": pad})
        if i % 50 == 0:
            time.sleep(0.01)  # let the pump keep up with the ring buffer
        probe.append(max((s.queue.qsize() for s in hub.subscribers), default=0))
    deadline = time.monotonic() + 10
    while not hub.dropped and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hub.dropped == 1
    assert max(probe) <= 16  # the per-connection queue never grew past its bound
    frames, code = client.read_until_closed()
    assert code == 1013
    received = [json.loads(f.data) for f in frames]
    ticks = [m for m in received if m["type"] == "tick"]
    assert 0 < len(ticks) < 400  # it got what fitted, then was dropped, not buffered forever


def test_fast_client_survives_a_burst_larger_than_its_queue(
    live: LiveServer, bus: EventBus, keyed: Settings, api_headers: Callable[..., dict[str, str]]
) -> None:
    with open_stream(live, api_headers(keyed)) as ws:
        subscribe(ws, symbols=["*"])
        sent = [bus.publish("signal_flip", f"T{i}", {"signal": "long"}) for i in range(200)]
        got = events_of(ws, 200)
        assert [e["id"] for e in got] == [e.id for e in sent]
    assert live.app.state.stream_hub.dropped == 0


# --- authentication ------------------------------------------------------------------------


def test_a_key_is_required(live: LiveServer) -> None:
    with connect(live.ws_url, open_timeout=TIMEOUT) as ws:
        ws.send(json.dumps({"type": "subscribe", "symbols": ["ETH"]}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


def test_a_bad_header_key_is_refused_at_the_handshake(live: LiveServer) -> None:
    with (
        pytest.raises(InvalidStatus) as refused,
        connect(live.ws_url, additional_headers={"X-API-Key": "cl_live_nope"}, open_timeout=5),
    ):
        pass
    assert refused.value.response.status_code == 403


def test_a_key_in_the_query_string_is_refused(
    live: LiveServer, keyed: Settings, api_headers: Callable[..., dict[str, str]]
) -> None:
    key = api_headers(keyed)["X-API-Key"]
    with pytest.raises(InvalidStatus), connect(f"{live.ws_url}?api_key={key}", open_timeout=5):
        pass


def test_first_message_auth_for_browsers(
    live: LiveServer, bus: EventBus, keyed: Settings, api_headers: Callable[..., dict[str, str]]
) -> None:
    key = api_headers(keyed)["X-API-Key"]
    with connect(live.ws_url, open_timeout=TIMEOUT) as ws:
        ws.send(json.dumps({"type": "auth", "key": key}))
        assert recv(ws)["type"] == "ready"
        subscribe(ws, symbols=["ETH"])
        tick = bus.publish("tick", "ETH", {"price": 1.0})
        assert events_of(ws, 1)[0]["id"] == tick.id
    with connect(live.ws_url, open_timeout=TIMEOUT) as ws:
        ws.send(json.dumps({"type": "auth", "key": key[:-1] + ("A" if key[-1] != "A" else "B")}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008


@pytest.mark.parametrize("how", ["header", "first message"])
def test_a_revoked_key_loses_its_open_stream(
    live: LiveServer, bus: EventBus, keyed: Settings, how: str
) -> None:
    """Revoking a key (here from another process's point of view: straight in the database)
    closes the streams it opened, with 1008, within the key cache lifetime."""
    from coinlens.services.keys import KeySpec, create_key, revoke_key

    ctx = build_context(keyed, migrate=False)
    try:
        created = create_key(ctx, KeySpec(name="revoked", scopes=("read",), plan="enterprise"))
        headers = {"X-API-Key": created.plaintext} if how == "header" else {}
        with connect(live.ws_url, additional_headers=headers, open_timeout=TIMEOUT) as ws:
            if how == "first message":
                ws.send(json.dumps({"type": "auth", "key": created.plaintext}))
            assert recv(ws)["type"] == "ready"
            subscribe(ws, symbols=["*"])
            alert = bus.publish("alert", "ETH", {"rule_id": 1}, audience=f"key:{created.key.id}")
            assert events_of(ws, 1)[0]["id"] == alert.id
            revoke_key(ctx, created.key.account, created.key.id)
            bus.publish("alert", "ETH", {"rule_id": 2}, audience=f"key:{created.key.id}")
            with pytest.raises(ConnectionClosed) as closed:
                recv_until(ws, "closed")  # no such message: only the close ends this
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        assert "revoked" in closed.value.rcvd.reason
    finally:
        ctx.engine.dispose()


def test_one_key_holds_a_bounded_number_of_streams(
    live: LiveServer, bus: EventBus, keyed: Settings, api_headers: Callable[..., dict[str, str]]
) -> None:
    """Past `streams_per_key` open streams a key's next one is closed with 1008 naming the
    limit; another key is not affected, and a closed stream frees its place."""
    from coinlens.services.keys import KeySpec, create_key

    ctx = build_context(keyed, migrate=False)
    other = create_key(ctx, KeySpec(name="other", scopes=("read",), plan="enterprise"))
    ctx.engine.dispose()
    headers = api_headers(keyed)
    with ExitStack() as stack:
        first = [stack.enter_context(open_stream(live, headers)) for _ in range(3)]
        with (
            connect(live.ws_url, additional_headers=headers, open_timeout=TIMEOUT) as ws,
            pytest.raises(ConnectionClosed) as closed,
        ):
            recv(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        assert "3 open streams" in closed.value.rcvd.reason
        with open_stream(live, {"X-API-Key": other.plaintext}) as ws:
            subscribe(ws, symbols=["ETH"])
        first[0].close()
        deadline = time.monotonic() + TIMEOUT
        while True:  # the server frees the place once it has seen the close
            try:
                with open_stream(live, headers) as ws:
                    subscribe(ws, symbols=["ETH"])
                    tick = bus.publish("tick", "ETH", {"price": 1.0})
                    assert events_of(ws, 1)[0]["id"] == tick.id
                break
            except ConnectionClosed:
                assert time.monotonic() < deadline, "a closed stream did not free its place"
                time.sleep(0.05)


@pytest.mark.parametrize("how", ["header", "first message"])
def test_a_key_that_cannot_be_checked_is_told_to_come_back(
    live: LiveServer, keyed: Settings, api_headers: Callable[..., dict[str, str]], how: str
) -> None:
    """The database is away while a stream authenticates: 1013 "try again later", not a 500
    handshake (a refused key would get 403/1008)."""
    headers = api_headers(keyed)
    ctx = build_context(keyed, migrate=False)
    try:
        with ctx.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE api_keys RENAME TO api_keys_away")
        sent = headers if how == "header" else {}
        with connect(live.ws_url, additional_headers=sent, open_timeout=TIMEOUT) as ws:
            if how == "first message":
                ws.send(json.dumps({"type": "auth", "key": headers["X-API-Key"]}))
            with pytest.raises(ConnectionClosed) as closed:
                recv(ws)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
            1013,
            "the key cannot be checked now: try again later",
        )
    finally:
        with ctx.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE api_keys_away RENAME TO api_keys")
        ctx.engine.dispose()


def test_bad_messages_get_errors_not_disconnects(
    live: LiveServer, keyed: Settings, api_headers: Callable[..., dict[str, str]]
) -> None:
    with open_stream(live, api_headers(keyed)) as ws:
        ws.send("not json")
        assert "JSON" in recv_until(ws, "error")["detail"]
        ws.send(json.dumps({"type": "subscribe", "symbols": "ETH"}))
        assert "list" in recv_until(ws, "error")["detail"]
        ws.send(json.dumps({"type": "subscribe", "symbols": ["ETH"], "last_event_id": "x"}))
        assert "event id" in recv_until(ws, "error")["detail"]
        ws.send(json.dumps({"type": "subscribes"}))
        assert "use subscribe, unsubscribe or ping" in recv_until(ws, "error")["detail"]
        ws.send(json.dumps({"type": "ping"}))
        assert recv_until(ws, "pong") == {"type": "pong"}
        assert subscribe(ws, symbols=["ETH"])["symbols"] == ["ETH"]


# --- the hub alone -------------------------------------------------------------------------


class _SlowPumpStart:
    """A bus whose hub pump reads the head late (as a slow new Redis connection does)."""

    def __init__(self, inner: EventBus) -> None:
        self.inner = inner

    def publish(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.publish(*args, **kwargs)

    def reader(self) -> Any:
        reader = self.inner.reader()
        head = reader.head

        async def slow_head() -> str:
            task = asyncio.current_task()
            if task is not None and "_pump" in task.get_coro().__qualname__:  # type: ignore[union-attr]
                await asyncio.sleep(1.0)
            return await head()

        reader.head = slow_head  # type: ignore[method-assign]
        return reader

    def close(self) -> None:
        self.inner.close()


def test_events_published_after_ready_arrive_even_when_the_pump_starts_late(
    keyed: Settings, stream_config: StreamConfig, api_headers: Callable[..., dict[str, str]]
) -> None:
    """ "ready" waits for the hub to hold its cursor: the first client of an idle hub could
    publish before the pump read the bus's head, and those events were never delivered."""
    inner = MemoryEventBus(retain=RETAIN)
    app = create_app(keyed)
    app.state.event_bus = _SlowPumpStart(inner)
    app.state.stream_config = stream_config
    server = start_server(app)
    try:
        with open_stream(server, api_headers(keyed)) as ws:
            subscribe(ws, symbols=["ETH"])
            sent = inner.publish("tick", "ETH", {"price": 1.0})
            assert [e["id"] for e in events_of(ws, 1, timeout=5.0)] == [sent.id]
    finally:
        stop_server(server)


def test_overflow_drops_the_subscriber_and_frees_its_queue() -> None:
    async def scenario() -> tuple[int, int, bool]:
        bus = MemoryEventBus()
        hub = StreamHub(bus, StreamConfig(queue_size=4))
        sub = Subscriber(4, frozenset())
        sub.symbols.add("ETH")
        hub.subscribers.add(sub)  # not attached: no pump, nobody drains
        hub.dispatch([bus.publish("tick", "ETH", {"i": i}) for i in range(10)])
        return hub.dropped, sub.queue.qsize(), sub in hub.subscribers

    dropped, size, still_there = asyncio.run(scenario())
    assert (dropped, size, still_there) == (1, 1, False)  # only the DROP marker is left
