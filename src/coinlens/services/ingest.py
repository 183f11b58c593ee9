"""Sync candles, market caps and ecosystem metrics from the connectors into storage.

`sync_market` backfills (empty store) or continues (from the newest stored candle) one
market, refetching from the oldest stored gap so holes are repaired on the next run. Fetched
candles pass the importer's validation rules (connectors/files.py: sane OHLC, on the UTC grid,
identical duplicates merged, conflicting ones rejected); rejected rows go to the quarantine
table under an `import_runs` row whose source is the connector. Writes are idempotent: a rerun
counts every candle `unchanged`. The in-progress candle never reaches storage.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coinlens.connectors.coingecko import CoinGeckoConnector
from coinlens.connectors.defillama import DefiLlamaConnector
from coinlens.connectors.etherscan import EtherscanConnector
from coinlens.connectors.exchanges import ExchangeConnector
from coinlens.connectors.files import Gap, check_candles, check_grid, dedupe, find_gaps, iso
from coinlens.connectors.layouts import FIELDS, TIMEFRAME_SECONDS, token_of, venue_pair
from coinlens.domain.errors import CoinlensError, NotFound, TemporaryError, UserInputError
from coinlens.domain.live import CandleBatch, ExchangeVolume, MetricPoint
from coinlens.domain.models import Timeframe
from coinlens.services.context import Context
from coinlens.settings import Settings
from coinlens.storage import repo
from coinlens.storage.tables import candles, tokens

DEFAULT_BACKFILL_START = datetime(2017, 1, 1, tzinfo=UTC)
"""Where a first sync starts when --since is not given (before most listings we track)."""
DEFAULT_CHAINS: tuple[str, ...] = ("Ethereum", "Arbitrum", "Optimism", "Polygon", "BSC")
VOLUME_QUOTES: tuple[str, ...] = ("USDT", "USD", "USDC")


# --- connector factories (settings → configured connectors) ----------------------------------


def configured_exchanges(settings: Settings) -> list[str]:
    """The exchanges COINLENS_EXCHANGES names, lower-case."""
    return [e.strip().lower() for e in settings.exchanges.split(",") if e.strip()]


def make_exchange(settings: Settings, name: str) -> ExchangeConnector:
    """An exchange connector configured from settings (local base URL if set)."""
    return ExchangeConnector(name, api_base=settings.exchange_api_base)


def make_coingecko(settings: Settings) -> CoinGeckoConnector:
    """A CoinGecko connector configured from settings."""
    return CoinGeckoConnector(settings.coingecko_url, api_key=settings.coingecko_api_key)


def make_defillama(settings: Settings) -> DefiLlamaConnector:
    """A DefiLlama connector configured from settings."""
    return DefiLlamaConnector(settings.defillama_url, settings.defillama_stablecoins_url)


def make_etherscan(settings: Settings) -> EtherscanConnector:
    """An Etherscan connector configured from settings."""
    return EtherscanConnector(settings.etherscan_url, api_key=settings.etherscan_api_key)


# --- candles -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarketIdentity:
    """The stored identity of a venue market (matches the `markets` table)."""

    market_key: str
    token: str
    pair: str
    quote: str
    instrument: str
    contract_multiplier: float


@dataclass(slots=True)
class SyncReport:
    """What one `sync_market` run did; fetched = written + unchanged + merged + rejected."""

    exchange: str
    symbol: str
    market_key: str
    timeframe: str
    run_id: int
    status: str = "ok"
    mode: str = "backfill"
    since: datetime | None = None
    fetched: int = 0
    counts: repo.WriteCounts = field(default_factory=repo.WriteCounts)
    merged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    in_progress_dropped: int = 0
    requests: int = 0
    gaps_before: int = 0
    gaps: list[Gap] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def identify(conn: ExchangeConnector, symbol: str) -> MarketIdentity:
    """The market key and token of a ccxt symbol (swap → perp; 1000PEPE → PEPE × 1000)."""
    market = conn.market(symbol)
    base, quote = str(market["base"]).upper(), str(market["quote"]).upper()
    instrument = "spot" if market.get("spot") else "perp" if market.get("swap") else ""
    if not instrument:
        raise UserInputError(f"{conn.name} {symbol}: only spot and perpetual markets are synced")
    token, multiplier = token_of(base)
    pair = venue_pair(conn.name, base, quote)
    return MarketIdentity(
        f"{conn.name}:{instrument}:{pair}", token, pair, quote, instrument, multiplier
    )


def _stored_times(db: Connection, market_id: int | None, timeframe: str) -> np.ndarray:
    if market_id is None:
        return np.empty(0, dtype=np.int64)
    q = (
        sa.select(candles.c.open_time)
        .where(candles.c.market_id == market_id, candles.c.timeframe == timeframe)
        .order_by(candles.c.open_time)
    )
    return np.fromiter((int(t) for t in db.execute(q).scalars()), dtype=np.int64)


def _start(
    times: np.ndarray, key: str, step: int, since: datetime | None
) -> tuple[datetime, str, int]:
    """Where to start fetching: --since, else the oldest gap, else the newest stored candle."""
    gaps = find_gaps(key, times.astype(float), step) if len(times) > 1 else []
    if since is not None:
        return since, "since", len(gaps)
    if not len(times):
        return DEFAULT_BACKFILL_START, "backfill", 0
    start = int(gaps[0].first_missing) if gaps else int(times[-1])
    return datetime.fromtimestamp(start, UTC), "repair" if gaps else "incremental", len(gaps)


def sync_market(
    ctx: Context,
    exchange: str,
    symbol: str,
    timeframe: Timeframe,
    since: datetime | None = None,
    *,
    connector: ExchangeConnector | None = None,
) -> SyncReport:
    """Fetch closed candles of one market and upsert them idempotently; report gaps left."""
    conn = connector or make_exchange(ctx.settings, exchange)
    try:
        ident = identify(conn, symbol)
        step = TIMEFRAME_SECONDS[timeframe]
        with ctx.engine.begin() as db:
            run_id = repo.start_run(db, conn.source, "sync")
            market_id = repo.market_ids(db, [ident.market_key]).get(ident.market_key)
            times = _stored_times(db, market_id, timeframe)
        start, mode, gaps_before = _start(times, ident.market_key, step, since)
        report = SyncReport(
            conn.name, symbol, ident.market_key, timeframe, run_id, mode=mode, since=start
        )
        report.gaps_before = gaps_before
        try:
            batch = conn.fetch_candles(symbol, timeframe, start)
            with ctx.engine.begin() as db:
                _write(db, report, ident, batch, conn.source)
        except BaseException as exc:
            _fail(ctx, run_id, exc)
            raise
        return report
    finally:
        if connector is None:
            conn.close()


def _fail(ctx: Context, run_id: int, exc: BaseException) -> None:
    detail = exc.detail if isinstance(exc, CoinlensError) else f"{type(exc).__name__}: {exc}"
    with ctx.engine.begin() as db:
        repo.finish_run(db, run_id, "failed", message=detail[:4000])


@dataclass(slots=True)
class _Validated:
    rows: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    merged: int


def validate_batch(batch: CandleBatch, where: str) -> _Validated:
    """Apply the importer's candle rules to a fetched batch; row numbers are fetch order."""
    n = len(batch.candles)
    times = np.array([c.open_time.timestamp() for c in batch.candles], dtype=float)
    values = {f: np.full(n, np.nan) for f in FIELDS}
    for i, c in enumerate(batch.candles):
        for f in FIELDS[:5]:
            values[f][i] = getattr(c, f)
    problems: dict[int, list[str]] = {}
    for f in FIELDS[:5]:
        for bad in np.flatnonzero(~np.isfinite(values[f])):
            problems.setdefault(int(bad), []).append(f"{f} is missing or not finite")
    for source in (check_candles(values), check_grid(times, batch.timeframe)):
        for pos, reasons in source.items():
            problems.setdefault(pos, []).extend(reasons)
    good = np.ones(n, dtype=bool)
    good[list(problems)] = False
    lines = np.arange(1, n + 1, dtype=np.int64)
    dd = dedupe(np.full(n, "m", dtype=object), times, values, lines, good)
    for pos, reasons in dd.problems.items():
        problems.setdefault(pos, []).extend(reasons)
    rejected = [
        {"file": where[-512:], "line": pos + 1, "reason": "; ".join(r), "raw": _raw(batch, pos)}
        for pos, r in sorted(problems.items())
    ]
    rejected += [
        {"file": where[-512:], "line": None, "reason": r.reason, "raw": r.raw}
        for r in batch.rejected
    ]
    keep = np.flatnonzero(dd.keep)
    keep = keep[np.argsort(times[keep], kind="stable")]
    rows = [_record(batch, int(i)) for i in keep]
    return _Validated(rows, rejected, len(dd.merged_lines))


def _record(batch: CandleBatch, i: int) -> dict[str, Any]:
    c = batch.candles[i]
    return {
        "open_time": int(c.open_time.timestamp()),
        "open": c.open,
        "high": c.high,
        "low": c.low,
        "close": c.close,
        "volume": c.volume,
        "quote_volume": None,
        "trades": None,
    }


def _raw(batch: CandleBatch, i: int) -> str:
    c = batch.candles[i]
    values = [iso(c.open_time.timestamp()), c.open, c.high, c.low, c.close, c.volume]
    return json.dumps([v if not isinstance(v, float) or math.isfinite(v) else None for v in values])


def _write(
    db: Connection, report: SyncReport, ident: MarketIdentity, batch: CandleBatch, source: str
) -> None:
    where = f"{source}:{report.symbol}:{report.timeframe}"
    checked = validate_batch(batch, where)
    market_id = _ensure_market(db, ident, report.exchange, source)
    report.counts = repo.write_candles(db, market_id, report.timeframe, checked.rows)
    if checked.rows and report.timeframe == "1d":
        repo.refresh_token_spans(db)
    repo.quarantine_rows(db, report.run_id, checked.rejected)
    report.fetched = len(batch.candles) + len(batch.rejected)
    report.merged, report.rejected = checked.merged, checked.rejected
    report.in_progress_dropped, report.requests = batch.in_progress_dropped, batch.requests
    report.warnings.extend(batch.warnings)
    times = _stored_times(db, market_id, report.timeframe)
    report.gaps = find_gaps(
        ident.market_key, times.astype(float), TIMEFRAME_SECONDS[report.timeframe]
    )
    report.status = "partial" if checked.rejected else "ok"
    message = f"{report.mode} from {report.since:%Y-%m-%dT%H:%MZ}; {len(report.gaps)} gap(s)"
    repo.finish_run(
        db,
        report.run_id,
        report.status,
        rows_total=report.fetched,
        rows_inserted=report.counts.inserted,
        rows_updated=report.counts.updated,
        rows_unchanged=report.counts.unchanged,
        rows_rejected=len(checked.rejected),
        message=message,
    )


def _ensure_market(db: Connection, ident: MarketIdentity, exchange: str, source: str) -> int:
    known = repo.market_ids(db, [ident.market_key])
    if ident.market_key in known:
        return known[ident.market_key]
    token_id = repo.token_ids(db, [ident.token]).get(ident.token)
    if token_id is None:
        row = {"symbol": ident.token, "name": ident.token, "categories": [], "is_stablecoin": False}
        token_id = repo.upsert_tokens(db, [row])[ident.token]
    market = {
        "market_key": ident.market_key,
        "token_id": token_id,
        "exchange": exchange,
        "pair": ident.pair,
        "quote": ident.quote,
        "instrument": ident.instrument,
        "contract_multiplier": ident.contract_multiplier,
        "source": source,
    }
    return repo.upsert_markets(db, [market])[ident.market_key]


# --- market caps, supply and ecosystem metrics --------------------------------------------------


@dataclass(slots=True)
class MetadataReport:
    """What `sync_metadata` did: snapshots fetched, written for known tokens, and skipped."""

    fetched: int = 0
    written: int = 0
    supply_updated: int = 0
    unmatched: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    source: str = "coingecko"


def sync_metadata(
    ctx: Context,
    ids: Sequence[str] | None = None,
    *,
    pages: int = 1,
    connector: CoinGeckoConnector | None = None,
) -> MetadataReport:
    """Market caps, ranks and supply of known tokens (matched by coingecko_id, then symbol)."""
    cg = connector or make_coingecko(ctx.settings)
    try:
        snaps = cg.fetch_markets(ids, pages=pages)
    finally:
        if connector is None:
            cg.close()
    report = MetadataReport(fetched=len(snaps), rejected=list(cg.rejected), source=cg.name)
    with ctx.engine.begin() as db:
        known = db.execute(
            sa.select(tokens.c.id, tokens.c.symbol, tokens.c.name, tokens.c.coingecko_id)
        ).all()
        by_cg = {r.coingecko_id: r for r in known if r.coingecko_id}
        by_symbol = {r.symbol: r for r in known}
        caps: list[dict[str, Any]] = []
        supply: list[dict[str, Any]] = []
        for s in snaps:
            token = by_cg.get(s.coingecko_id) or by_symbol.get(s.symbol)
            if token is None:
                report.unmatched.append(s.coingecko_id)
                continue
            caps.append(
                {
                    "token_id": token.id,
                    "snapshot_date": s.snapshot_date,
                    "source": cg.name,
                    "rank": s.rank,
                    "market_cap": s.market_cap,
                    "price": s.price,
                    "circulating_supply": s.circulating_supply,
                    "volume_24h": s.volume_24h,
                }
            )
            supply.append(
                {
                    "symbol": token.symbol,
                    "name": token.name,
                    "coingecko_id": s.coingecko_id,
                    "circulating_supply": s.circulating_supply,
                    "total_supply": s.total_supply,
                    "max_supply": s.max_supply,
                }
            )
        repo.write_market_caps(db, caps)
        repo.upsert_tokens(db, supply)
    report.written, report.supply_updated = len(caps), len(supply)
    return report


@dataclass(slots=True)
class EcosystemReport:
    """Metric points written per source, and the sources that failed (others still count)."""

    written: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def sync_ecosystem(
    ctx: Context,
    *,
    chains: Sequence[str] = DEFAULT_CHAINS,
    tx_days: int = 30,
    llama: DefiLlamaConnector | None = None,
    explorer: EtherscanConnector | None = None,
) -> EcosystemReport:
    """Chain TVL and stablecoin supply (DefiLlama), gas and daily tx count (Etherscan)."""
    report = EcosystemReport()
    dl = llama or make_defillama(ctx.settings)
    ex = explorer or make_etherscan(ctx.settings)
    end = ex.today()
    jobs: dict[str, Callable[[], list[MetricPoint]]] = {
        "defillama.tvl": lambda: dl.fetch_chain_tvl(chains),
        "defillama.stablecoins": dl.fetch_stablecoins,
        "etherscan.gas": ex.fetch_gas,
        "etherscan.tx": lambda: ex.fetch_daily_tx(end - timedelta(days=tx_days), end),
    }
    try:
        for name, job in jobs.items():
            try:
                points = job()
            except CoinlensError as exc:  # one failing source degrades, the others still land
                report.failed[name] = exc.detail
                continue
            _write_metrics(ctx, points)
            report.written[name] = len(points)
    finally:
        if llama is None:
            dl.close()
        if explorer is None:
            ex.close()
    return report


def _write_metrics(ctx: Context, points: Sequence[MetricPoint]) -> None:
    rows = [p.model_dump() for p in points]
    with ctx.engine.begin() as db:
        repo.write_metrics(db, rows)


# --- per-exchange volume (token page) ----------------------------------------------------------


@dataclass(slots=True)
class VolumeReport:
    """24 h volume of a token per venue market, with the venues that could not answer."""

    token: str
    volumes: list[ExchangeVolume] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    as_of: date | None = None


def exchange_volumes(
    ctx: Context, token: str, *, connectors: Sequence[ExchangeConnector] | None = None
) -> VolumeReport:
    """The token's 24 h volume on each configured exchange (USDT, USD and USDC markets)."""
    conns = (
        list(connectors)
        if connectors is not None
        else [make_exchange(ctx.settings, n) for n in configured_exchanges(ctx.settings)]
    )
    report = VolumeReport(token=token.upper())
    try:
        for conn in conns:
            for quote in VOLUME_QUOTES:
                symbol = f"{report.token}/{quote}"
                try:
                    report.volumes.append(conn.volume_24h(symbol))
                except NotFound:
                    continue
                except (TemporaryError, CoinlensError) as exc:
                    report.unavailable[f"{conn.name} {symbol}"] = exc.detail
    finally:
        if connectors is None:
            for conn in conns:
                conn.close()
    if report.volumes:
        report.as_of = max(v.as_of for v in report.volumes).date()
    return report
