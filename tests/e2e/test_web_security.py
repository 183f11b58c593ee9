"""The dashboard's forms as an attacker sends them, through the real app on an empty SQLite
database: request bodies are limited before any form is parsed, the first-run owner
password cannot be set through a reverse proxy on the same machine, and wrong passwords are
throttled."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from coinlens.api.app import create_app
from coinlens.settings import Settings, get_settings
from coinlens.web import auth

LIMIT = 4096
PASSWORD = "correct horse battery"  # noqa: S105 - a test fixture password


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return get_settings(env="test", data_dir=tmp_path / "data", max_body_bytes=LIMIT)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def _csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert found, "the login page has no CSRF field"
    return found.group(1)


def test_page_forms_refuse_bodies_over_the_limit(client: TestClient) -> None:
    upload = {"f": ("a.bin", b"a" * (LIMIT * 4), "application/octet-stream")}
    declared = client.post("/login", files=upload)  # Content-Length says it all
    assert declared.status_code == 413, declared.text
    assert declared.json()["type"] == "urn:coinlens:problem:payload-too-large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        yield b'--xx\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\n'
        for _ in range(16):
            yield b"a" * 1024
        yield b"\r\n--xx--\r\n"

    streamed = client.post(
        "/login", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xx"}
    )
    assert streamed.status_code == 413, streamed.text
    small = client.post("/login", data={"password": "x" * 100})  # under the limit: CSRF decides
    assert small.status_code == 403


def test_first_run_password_is_not_set_through_a_local_proxy(
    client: TestClient, settings: Settings
) -> None:
    token = _csrf(client)
    form = {"csrf_token": token, "password": PASSWORD, "confirm": PASSWORD}
    for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
        value = "for=203.0.113.9" if header == "Forwarded" else "203.0.113.9"
        relayed = client.post("/login", data=form, headers={header: value})
        assert relayed.status_code == 400, header
        assert "coinlens web set-password" in relayed.text
        assert auth.password_record(settings) is None, header
    assert "Set the owner password" in client.get("/login").text
    assert 'name="confirm"' not in client.get("/login", headers={"X-Real-IP": "1.2.3.4"}).text
    local = client.post("/login", data=form, follow_redirects=False)  # this machine itself
    assert local.status_code == 303
    assert auth.password_record(settings) is not None


def test_wrong_passwords_are_throttled_without_running_scrypt(
    client: TestClient, settings: Settings
) -> None:
    auth.set_password(settings, PASSWORD)
    token = _csrf(client)
    for _ in range(auth.LoginThrottle.FREE_FAILURES):
        wrong = client.post("/login", data={"csrf_token": token, "password": "not the password"})
        assert wrong.status_code == 401
    refused = client.post(
        "/login", data={"csrf_token": token, "password": PASSWORD}, follow_redirects=False
    )  # even the right password waits: it is not checked at all
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert "too many wrong passwords" in refused.text
    assert auth.SESSION_COOKIE not in refused.headers.get("set-cookie", "")
    time.sleep(1.05)
    ok = client.post(
        "/login", data={"csrf_token": token, "password": PASSWORD}, follow_redirects=False
    )
    assert ok.status_code == 303
    assert auth.SESSION_COOKIE in ok.headers["set-cookie"]
    wrong = client.post("/login", data={"csrf_token": token, "password": "not the password"})
    assert wrong.status_code == 401  # the success forgot the failures


def _owner_with_a_key(client: TestClient, settings: Settings) -> tuple[str, str]:
    """Log the owner in and create a key on /keys: (CSRF token, key id)."""
    auth.set_password(settings, PASSWORD)
    token = _csrf(client)
    client.post("/login", data={"csrf_token": token, "password": PASSWORD})
    made = client.post("/keys", data={"csrf_token": token, "name": "k", "scopes": "read"})
    key_id = re.findall(r'action="/keys/(\d+)/revoke"', made.text)[0]
    return token, key_id


def test_a_refused_alert_form_says_which_field_and_escapes_it(
    client: TestClient, settings: Settings
) -> None:
    token, key_id = _owner_with_a_key(client, settings)
    zone = "`<img src=x onerror=alert(1)>`"
    refused = client.post(
        "/alerts",
        data={"csrf_token": token, "key_id": key_id, "symbol": "BTC", "kind": "price_cross",
              "direction": "above", "level": "1", "channels": "json://93.184.216.34/x",
              "timezone": zone},
    )  # fmt: skip
    assert refused.status_code == 400
    banner = re.search(r'<p class="banner warn" role="alert">(.*?)</p>', refused.text, re.S)
    assert banner, refused.text[-2000:]
    assert banner.group(1).startswith("timezone: "), banner.group(1)
    assert "errors.pydantic.dev" not in banner.group(1)
    assert "<img" not in refused.text


def test_logout_ends_every_copy_of_the_session(client: TestClient, settings: Settings) -> None:
    auth.set_password(settings, PASSWORD)
    token = _csrf(client)
    client.post("/login", data={"csrf_token": token, "password": PASSWORD})
    thief = TestClient(client.app)  # holds a copy of the owner's session cookie
    thief.cookies.set(auth.SESSION_COOKIE, client.cookies[auth.SESSION_COOKIE])
    assert thief.get("/keys", follow_redirects=False).status_code == 200
    stranger = TestClient(client.app)  # any visitor can post a CSRF-valid logout form…
    stranger.post("/logout", data={"csrf_token": _csrf(stranger)})
    assert thief.get("/keys", follow_redirects=False).status_code == 200  # …without effect
    client.post("/logout", data={"csrf_token": token})
    replayed = thief.get("/keys", follow_redirects=False)
    assert replayed.status_code == 303
    assert replayed.headers["location"].startswith("/login")
    again = client.post("/login", data={"csrf_token": token, "password": PASSWORD})
    assert again.status_code == 200  # a new login works
    assert client.get("/keys", follow_redirects=False).status_code == 200


def test_a_rotation_overlap_out_of_range_is_refused_not_a_500(
    client: TestClient, settings: Settings
) -> None:
    token, key_id = _owner_with_a_key(client, settings)
    for hours in ("1e20", "inf", "nan", "-1", "721"):
        refused = client.post(
            f"/keys/{key_id}/rotate", data={"csrf_token": token, "overlap_hours": hours}
        )
        assert refused.status_code == 400, hours
        assert "overlap_hours: between 0 and 720" in refused.text, hours
    rotated = client.post(
        f"/keys/{key_id}/rotate", data={"csrf_token": token, "overlap_hours": "1"}
    )
    assert "shown only once" in rotated.text


def test_non_ascii_session_cookies_and_csrf_fields_are_refused_not_a_500(
    client: TestClient, settings: Settings
) -> None:
    auth.set_password(settings, PASSWORD)
    page = client.get("/", headers={"cookie": "coinlens_session=a.\u00e9".encode("latin-1")})
    assert page.status_code == 200
    assert "Owner login" in page.text
    cookie = "coinlens_csrf=" + "a" * 24
    refused = client.post(
        "/login",
        content=b"csrf_token=%C3%A9&password=x",
        headers={"cookie": cookie, "content-type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 403


def test_the_csp_names_this_hosts_websocket_and_nothing_a_host_header_smuggles(
    client: TestClient,
) -> None:
    csp = client.get("/login", headers={"host": "coinlens.example:8443"}).headers[
        "content-security-policy"
    ]
    assert "connect-src 'self' ws://coinlens.example:8443 wss://coinlens.example:8443;" in csp
    assert "frame-ancestors 'none'" in csp
    smuggled = client.get("/login", headers={"host": "x; script-src *"}).headers[
        "content-security-policy"
    ]
    assert "connect-src 'self';" in smuggled
    assert "*" not in smuggled
