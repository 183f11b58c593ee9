"""Analytics endpoints: a token's indicators, signals, backtest, levels and ROI; `/v1/signals`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from coinlens.api.deps import CtxDep, Symbol, link_next
from coinlens.api.errors import problem_responses
from coinlens.api.responses import TidyJSONResponse
from coinlens.api.schemas_analytics import IndicatorsQuery, PerformanceQuery, SignalsQuery
from coinlens.domain.analytics_models import (
    IndicatorSeries,
    SignalPerformance,
    SignalsPage,
    TokenLevels,
    TokenRoi,
    TokenSignal,
)
from coinlens.services import analytics_queries as aq

router = APIRouter(prefix="/v1/tokens", tags=["analytics"])
signals_router = APIRouter(prefix="/v1/signals", tags=["analytics"])


@router.get(
    "/{symbol}/indicators",
    summary="Daily indicator series of a token",
    responses=problem_responses(404, 422),
)
def get_indicators(
    ctx: CtxDep,
    request: Request,
    response: Response,
    symbol: Symbol,
    query: Annotated[IndicatorsQuery, Query()],
) -> IndicatorSeries:
    """RSI, MACD, EMA 20/50/200, Bollinger, ATR, ADX, OBV, Stoch, MFI, volatility, VWAP."""
    result = aq.get_indicators(
        ctx, symbol, start=query.start, end=query.end, cursor=query.cursor, limit=query.limit
    )
    link_next(request, response, result.next_cursor)
    return result


@router.get(
    "/{symbol}/signals",
    response_class=TidyJSONResponse,
    summary="Current signal and its history",
    responses=problem_responses(404),
)
def get_signals(ctx: CtxDep, symbol: Symbol) -> TokenSignal:
    """Long/flat/short with score, the indicator values behind it, and every change."""
    return aq.get_signals(ctx, symbol)


@router.get(
    "/{symbol}/signals/performance",
    response_class=TidyJSONResponse,
    summary="Backtest of the signal vs buy-and-hold",
    responses=problem_responses(404, 422),
)
def get_signal_performance(
    ctx: CtxDep, symbol: Symbol, query: Annotated[PerformanceQuery, Query()]
) -> SignalPerformance:
    """Long-only, fills at the next bar's open; the parameters used are in `params`."""
    return aq.get_signal_performance(
        ctx, symbol, fee=query.fee, slippage=query.slippage, start=query.start, end=query.end
    )


@router.get(
    "/{symbol}/levels",
    response_class=TidyJSONResponse,
    summary="Support and resistance",
    responses=problem_responses(404),
)
def get_levels(ctx: CtxDep, symbol: Symbol) -> TokenLevels:
    """Nearest support below and resistance above the last close, strongest levels first."""
    return aq.get_levels(ctx, symbol)


@router.get(
    "/{symbol}/roi",
    response_class=TidyJSONResponse,
    summary="Returns and risk",
    responses=problem_responses(404),
)
def get_roi(ctx: CtxDep, symbol: Symbol) -> TokenRoi:
    """ROI over 1d…since the first close (`first_close`: the series' first in our data, the
    listing only when the data reach back that far); 90-day volatility, Sharpe, Sortino,
    beta/corr; drawdowns since `first_close`."""
    return aq.get_roi(ctx, symbol)


@signals_router.get(
    "",
    response_class=TidyJSONResponse,
    summary="The universe's latest signals",
    responses=problem_responses(404, 422),
)
def list_signals(
    ctx: CtxDep, request: Request, response: Response, query: Annotated[SignalsQuery, Query()]
) -> SignalsPage:
    """Latest signal per token in symbol order, filterable; follow `next_cursor` or `Link`."""
    page = aq.list_signals(
        ctx,
        signal=query.signal,
        sector=query.sector,
        changed_within_days=query.changed_within_days,
        cursor=query.cursor,
        limit=query.limit,
    )
    link_next(request, response, page.next_cursor)
    return page
