"""Domain models of the Trader and Investor Grades (see docs/grades.md)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, Field

from coinlens.domain.models import DomainModel

Band = Literal["strong_sell", "sell", "neutral", "buy", "strong_buy"]
BAND_NAMES: tuple[Band, ...] = ("strong_sell", "sell", "neutral", "buy", "strong_buy")
GradeKind = Literal["trader", "investor"]
PeriodName = Literal["in sample", "out of sample", "all"]


class SubGrade(DomainModel):
    """One sub-grade and its share of the grade: contribution = weight × grade."""

    name: str
    grade: float = Field(ge=0, le=100, description="Percentile 0–100 against that day's universe")
    weight: float = Field(ge=0, le=1)
    contribution: float = Field(description="weight × grade; the contributions add up to the grade")


class GradeBreakdown(DomainModel):
    """A grade with its band and the sub-grades it is the sum of."""

    grade: float = Field(ge=0, le=100)
    band: Band
    action: str = Field(description="What the band suggests, e.g. 'strong buy'")
    sub_grades: list[SubGrade]


class GradePoint(DomainModel):
    """Both grades of one token on one day (point in time: only data known that day)."""

    day: date
    trader: float = Field(ge=0, le=100, description="Short-term grade, 0–100")
    investor: float | None = Field(
        default=None, ge=0, le=100, description="Long-term grade; None until 180 days of history"
    )
    trader_band: Band
    investor_band: Band | None = None
    components: dict[str, float] = Field(description="The six sub-grades, 0–100")


class GradePeriodRecord(DomainModel):
    """How one grade ranked tokens over a period: each day's grades against the returns of
    the following `horizon` days (Newey–West t-statistics: overlapping windows)."""

    period: PeriodName
    start: date
    end: date
    days: int = Field(ge=0, description="Days with a rank IC (enough tokens graded and priced)")
    rank_ic: float | None = Field(description="Mean daily Spearman rank IC")
    rank_ic_t: float | None
    spread: float | None = Field(
        description="Mean forward return of the top grade quintile minus the bottom one"
    )
    spread_t: float | None
    ic_hit_rate: float | None = Field(description="Share of days with a positive rank IC")
    top_hit_rate: float | None = Field(
        description="Mean share of top-quintile tokens beating that day's median return"
    )
    tokens: float | None = Field(description="Mean number of tokens ranked per day")


class GradeYearRecord(DomainModel):
    """A grade's mean rank IC over one calendar year."""

    year: int
    days: int = Field(ge=0)
    rank_ic: float | None
    rank_ic_t: float | None


class GradeRecord(DomainModel):
    """The track record of one grade against the forward returns it is meant to rank."""

    grade: GradeKind
    horizon: int = Field(description="Forward-return horizon in days (Trader 7, Investor 90)")
    periods: list[GradePeriodRecord]
    years: list[GradeYearRecord]


class GradeTrackRecord(DomainModel):
    """The grades' walk-forward track record (`coinlens evaluate grades`): each day's grades,
    computed from what was known that day, against the returns that followed."""

    evaluated_at: AwareDatetime
    data_end: date = Field(description="Last day of data the evaluation saw")
    first_day: date
    last_day: date
    out_of_sample_from: date = Field(
        description="The weights were chosen on forward windows ending before this day"
    )
    grades: list[GradeRecord]
    report: str = Field(description="The full report the run wrote, and its method")
    method: str = Field(description="Grade method version and fingerprint of its settings")


class TokenGrades(DomainModel):
    """A token's current grades with their breakdown, and its grade history."""

    symbol: str
    name: str
    sector: str | None = None
    day: date | None = Field(default=None, description="Day of the current grades")
    trader: GradeBreakdown | None = None
    investor: GradeBreakdown | None = None
    history: list[GradePoint]
    source: str
    model: str = Field(description="Grade method version")
    warnings: list[str] = Field(default_factory=list)
    track_record: GradeTrackRecord | None = Field(
        default=None,
        description="The grades' latest walk-forward evaluation over all tokens (null until "
        "`coinlens evaluate grades` has run on this installation, or when the method changed)",
    )


class LeaderboardEntry(DomainModel):
    """One token on a day's leaderboard."""

    symbol: str
    name: str
    sector: str | None = None
    trader: float
    investor: float | None = None
    trader_band: Band
    investor_band: Band | None = None
    components: dict[str, float]


class GradesPage(DomainModel):
    """One page of a day's leaderboard, best first by default, with a cursor to the next."""

    day: date
    sort: GradeKind
    order: Literal["asc", "desc"]
    items: list[LeaderboardEntry]
    total: int = Field(ge=0, description="Tokens matching the filters that day")
    limit: int = Field(ge=1)
    next_cursor: str | None = None
    source: str
    model: str
    as_of: AwareDatetime | None = Field(default=None, description="Newest graded day (UTC)")
