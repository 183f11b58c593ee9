"""Float noise is rounded off JSON answers; everything else passes unchanged."""

from __future__ import annotations

import json
import math

import pytest

from coinlens.api.responses import TidyJSONResponse, tidy
from coinlens.domain.numbers import change


@pytest.mark.parametrize(
    ("noisy", "clean"),
    [
        (-0.6000000000000001, -0.6),
        (7.0590000000000005e-06, 7.059e-06),
        (1.1796199999999999e-05, 1.17962e-05),
        (4145.149999999997, 4145.15),
        (850811038.1004134, 850811038.100413),
        (1234567890123.45, 1234567890123.45),  # data digits are kept
        (0.0, 0.0),
    ],
)
def test_a_float_keeps_fifteen_significant_digits(noisy: float, clean: float) -> None:
    assert tidy(noisy) == clean


def test_nested_values_are_tidied_and_other_types_kept() -> None:
    value = {"a": [1, "x", None, True, {"score": 0.30000000000000004}], "n": 12345678901234}

    assert tidy(value) == {"a": [1, "x", None, True, {"score": 0.3}], "n": 12345678901234}
    assert math.isinf(tidy(math.inf))


def test_the_response_renders_tidied_json() -> None:
    body = TidyJSONResponse({"score": -0.6000000000000001, "price": 7.0590000000000005e-06}).body

    assert json.loads(body) == {"score": -0.6, "price": 7.059e-06}
    assert b"0000000" not in body


def test_a_change_between_equal_prices_is_zero_and_real_changes_keep_their_digits() -> None:
    close = 4145.15
    back = math.exp(math.log(close))  # a quantile equal to the close, back from log space

    assert back / close - 1 != 0.0  # the noise this removes
    assert change(back, close) == 0.0
    assert change(4145.16, close) == pytest.approx(2.4124e-06, rel=1e-4)
    assert change(3 * close, close) == 2.0
