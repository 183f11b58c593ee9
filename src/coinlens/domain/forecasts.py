"""Domain models of price forecasts: quantiles per horizon, scenarios, probabilities, models."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from coinlens.domain.models import DomainModel


class Quantiles(DomainModel):
    """Forecast close quantiles (price per token) at one horizon."""

    p05: float
    p10: float
    p25: float
    p50: float
    p75: float
    p90: float
    p95: float


class HorizonForecast(DomainModel):
    """The forecast distribution of the close `horizon` days after the origin."""

    horizon: int = Field(description="Days after the origin close")
    target_date: dt.date
    quantiles: Quantiles
    baseline: Quantiles | None = Field(
        default=None, description="Random-walk baseline (volatility-scaled, drift 0)"
    )


class CoverageRecord(DomainModel):
    """How often one central interval held the outcome in the walk-forward."""

    level: int = Field(description="Nominal coverage in percent (50, 80 or 90)")
    observed: float | None = Field(description="Share of outcomes inside the interval")
    low: float | None = Field(
        description="5th percentile of `observed` over block-bootstrap resamples of the "
        "retraining quarters (quarters share market moves: if anything too narrow)"
    )
    high: float | None = Field(description="95th percentile of the same resamples")
    random_walk: float | None = Field(description="The random-walk baseline's share, same rows")


class HorizonRecord(DomainModel):
    """Out-of-sample accuracy of one horizon's forecasts."""

    horizon: int = Field(description="Days ahead")
    rows: int = Field(description="Scored (token, origin day) forecasts")
    pinball_skill: float | None = Field(
        description="1 - mean pinball loss / the random walk's on the same rows; > 0 beats it"
    )
    skill_low: float | None = Field(description="Block-bootstrap 5th percentile of the skill")
    skill_high: float | None = Field(description="Block-bootstrap 95th percentile of the skill")
    coverage: list[CoverageRecord]
    held_out_skill: float | None = Field(
        description="Pinball skill on targets from `held_out_from` on (chose no parameter)"
    )
    direction_accuracy: float | None = Field(
        description="Share of moves whose sign the median called, where it moved"
    )
    direction_p_value: float | None = Field(
        description="Binomial test on non-overlapping origins (ignores co-moving tokens)"
    )


class TrackRecord(DomainModel):
    """The forecasting method's walk-forward track record (`coinlens evaluate forecasts`):
    retrained every `step_days` with data up to each origin only, scored on what followed."""

    evaluated_at: AwareDatetime
    data_end: dt.date = Field(description="Last day of data the evaluation saw")
    first_origin: dt.date
    last_origin: dt.date
    retrains: int
    step_days: int
    held_out_from: dt.date = Field(
        description="Targets from this day on were used for no design choice"
    )
    horizons: list[HorizonRecord]
    report: str = Field(description="The full report the run wrote, and its method")
    method: str = Field(description="Fingerprint of the model settings and features evaluated")


class ModelInfo(DomainModel):
    """One trained forecast model: version, cut-off, features and measured accuracy."""

    model_id: str
    kind: str
    trained_at: AwareDatetime
    cutoff: dt.date = Field(description="Last day of data the model was trained on")
    features: list[str]
    metrics: dict[str, Any] = Field(description="Accuracy measured on held-out data")
    track_record: TrackRecord | None = Field(
        default=None,
        description="The method's latest full walk-forward evaluation (quantile models only; "
        "null until `coinlens evaluate forecasts` has run on this installation, or when the "
        "method changed since)",
    )


class Predictions(DomainModel):
    """Quantile forecasts of one token with their provenance."""

    symbol: str
    origin: dt.date = Field(description="Day of the last close used")
    last_close: float
    model: ModelInfo
    horizons: list[HorizonForecast]
    warnings: list[str] = Field(default_factory=list)


class KeyLevel(DomainModel):
    """A key support or resistance level, seen from the forecast's last close."""

    price: float
    kind: Literal["support", "resistance"] = Field(
        description="support below the last close, resistance at or above it"
    )
    strength: float = Field(ge=0, le=1)
    distance: float = Field(description="price / last close - 1")


class TargetLevels(DomainModel):
    """Where one price target sits among the key levels."""

    crossed: list[KeyLevel] = Field(
        default_factory=list,
        description="Levels between the last close and the target, in the order price meets them",
    )
    beyond: KeyLevel | None = Field(
        default=None, description="The first level past the target, in the same direction"
    )


class Scenario(DomainModel):
    """Bear (p10) / base (p50) / bull (p90) price at one horizon, placed among the key levels."""

    horizon: int
    target_date: dt.date
    bear: float
    base: float
    bull: float
    bear_change: float = Field(description="bear / last close - 1")
    base_change: float
    bull_change: float
    bear_levels: TargetLevels = Field(default_factory=TargetLevels)
    base_levels: TargetLevels = Field(default_factory=TargetLevels)
    bull_levels: TargetLevels = Field(default_factory=TargetLevels)


class Scenarios(DomainModel):
    """Scenario targets per horizon, from the model's quantiles, next to the key levels."""

    symbol: str
    origin: dt.date
    last_close: float
    model_id: str
    scenarios: list[Scenario]
    levels: list[KeyLevel] = Field(
        default_factory=list, description="The key levels, price ascending (empty if unavailable)"
    )
    levels_as_of: dt.date | None = Field(
        default=None, description="Day of the last close the key levels were computed at"
    )
    method: str
    warnings: list[str] = Field(default_factory=list)


class Probability(DomainModel):
    """P(close ≥ or ≤ a price level) at and by a date, with the method used."""

    symbol: str
    origin: dt.date
    last_close: float
    level: float
    direction: Literal["above", "below"]
    by: dt.date
    days: int
    p_at: float = Field(ge=0, le=1, description="Probability the close on `by` is past the level")
    p_by: float = Field(ge=0, le=1, description="Probability some close up to `by` reaches it")
    model_id: str
    method: str
