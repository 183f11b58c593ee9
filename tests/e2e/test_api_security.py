"""OWASP API Top 10 style checks of the key layer, through the real app on SQLite.

Object-level authorisation (another account's key is a 404), every route × scope cell,
no plaintext key anywhere after creation, mutated keys refused before any database access,
spoofed X-Forwarded-For, plus the HTTP consistency rules (ETag/304, body limit, unknown
fields, Idempotency-Key, problem types, operationIds).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response

from coinlens.api.app import create_app
from coinlens.api.security import required_scope
from coinlens.services.keys import SCOPES
from coinlens.settings import PlanLimits, Settings, get_settings
from coinlens.storage.tables import metadata

ApiHeaders = Callable[..., dict[str, str]]
PROBLEM = "urn:coinlens:problem:"
ROOMY = {
    "anonymous": PlanLimits(per_minute=1_000, per_day=10_000),
    "free": PlanLimits(per_minute=1_000, per_day=10_000),
    "enterprise": PlanLimits(per_minute=100_000, per_day=1_000_000),
}


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return get_settings(env="test", data_dir=tmp_path / "data", plans=ROOMY, **overrides)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp_path))) as c:
        yield c


def _signup(client: TestClient, name: str = "me", **extra: Any) -> dict[str, Any]:
    answer = client.post("/v1/keys", json={"name": name, **extra})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _h(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


# --- object-level authorisation -----------------------------------------------------------


def test_key_a_can_never_read_or_change_key_bs_objects(client: TestClient) -> None:
    a, b = _signup(client, "a"), _signup(client, "b")
    client.get("/v1/tokens", headers=_h(b["key"]))
    for method, path, body in [
        ("GET", f"/v1/keys/{b['id']}", None),
        ("DELETE", f"/v1/keys/{b['id']}", None),
        ("POST", f"/v1/keys/{b['id']}/rotate", {"overlap_seconds": 0}),
    ]:
        answer = client.request(method, path, headers=_h(a["key"]), json=body)
        assert answer.status_code == 404, (method, path)
        assert answer.json()["type"] == PROBLEM + "not-found"
    listed = client.get("/v1/keys", headers=_h(a["key"])).json()["items"]
    assert [k["id"] for k in listed] == [a["id"]]
    usage = client.get("/v1/usage", headers=_h(a["key"])).json()["items"]
    assert {u["key_id"] for u in usage} <= {a["id"]}
    assert client.get("/v1/keys", headers=_h(b["key"])).status_code == 200  # B untouched


def test_an_admin_key_adds_keys_to_its_own_account_without_widening_scopes(
    client: TestClient,
) -> None:
    owner = _signup(client)
    reader = client.post(
        "/v1/keys", headers=_h(owner["key"]), json={"name": "r", "scopes": ["read"]}
    )
    assert reader.status_code == 201
    listed = client.get("/v1/keys", headers=_h(owner["key"])).json()["items"]
    assert len(listed) == 2
    narrow = client.post("/v1/keys", headers=_h(reader.json()["key"]), json={"name": "x"})
    assert narrow.status_code == 403
    admin_only = _signup(client, "adm", scopes=["admin"])
    widened = client.post(
        "/v1/keys", headers=_h(admin_only["key"]), json={"name": "w", "scopes": ["read"]}
    )
    assert widened.status_code == 422


def test_a_key_made_by_an_expiring_admin_key_expires_with_it(client: TestClient) -> None:
    owner = _signup(client, expires_in_days=7)
    ends = datetime.fromisoformat(owner["expires_at"])
    made = [
        client.post("/v1/keys", headers=_h(owner["key"]), json={"name": n, **extra}).json()
        for n, extra in (("forever", {}), ("longer", {"expires_in_days": 30}))
    ]
    shorter = client.post(
        "/v1/keys", headers=_h(owner["key"]), json={"name": "s", "expires_in_days": 1}
    ).json()

    assert [datetime.fromisoformat(k["expires_at"]) for k in made] == [ends, ends]
    assert datetime.fromisoformat(shorter["expires_at"]) < ends


# --- every route × scope ------------------------------------------------------------------


def _v1_operations(client: TestClient) -> list[tuple[str, str]]:
    ops = []
    for template, methods in client.get("/openapi.json").json()["paths"].items():
        if template.startswith("/v1"):
            path = re.sub(r"\{key_id\}", "1", template)
            path = re.sub(r"\{[^}]+\}", "ETH", path)
            ops += [(m.upper(), path) for m in methods]
    return ops


def test_every_route_by_every_scope(client: TestClient, api_headers: ApiHeaders) -> None:
    ctx = client.app.state.ctx
    ops = _v1_operations(client)
    assert len(ops) >= 8
    keys = {scope: api_headers(ctx, scopes=(scope,)) for scope in SCOPES}
    cells = 0
    for method, path in ops:
        anonymous = client.request(method, path)
        if required_scope(method, path, has_key=False) is None:
            assert anonymous.status_code not in {401, 403}, path
        else:
            assert anonymous.status_code == 401, (method, path)
            assert anonymous.json()["type"] == PROBLEM + "api-key-missing"
        need = required_scope(method, path, has_key=True)
        for scope, headers in keys.items():
            answer = client.request(method, path, headers=headers, json={})
            cells += 1
            if scope == need:
                assert answer.status_code not in {401, 403}, (method, path, scope, answer.text)
            else:
                assert answer.status_code == 403, (method, path, scope)
                assert answer.json()["type"] == PROBLEM + "insufficient-scope"
    assert cells == 3 * len(ops)


# --- plaintext only once ------------------------------------------------------------------


def test_no_plaintext_key_in_the_db_logs_or_later_responses(
    client: TestClient, capfd: pytest.CaptureFixture[str]
) -> None:
    idem = {"Idempotency-Key": "signup-1"}
    first = client.post("/v1/keys", json={"name": "p"}, headers=idem)
    key = first.json()["key"]
    replay = client.post("/v1/keys", json={"name": "p"}, headers=idem)
    rotated = client.post(f"/v1/keys/{first.json()['id']}/rotate", headers=_h(key))
    new_key = rotated.json()["key"]
    later: list[Response] = [replay]
    for headers in (_h(key), {"Authorization": f"Bearer {new_key}"}):
        for path in ("/v1/tokens", "/v1/keys", "/v1/usage", f"/v1/keys/{first.json()['id']}"):
            later.append(client.get(path, headers=headers))
    pasted = client.get(f"/v1/tokens/{key}/ohlcv", headers=_h(new_key))  # a key in the path
    later.append(client.delete(f"/v1/keys/{first.json()['id']}", headers=_h(new_key)))
    later.append(client.get("/v1/tokens", headers=_h(key)))  # revoked now
    later.append(client.get("/metrics"))
    assert replay.json()["id"] == first.json()["id"]
    secrets = (key, new_key, key[20:-6], new_key[20:-6])
    for answer in later:
        blob = answer.text + str(answer.headers)
        assert not any(s in blob for s in secrets), answer.request.url
    out, err = capfd.readouterr()
    assert "http.request" in out + err  # the access log did run
    assert not any(s in out + err for s in secrets)
    assert pasted.status_code in (404, 422)
    assert "/v1/tokens/cl_live_[redacted]/ohlcv" in out + err  # logged, the key cut off
    with client.app.state.ctx.engine.connect() as conn:
        dump = "".join(
            str(row) for table in metadata.sorted_tables for row in conn.execute(sa.select(table))
        )
    assert first.json()["prefix"][8:20] in dump  # the dump is real (lookup ids are public)
    assert not any(s in dump for s in secrets)


# --- malformed keys never reach the database ----------------------------------------------


def test_mutated_keys_are_rejected_before_any_database_access(client: TestClient) -> None:
    key = _signup(client)["key"]
    statements: list[str] = []
    engine = client.app.state.ctx.engine

    def count(*args: Any) -> None:
        # key lookups only: the web overview's background warm-up may read other tables now
        if "api_keys" in str(args[2]):
            statements.append(str(args[2]))

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for i in range(len(key)):
            swapped = "A" if key[i] != "A" else "B"
            answer = client.get("/v1/tokens", headers=_h(key[:i] + swapped + key[i + 1 :]))
            assert answer.status_code == 401
            assert answer.json()["type"] == PROBLEM + "api-key-malformed"
        for junk in ("", "cl_live_", key[:-1], key + "x", "Bearer", "x" * 5000):
            assert client.get("/v1/tokens", headers=_h(junk)).status_code == 401
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert statements == []


def test_each_refusal_has_its_own_problem_type(client: TestClient) -> None:
    good = _signup(client, expires_in_days=1)
    revoked = _signup(client)
    client.delete(f"/v1/keys/{revoked['id']}", headers=_h(revoked["key"]))
    with client.app.state.ctx.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE api_keys SET expires_at = '2001-01-01 00:00:00' WHERE id = :i"),
            {"i": good["id"]},
        )
    client.app.state.api_runtime.verifier.forget(good["prefix"][8:20])
    unknown = good["key"][:8] + "zzzzzzzzzzzz" + good["key"][20:]
    from coinlens.services.keys import _check

    unknown = unknown[:-6] + _check(unknown[:-6])
    cases = {
        "api-key-missing": {},
        "api-key-malformed": _h("cl_live_nope"),
        "api-key-invalid": _h(unknown),
        "api-key-revoked": _h(revoked["key"]),
        "api-key-expired": _h(good["key"]),
    }
    for kind, headers in cases.items():
        answer = client.get("/v1/tokens", headers=headers)
        assert answer.status_code == 401, kind
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert answer.headers["Cache-Control"] == "no-store", kind  # as every other error
        assert answer.json()["type"] == PROBLEM + kind
    in_query = client.get(f"/v1/tokens?api_key={revoked['key']}")
    assert in_query.status_code == 400
    assert in_query.json()["type"] == PROBLEM + "api-key-in-query"


def test_a_rotated_key_overlaps_then_a_revoked_one_stops_at_once(client: TestClient) -> None:
    old = _signup(client)
    new = client.post(
        f"/v1/keys/{old['id']}/rotate", headers=_h(old["key"]), json={"overlap_seconds": 600}
    )
    assert new.status_code == 201
    assert new.json()["rotated_from"] == old["id"]
    assert client.get("/v1/tokens", headers=_h(old["key"])).status_code == 200
    assert client.get("/v1/tokens", headers=_h(new.json()["key"])).status_code == 200
    client.delete(f"/v1/keys/{old['id']}", headers=_h(new.json()["key"]))
    assert (
        client.get("/v1/tokens", headers=_h(old["key"])).json()["type"]
        == PROBLEM + "api-key-revoked"
    )


# --- spoofed X-Forwarded-For --------------------------------------------------------------


def test_spoofed_forwarded_for_cannot_dodge_the_anonymous_limit(tmp_path: Path) -> None:
    plans = {**ROOMY, "anonymous": PlanLimits(per_minute=3, per_day=100)}
    settings = get_settings(env="test", data_dir=tmp_path / "d", plans=plans)
    with TestClient(create_app(settings)) as client:
        codes = [
            client.post(
                "/v1/keys", json={"name": f"n{i}"}, headers={"X-Forwarded-For": f"198.51.100.{i}"}
            ).status_code
            for i in range(6)
        ]
        limited = client.post("/v1/keys", json={"name": "n7"})
    assert codes == [201, 201, 201, 429, 429, 429]
    assert (limited.status_code, limited.headers["Cache-Control"]) == (429, "no-store")


# --- HTTP consistency -----------------------------------------------------------------------


def test_etag_and_if_none_match(client: TestClient, api_headers: ApiHeaders) -> None:
    headers = api_headers(client.app.state.ctx)
    first = client.get("/v1/tokens", headers=headers)
    assert first.headers["Cache-Control"].startswith("private")
    etag = first.headers["ETag"]
    again = client.get("/v1/tokens", headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    assert client.get("/v1/tokens", headers={**headers, "If-None-Match": '"x"'}).status_code == 200
    assert client.get("/v1/keys", headers=headers).headers["Cache-Control"] == "no-store"


def test_head_is_the_get_without_its_body(client: TestClient, api_headers: ApiHeaders) -> None:
    ctx = client.app.state.ctx
    headers = api_headers(ctx)
    for path in ("/v1/tokens", "/healthz", "/"):
        got, head = client.get(path, headers=headers), client.head(path, headers=headers)
        assert (head.status_code, head.content) == (got.status_code, b""), path
        assert head.headers["content-length"] == str(len(got.content)), path
        for name in ("content-type", "etag", "cache-control", "x-ratelimit-limit"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
    assert "ratelimit" in client.head("/v1/tokens", headers=headers).headers
    # the same gate as GET: a key is needed, and the read scope
    assert client.head("/v1/tokens").status_code == 401
    assert client.head("/v1/tokens", headers=api_headers(ctx, scopes=("admin",))).status_code == 403
    assert 'method="HEAD",route="/v1/tokens"' in client.get("/metrics").text


def test_bodies_are_limited_and_unknown_fields_refused(tmp_path: Path) -> None:
    with TestClient(create_app(_settings(tmp_path, max_body_bytes=200))) as client:
        big = client.post("/v1/keys", content=b'{"name": "' + b"x" * 500 + b'"}')
        assert big.status_code == 413
        assert big.headers["content-type"] == "application/problem+json"
        # no Content-Length: the streamed body is counted as it arrives
        chunks = iter([b'{"name": "', b"x" * 500, b'"}'])
        streamed = client.post("/v1/keys", content=chunks)
        assert streamed.request.headers["transfer-encoding"] == "chunked"
        assert streamed.status_code == 413
        assert streamed.headers["content-type"] == "application/problem+json"
        extra = client.post("/v1/keys", json={"name": "n", "role": "root"})
        assert extra.status_code == 422
        assert extra.json()["type"] == PROBLEM + "validation-failed"


def test_idempotency_key_replays_and_refuses_reuse(client: TestClient) -> None:
    headers = {"Idempotency-Key": "abc-123"}
    first = client.post("/v1/keys", json={"name": "i"}, headers=headers)
    second = client.post("/v1/keys", json={"name": "i"}, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    other = client.post("/v1/keys", json={"name": "different"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["type"] == PROBLEM + "idempotency-key-reused"
    listed = client.get("/v1/keys", headers=_h(first.json()["key"])).json()["items"]
    assert len(listed) == 1


def test_request_ids_metrics_and_operation_ids(
    client: TestClient, api_headers: ApiHeaders, capsys: pytest.CaptureFixture[str]
) -> None:
    headers = api_headers(client.app.state.ctx)
    capsys.readouterr()
    answer = client.get("/v1/tokens", headers={**headers, "X-Request-ID": "req-42"})
    assert answer.headers["X-Request-ID"] == "req-42"
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    access = [x for x in lines if x.get("event") == "http.request"]
    assert access, lines
    assert access[-1]["request_id"] == "req-42"  # bound for every log line of the request
    assert access[-1]["route"] == "/v1/tokens"
    client.get("/v1/tokens/NOPE", headers=headers)
    metrics = client.get("/metrics").text
    assert (
        'coinlens_http_request_duration_seconds_count{method="GET",route="/v1/tokens"}' in metrics
    )
    assert 'route="/v1/tokens/{symbol}",status="4xx"' in metrics
    assert "coinlens_data_freshness_seconds" in metrics
    for i in range(3):  # a method the client makes up is one "other" series, not one each
        assert client.request(f"X{i}", "/healthz").status_code == 405
    metrics = client.get("/metrics").text
    assert 'method="X' not in metrics
    assert 'coinlens_http_responses_total{method="other",route="/healthz",status="4xx"} 3.0' in (
        metrics
    )
    schema = client.get("/openapi.json").json()
    ids = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert {"create_key", "list_keys", "rotate_key", "revoke_key", "get_usage"} <= set(ids)
    assert "ApiKeyHeader" in schema["components"]["securitySchemes"]
