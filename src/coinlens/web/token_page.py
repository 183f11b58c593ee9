"""Token details (`/t/{symbol}`) and its un-keyed JSON/fragments under `/web/t/{symbol}/…`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from coinlens.domain.errors import CoinlensError, DataUnavailable, NotFound, UserInputError
from coinlens.services import catalog, forecasts
from coinlens.services import grades as grade_service
from coinlens.services.analytics import SOURCE as ANALYTICS_SOURCE
from coinlens.web import token_data
from coinlens.web.routes import error_text, gate, page, web_ctx

router = APIRouter()
Symbol = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")]
ROI_ORDER = ("1d", "7d", "30d", "90d", "1y", "ytd", "since_listing")


def _not_found(request: Request, detail: str) -> Response:
    return page(request, "error.html", {"title": "Not found", "detail": detail}, 404)


@router.get("/t/{symbol}", name="token")
def token(request: Request, symbol: Symbol) -> Response:
    """The token page with its chart data embedded."""
    if (redirect := gate(request, owner_only=False)) is not None:
        return redirect
    ctx = web_ctx(request)
    try:
        data = token_data.build(ctx, symbol)
    except NotFound as exc:
        return _not_found(request, error_text(exc))
    context: dict[str, Any] = {
        "title": data.detail.symbol,
        "t": data,
        "roi_order": ROI_ORDER,
        "ranges": token_data.RANGES,
        "hourly": token_data.has_hourly(data.detail),
        "hourly_market": token_data.hourly_market(data.detail)[0],
        "quote": token_data.quote_of(data.detail),
        "synthetic": token_data.is_synthetic(data.detail),
        "history": token_data.history_json(data.grades),
        "equity": token_data.equity_json(data.performance),
        "analytics_source": ANALYTICS_SOURCE,
        "grades_model": grade_service.MODEL,
        "today": dt.datetime.now(dt.UTC).date(),
        "prob_days": token_data.probability_days(data.scenarios),
    }
    return page(request, "token.html", context)


@router.get("/web/t/{symbol}/chart.json", name="token_chart")
def chart_json(
    request: Request,
    symbol: Symbol,
    tf: Annotated[str, Query(pattern="^(1d|1h)$")] = "1d",
    range_: Annotated[str, Query(alias="range", pattern="^(year|all)$")] = "year",
) -> Response:
    """Candles, volume and EMAs for the chart's timeframe/range switch."""
    if (redirect := gate(request, owner_only=False)) is not None:
        return redirect
    try:
        body = token_data.chart_payload(web_ctx(request), symbol, tf, range_ == "all")
    except (NotFound, DataUnavailable) as exc:
        return JSONResponse({"error": error_text(exc)}, status_code=404)
    # private: under COINLENS_WEB_PRIVATE no shared cache may hand it to a visitor not logged in
    return JSONResponse(body, headers={"Cache-Control": "private, max-age=60"})


@router.get("/web/t/{symbol}/price", name="token_price")
def price(request: Request, symbol: Symbol) -> Response:
    """The newest stored close (the page polls this; `coinlens sync` keeps it fresh)."""
    if (redirect := gate(request, owner_only=False)) is not None:
        return redirect
    ctx = web_ctx(request)
    try:
        # the primary market's newest daily candle (other markets may have newer ones)
        newest = catalog.get_token(ctx, symbol).last_candle
        recent = (
            catalog.get_ohlcv(
                ctx, symbol, timeframe="1d", start=newest - dt.timedelta(days=3), limit=10
            )
            if newest is not None
            else None
        )
        newest_day = token_data.dataset_newest_day(ctx)
    except CoinlensError as exc:
        return page(request, "_price.html", {"candle": None, "error": error_text(exc)})
    candle = recent.candles[-1] if recent is not None and recent.candles else None
    stale = candle is not None and token_data.is_stale(candle.open_time.date(), newest_day)
    quote = recent.quote if recent is not None else None
    return page(
        request, "_price.html", {"candle": candle, "stale": stale, "error": None, "quote": quote}
    )


@router.get("/web/t/{symbol}/probability", name="token_probability")
def probability(
    request: Request,
    symbol: Symbol,
    level: Annotated[float, Query(gt=0)],
    by: dt.date,
    direction: Annotated[str, Query(pattern="^(above|below)$")] = "above",
) -> Response:
    """The 'probability of reaching X by date' answer as an HTML fragment."""
    if (redirect := gate(request, owner_only=False)) is not None:
        return redirect
    try:
        result = forecasts.probability(
            web_ctx(request), symbol, level, by, above=direction == "above"
        )
    except (UserInputError, DataUnavailable) as exc:
        return page(request, "_probability.html", {"p": None, "error": error_text(exc)})
    return page(request, "_probability.html", {"p": result, "error": None})
