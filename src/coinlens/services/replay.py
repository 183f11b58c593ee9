"""Replay: feed stored history through the live path, deterministically and offline.

`replay(source, target, cfg, recompute)` copies the source database's reference data
(tokens, markets with their ids) and every candle, market-cap snapshot and metric BEFORE
`cfg.start` into a fresh target, then walks forward one UTC day at a time exactly as live
ingest would: the day's hourly candles close (written with `repo.write_candles_many`, a tick
published per close), then its daily candles close (written), then `recompute(target, now)`
runs the pipeline (analytics → grades → forecasts → alerts evaluated at the simulated
`now`) and the day's signal flips are published on the event stream.

Determinism: everything is keyed by epoch seconds/days in UTC, rows are processed in a
fixed order (time, timeframe, market id), and the pipeline is told the simulated time, so
two replays of the same source store the same rows whatever the host timezone and
whichever executor (one process, or Celery workers) ran the recompute. `canonical_dump`
serialises the stored outputs for byte-for-byte comparison (wall-clock stamps excluded).

`speed` is simulated seconds per real second (3600: an hour a second, a day in 24 s);
0 replays as fast as the pipeline allows.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection

from coinlens.domain.errors import UserInputError
from coinlens.services.analytics_queries import to_day
from coinlens.services.context import Context
from coinlens.services.ticks import one_per_token, publish_market_tick, tick_markets
from coinlens.storage import repo
from coinlens.storage.tables import candles, market_caps, markets, metrics, tokens
from coinlens.storage.tables_analytics import backtests, signal_events, token_analytics

log = structlog.get_logger(__name__)

DAY = 86_400
HOUR = 3_600
Recompute = Callable[[Context, datetime], object]
_CHUNK = 5_000


@dataclass(frozen=True)
class ReplayConfig:
    """What to replay: the first and last UTC day (inclusive) and the speed."""

    start: date
    end: date | None = None
    speed: float = 0.0

    def check(self) -> None:
        """Refuse a negative speed or an end before the start."""
        if self.speed < 0 or not math.isfinite(self.speed):
            raise UserInputError("speed must be 0 (as fast as possible) or a positive factor")
        if self.end is not None and self.end < self.start:
            raise UserInputError("the replay's end is before its start")


@dataclass
class ReplayReport:
    """What a replay did."""

    days: int = 0
    candles: int = 0
    ticks: int = 0
    flips: int = 0
    seconds: float = 0.0


# --- copying the state before the start ----------------------------------------------------


def _copy(src: Connection, dst: Connection, table: sa.Table, where: Any = None) -> int:
    q = sa.select(table).order_by(*table.primary_key.columns)
    if where is not None:
        q = q.where(where)
    batch: list[dict[str, Any]] = []
    n = 0
    for row in src.execute(q):
        batch.append(dict(row._mapping))
        if len(batch) >= _CHUNK:
            dst.execute(table.insert(), batch)
            n, batch = n + len(batch), []
    if batch:
        dst.execute(table.insert(), batch)
        n += len(batch)
    return n


def prepare_target(source: Context, target: Context, start: date) -> int:
    """Copy reference data and everything before `start` into an empty target; candles copied."""
    with target.engine.connect() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(tokens)).scalar():
            raise UserInputError("the replay target must be an empty database")
    cut = to_day(start) * DAY
    with source.engine.connect() as src, target.engine.begin() as dst:
        _copy(src, dst, tokens)
        _copy(src, dst, markets)
        n = _copy(src, dst, candles, candles.c.open_time < cut)
        _copy(src, dst, market_caps, market_caps.c.snapshot_date < start)
        _copy(src, dst, metrics, metrics.c.date < start)
        repo.bump(dst, repo.CANDLES_VERSION)
        repo.refresh_token_spans(dst)
    return n


# --- the walk --------------------------------------------------------------------------------


def _closing(src: Connection, timeframe: str, first: int, last: int) -> list[Any]:
    """Candles of `timeframe` opening in [first, last), in (time, market) order."""
    return list(
        src.execute(
            sa.select(candles)
            .where(
                candles.c.timeframe == timeframe,
                candles.c.open_time >= first,
                candles.c.open_time < last,
            )
            .order_by(candles.c.open_time, candles.c.market_id)
        )
    )


def _write(dst: Connection, rows: Iterable[Any], timeframe: str) -> int:
    by_market: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        rec = dict(r._mapping)
        by_market.setdefault(int(rec.pop("market_id")), []).append(rec)
    return repo.write_candles_many(dst, timeframe, by_market).inserted


def _publish_ticks(target: Context, hourly: list[Any], daily: list[Any]) -> int:
    """A tick per closing candle of each token's tick market, in time order: its hourly
    candles where it has some that day (primary market first), else its daily close."""
    known = tick_markets(target)
    hours = {int(r.market_id) for r in hourly}
    by_hour = one_per_token(known, lambda m: m.market_id in hours)
    days = {int(r.market_id) for r in daily}
    by_day = one_per_token(
        (m for m in known if m.token not in by_hour), lambda m: m.market_id in days
    )
    chosen = {m.market_id: m for m in [*by_hour.values(), *by_day.values()]}
    sent = 0
    for r in sorted([*hourly, *daily], key=lambda r: (int(r.open_time), int(r.market_id))):
        m = chosen.get(int(r.market_id))
        if m is None or (m.token in by_hour and r.timeframe != "1h"):
            continue
        publish_market_tick(target, m, float(r.close), volume=float(r.volume), source="replay")
        sent += 1
    return sent


def _flips_on(target: Context, day: int) -> int:
    """Signal changes stored for `day` (the pipeline's analytics step published them)."""
    with target.engine.connect() as conn:
        q = sa.select(sa.func.count()).select_from(signal_events).where(signal_events.c.day == day)
        return int(conn.execute(q).scalar_one())


def _stored_days(source: Context) -> tuple[int, int]:
    """The first and last epoch day with a daily candle in `source`."""
    with source.engine.connect() as conn:
        oldest, newest = conn.execute(
            sa.select(sa.func.min(candles.c.open_time), sa.func.max(candles.c.open_time)).where(
                candles.c.timeframe == "1d"
            )
        ).one()
    if newest is None:
        raise UserInputError("the replay source has no daily candles")
    return int(oldest) // DAY, int(newest) // DAY


def replay_days(source: Context, cfg: ReplayConfig) -> range:
    """The epoch days a replay of `source` walks; UserInputError when there is nothing to
    replay. Reads only: call it before emptying a target database."""
    cfg.check()
    oldest, newest = _stored_days(source)
    first = to_day(cfg.start)
    if first > newest:
        raise UserInputError(
            f"nothing to replay from {cfg.start}: the stored daily candles end on {_d(newest)}"
        )
    if cfg.end is not None and to_day(cfg.end) < oldest:
        raise UserInputError(
            f"nothing to replay up to {cfg.end}: the stored daily candles begin on {_d(oldest)}"
        )
    last = min(newest, to_day(cfg.end) if cfg.end else newest)
    return range(first, last + 1)


def _one_day(source: Context, target: Context, day: int, report: ReplayReport) -> None:
    first, last = day * DAY, (day + 1) * DAY
    with source.engine.connect() as src:
        hourly = _closing(src, "1h", first, last)
        daily = _closing(src, "1d", first, last)
        caps = list(
            src.execute(sa.select(market_caps).where(market_caps.c.snapshot_date == _d(day)))
        )
        mets = list(src.execute(sa.select(metrics).where(metrics.c.date == _d(day))))
    with target.engine.begin() as dst:
        report.candles += _write(dst, hourly, "1h")
        report.candles += _write(dst, daily, "1d")
        if caps:
            repo.write_market_caps(dst, [dict(r._mapping) for r in caps])
        if mets:
            repo.write_metrics(dst, [dict(r._mapping) for r in mets])
        repo.refresh_token_spans(dst)
    report.ticks += _publish_ticks(target, hourly, daily)


def _d(day: int) -> date:
    return datetime.fromtimestamp(day * DAY, tz=UTC).date()


def replay(
    source: Context,
    target: Context,
    cfg: ReplayConfig,
    recompute: Recompute,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_day: Callable[[int, ReplayReport], None] | None = None,
) -> ReplayReport:
    """Prepare the target, then feed each day's candles through the live path (see module)."""
    days = replay_days(source, cfg)  # before the target is touched
    started, report = time.perf_counter(), ReplayReport()
    prepare_target(source, target, cfg.start)
    for day in days:
        tick = time.perf_counter()
        _one_day(source, target, day, report)
        recompute(target, datetime.fromtimestamp((day + 1) * DAY, tz=UTC))
        report.flips += _flips_on(target, day)
        report.days += 1
        log.info("replay.day", day=_d(day).isoformat(), candles=report.candles)
        if on_day is not None:
            on_day(day, report)
        if cfg.speed > 0:
            sleep(max(0.0, DAY / cfg.speed - (time.perf_counter() - tick)))
    report.seconds = time.perf_counter() - started
    return report


# --- canonical dump --------------------------------------------------------------------------

WALL_CLOCK = frozenset({"computed_at", "trained_at", "started_at", "finished_at"})


def _canon(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        import hashlib

        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canon(v) for v in value]
    return value


def dump_tables() -> list[sa.Table]:
    """The tables a replay or recompute writes (inputs and every stored output)."""
    from coinlens.storage.tables_forecasts import forecasts, models
    from coinlens.storage.tables_grades import grade_days, grades

    out = [tokens, markets, candles, token_analytics, signal_events, backtests]
    return [*out, grades, grade_days, models, forecasts]


def canonical_dump(ctx: Context, tables: Iterable[sa.Table] | None = None) -> bytes:
    """Stored rows as sorted JSON lines (wall-clock stamps left out), for exact comparison."""
    lines: list[str] = []
    with ctx.engine.connect() as conn:
        for table in tables or dump_tables():
            lines.append(f"## {table.name}")
            cols = [c for c in table.columns if c.name not in WALL_CLOCK]
            q = sa.select(*cols).order_by(*table.primary_key.columns)
            for row in conn.execute(q):
                record = {k: _canon(v) for k, v in row._mapping.items()}
                lines.append(json.dumps(record, sort_keys=True, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()
