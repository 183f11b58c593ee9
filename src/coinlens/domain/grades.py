"""Domain models of the Trader and Investor Grades (see docs/grades.md)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, Field

from coinlens.domain.models import DomainModel

Band = Literal["strong_sell", "sell", "neutral", "buy", "strong_buy"]
BAND_NAMES: tuple[Band, ...] = ("strong_sell", "sell", "neutral", "buy", "strong_buy")
GradeKind = Literal["trader", "investor"]


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
