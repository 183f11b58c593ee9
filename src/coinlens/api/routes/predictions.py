"""`/v1/tokens/{symbol}/predictions|scenarios|probability` and `/v1/models`: price forecasts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from coinlens.api.deps import CtxDep, Symbol
from coinlens.api.errors import problem_responses
from coinlens.api.responses import TidyJSONResponse
from coinlens.domain.errors import Problem, ValidationFailed
from coinlens.domain.forecasts import ModelInfo, Predictions, Probability, Scenarios
from coinlens.services import forecasts

router = APIRouter(tags=["predictions"])
_ABOVE, _BELOW = "Price level X (P(close ≥ X))", "Price level X (P(close ≤ X))"


@router.get(
    "/v1/tokens/{symbol}/predictions",
    response_class=TidyJSONResponse,
    summary="Quantile forecasts of the close at 1/7/30/90 days",
    responses=problem_responses(404),
)
def get_predictions(ctx: CtxDep, symbol: Symbol) -> Predictions:
    """p05…p95 of the close per horizon, the random-walk baseline, and the model's provenance.

    404 when the token is unknown or has too little history (the detail says which).
    """
    return forecasts.get_predictions(ctx, symbol)


@router.get(
    "/v1/tokens/{symbol}/scenarios",
    response_class=TidyJSONResponse,
    summary="Bear / base / bull price targets per horizon",
    responses=problem_responses(404),
)
def get_scenarios(ctx: CtxDep, symbol: Symbol) -> Scenarios:
    """Bear = p10, base = p50, bull = p90 of the latest forecast, placed among the key levels.

    Per target: `crossed`, the support / resistance levels between the last close and it, and
    `beyond`, the first level past it. `levels_as_of` dates the levels; without stored levels
    the targets are still served, with empty placements and a warning.
    """
    return forecasts.get_scenarios(ctx, symbol)


@router.get(
    "/v1/tokens/{symbol}/probability",
    response_class=TidyJSONResponse,
    summary="Chance the close is above (or below) a price on / by a date",
    responses=problem_responses(404, 422),
)
def get_probability(
    ctx: CtxDep,
    symbol: Symbol,
    by: Annotated[dt.date, Query(description="Date D, at most a year after the forecast origin")],
    above: Annotated[float | None, Query(gt=0, allow_inf_nan=False, description=_ABOVE)] = None,
    below: Annotated[float | None, Query(gt=0, allow_inf_nan=False, description=_BELOW)] = None,
) -> Probability:
    """`p_at`: P(close on D past X); `p_by`: P(some close up to D reaches X). Method in `method`."""
    level, direction = _level(above, below)
    return forecasts.probability(ctx, symbol, level, by, above=direction == "above")


def _level(above: float | None, below: float | None) -> tuple[float, Literal["above", "below"]]:
    if above is not None and below is None:
        return above, "above"
    if below is not None and above is None:
        return below, "below"
    raise ValidationFailed(
        "give exactly one of `above` or `below`",
        [Problem("query.above", "exactly one of above / below is required")],
    )


@router.get(
    "/v1/models",
    response_class=TidyJSONResponse,
    summary="Forecast models with their measured accuracy",
)
def list_models(ctx: CtxDep) -> list[ModelInfo]:
    """Every stored model version, newest first: cut-off, features, held-out metrics."""
    return forecasts.list_models(ctx)
