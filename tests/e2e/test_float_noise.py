"""Answers built from stored floats carry no binary noise (`-0.6000000000000001`)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.xdist_group("embedded")


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):  # venues report quote volumes to more digits: served as stored
        return [f for k, v in value.items() if k != "quote_volume" for f in _floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    return []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/signals?limit=200",
        "/v1/tokens/ETH/signals",
        "/v1/tokens/PEPE/signals",
        "/v1/tokens/PEPE/ohlcv?start=2025-06-01",  # prices ÷ a 1000× contract multiplier
        "/v1/tokens/ETH/predictions",
        "/v1/tokens/ETH/scenarios",
        "/v1/tokens/PEPE/levels",
        "/v1/tokens/ETH/roi",
    ],
)
def test_floats_have_at_most_fifteen_significant_digits(read_client: TestClient, path: str) -> None:
    answer = read_client.get(path)
    assert answer.status_code == 200, answer.text

    floats = _floats(answer.json())

    assert floats
    assert [f for f in floats if float(f"{f:.15g}") != f] == []  # raw floats need 17
