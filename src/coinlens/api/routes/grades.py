"""`/v1/grades` (the day's leaderboard) and `/v1/tokens/{symbol}/grades` (current + history)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from coinlens.api.deps import CtxDep, Symbol, link_next
from coinlens.api.errors import problem_responses
from coinlens.domain.grades import Band, GradeKind, GradesPage, TokenGrades
from coinlens.services import grades as service

router = APIRouter(tags=["grades"])


class GradesQuery(BaseModel):
    """Query parameters of `GET /v1/grades`."""

    model_config = ConfigDict(frozen=True)

    day: dt.date | None = Field(default=None, description="Day to rank; default the newest")
    sector: str | None = Field(default=None, max_length=64, description="Exact sector (any case)")
    band: Band | None = Field(default=None, description="Only tokens in this band of `sort`")
    sort: GradeKind = Field(default="trader", description="Grade to rank by")
    order: Literal["asc", "desc"] = "desc"
    cursor: str | None = Field(
        default=None, max_length=512, description="`next_cursor` of the page before"
    )
    limit: int = Field(default=50, ge=1, le=service.MAX_LEADERBOARD_LIMIT)


class HistoryQuery(BaseModel):
    """Query parameters of `GET /v1/tokens/{symbol}/grades`."""

    model_config = ConfigDict(frozen=True)

    start: dt.date | None = Field(default=None, description="First day of the history (inclusive)")
    end: dt.date | None = Field(default=None, description="Last day of the history (inclusive)")


@router.get(
    "/v1/grades", summary="Grade leaderboard of a day", responses=problem_responses(404, 422)
)
def list_grades(
    ctx: CtxDep, request: Request, response: Response, query: Annotated[GradesQuery, Query()]
) -> GradesPage:
    """Tokens ranked by Trader or Investor Grade; filter by sector and band, page with cursors."""
    page = service.leaderboard(
        ctx,
        service.LeaderboardQuery(
            day=query.day,
            sector=query.sector,
            band=query.band,
            sort=query.sort,
            order=query.order,
            cursor=query.cursor,
            limit=query.limit,
        ),
    )
    link_next(request, response, page.next_cursor)
    return page


@router.get(
    "/v1/tokens/{symbol}/grades",
    summary="A token's grades: current breakdown and history",
    responses=problem_responses(404, 422),
)
def token_grades(
    ctx: CtxDep, symbol: Symbol, query: Annotated[HistoryQuery, Query()]
) -> TokenGrades:
    """Latest Trader/Investor Grades with sub-grades that add up, and the daily history."""
    return service.get_grades(ctx, symbol, query.start, query.end)
