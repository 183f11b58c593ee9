"""`POST/PATCH /v1/alerts` on the real embedded data: rules that could never fire are refused,
refusals name the field, and a rule on a token whose prices stopped carries a warning."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from coinlens.api.app import create_app
from coinlens.services.context import build_context
from coinlens.services.keys import KeySpec, create_key
from coinlens.settings import get_settings
from e2e.stale_token import StaleToken

pytestmark = pytest.mark.xdist_group("embedded")
HOOK = "json://127.0.0.1:9/hook"
PAST = "2020-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def client(loaded_dir: Path) -> Iterator[TestClient]:
    """A started app over the loaded data whose requests carry a key that may write alerts."""
    settings = get_settings(env="test", data_dir=loaded_dir, alerts_allow_hosts=["127.0.0.1"])
    ctx = build_context(settings)
    try:
        key = create_key(ctx, KeySpec(name="alert-rules", plan="enterprise"))
    finally:
        ctx.engine.dispose()
    with TestClient(create_app(settings), headers={"X-API-Key": key.plaintext}) as c:
        yield c
        for rule in c.get("/v1/alerts").json()["items"]:  # the loaded data is shared
            c.delete(f"/v1/alerts/{rule['id']}")


def _rule(symbol: str, kind: str = "price_cross", **spec: Any) -> dict[str, Any]:
    return {"symbol": symbol, "kind": kind, "channels": [HOOK], **spec}


def _price_rule(symbol: str, level: float = 5_000.0) -> dict[str, Any]:
    return _rule(symbol, direction="above", level=level)


def _refused(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(e["location"], e["reason"]) for e in response.json()["errors"]]


@pytest.mark.parametrize(
    ("kind", "spec", "location", "reason"),
    [
        ("pct_change", {"direction": "above", "window": "24h", "threshold": -5}, "threshold", "%"),
        ("grade_cross", {"direction": "above", "grade": "trader", "threshold": 150}, "threshold",
         "grade"),
        ("price_cross", {"direction": "above"}, "level", "needs level"),
        ("price_cross", {"direction": "either", "level": 1.0}, "direction", "only for pct_change"),
        ("signal_flip", {"signal": "any", "window": "1h"}, "window", "does not take window"),
    ],
)  # fmt: skip
def test_a_field_that_does_not_fit_the_kind_is_named(
    client: TestClient, kind: str, spec: dict[str, Any], location: str, reason: str
) -> None:
    (problem,) = _refused(client.post("/v1/alerts", json=_rule("ETH", kind, **spec)))

    assert problem[0] == f"body.{location}"
    assert reason in problem[1]


def test_a_probability_rule_without_a_forecast_is_refused(
    client: TestClient, stale_token: StaleToken
) -> None:
    spec = {"direction": "above", "target": 1.1, "horizon_days": 30, "threshold": 0.5}
    short = client.post("/v1/alerts", json=_rule("USD1", "probability_cross", **spec))
    spec["target"] = stale_token.close * 1.1
    stale = client.post("/v1/alerts", json=_rule(stale_token.symbol, "probability_cross", **spec))

    for answer, reason in (
        (short, "forecasts need at least 200"),
        (stale, f"newest close is {stale_token.newest}"),
    ):
        (problem,) = _refused(answer)
        assert problem[0] == "symbol"
        assert reason in problem[1]
        assert reason in answer.json()["detail"]


def test_an_expiry_in_the_past_is_refused_on_create_and_on_change(client: TestClient) -> None:
    created = client.post("/v1/alerts", json=_price_rule("ETH"))
    assert created.status_code == 201, created.text

    on_create = client.post("/v1/alerts", json=_price_rule("ETH") | {"expires_at": PAST})
    on_change = client.patch(f"/v1/alerts/{created.json()['id']}", json={"expires_at": PAST})

    assert [loc for loc, _ in _refused(on_create)] == ["body.expires_at"]
    assert [loc for loc, _ in _refused(on_change)] == ["body.expires_at"]


def test_a_rule_on_a_token_whose_prices_stopped_is_kept_with_a_warning(
    client: TestClient, stale_token: StaleToken
) -> None:
    symbol = stale_token.symbol
    stale = client.post("/v1/alerts", json=_price_rule(symbol, stale_token.close * 1.1))
    current = client.post("/v1/alerts", json=_price_rule("ETH"))

    assert (stale.status_code, current.status_code) == (201, 201), stale.text
    (warning,) = stale.json()["warnings"]
    assert f"{symbol}'s newest close is {stale_token.newest}" in warning
    assert stale_token.end in warning
    assert current.json()["warnings"] == []
    again = client.get(f"/v1/alerts/{stale.json()['id']}").json()
    assert (again["active"], again["warnings"]) == (True, [warning])  # on every read, not once
    listed = {r["id"]: r["warnings"] for r in client.get("/v1/alerts").json()["items"]}
    assert (listed[stale.json()["id"]], listed[current.json()["id"]]) == ([warning], [])
