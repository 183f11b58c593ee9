"""Scenario targets placed among the key levels: crossed levels, the next one, no levels."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import pytest

from coinlens.client import models as sdk
from coinlens.domain import forecasts as domain
from coinlens.domain.analytics_models import Level, TokenLevels
from coinlens.services.scenario_levels import as_of_warnings, key_levels, place_target

DAY = dt.date(2025, 1, 10)


def _level(
    price: float, kind: Literal["support", "resistance"] = "support", strength: float = 0.5
) -> Level:
    return Level(price=price, kind=kind, strength=strength, touches=2, last_touch=DAY)


def _stored(*prices: float, close: float = 100.0) -> TokenLevels:
    """Stored levels whose nearest support / resistance bracket `close`; the rest strongest."""
    below = [p for p in prices if p < close]
    above = [p for p in prices if p >= close]
    return TokenLevels(
        symbol="TST",
        close=close,
        support=_level(max(below)) if below else None,
        resistance=_level(min(above), "resistance") if above else None,
        strongest=[_level(p, "support" if p < close else "resistance", 0.9) for p in prices],
        source="test",
        as_of=DAY,
    )


LEVELS = key_levels(_stored(80.0, 90.0, 95.0, 110.0, 120.0), last_close=100.0)


def _prices(levels: list[domain.KeyLevel]) -> list[float]:
    return [lv.price for lv in levels]


def test_key_levels_are_distinct_ascending_and_measured_from_the_last_close() -> None:
    assert _prices(LEVELS) == [80.0, 90.0, 95.0, 110.0, 120.0]  # support/resistance not repeated
    assert [lv.kind for lv in LEVELS] == ["support"] * 3 + ["resistance"] * 2
    assert LEVELS[3].distance == pytest.approx(0.10)
    assert LEVELS[0].distance == pytest.approx(-0.20)
    assert LEVELS[2].strength == 0.5  # the nearest support's own entry comes first


def test_key_levels_are_reclassed_against_the_forecast_close() -> None:
    """Levels stored against a later close are support / resistance as seen from the forecast."""
    lv = key_levels(_stored(90.0, 110.0, close=115.0), last_close=100.0)
    assert [(x.price, x.kind) for x in lv] == [(90.0, "support"), (110.0, "resistance")]


def test_a_target_above_a_resistance_crosses_it_and_names_the_next() -> None:
    t = place_target(115.0, 100.0, LEVELS)
    assert _prices(t.crossed) == [110.0]
    assert t.beyond is not None
    assert t.beyond.price == 120.0
    assert t.beyond.kind == "resistance"


def test_a_target_below_several_supports_lists_them_in_the_order_price_meets_them() -> None:
    t = place_target(85.0, 100.0, LEVELS)
    assert _prices(t.crossed) == [95.0, 90.0]
    assert t.beyond is not None
    assert t.beyond.price == 80.0


def test_a_target_between_the_close_and_the_nearest_level_crosses_nothing() -> None:
    up, down = place_target(105.0, 100.0, LEVELS), place_target(97.0, 100.0, LEVELS)
    assert up.crossed == []
    assert up.beyond is not None
    assert up.beyond.price == 110.0
    assert down.crossed == []
    assert down.beyond is not None
    assert down.beyond.price == 95.0


def test_a_target_past_every_level_has_nothing_beyond() -> None:
    up, down = place_target(150.0, 100.0, LEVELS), place_target(50.0, 100.0, LEVELS)
    assert _prices(up.crossed) == [110.0, 120.0]
    assert up.beyond is None
    assert _prices(down.crossed) == [95.0, 90.0, 80.0]
    assert down.beyond is None


def test_a_target_exactly_at_a_level_reaches_it() -> None:
    t = place_target(110.0, 100.0, LEVELS)
    assert _prices(t.crossed) == [110.0]
    assert t.beyond is not None
    assert t.beyond.price == 120.0


def test_no_levels_places_nothing() -> None:
    assert key_levels(_stored(), 100.0) == []
    t = place_target(120.0, 100.0, [])
    assert t.crossed == []
    assert t.beyond is None


def test_levels_from_another_day_than_the_origin_say_so() -> None:
    assert as_of_warnings(DAY, DAY) == []
    (after,) = as_of_warnings(DAY, DAY - dt.timedelta(days=3))
    assert "2025-01-10, 3 days after the forecast origin 2025-01-07" in after
    (before,) = as_of_warnings(DAY, DAY + dt.timedelta(days=2))
    assert "2 days before" in before


@pytest.mark.parametrize("name", ["KeyLevel", "TargetLevels", "Scenario", "Scenarios"])
def test_sdk_models_declare_the_domain_fields(name: str) -> None:
    assert set(getattr(sdk, name).model_fields) == set(getattr(domain, name).model_fields)
