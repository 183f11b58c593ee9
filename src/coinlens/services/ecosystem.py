"""The ecosystem read side: chain TVL, L2 share, gas, on-chain activity, stablecoins, staking.

Everything comes from the `metrics` table (DefiLlama, explorer and Etherscan snapshots loaded
from the embedded dataset or `coinlens sync`). A series that is not in the table is reported
as missing, never estimated; every answer carries its sources and date range.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import Field

from coinlens.domain.errors import NotFound
from coinlens.domain.models import DomainModel
from coinlens.services.context import Context
from coinlens.services.paging import decode_cursor, encode_cursor, invalid
from coinlens.storage.tables import metrics

ChainKind = Literal["l1", "l2", "sidechain", "other"]
# Rollups settle on Ethereum; Polygon PoS is a sidechain with its own validator set.
CHAIN_KINDS: dict[str, ChainKind] = {
    "ethereum": "l1",
    "arbitrum": "l2",
    "optimism": "l2",
    "base": "l2",
    "zksync era": "l2",
    "linea": "l2",
    "scroll": "l2",
    "polygon": "sidechain",
    "bsc": "l1",
    "avalanche": "l1",
    "solana": "l1",
    "tron": "l1",
}
# What a chain's gas is paid in: its gwei are 1e-9 of this token, so a gas price in gwei is
# comparable across chains only when they share it (Polygon PoS's 65 gwei are POL, not ETH).
GAS_TOKENS: dict[str, str] = {
    "ethereum": "ETH",
    "arbitrum": "ETH",
    "optimism": "ETH",
    "base": "ETH",
    "zksync era": "ETH",
    "linea": "ETH",
    "scroll": "ETH",
    "polygon": "POL",
    "bsc": "BNB",
    "avalanche": "AVAX",
}
CHAIN_METRICS = (
    "tvl_usd",
    "gas_price_gwei",
    "tx_count",
    "active_addresses",
    "unique_addresses_total",
    "network_utilization",
)
STAKING_METRICS = ("staking_apr", "lst_apr", "lst_tvl_usd", "staked_supply")
STAKING_PREFIXES = ("staking_", "lst_", "staked_")
GROWTH_WINDOWS = (7, 30, 90)
L2_SHARE_METHOD = (
    "L2 share = TVL of the Ethereum rollups (arbitrum, optimism, …) / (TVL of Ethereum + those "
    "rollups), on the newest day every one of them has a value"
)
MAX_LIMIT = 5_000
SOURCE = "coinlens metrics table (DefiLlama, explorer and Etherscan snapshots)"


# --- models ----------------------------------------------------------------------------------


class SeriesInfo(DomainModel):
    """Which series a chain has: metric, unit, source and the date range of its points."""

    metric: str
    unit: str | None = None
    source: str
    first: date
    last: date
    points: int = Field(ge=0)


class ChainSummary(DomainModel):
    """A chain's latest TVL with its growth, its latest gas price and the series we hold."""

    chain: str
    kind: ChainKind
    tvl_usd: float | None = None
    tvl_as_of: date | None = None
    growth: dict[str, float | None] = Field(
        default_factory=dict, description="TVL change over 7d/30d/90d (fraction); null: no data"
    )
    share_of_tvl: float | None = Field(
        default=None, description="This chain's TVL / all listed chains' TVL on tvl_as_of"
    )
    gas_price_gwei: float | None = Field(
        default=None, description="Daily average gas price in gwei of `gas_token`"
    )
    gas_token: str | None = Field(
        default=None,
        description="The token gas is paid in (gwei = 1e-9 of it): ETH on Ethereum and its "
        "rollups, POL on Polygon PoS; gwei of different tokens are not comparable",
    )
    gas_as_of: date | None = None
    series: list[SeriesInfo]


class ChainsPage(DomainModel):
    """Chains by TVL (largest first) with the L2 share, paginated."""

    items: list[ChainSummary]
    total: int = Field(ge=0)
    limit: int = Field(ge=1)
    next_cursor: str | None = None
    l2_share: float | None = Field(default=None, description="See `l2_share_method`")
    l2_share_as_of: date | None = None
    l2_share_method: str = L2_SHARE_METHOD
    source: str = SOURCE
    sources: list[str]
    warnings: list[str] = Field(default_factory=list)


class Point(DomainModel):
    """One daily value."""

    date: date
    value: float


class Series(DomainModel):
    """One metric's daily points (oldest first) with its unit and source."""

    entity: str
    metric: str
    unit: str | None = None
    source: str
    first: date | None = Field(default=None, description="First point on this page")
    last: date | None = Field(default=None, description="Last point on this page")
    points: list[Point]


class ChainDetail(DomainModel):
    """A chain's TVL, gas and activity series in [start, end], paged by date."""

    chain: str
    kind: ChainKind
    start: date | None = None
    end: date | None = None
    series: list[Series]
    missing: list[str] = Field(description="Chain metrics we hold no data for (never invented)")
    next_cursor: str | None = None
    source: str = SOURCE
    warnings: list[str] = Field(default_factory=list)


class StakingItem(DomainModel):
    """A staking or liquid-staking snapshot value."""

    entity: str
    metric: str
    unit: str | None = Field(
        default=None, description="`%` for yields (lst_apr holds the APY: 2.5 means 2.5 %)"
    )
    value: float
    as_of: date
    source: str


class StakingPage(DomainModel):
    """Staking yields and liquid-staking TVL from the snapshots; empty when none were loaded."""

    items: list[StakingItem]
    total: int = Field(ge=0)
    limit: int = Field(ge=1)
    next_cursor: str | None = None
    missing: list[str] = Field(description="Expected staking series with no data")
    source: str = SOURCE
    warnings: list[str] = Field(default_factory=list)


class StablecoinSupply(DomainModel):
    """Total stablecoin supply over time and the latest supply of each tracked stablecoin."""

    total: Series | None = None
    latest: list[StakingItem] = Field(
        description="Newest supply of each stablecoin (USD), largest first; those whose series "
        "ended earlier (e.g. USTC in 2022) after the current ones"
    )
    warnings: list[str] = Field(default_factory=list)


# --- helpers ---------------------------------------------------------------------------------


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"must be between 1 and {MAX_LIMIT}")


def chain_kind(chain: str) -> ChainKind:
    """Whether a chain is Ethereum (l1), an Ethereum rollup (l2), a sidechain or other."""
    return CHAIN_KINDS.get(chain.lower(), "other")


def _value_on_or_before(points: Sequence[tuple[date, float]], day: date) -> float | None:
    """The value of the newest point on or before `day` (points oldest first)."""
    best: float | None = None
    for d, v in points:
        if d > day:
            break
        best = v
    return best


def growth(points: Sequence[tuple[date, float]], days: int) -> float | None:
    """Change of the last value over `days` calendar days; None without a point that old."""
    if not points:
        return None
    last_day, last = points[-1]
    then = _value_on_or_before(points, last_day - timedelta(days=days))
    if then is None or then <= 0:
        return None
    return last / then - 1.0


def _inventory(ctx: Context) -> list[Any]:
    """(entity, metric, unit, source, first, last, count) of every stored series."""
    m = metrics.c
    with ctx.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(
                    m.entity,
                    m.metric,
                    sa.func.max(m.unit).label("unit"),
                    sa.func.max(m.source).label("source"),
                    sa.func.min(m.date).label("first"),
                    sa.func.max(m.date).label("last"),
                    sa.func.count().label("n"),
                )
                .where(m.metric.in_(CHAIN_METRICS))
                .group_by(m.entity, m.metric)
            ).all()
        )


def _points(ctx: Context, metric: str, entities: Iterable[str] | None = None) -> dict[str, Any]:
    """entity → [(date, value)] oldest first for one metric."""
    m = metrics.c
    query = sa.select(m.entity, m.date, m.value).where(m.metric == metric)
    if entities is not None:
        query = query.where(m.entity.in_(list(entities)))
    out: dict[str, list[tuple[date, float]]] = defaultdict(list)
    with ctx.engine.connect() as conn:
        for entity, day, value in conn.execute(query.order_by(m.entity, m.date)):
            out[entity].append((day, float(value)))
    return out


# --- chains ----------------------------------------------------------------------------------


def l2_share_method(tvl: dict[str, Any]) -> str:
    """`L2_SHARE_METHOD` naming the rollups whose TVL we hold (the only ones it counts)."""
    rollups = sorted(c for c in tvl if chain_kind(c) == "l2")
    held = ", ".join(rollups) if rollups else "none held"
    return L2_SHARE_METHOD.replace("arbitrum, optimism, …", f"held here: {held}")


def _l2_share(tvl: dict[str, Any]) -> tuple[float | None, date | None]:
    group = [c for c in tvl if c.lower() == "ethereum" or chain_kind(c) == "l2"]
    if "ethereum" not in group or len(group) < 2:
        return None, None
    common = min(tvl[c][-1][0] for c in group)
    values = {c: _value_on_or_before(tvl[c], common) for c in group}
    if any(v is None for v in values.values()):
        return None, None
    total = sum(v for v in values.values() if v is not None)
    l2 = sum(v for c, v in values.items() if v is not None and chain_kind(c) == "l2")
    return (l2 / total if total > 0 else None), common


def _summaries(ctx: Context) -> tuple[list[ChainSummary], dict[str, Any]]:
    inventory = _inventory(ctx)
    tvl = _points(ctx, "tvl_usd")
    gas = _points(ctx, "gas_price_gwei")
    chains = sorted({r.entity for r in inventory})
    latest_day = max((p[-1][0] for p in tvl.values()), default=None)
    total_tvl = sum(
        v
        for p in tvl.values()
        if latest_day is not None and (v := _value_on_or_before(p, latest_day)) is not None
    )
    items = []
    for chain in chains:
        t, g = tvl.get(chain, []), gas.get(chain, [])
        share = None
        if t and latest_day is not None and total_tvl > 0 and t[-1][0] == latest_day:
            share = t[-1][1] / total_tvl
        items.append(
            ChainSummary(
                chain=chain,
                kind=chain_kind(chain),
                tvl_usd=t[-1][1] if t else None,
                tvl_as_of=t[-1][0] if t else None,
                growth={f"{n}d": growth(t, n) for n in GROWTH_WINDOWS},
                share_of_tvl=share,
                gas_price_gwei=g[-1][1] if g else None,
                gas_token=GAS_TOKENS.get(chain.lower()) if g else None,
                gas_as_of=g[-1][0] if g else None,
                series=[
                    SeriesInfo(
                        metric=r.metric,
                        unit=r.unit,
                        source=r.source,
                        first=r.first,
                        last=r.last,
                        points=int(r.n),
                    )
                    for r in inventory
                    if r.entity == chain
                ],
            )
        )
    items.sort(key=lambda s: (-(s.tvl_usd or -1.0), s.chain))
    return items, tvl


def list_chains(ctx: Context, *, cursor: str | None = None, limit: int = 50) -> ChainsPage:
    """Chains by latest TVL (largest first), their 7d/30d/90d growth, gas and the L2 share."""
    _check_limit(limit)
    items, tvl = _summaries(ctx)
    offset = 0
    if cursor:
        after = decode_cursor("chains", cursor).get("v")
        if not isinstance(after, int) or after < 0:
            raise invalid("cursor", "not a cursor for this listing")
        offset = after
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    share, share_day = _l2_share(tvl)
    sources = sorted({s.source for item in items for s in item.series})
    warnings = [] if items else ["no chain metrics loaded: run `coinlens load` or `coinlens sync`"]
    return ChainsPage(
        items=page,
        total=len(items),
        limit=limit,
        next_cursor=encode_cursor("chains", v=offset + limit) if more else None,
        l2_share=share,
        l2_share_as_of=share_day,
        l2_share_method=l2_share_method(tvl),
        sources=sources,
        warnings=warnings,
    )


def _series_rows(
    ctx: Context, entity: str, metric_names: Sequence[str], window: tuple[date | None, date | None]
) -> list[Any]:
    m = metrics.c
    where = [sa.func.lower(m.entity) == entity.lower(), m.metric.in_(list(metric_names))]
    if window[0] is not None:
        where.append(m.date >= window[0])
    if window[1] is not None:
        where.append(m.date <= window[1])
    with ctx.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(m.entity, m.metric, m.date, m.value, m.unit, m.source)
                .where(*where)
                .order_by(m.date, m.metric)
            ).all()
        )


def _group(rows: Sequence[Any]) -> list[Series]:
    by: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by[r.metric].append(r)
    return [
        Series(
            entity=group[0].entity,
            metric=name,
            unit=group[0].unit,
            source=group[0].source,
            first=group[0].date,
            last=group[-1].date,
            points=[Point(date=r.date, value=float(r.value)) for r in group],
        )
        for name, group in sorted(by.items())
    ]


def get_chain(
    ctx: Context,
    chain: str,
    *,
    metric: str | None = None,
    window: tuple[date | None, date | None] = (None, None),
    cursor: str | None = None,
    limit: int = 1_000,
) -> ChainDetail:
    """TVL, gas and activity series of one chain in [start, end], `limit` dates per page."""
    _check_limit(limit)
    start, end = window
    if start is not None and end is not None and start > end:
        raise invalid("start", "start must not be after end")
    if metric is not None and metric not in CHAIN_METRICS:
        raise invalid("metric", f"choose from {', '.join(CHAIN_METRICS)}")
    held = {r.metric for r in _inventory(ctx) if r.entity.lower() == chain.strip().lower()}
    if not held:
        raise NotFound(f"no chain {chain!r} in the metrics table")
    wanted = [metric] if metric else [n for n in CHAIN_METRICS if n in held]
    lo = start
    if cursor:
        after = decode_cursor("chain", cursor).get("v")
        if not isinstance(after, str):
            raise invalid("cursor", "not a cursor for this listing")
        lo = max(lo or date.min, date.fromisoformat(after) + timedelta(days=1))
    rows = _series_rows(ctx, chain.strip(), wanted, (lo, end))
    days = sorted({r.date for r in rows})
    next_cursor = None
    if len(days) > limit:
        cut = days[limit - 1]
        rows = [r for r in rows if r.date <= cut]
        next_cursor = encode_cursor("chain", v=cut.isoformat())
    name = rows[0].entity if rows else chain.strip().lower()
    return ChainDetail(
        chain=name,
        kind=chain_kind(name),
        start=start,
        end=end,
        series=_group(rows),
        missing=[n for n in CHAIN_METRICS if n not in held],
        next_cursor=next_cursor,
        warnings=[] if rows else ["no points in the requested range"],
    )


# --- staking and stablecoins -----------------------------------------------------------------


def _is_staking(metric: str) -> bool:
    return metric in STAKING_METRICS or metric.startswith(STAKING_PREFIXES)


def get_staking(ctx: Context, *, cursor: str | None = None, limit: int = 100) -> StakingPage:
    """Latest staking yields and liquid-staking TVL per entity; missing series are listed."""
    _check_limit(limit)
    m = metrics.c
    newest = (
        sa.select(m.entity, m.metric, sa.func.max(m.date).label("day"))
        .group_by(m.entity, m.metric)
        .subquery()
    )
    query = sa.select(m.entity, m.metric, m.unit, m.value, m.date, m.source).join(
        newest,
        sa.and_(m.entity == newest.c.entity, m.metric == newest.c.metric, m.date == newest.c.day),
    )
    with ctx.engine.connect() as conn:
        rows = [
            r for r in conn.execute(query.order_by(m.metric, m.entity)) if _is_staking(r.metric)
        ]
    offset = 0
    if cursor:
        after = decode_cursor("staking", cursor).get("v")
        if not isinstance(after, int) or after < 0:
            raise invalid("cursor", "not a cursor for this listing")
        offset = after
    held = {r.metric for r in rows}
    missing = [n for n in STAKING_METRICS if n not in held]
    page = rows[offset : offset + limit]
    return StakingPage(
        items=[
            StakingItem(
                entity=r.entity,
                metric=r.metric,
                unit=r.unit,
                value=float(r.value),
                as_of=r.date,
                source=r.source,
            )
            for r in page
        ],
        total=len(rows),
        limit=limit,
        next_cursor=encode_cursor("staking", v=offset + limit)
        if offset + limit < len(rows)
        else None,
        missing=missing,
        warnings=[]
        if rows
        else ["no staking or liquid-staking snapshots in the database; nothing is estimated"],
    )


def stablecoin_supply(ctx: Context) -> StablecoinSupply:
    """The total stablecoin supply series and each tracked stablecoin's newest supply."""
    m = metrics.c
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.entity, m.metric, m.date, m.value, m.unit, m.source)
            .where(m.metric == "supply_usd")
            .order_by(m.entity, m.date)
        ).all()
    by: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by[r.entity].append(r)
    total = by.pop("all_stablecoins", [])
    latest = [
        StakingItem(
            entity=e,
            metric="supply_usd",
            unit=g[-1].unit,
            value=float(g[-1].value),
            as_of=g[-1].date,
            source=g[-1].source,
        )
        for e, g in by.items()
    ]
    newest = max((i.as_of for i in latest), default=None)
    latest.sort(key=lambda i: (i.as_of != newest, -i.value))  # discontinued ones (USTC) last
    return StablecoinSupply(
        total=_group(total)[0] if total else None,
        latest=latest,
        warnings=[] if rows else ["no stablecoin supply snapshots in the database"],
    )


def chain_series(ctx: Context, metric: str, entities: Sequence[str] | None = None) -> list[Series]:
    """One metric's full daily series for several chains (for charts), oldest first."""
    if metric not in CHAIN_METRICS:
        raise invalid("metric", f"choose from {', '.join(CHAIN_METRICS)}")
    m = metrics.c
    query = sa.select(m.entity, m.metric, m.date, m.value, m.unit, m.source).where(
        m.metric == metric
    )
    if entities is not None:
        query = query.where(m.entity.in_(list(entities)))
    with ctx.engine.connect() as conn:
        rows = conn.execute(query.order_by(m.entity, m.date)).all()
    by: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by[r.entity].append(r)
    return [_group(group)[0] for _, group in sorted(by.items())]
