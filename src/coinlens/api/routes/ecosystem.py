"""`/v1/ecosystem`: chain TVL and L2 share, one chain's TVL/gas/activity series, staking."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from coinlens.api.deps import CtxDep, link_next
from coinlens.api.errors import problem_responses
from coinlens.services import ecosystem as service

router = APIRouter(prefix="/v1/ecosystem", tags=["ecosystem"])

Chain = Annotated[
    str,
    Path(min_length=1, max_length=64, description="Chain name, any case", examples=["ethereum"]),
]
Cursor = Field(default=None, max_length=512, description="`next_cursor` of the page before")


class PageQuery(BaseModel):
    """Cursor pagination."""

    model_config = ConfigDict(frozen=True)

    cursor: str | None = Cursor
    limit: int = Field(default=50, ge=1, le=service.MAX_LIMIT)


class ChainQuery(BaseModel):
    """Query parameters of `GET /v1/ecosystem/chains/{chain}`."""

    model_config = ConfigDict(frozen=True)

    metric: str | None = Field(
        default=None, description=f"Only this series: {', '.join(service.CHAIN_METRICS)}"
    )
    start: dt.date | None = Field(default=None, description="First day (inclusive, UTC)")
    end: dt.date | None = Field(default=None, description="Last day (inclusive, UTC)")
    cursor: str | None = Cursor
    limit: int = Field(default=1_000, ge=1, le=service.MAX_LIMIT, description="Days per page")


@router.get("/chains", summary="Chains by TVL, with growth, gas and L2 share")
def list_chains(
    ctx: CtxDep, request: Request, response: Response, query: Annotated[PageQuery, Query()]
) -> service.ChainsPage:
    """Latest TVL per chain (largest first), 7d/30d/90d growth, latest gas price, the series
    each chain has with their date ranges, and the share of Ethereum rollups in Ethereum TVL."""
    page = service.list_chains(ctx, cursor=query.cursor, limit=query.limit)
    link_next(request, response, page.next_cursor)
    return page


@router.get(
    "/chains/{chain}",
    summary="One chain's TVL, gas and activity series",
    responses=problem_responses(404, 422),
)
def get_chain(
    ctx: CtxDep,
    request: Request,
    response: Response,
    chain: Chain,
    query: Annotated[ChainQuery, Query()],
) -> service.ChainDetail:
    """Daily points oldest first, `limit` days per page; `missing` names series we lack."""
    detail = service.get_chain(
        ctx,
        chain,
        metric=query.metric,
        window=(query.start, query.end),
        cursor=query.cursor,
        limit=query.limit,
    )
    link_next(request, response, detail.next_cursor)
    return detail


@router.get("/staking", summary="Staking yields and liquid-staking TVL")
def get_staking(
    ctx: CtxDep, request: Request, response: Response, query: Annotated[PageQuery, Query()]
) -> service.StakingPage:
    """Newest value of each staking/LST series; an empty list with `missing` when none exist."""
    page = service.get_staking(ctx, cursor=query.cursor, limit=query.limit)
    link_next(request, response, page.next_cursor)
    return page
