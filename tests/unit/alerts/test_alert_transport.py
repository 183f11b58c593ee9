"""The HTTP transport under Apprise (`alerts/transport.py`): what requests did, it still does —
auth, query parameters, timeouts, connection errors, kept-alive connections, response
headers for pacing — and a redirect is a failed send, never followed (SSRF)."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from coinlens.alerts import channels, transport
from unit.alerts.alert_receivers import HttpReceiver, free_port


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    r = HttpReceiver(keepalive=True).start()
    yield r
    r.stop()


def test_a_redirect_is_a_failed_send_and_is_not_followed(hook: HttpReceiver) -> None:
    inner = HttpReceiver().start()  # stands for an internal address the SSRF check never saw
    try:
        hook.script = [(307, {"Location": f"http://127.0.0.1:{inner.port}/internal"})]
        ch = channels.parse_channel(f"json://127.0.0.1:{hook.port}/x")
        out = channels.SenderPool(timeout=5).send(ch, "t", "b", "k1")
        assert (out.ok, out.status, out.permanent) == (False, 307, False)
        assert inner.received == []
    finally:
        inner.stop()


def test_auth_params_body_and_key_arrive_on_one_kept_alive_connection(hook: HttpReceiver) -> None:
    ch = channels.parse_channel(f"json://user:pw@127.0.0.1:{hook.port}/x?-tag=a")
    pool = channels.SenderPool(timeout=5)
    outs = [pool.send(ch, "title", f"body {i}", f"k{i}") for i in range(3)]
    assert all(o.ok and o.status == 200 for o in outs)
    got = hook.received
    assert [r["headers"]["Idempotency-Key"] for r in got] == ["k0", "k1", "k2"]
    assert got[0]["headers"]["Authorization"] == "Basic " + base64.b64encode(b"user:pw").decode()
    assert all(r["path"] == "/x?tag=a" for r in got)
    assert [hook.json_bodies()[i]["message"] for i in range(3)] == ["body 0", "body 1", "body 2"]
    assert len({r["client"] for r in got}) == 1  # one connection, kept alive


def test_headers_and_body_go_out_in_one_write() -> None:
    # A raw server that answers after the first recv(): it sees the whole request only if the
    # header block and the body were written together.
    srv = socket.create_server(("127.0.0.1", 0))
    first: list[bytes] = []

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            first.append(conn.recv(65536))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    url = f"http://127.0.0.1:{srv.getsockname()[1]}/x"
    r = transport.KeptSession().request(
        "POST", url, data=b'{"a": 1}', timeout=5, allow_redirects=False
    )
    t.join(5)
    srv.close()
    assert r.status_code == 200
    assert first[0].endswith(b'\r\n\r\n{"a": 1}')


def test_transport_errors_surface_as_requests_errors(hook: HttpReceiver) -> None:
    s = transport.KeptSession()
    with pytest.raises(requests.ConnectionError):
        s.request("POST", f"http://127.0.0.1:{free_port()}/x", data="{}", allow_redirects=False)
    slow = HttpReceiver(delay=1.0).start()
    try:
        with pytest.raises(requests.ReadTimeout):
            s.request(
                "POST", f"http://127.0.0.1:{slow.port}/x", data="{}", timeout=(2, 0.2),
                allow_redirects=False,
            )  # fmt: skip
    finally:
        slow.stop()
    out = channels.send(channels.parse_channel(f"json://127.0.0.1:{free_port()}/x"), "t", "b", "k")
    assert (out.ok, out.permanent, out.status) == (False, False, None)


def test_calls_outside_the_fast_path_still_work(hook: HttpReceiver) -> None:
    s = transport.KeptSession()
    url = f"http://127.0.0.1:{hook.port}/x"
    followed = s.request("POST", url, data="{}", timeout=5)  # redirects allowed: requests' path
    files = s.request("POST", url, files={"f": b"x"}, timeout=5, allow_redirects=False)
    assert (followed.status_code, files.status_code) == (200, 200)
    assert len(hook.received) == 2


def test_response_headers_reach_the_pacing_outcome(hook: HttpReceiver) -> None:
    paced = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "1.5"}
    hook.script = [(429, {"Retry-After": "3"}), (200, paced)]
    ch = channels.parse_channel(f"json://127.0.0.1:{hook.port}/x")
    pool = channels.SenderPool(timeout=5)
    limited, ok = pool.send(ch, "t", "b", "k1"), pool.send(ch, "t", "b", "k2")
    assert (limited.ok, limited.status, limited.retry_after) == (False, 429, 3.0)
    assert (ok.ok, ok.pace_seconds) == (True, 1.5)
