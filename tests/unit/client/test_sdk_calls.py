"""The SDK's grade and forecast calls: typed models carry every field the API returns, and
date-only parameters accept what their type hints promise."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import BaseModel

from coinlens.client import _endpoints as ep
from coinlens.client import models as sdk
from coinlens.domain import forecasts, grades


def _domain_models() -> list[type[BaseModel]]:
    return [
        obj
        for module in (grades, forecasts)
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseModel)
        and obj.__module__ == module.__name__
    ]


@pytest.mark.parametrize("model", _domain_models(), ids=lambda m: m.__name__)
def test_sdk_models_declare_every_field_of_the_answers(model: type[BaseModel]) -> None:
    mirror = getattr(sdk, model.__name__)
    assert set(mirror.model_fields) == set(model.model_fields)


NOON = dt.datetime(2025, 9, 30, 12, 30, tzinfo=dt.UTC)
LATE_EAST = dt.datetime(2025, 10, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=3)))


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (NOON, "2025-09-30"),
        (LATE_EAST, "2025-09-30"),  # 2025-09-30 22:00 UTC
        (dt.date(2025, 9, 30), "2025-09-30"),
        ("2025-09-30", "2025-09-30"),
    ],
)
def test_date_only_parameters_send_the_day(value: ep.Instant, sent: str) -> None:
    assert ep.grades("eth", value, value).params == {"start": sent, "end": sent}
    assert ep.probability("eth", value, 10.0, None).params["by"] == sent
    assert ep.leaderboard({"day": value, "sort": "trader"}).params["day"] == sent
