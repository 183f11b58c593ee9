"""`/v1/tokens`: search the catalog, one token's detail, and its OHLCV candles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from coinlens.api.deps import CtxDep, Symbol, link_next
from coinlens.api.errors import problem_responses
from coinlens.api.schemas import OhlcvQuery, TokensQuery
from coinlens.domain.models import Ohlcv, TokenDetail, TokensPage
from coinlens.services import catalog

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])


@router.get("", summary="Search and list tokens", responses=problem_responses(422))
def list_tokens(
    ctx: CtxDep, request: Request, response: Response, query: Annotated[TokensQuery, Query()]
) -> TokensPage:
    """Tokens in symbol order; follow `next_cursor` (or the `Link` header) for more."""
    page = catalog.list_tokens(
        ctx, q=query.q, sector=query.sector, cursor=query.cursor, limit=query.limit
    )
    link_next(request, response, page.next_cursor)
    return page


@router.get("/{symbol}", summary="One token with its markets", responses=problem_responses(404))
def get_token(ctx: CtxDep, symbol: Symbol) -> TokenDetail:
    """Metadata, supply and every market with its candle coverage."""
    return catalog.get_token(ctx, symbol)


@router.get(
    "/{symbol}/ohlcv",  # prices come tidied from catalog: no per-float walk over 5,000 rows
    summary="OHLCV candles of a token",
    responses=problem_responses(404, 422),
)
def get_ohlcv(
    ctx: CtxDep,
    request: Request,
    response: Response,
    symbol: Symbol,
    query: Annotated[OhlcvQuery, Query()],
) -> Ohlcv:
    """Candles quoted per one token (prices ÷ `contract_multiplier`), oldest first.

    Long ranges come in pages of at most `limit` candles; follow `next_cursor` or `Link`.
    """
    result = catalog.get_ohlcv(
        ctx,
        symbol,
        timeframe=query.timeframe,
        start=query.start,
        end=query.end,
        market=query.market,
        cursor=query.cursor,
        limit=query.limit,
    )
    link_next(request, response, result.next_cursor)
    return result
