"""The forecasts' track record round-trips through the `evaluations` table (SQLite and
PostgreSQL): the newest record of the production method is served, another method's is not."""

from __future__ import annotations

import datetime as dt

from coinlens.domain.forecasts import CoverageRecord, HorizonRecord, TrackRecord
from coinlens.services import forecasts
from coinlens.services.context import Context
from coinlens.services.forecast_eval import record_track


def _record(at: dt.datetime, method: str, skill: float) -> TrackRecord:
    coverage = [
        CoverageRecord(level=lv, observed=lv / 100 + 0.01, low=None, high=None, random_walk=0.5)
        for lv in (50, 80, 90)
    ]
    horizon = HorizonRecord(
        horizon=30,
        rows=1_234,
        pinball_skill=skill,
        skill_low=skill - 0.01,
        skill_high=skill + 0.01,
        coverage=coverage,
        held_out_skill=None,
        direction_accuracy=0.51,
        direction_p_value=0.2,
    )
    return TrackRecord(
        evaluated_at=at,
        data_end=dt.date(2025, 9, 30),
        first_origin=dt.date(2021, 1, 1),
        last_origin=dt.date(2025, 6, 27),
        retrains=19,
        step_days=91,
        held_out_from=dt.date(2024, 10, 1),
        horizons=[horizon],
        report="reports/forecasts.md",
        method=method,
    )


def test_newest_record_of_the_production_method_round_trips(ctx: Context) -> None:
    with ctx.engine.connect() as conn:
        assert forecasts.latest_track_record(conn) is None
    at = dt.datetime(2026, 12, 7, 8, 0, 0, 123456, tzinfo=dt.UTC)
    older = _record(at - dt.timedelta(days=1), forecasts.PRODUCTION_METHOD, 0.01)
    newer = _record(at, forecasts.PRODUCTION_METHOD, 0.02)
    record_track(ctx, newer)
    record_track(ctx, older)  # stored later, evaluated earlier: not the newest
    with ctx.engine.connect() as conn:
        assert forecasts.latest_track_record(conn) == newer
    record_track(ctx, _record(at + dt.timedelta(hours=1), "another-method", 0.5))
    with ctx.engine.connect() as conn:
        assert forecasts.latest_track_record(conn) is None
