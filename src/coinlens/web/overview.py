"""Market overview (`/`): the token table (sortable, filterable, searchable, paged on the
server so 2,000 rows cost one page of HTML), top movers, grade leaders and signal flips."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from coinlens.web import overview_data as data
from coinlens.web.routes import gate, page, web_ctx

router = APIRouter()

COLUMNS = (
    ("symbol", "Token"),
    ("price", "Price (USD/USDT)"),
    ("ch24", "24h"),
    ("ch7", "7d"),
    ("mcap", "Market cap"),
    ("volume", "Volume 24h"),
    ("trader", "Trader Grade"),
    ("investor", "Investor Grade"),
    ("signal", "Signal"),
)


@router.get("/", name="overview")
def overview(request: Request) -> Response:
    """The whole page, or only the table when HTMX asks for it."""
    if (redirect := gate(request, owner_only=False)) is not None:
        return redirect
    ov = data.overview(web_ctx(request))
    q = data.Query.parse(dict(request.query_params))
    rows, total, pages = data.select(ov, q)
    context = {
        "ov": ov,
        "q": q,
        "rows": rows,
        "total": total,
        "pages": pages,
        "page_no": min(q.page, pages),
        "columns": COLUMNS,
        "bands": data.BANDS,
        "signals": data.SIGNALS,
        "spark": data.spark_points,
        "url": lambda **changes: "?" + urlencode(q.params(**changes)),
    }
    if request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "table":
        return page(request, "_overview_table.html", context)
    gainers, losers = data.movers(ov)
    context |= {"gainers": gainers, "losers": losers, "leaders": data.leaders(ov)}
    context |= {"flips": data.flips(ov), "title": "Market overview"}
    return page(request, "overview.html", context)
