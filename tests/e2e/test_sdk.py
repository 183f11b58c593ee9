"""The Python SDK against real servers on 127.0.0.1: the API on the embedded dataset, and a
tiny ASGI app that answers 429/503/slowly on purpose to exercise the retry policy."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from coinlens.api.app import create_app
from coinlens.client import (
    APITimeoutError,
    AsyncCoinlens,
    AuthenticationError,
    Coinlens,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    UnprocessableError,
)
from coinlens.client import models as m
from coinlens.services import analytics_queries
from coinlens.services.analytics import run_analytics
from coinlens.services.context import build_context
from coinlens.services.keys import KeySpec, create_key
from coinlens.settings import get_settings

pytestmark = pytest.mark.xdist_group("embedded")
FAST = RetryPolicy(max_retries=3, backoff_base=0.01, backoff_cap=0.05)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Served:
    """A uvicorn server on 127.0.0.1:<free port> in a thread."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "the server thread died"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def api(loaded_dir: Path) -> Iterator[tuple[str, str]]:
    """(base URL, API key) of the real API on the loaded dataset, signals computed."""
    settings = get_settings(env="test", data_dir=loaded_dir)
    ctx = build_context(settings)
    try:
        try:
            analytics_queries.get_signals(ctx, "ETH")
        except Exception:  # not computed in this worker yet
            run_analytics(ctx, full=True)
        key = create_key(ctx, KeySpec(name="sdk-e2e", plan="enterprise")).plaintext
    finally:
        ctx.engine.dispose()
    served = Served(create_app(settings))
    yield served.url, key
    served.stop()


# --- against the real API ------------------------------------------------------------------


def test_sync_client_reads_tokens_candles_and_signals(api: tuple[str, str]) -> None:
    url, key = api
    with Coinlens(url, api_key=key, retry=FAST) as cl:
        assert cl.health().status == "ok"
        page = cl.tokens(limit=5)
        assert isinstance(page, m.TokensPage)
        assert len(page.items) == 5
        assert page.next_cursor
        everything = list(cl.iter_tokens(page_size=40))
        assert len(everything) == page.total  # the iterator followed every cursor
        assert len({t.symbol for t in everything}) == page.total
        eth = cl.token("eth")
        assert eth.symbol == "ETH"
        assert eth.markets
        assert eth.markets[0].coverage
        one = cl.ohlcv("ETH", start=dt.date(2024, 1, 1), end=dt.date(2024, 3, 31))
        paged = list(
            cl.iter_candles("ETH", start=dt.date(2024, 1, 1), end="2024-03-31", page_size=7)
        )
        assert [c.open_time for c in paged] == [c.open_time for c in one.candles]
        assert len(paged) == 91
        assert paged[0].open_time.tzinfo is not None
        sig = cl.signal("ETH")
        assert sig.signal in {"long", "flat", "short"}
        assert sig.history
        listed = list(cl.iter_signals(page_size=25))
        assert "ETH" in {s.symbol for s in listed}


def test_sync_client_raises_typed_errors(api: tuple[str, str]) -> None:
    url, key = api
    with Coinlens(url, api_key=key, retry=FAST) as cl:
        with pytest.raises(NotFoundError) as missing:
            cl.token("NOPE-NOT-A-TOKEN")
        assert missing.value.status == 404
        assert missing.value.type == "urn:coinlens:problem:not-found"
        assert missing.value.request_id
        with pytest.raises(UnprocessableError) as invalid:
            cl.tokens(limit=100_000)
        assert invalid.value.errors
        assert invalid.value.errors[0]["location"] == "query.limit"
    with (
        Coinlens(url, api_key="cl_live_wrong", retry=FAST) as anon,
        pytest.raises(AuthenticationError),
    ):
        anon.tokens()


def test_sync_client_manages_keys(api: tuple[str, str]) -> None:
    url, key = api
    with Coinlens(url, api_key=key, retry=FAST) as cl:
        made = cl.create_key(name="from the sdk", scopes=["read"])
        assert made.key.startswith("cl_live_")
        assert made.scopes == ["read"]
        ids = [k.id for k in cl.iter_keys(page_size=1)]  # one per page: cursors followed
        assert made.id in ids
        assert len(ids) >= 2
        assert cl.revoke_key(made.id).status == "revoked"
    with Coinlens(url, api_key=made.key, retry=FAST) as revoked, pytest.raises(AuthenticationError):
        revoked.tokens()


@pytest.mark.anyio
async def test_async_client_mirrors_the_sync_one(api: tuple[str, str]) -> None:
    url, key = api
    async with AsyncCoinlens(url, api_key=key, retry=FAST) as cl:
        page = await cl.tokens(limit=3)
        collected = [t.symbol async for t in cl.iter_tokens(page_size=50)]
        assert len(collected) == page.total
        detail, sig = await asyncio.gather(cl.token("BTC"), cl.signal("BTC"))
        assert detail.symbol == sig.symbol == "BTC"
        with pytest.raises(NotFoundError):
            await cl.levels("NOPE-NOT-A-TOKEN")


# --- retry behaviour, against a server that misbehaves on purpose --------------------------


class Flaky:
    """ASGI app: each path fails a set number of times before answering 200."""

    def __init__(self) -> None:
        self.hits: dict[str, list[tuple[float, str | None]]] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        headers = dict(scope["headers"])
        idem = headers.get(b"idempotency-key")
        seen = self.hits.setdefault(path, [])
        seen.append((time.monotonic(), idem.decode() if idem else None))
        status, extra, body = self.answer(path, len(seen))
        if path == "/slow" and len(seen) == 1:
            await asyncio.sleep(1.0)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def answer(path: str, n: int) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        ok = (200, [], b'{"status": "ok", "version": "test"}')
        problem = b'{"title": "Busy", "status": 503, "detail": "try later"}'
        if path == "/rate-limited" and n == 1:
            return 429, [(b"retry-after", b"1")], b'{"title": "Rate limited", "status": 429}'
        if path == "/rate-limited-long":
            return 429, [(b"retry-after", b"3600")], b'{"title": "Rate limited", "status": 429}'
        if path == "/unavailable" and n <= 2:
            return 503, [], problem
        if path == "/down":
            return 503, [(b"x-request-id", b"rid-1")], problem
        if path == "/v1/keys" and n == 1:
            return 502, [], b"bad gateway"
        if path == "/v1/keys":
            return (
                201,
                [],
                b'{"id": 1, "prefix": "cl_live_x", "scopes": ["read"], "plan": "free",'
                b' "status": "active", "created_at": "2025-01-01T00:00:00Z", "key": "cl_live_x"}',
            )
        return ok


@pytest.fixture(scope="module")
def flaky() -> Iterator[tuple[str, Flaky]]:
    app = Flaky()
    served = Served(app)
    yield served.url, app
    served.stop()


def _health(path: str) -> Any:
    from coinlens.client._base import call

    return call("GET", path, m.Health)


def test_429_waits_what_retry_after_says(flaky: tuple[str, Flaky]) -> None:
    url, app = flaky
    with Coinlens(url, retry=FAST) as cl:
        assert cl.request(_health("/rate-limited")).status == "ok"
    (first, _), (second, _) = app.hits["/rate-limited"]
    assert second - first >= 0.95  # Retry-After: 1, not the 10 ms backoff


def test_a_retry_after_beyond_the_limit_raises_at_once(flaky: tuple[str, Flaky]) -> None:
    url, app = flaky
    with Coinlens(url, retry=FAST) as cl, pytest.raises(RateLimitError) as limited:
        cl.request(_health("/rate-limited-long"))
    assert limited.value.retry_after == 3600
    assert len(app.hits["/rate-limited-long"]) == 1


def test_503_backs_off_then_succeeds_or_gives_up(flaky: tuple[str, Flaky]) -> None:
    url, app = flaky
    with Coinlens(url, retry=FAST) as cl:
        assert cl.request(_health("/unavailable")).status == "ok"
        assert len(app.hits["/unavailable"]) == 3
        with pytest.raises(ServerError) as down:
            cl.request(_health("/down"))
    assert down.value.status == 503
    assert down.value.request_id == "rid-1"
    assert len(app.hits["/down"]) == 1 + FAST.max_retries


def test_a_retried_post_keeps_its_idempotency_key(flaky: tuple[str, Flaky]) -> None:
    url, app = flaky
    with Coinlens(url, retry=FAST) as cl:
        assert cl.create_key(name="x").key == "cl_live_x"
    keys = [k for _, k in app.hits["/v1/keys"]]
    assert len(keys) == 2
    assert keys[0] is not None
    assert keys[0] == keys[1]


def test_timeouts_are_retried_then_reported(flaky: tuple[str, Flaky]) -> None:
    url, app = flaky
    with Coinlens(url, timeout=0.3, retry=FAST) as cl:
        assert cl.request(_health("/slow")).status == "ok"  # the first try timed out
    assert len(app.hits["/slow"]) == 2
    no_retry = RetryPolicy(max_retries=0)
    with Coinlens(url, timeout=0.3, retry=no_retry) as cl:
        app.hits.pop("/slow")
        with pytest.raises(APITimeoutError):
            cl.request(_health("/slow"))


@pytest.mark.anyio
async def test_async_client_shares_the_retry_policy(flaky: tuple[str, Flaky]) -> None:
    url, app = flaky
    app.hits.pop("/unavailable", None)
    async with AsyncCoinlens(url, retry=FAST) as cl:
        assert (await cl.request(_health("/unavailable"))).status == "ok"
        with pytest.raises(RateLimitError):
            await cl.request(_health("/rate-limited-long"))
    assert len(app.hits["/unavailable"]) == 3
