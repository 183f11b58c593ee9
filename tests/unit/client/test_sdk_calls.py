"""The SDK's grade and forecast calls: typed models carry every field the API returns, and
date-only parameters accept what their type hints promise."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import BaseModel

from coinlens.client import _endpoints as ep
from coinlens.client import models as sdk
from coinlens.domain import analytics_models, forecasts, grades, models


def _domain_models() -> list[type[BaseModel]]:
    """Every grade and forecast model, and the catalog/analytics answers the SDK mirrors
    (their nested parts such as `Risk` are plain dicts in the SDK)."""
    mirrored = (models, analytics_models)
    return [
        obj
        for module in (grades, forecasts, *mirrored)
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseModel)
        and obj.__module__ == module.__name__
        and (module not in mirrored or hasattr(sdk, obj.__name__))
    ]


@pytest.mark.parametrize("model", _domain_models(), ids=lambda m: m.__name__)
def test_sdk_models_declare_every_field_of_the_answers(model: type[BaseModel]) -> None:
    mirror = getattr(sdk, model.__name__)
    assert set(mirror.model_fields) == set(model.model_fields)


def test_roi_first_close_is_a_date() -> None:
    roi = sdk.TokenRoi.model_validate(
        {"symbol": "ETH", "roi": {}, "risk": {}, "first_close": "2017-08-17"}
        | {"source": "s", "as_of": "2025-09-30"}
    )
    assert roi.first_close == dt.date(2017, 8, 17)


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
