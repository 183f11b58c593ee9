"""Query parameters on the real embedded data: undeclared ones are refused on every `/v1`
route (as unknown body fields are), and the backtest fee goes by both of its names."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.xdist_group("embedded")
PERFORMANCE = "/v1/tokens/ETH/signals/performance"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/tokens/ETH/levels?foo=1",
        "/v1/tokens/ETH?foo=1",
        "/v1/tokens?q=eth&foo=1",
        "/v1/grades?limit=2&sortt=investor",
        "/v1/tokens/ETH/probability?above=3000&by=2025-10-30&foo=1",
        f"{PERFORMANCE}?fee=0.002&foo=1",
    ],
)
def test_an_undeclared_query_parameter_is_refused(read_client: TestClient, path: str) -> None:
    answer = read_client.get(path)

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    (error,) = answer.json()["errors"]
    assert error["location"] in {"query.foo", "query.sortt"}
    assert read_client.head(path).status_code == 422


def test_declared_parameters_and_other_paths_still_pass(read_client: TestClient) -> None:
    assert read_client.get("/v1/tokens?q=eth&limit=2").status_code == 200
    assert read_client.get("/v1/grades?limit=2&sort=investor").status_code == 200
    assert read_client.get("/healthz?probe=lb").status_code == 200


def test_the_fee_goes_by_the_name_the_answer_echoes_too(read_client: TestClient) -> None:
    fee = read_client.get(f"{PERFORMANCE}?fee=0.002")
    fees = read_client.get(f"{PERFORMANCE}?fees=0.002")
    both = read_client.get(f"{PERFORMANCE}?fee=0.002&fees=0.002")

    assert (fee.status_code, fees.status_code) == (200, 200), fees.text
    assert fee.json()["params"]["fees"] == fees.json()["params"]["fees"] == 0.002
    assert fee.json()["strategy"] == fees.json()["strategy"]
    assert both.status_code == 422
    assert [e["location"] for e in both.json()["errors"]] == ["query.fees"]
