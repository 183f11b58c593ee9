"""The grades' track record: an evaluation's headline figures, NaN as null, named method."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np

from coinlens.analytics import evaluation as ev
from coinlens.services.evaluation import Evaluation, GradeTrack, Period, track_record
from coinlens.services.grades import METHOD


def _summary(ic: float, t: float, n: int) -> ev.Summary:
    return ev.Summary(
        ic=ev.MeanStat(ic, 0.01, t, n),
        spread=ev.MeanStat(0.004, 0.002, 2.0, n),
        ic_hit_rate=0.55,
        top_hit_rate=math.nan,  # e.g. no day with a full top quintile
        mean_tokens=120.0,
    )


def test_an_evaluation_becomes_its_track_record() -> None:
    split = date(2023, 1, 1)
    trader = GradeTrack(
        "trader",
        7,
        periods=[
            Period("in sample", date(2018, 3, 1), date(2022, 12, 24), _summary(0.02, 2.5, 1760)),
            Period("out of sample", split, date(2025, 9, 23), _summary(0.004, 0.3, 997)),
        ],
        years={2024: _summary(math.nan, math.nan, 0), 2025: _summary(0.01, 1.1, 266)},
    )
    investor = GradeTrack("investor", 90)
    result = Evaluation(
        days=np.arange(17_500, 20_000),
        start=date(2017, 11, 30),
        end=date(2024, 10, 4),
        data_end=date(2025, 9, 30),
        split=split,
        tracks={"trader": trader, "investor": investor},
        weights={},
    )
    when = datetime(2026, 12, 7, tzinfo=UTC)
    record = track_record(result, when, "reports/grades.md")
    assert record.method == METHOD
    assert (record.first_day, record.last_day, record.data_end) == (
        date(2017, 11, 30),
        date(2024, 10, 4),
        date(2025, 9, 30),
    )
    assert record.out_of_sample_from == split
    t, i = record.grades
    assert (t.grade, t.horizon, i.grade, i.horizon) == ("trader", 7, "investor", 90)
    assert i.periods == []
    oos = t.periods[1]
    assert (oos.period, oos.start, oos.days, oos.rank_ic, oos.rank_ic_t) == (
        "out of sample",
        split,
        997,
        0.004,
        0.3,
    )
    assert (oos.spread, oos.spread_t, oos.ic_hit_rate, oos.tokens) == (0.004, 2.0, 0.55, 120.0)
    assert oos.top_hit_rate is None
    y2024, y2025 = t.years
    assert (y2024.year, y2024.days, y2024.rank_ic, y2024.rank_ic_t) == (2024, 0, None, None)
    assert (y2025.year, y2025.rank_ic) == (2025, 0.01)
    # it survives the JSON round trip the evaluations table makes
    assert type(record).model_validate_json(record.model_dump_json()) == record
