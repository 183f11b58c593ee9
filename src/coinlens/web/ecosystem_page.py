"""Ecosystem (`/ecosystem`): chain TVL and L2 share, gas, stablecoins, Ethereum activity and
staking — each chart names its data and date range; missing series are shown as missing."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from coinlens.services import ecosystem
from coinlens.services.context import Context
from coinlens.web.routes import gate, page, web_ctx

router = APIRouter()
ACTIVITY = ("tx_count", "active_addresses", "network_utilization")
ACTIVITY_LABELS = {"tx_count": "transactions", "active_addresses": "active addresses"}


def _t(d: Any) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def _chart(
    series: list[ecosystem.Series], every: int = 1, labels: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Series as {name, title, unit, source, first, last, points:[[t, v]]}, thinned to every
    n-th; a line is titled by its entity, or by its metric's label when `labels` are given
    (one entity's several metrics)."""
    return [
        {
            "name": s.entity,
            "title": labels.get(s.metric, s.metric) if labels is not None else s.entity,
            "metric": s.metric,
            "unit": s.unit,
            "source": s.source,
            "first": str(s.first),
            "last": str(s.last),
            "points": [[_t(p.date), float(f"{p.value:.5g}")] for p in s.points[::every]]
            + (
                [[_t(s.points[-1].date), float(f"{s.points[-1].value:.5g}")]]
                if (len(s.points) - 1) % every
                else []
            ),
        }
        for s in series
        if s.points
    ]


_lock = threading.Lock()
_cache: dict[str, tuple[float, dict[str, Any]]] = {}
TTL = 60.0


def _context(ctx: Context) -> dict[str, Any]:
    """The page's data, kept for TTL seconds (metrics change only on `coinlens sync`)."""
    key = str(ctx.engine.url)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < TTL:
            return hit[1]
    built = _build(ctx)
    with _lock:
        _cache[key] = (time.monotonic(), built)
    return built


@router.get("/ecosystem", name="ecosystem")
def ecosystem_view(request: Request) -> Response:
    """The ecosystem page with its chart data embedded."""
    if (redirect := gate(request, owner_only=False)) is not None:
        return redirect
    return page(request, "ecosystem.html", _context(web_ctx(request)))


def staking_rows(items: list[ecosystem.StakingItem]) -> list[dict[str, Any]]:
    """One row per staking entity — its APY (`apr`), TVL (`tvl`) and any other series
    (`others`) side by side — largest TVL first: the API's (entity, metric) items as a
    reader compares them."""
    rows: dict[str, dict[str, Any]] = {}
    for it in items:
        row = rows.setdefault(
            it.entity, {"entity": it.entity, "apr": None, "tvl": None, "others": []}
        )
        if it.metric == "lst_apr":
            row["apr"] = it
        elif it.metric == "lst_tvl_usd":
            row["tvl"] = it
        else:
            row["others"].append(it)
    return sorted(rows.values(), key=lambda r: -(r["tvl"].value if r["tvl"] else 0.0))


def _build(ctx: Context) -> dict[str, Any]:
    chains = ecosystem.list_chains(ctx, limit=ecosystem.MAX_LIMIT)
    staking = ecosystem.get_staking(ctx, limit=ecosystem.MAX_LIMIT)
    stable = ecosystem.stablecoin_supply(ctx)
    activity = ecosystem.chain_series(ctx, "tx_count", ["ethereum"])
    activity += ecosystem.chain_series(ctx, "active_addresses", ["ethereum"])
    charts = {
        "tvl": _chart(ecosystem.chain_series(ctx, "tvl_usd"), 3),
        "gas": _chart(ecosystem.chain_series(ctx, "gas_price_gwei"), 3),
        "stable": _chart([stable.total] if stable.total else [], 3),
        "activity": _chart(activity, 3, ACTIVITY_LABELS),
    }
    held = {s.metric for c in chains.items for s in c.series}
    context = {
        "title": "Ecosystem",
        "chains": chains,
        "staking": staking,
        "staking_rows": staking_rows(staking.items),
        "staking_dates": sorted({str(i.as_of) for i in staking.items}),
        "staking_sources": sorted({i.source for i in staking.items}),
        "stable": stable,
        "charts": charts,
        "missing_activity": [m for m in ACTIVITY if m not in held],
    }
    return context
