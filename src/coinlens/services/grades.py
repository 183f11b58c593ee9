"""Trader and Investor Grades: the daily run over the stored panel, and the queries.

The method lives in `analytics.grades`; its point-in-time inputs from storage (caps, chain
metrics) in `services.grade_inputs`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, cast

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.engine import Connection, Row

from coinlens.analytics import grades as method
from coinlens.domain.errors import DataUnavailable, Problem, ValidationFailed
from coinlens.domain.grades import (
    Band,
    GradeBreakdown,
    GradeKind,
    GradePoint,
    GradesPage,
    GradeTrackRecord,
    LeaderboardEntry,
    SubGrade,
    TokenGrades,
)
from coinlens.services import track_records
from coinlens.services.analytics_queries import to_date, to_day
from coinlens.services.catalog import unknown_token
from coinlens.services.context import Context
from coinlens.services.grade_inputs import grade_inputs
from coinlens.storage import grades_repo
from coinlens.storage.panel import Panel, read_daily_panel
from coinlens.storage.tables import tokens
from coinlens.storage.tables_grades import grade_days, grades

F64 = NDArray[np.float64]

MODEL = "grades-v1"
METHOD = f"{MODEL}-{method.method_id(method.GradeConfig())}"  # what a track record must match
EVALUATION_KIND = "grades"
SOURCE = "coinlens grades (Binance/Coinbase candles, CMC snapshots, DefiLlama/Etherscan)"
WRITE_BATCH = 50_000  # grade rows per write: a first run of 10,000 tokens writes millions


@dataclass(frozen=True)
class GradeRun:
    """Grades for the whole panel, with the panel they were computed on."""

    panel: Panel
    grades: method.Grades


def day_range(n_days: int, part: int, parts: int) -> tuple[int, int]:
    """Columns [lo, hi) of `part` of `parts` contiguous, near-equal ranges of days."""
    if not 0 <= part < parts:
        raise ValueError(f"part {part} is not in 0..{parts - 1}")
    return n_days * part // parts, n_days * (part + 1) // parts


def compute_days(
    ctx: Context, panel: Panel, lo: int, hi: int, cfg: method.GradeConfig | None = None
) -> GradeRun:
    """Grades of the panel's days [lo, hi), from the panel up to day hi only.

    Every grade of day t depends on data up to t (tested), so this equals those columns of
    the whole computation bit for bit; workers can split the days between them.
    """
    sub = panel.columns(0, hi)
    grades = method.compute_grades(grade_inputs(ctx, sub), cfg, first_day=lo)
    return GradeRun(panel.columns(lo, hi), grades)


def compute_all(ctx: Context, cfg: method.GradeConfig | None = None) -> GradeRun:
    """Grades of every token on every day of the stored daily panel."""
    panel = read_daily_panel(ctx.engine, ctx.cache_dir)
    return compute_days(ctx, panel, 0, len(panel.days), cfg)


# --- the daily run -------------------------------------------------------------------------


@dataclass
class GradesReport:
    """What `run_grades` did."""

    days: int = 0
    written: int = 0
    unchanged: int = 0
    dropped: int = 0
    rows: int = 0
    seconds: float = 0.0
    band_changes: int = 0  # `grade_change` events published for a newly graded day


def _day_blocks(run: GradeRun) -> Iterator[tuple[int, NDArray[np.int64], F64]]:
    """Per graded day: (day, token ids, values rounded to 0.01: trader, investor, then the
    six sub-grades), one day at a time."""
    g = run.grades
    panels = [g.trader, g.investor, *(g.sub[k] for k in method.SUB_GRADES)]
    for j, day in enumerate(run.panel.days.tolist()):
        column = np.asarray(np.round(np.stack([p[:, j] for p in panels]), 2), dtype=np.float64)
        rows = np.flatnonzero(np.isfinite(column[0]))
        if rows.size:
            yield day, run.panel.token_ids[rows], column[:, rows]


def _digest(ids: NDArray[np.int64], values: F64) -> str:
    h = hashlib.sha1(MODEL.encode(), usedforsecurity=False)
    h.update(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(np.nan_to_num(values, nan=-1.0)).tobytes())
    return h.hexdigest()


def _rows(day: int, ids: NDArray[np.int64], values: F64) -> list[dict[str, Any]]:
    out = []
    for k, token_id in enumerate(ids.tolist()):
        v = values[:, k].tolist()
        subs = {n: x for n, x in zip(method.SUB_GRADES, v[2:], strict=True) if x == x}
        out.append(
            {
                "token_id": token_id,
                "day": day,
                "trader": v[0],
                "investor": v[1] if v[1] == v[1] else None,
                "components": subs,
            }
        )
    return out


def run_grades(
    ctx: Context, cfg: method.GradeConfig | None = None, *, part: int = 0, parts: int = 1
) -> GradesReport:
    """Compute grades and store them; only days whose grades changed are written.

    With `parts` > 1 this run covers only its share of the days (`day_range`), so workers
    can grade the history side by side; together the parts store what one run stores.
    """
    started = time.perf_counter()
    panel = read_daily_panel(ctx.engine, ctx.cache_dir)
    lo, hi = day_range(len(panel.days), part, parts)
    first = int(panel.days[lo]) if part > 0 else -(2**62)  # part 0 and the last part also
    last = int(panel.days[hi]) if part < parts - 1 else 2**62  # own days off the panel's ends
    report = GradesReport()
    blocks = _day_blocks(compute_days(ctx, panel, lo, hi, cfg)) if hi > lo else iter(())
    with ctx.engine.begin() as conn:
        stored = {d: v for d, v in grades_repo.day_digests(conn).items() if first <= d < last}
        seen: set[int] = set()
        batch = _Batch(conn)
        for day, ids, values in blocks:
            seen.add(day)
            digest = _digest(ids, values)
            if stored.get(day) == digest:
                report.unchanged += 1
                continue
            batch.add(day, digest, ids, values)
            report.written += 1
            report.rows += int(ids.size)
        batch.flush()
        gone = sorted(set(stored) - seen)
        if gone:
            grades_repo.drop_days(conn, gone)
    report.days, report.dropped = len(seen), len(gone)
    newest = int(panel.days[-1])
    if stored and newest in seen and newest not in stored:  # a new day, not a first load
        report.band_changes = _publish_band_changes(ctx, newest)
    report.seconds = time.perf_counter() - started
    return report


def _publish_band_changes(ctx: Context, day: int) -> int:
    """A `grade_change` stream event per token and grade whose band moved since the graded
    day before `day` (docs/streaming.md); how many."""
    from coinlens.services.events import publish_grade_change

    with ctx.engine.connect() as conn:
        rows = grades_repo.band_moves(conn, day)
    n = 0
    for r in rows:
        for kind, now, then in (("trader", r.trader, r.old_trader),
                                ("investor", r.investor, r.old_investor)):  # fmt: skip
            if now is None or then is None or method.band_of(now) == method.band_of(then):
                continue
            old = {"grade": float(then), "band": method.band_of(then)}
            new = {"grade": float(now), "band": method.band_of(now)}
            publish_grade_change(ctx, r.symbol, kind, old, new)
            n += 1
    return n


class _Batch:
    """Changed days' rows, written every WRITE_BATCH rows (not all days' rows at once)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.rows: list[dict[str, Any]] = []
        self.digests: dict[int, tuple[str, int]] = {}

    def add(self, day: int, digest: str, ids: NDArray[np.int64], values: F64) -> None:
        self.digests[day] = (digest, int(ids.size))
        self.rows.extend(_rows(day, ids, values))
        if len(self.rows) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.digests:
            grades_repo.replace_days(self.conn, self.rows, self.digests)
        self.rows, self.digests = [], {}


# --- queries -------------------------------------------------------------------------------

MAX_LEADERBOARD_LIMIT = 500
ACTIONS = {
    "strong_sell": "strong sell",
    "sell": "sell",
    "neutral": "hold",
    "buy": "buy",
    "strong_buy": "strong buy",
}
_BAND_RANGE = {
    "strong_sell": (-1.0, 20.5),
    "sell": (20.5, 40.5),
    "neutral": (40.5, 60.5),
    "buy": (60.5, 80.5),
    "strong_buy": (80.5, 101.0),
}


def _invalid(location: str, reason: str) -> ValidationFailed:
    return ValidationFailed(f"{location}: {reason}", [Problem(location=location, reason=reason)])


def _band(value: float | None) -> Band | None:
    return None if value is None else cast(Band, method.band_of(value))


def _breakdown(
    kind: str, value: float | None, components: dict[str, float]
) -> GradeBreakdown | None:
    if value is None:
        return None
    cfg = method.GradeConfig()
    weights = cfg.trader_weights if kind == "trader" else cfg.investor_weights
    total = sum(weights.values())
    subs = [
        SubGrade(
            name=name,
            grade=components[name],
            weight=round(w / total, 4),
            contribution=round(w / total * components[name], 2),
        )
        for name, w in weights.items()
        if name in components
    ]
    band = cast(Band, method.band_of(value))
    return GradeBreakdown(grade=value, band=band, action=ACTIONS[band], sub_grades=subs)


def _point(day: int, trader: float, investor: float | None, comp: Any) -> GradePoint:
    components = {str(k): float(v) for k, v in dict(comp or {}).items()}
    return GradePoint(
        day=to_date(day),
        trader=trader,
        investor=investor,
        trader_band=cast(Band, method.band_of(trader)),
        investor_band=_band(investor),
        components=components,
    )


def _token(conn: Connection, symbol: str) -> Row[Any, Any, Any, Any, Any]:
    row = conn.execute(
        sa.select(
            tokens.c.id, tokens.c.symbol, tokens.c.name, tokens.c.sector, tokens.c.is_stablecoin
        )
        .where(sa.func.upper(tokens.c.symbol) == symbol.strip().upper())
        .order_by(tokens.c.id)
    ).first()
    if row is None:
        raise unknown_token(conn, symbol)
    return row


def latest_track_record(conn: Connection) -> GradeTrackRecord | None:
    """The newest stored walk-forward evaluation of the grades, or None (also when it
    measured other weights or windows than the grades are computed with now)."""
    return track_records.latest(conn, EVALUATION_KIND, METHOD, GradeTrackRecord)


def track_record(ctx: Context) -> GradeTrackRecord | None:
    """The grades' served track record (see `latest_track_record`)."""
    with ctx.engine.connect() as conn:
        return latest_track_record(conn)


def get_grades(
    ctx: Context, symbol: str, start: date | None = None, end: date | None = None
) -> TokenGrades:
    """A token's latest grades with their breakdown, and its grade history in [start, end]."""
    if start is not None and end is not None and start > end:
        raise _invalid("start", "start must not be after end")
    with ctx.engine.connect() as conn:
        tok = _token(conn, symbol)
        where = [grades.c.token_id == tok.id]
        latest = conn.execute(
            sa.select(grades).where(*where).order_by(grades.c.day.desc()).limit(1)
        ).first()
        if start is not None:
            where.append(grades.c.day >= to_day(start))
        if end is not None:
            where.append(grades.c.day <= to_day(end))
        hist = conn.execute(sa.select(grades).where(*where).order_by(grades.c.day)).all()
        record = latest_track_record(conn)
        newest = conn.execute(sa.select(sa.func.max(grade_days.c.day))).scalar()
    if latest is None and tok.is_stablecoin:
        raise DataUnavailable(f"{tok.symbol} is a stablecoin: stablecoins are not graded")
    if latest is None:
        raise DataUnavailable(f"{tok.symbol} has no grades yet: run `coinlens load` first")
    comp = {str(k): float(v) for k, v in dict(latest.components).items()}
    warnings = _stale_warnings(tok.symbol, int(latest.day), newest)
    if latest.investor is None:
        warnings.append(
            f"{tok.symbol} has under {method.GradeConfig().investor_history} days of history: "
            "no Investor Grade yet"
        )
    return TokenGrades(
        symbol=tok.symbol,
        name=tok.name,
        sector=tok.sector,
        day=to_date(latest.day),
        trader=_breakdown("trader", latest.trader, comp),
        investor=_breakdown("investor", latest.investor, comp),
        history=[_point(r.day, r.trader, r.investor, r.components) for r in hist],
        source=SOURCE,
        model=MODEL,
        warnings=warnings,
        track_record=record,
    )


def _stale_warnings(symbol: str, day: int, newest: int | None) -> list[str]:
    """Say so when a token's newest grades are older than the newest graded day (its prices
    stopped, e.g. a delisted token): they are its last grades, not current ones."""
    if newest is None or day >= int(newest):
        return []
    return [
        f"{symbol}'s newest grades are from {to_date(day)}, {int(newest) - day} days before "
        f"the newest graded day {to_date(int(newest))}: it has no daily close since, so these "
        "are its last grades, not current ones, and it is not on the latest leaderboard"
    ]


# --- leaderboard ---------------------------------------------------------------------------


def _encode_cursor(**fields: Any) -> str:
    raw = json.dumps(fields, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(cursor: str, day: int, sort: str, order: str) -> tuple[float, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise _invalid("cursor", "not a cursor this API issued") from exc
    if not isinstance(data, dict) or (data.get("d"), data.get("k"), data.get("o")) != (
        day,
        sort,
        order,
    ):
        raise _invalid("cursor", "cursor belongs to another day, sort or order")
    value, symbol = data.get("v"), data.get("s")
    if not isinstance(value, int | float) or not isinstance(symbol, str):
        raise _invalid("cursor", "not a cursor this API issued")
    return float(value), symbol


@dataclass(frozen=True)
class LeaderboardQuery:
    """Filters, sort and page of a leaderboard request."""

    day: date | None = None
    sector: str | None = None
    band: str | None = None
    sort: str = "trader"
    order: str = "desc"
    cursor: str | None = None
    limit: int = 50

    def check(self) -> None:
        """Refuse unknown sorts, orders, bands and limits."""
        if self.sort not in ("trader", "investor"):
            raise _invalid("sort", "must be trader or investor")
        if self.order not in ("asc", "desc"):
            raise _invalid("order", "must be asc or desc")
        if self.band is not None and self.band not in _BAND_RANGE:
            raise _invalid("band", f"must be one of {', '.join(_BAND_RANGE)}")
        if not 1 <= self.limit <= MAX_LEADERBOARD_LIMIT:
            raise _invalid("limit", f"must be between 1 and {MAX_LEADERBOARD_LIMIT}")


def _resolve_day(conn: Connection, wanted: date | None) -> tuple[int, int]:
    """(the day to rank, the newest graded day); DataUnavailable when nothing is graded."""
    oldest, newest = conn.execute(
        sa.select(sa.func.min(grade_days.c.day), sa.func.max(grade_days.c.day))
    ).one()
    if newest is None:
        raise DataUnavailable("no grades yet: run `coinlens load` first")
    if wanted is None:
        return int(newest), int(newest)
    day = to_day(wanted)
    if conn.execute(sa.select(grade_days.c.day).where(grade_days.c.day == day)).first() is None:
        raise DataUnavailable(
            f"no grades for {wanted.isoformat()}: graded days run from "
            f"{to_date(int(oldest))} to {to_date(int(newest))}"
        )
    return day, int(newest)


def _filters(q: LeaderboardQuery, day: int) -> list[sa.ColumnElement[bool]]:
    col = grades.c[q.sort]
    where: list[sa.ColumnElement[bool]] = [grades.c.day == day, col.is_not(None)]
    if q.sector is not None and q.sector.strip():
        where.append(sa.func.lower(tokens.c.sector) == q.sector.strip().lower())
    if q.band is not None:
        lo, hi = _BAND_RANGE[q.band]
        where.extend([col >= lo, col < hi])
    return where


def _entry(r: Row[Any]) -> LeaderboardEntry:
    return LeaderboardEntry(
        symbol=r.symbol,
        name=r.name,
        sector=r.sector,
        trader=r.trader,
        investor=r.investor,
        trader_band=cast(Band, method.band_of(r.trader)),
        investor_band=_band(r.investor),
        components={str(k): float(v) for k, v in dict(r.components).items()},
    )


def leaderboard(ctx: Context, query: LeaderboardQuery | None = None) -> GradesPage:
    """One day's tokens ranked by a grade (newest day by default), filtered and paginated."""
    q = query or LeaderboardQuery()
    q.check()
    col = grades.c[q.sort]
    desc = q.order == "desc"
    with ctx.engine.connect() as conn:
        day, newest = _resolve_day(conn, q.day)
        where = _filters(q, day)
        base = sa.select(grades, tokens.c.symbol, tokens.c.name, tokens.c.sector).join(
            tokens, tokens.c.id == grades.c.token_id
        )
        total = conn.execute(
            sa.select(sa.func.count()).select_from(base.where(*where).subquery())
        ).scalar_one()
        if q.cursor:
            value, symbol = _decode_cursor(q.cursor, day, q.sort, q.order)
            beyond = col < value if desc else col > value
            where.append(sa.or_(beyond, sa.and_(col == value, tokens.c.symbol > symbol)))
        ordering = (col.desc() if desc else col.asc(), tokens.c.symbol)
        rows = conn.execute(base.where(*where).order_by(*ordering).limit(q.limit + 1)).all()
    page = rows[: q.limit]
    more = len(rows) > q.limit
    last = page[-1] if page else None
    return GradesPage(
        day=to_date(day),
        sort=cast(GradeKind, q.sort),
        order=cast(Literal["asc", "desc"], q.order),
        items=[_entry(r) for r in page],
        total=int(total),
        limit=q.limit,
        next_cursor=(
            _encode_cursor(d=day, k=q.sort, o=q.order, v=getattr(last, q.sort), s=last.symbol)
            if more and last is not None
            else None
        ),
        source=SOURCE,
        model=MODEL,
        as_of=datetime.combine(to_date(newest), datetime.min.time(), tzinfo=UTC),
    )
