"""Repositories: bulk, idempotent writes and the reads the services need (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from coinlens.storage.tables import (
    candle_changes,
    candles,
    import_runs,
    market_caps,
    markets,
    metrics,
    quarantine,
    state,
    tokens,
    utcnow,
)

CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "quote_volume", "trades")
CANDLES_VERSION = "candles_version"
DAY = 86_400
_CHUNK = 5_000
_IDS_PER_QUERY = 5_000  # bound parameters per IN list: under SQLite's and PostgreSQL's limits
_MAX_SPAN_GROUPS = 32
CHANGE_LOG_ROWS = 200_000  # change-log rows kept; older versions make readers rebuild in full
_PRUNE_EVERY = 64  # versions between change-log prunes


def _insert(conn: Connection, table: sa.Table) -> Any:
    """A dialect-specific INSERT that supports ON CONFLICT."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(
    conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> None:
    """Insert rows, updating non-key columns where the key already exists."""
    if not rows:
        return
    stmt = _insert(conn, table)
    cols = [c for c in rows[0] if c not in keys]
    stmt = (
        stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in cols}
        )
        if cols
        else stmt.on_conflict_do_nothing(index_elements=list(keys))
    )
    for i in range(0, len(rows), _CHUNK):
        conn.execute(stmt, list(rows[i : i + _CHUNK]))


def bump(conn: Connection, key: str) -> int:
    """Increment a monotonic counter in the state table and return its new value.

    One atomic statement: concurrent writers on PostgreSQL queue on the row lock and get
    distinct values, committed in order (a read-then-write could hand two of them the same).
    """
    stmt = _insert(conn, state).values(key=key, value=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"], set_={"value": state.c.value + 1}
    ).returning(state.c.value)
    return int(conn.execute(stmt).scalar_one())


def read_counter(conn: Connection, key: str) -> int:
    """The current value of a counter (0 if never bumped)."""
    return int(conn.execute(sa.select(state.c.value).where(state.c.key == key)).scalar() or 0)


def upsert_tokens(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert or update tokens by symbol; return symbol → id for all of them."""
    upsert(conn, tokens, rows, ["symbol"])
    return token_ids(conn, [r["symbol"] for r in rows])


def token_ids(conn: Connection, symbols: Iterable[str] | None = None) -> dict[str, int]:
    """symbol → id, for the given symbols or all tokens."""
    q = sa.select(tokens.c.symbol, tokens.c.id)
    if symbols is not None:
        q = q.where(tokens.c.symbol.in_(list(symbols)))
    return {s: i for s, i in conn.execute(q)}


def upsert_markets(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert or update markets by market_key; return market_key → id."""
    upsert(conn, markets, rows, ["market_key"])
    return market_ids(conn, [r["market_key"] for r in rows])


def market_ids(conn: Connection, keys: Iterable[str] | None = None) -> dict[str, int]:
    """market_key → id, for the given keys or all markets."""
    q = sa.select(markets.c.market_key, markets.c.id)
    if keys is not None:
        q = q.where(markets.c.market_key.in_(list(keys)))
    return {k: i for k, i in conn.execute(q)}


@dataclass
class WriteCounts:
    """How many rows a write inserted, updated or found unchanged."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, other: WriteCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged


def _same(a: Mapping[str, Any], b: Sequence[Any]) -> bool:
    for name, old in zip(CANDLE_FIELDS, b, strict=True):
        new = a.get(name)
        if new is None or old is None:
            if new is not old:
                return False
        elif float(new) != float(old):
            return False
    return True


_CANDLE_COLUMNS = ("market_id", "timeframe", "open_time", *CANDLE_FIELDS)
_FIELD_COLUMNS = [candles.c[f] for f in CANDLE_FIELDS]


def _bulk_insert_candles(conn: Connection, records: Sequence[Mapping[str, Any]]) -> None:
    """Insert new candles through the driver's fastest path (COPY on PostgreSQL).

    Runs on the caller's connection, so it is part of the caller's transaction.
    """
    if not records:
        return
    rows = [tuple(r[c] for c in _CANDLE_COLUMNS) for r in records]
    raw: Any = conn.connection.dbapi_connection
    cols = ", ".join(_CANDLE_COLUMNS)
    dbapi_error = conn.dialect.loaded_dbapi.Error
    if conn.dialect.name == "postgresql":
        stmt = f"COPY candles ({cols}) FROM STDIN"
        try:
            with raw.cursor() as cur, cur.copy(stmt) as copy:
                for row in rows:
                    copy.write_row(row)
        except dbapi_error as exc:  # same error classes as SQLAlchemy-issued statements
            raise sa.exc.DBAPIError.instance(stmt, None, exc, dbapi_error) from exc
        return
    marks = ", ".join("?" for _ in _CANDLE_COLUMNS)
    stmt = f"INSERT INTO candles ({cols}) VALUES ({marks})"  # noqa: S608 - fixed column names
    cur = raw.cursor()
    try:
        cur.executemany(stmt, rows)
    except dbapi_error as exc:
        raise sa.exc.DBAPIError.instance(stmt, None, exc, dbapi_error) from exc
    finally:
        cur.close()


def write_candles(
    conn: Connection, market_id: int, timeframe: str, rows: Sequence[Mapping[str, Any]]
) -> WriteCounts:
    """Idempotently write one market's candles (see `write_candles_many`)."""
    return write_candles_many(conn, timeframe, {market_id: rows})


def write_candles_many(
    conn: Connection, timeframe: str, rows_by_market: Mapping[int, Sequence[Mapping[str, Any]]]
) -> WriteCounts:
    """Idempotently write many markets' candles: new rows inserted, changed rows updated.

    Rows carry `open_time` (epoch s UTC) and CANDLE_FIELDS. One read of the stored rows in
    the markets' time spans, one bulk insert, one upsert of corrections, all in the caller's
    transaction. When anything changed, the candles version is bumped once and the changed
    markets are logged under it (`candle_changes`), so panel snapshots can merge just those.
    """
    counts = WriteCounts()
    existing = _stored_candles(conn, timeframe, rows_by_market)
    fresh: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    first_changed: dict[int, int] = {}
    for market_id in sorted(rows_by_market):
        for r in rows_by_market[market_id]:
            t = int(r["open_time"])
            old = existing.get((market_id, t))
            if old is not None and _same(r, old):
                counts.unchanged += 1
                continue
            record = {"market_id": market_id, "timeframe": timeframe, "open_time": t}
            record.update({f: r.get(f) for f in CANDLE_FIELDS})
            (fresh if old is None else changed).append(record)
            first_changed[market_id] = min(t, first_changed.get(market_id, t))
    _bulk_insert_candles(conn, fresh)
    upsert(conn, candles, changed, ["market_id", "timeframe", "open_time"])
    counts.inserted, counts.updated = len(fresh), len(changed)
    if first_changed:
        _log_changes(conn, timeframe, first_changed)
    return counts


def span_groups(
    spans: Sequence[tuple[int, int, int]], max_groups: int = _MAX_SPAN_GROUPS
) -> list[tuple[list[int], int, int]]:
    """(ids, lo, hi) queries covering every (id, lo, hi) span, at most about `max_groups`.

    Spans sharing a range share a query (the live path: one new candle per market is one
    group). When the ranges are too varied, spans sorted by `lo` are split into equal runs
    queried over the run's widest range: a little more is read, never less.
    """
    exact: dict[tuple[int, int], list[int]] = {}
    for key, lo, hi in spans:
        exact.setdefault((lo, hi), []).append(key)
    if len(exact) <= max_groups:
        groups = [(keys, lo, hi) for (lo, hi), keys in sorted(exact.items())]
    else:
        ordered = sorted(spans, key=lambda s: (s[1], s[0]))
        size = -(-len(ordered) // max_groups)
        runs = [ordered[i : i + size] for i in range(0, len(ordered), size)]
        groups = [([k for k, _, _ in r], min(s[1] for s in r), max(s[2] for s in r)) for r in runs]
    return [
        (keys[i : i + _IDS_PER_QUERY], lo, hi)
        for keys, lo, hi in groups
        for i in range(0, len(keys), _IDS_PER_QUERY)
    ]


def _stored_candles(
    conn: Connection, timeframe: str, rows_by_market: Mapping[int, Sequence[Mapping[str, Any]]]
) -> dict[tuple[int, int], tuple[Any, ...]]:
    """(market, open time) → stored fields, covering each market's [first, last] open time."""
    spans = []
    for market_id, rows in rows_by_market.items():
        if rows:
            times = [int(r["open_time"]) for r in rows]
            spans.append((market_id, min(times), max(times)))
    found: dict[tuple[int, int], tuple[Any, ...]] = {}
    for ids, lo, hi in span_groups(spans):
        q = sa.select(candles.c.market_id, candles.c.open_time, *_FIELD_COLUMNS).where(
            candles.c.market_id.in_(ids),
            candles.c.timeframe == timeframe,
            candles.c.open_time.between(lo, hi),
        )
        for row in conn.execute(q):
            found[(int(row[0]), int(row[1]))] = tuple(row[2:])
    return found


def _log_changes(conn: Connection, timeframe: str, first_changed: Mapping[int, int]) -> None:
    """Bump the candles version and record which markets changed under it, from when."""
    version = bump(conn, CANDLES_VERSION)
    # one statement, the integers inlined (int() keeps that safe): a 2,000-row executemany
    # costs more than the rest of a live write on PostgreSQL
    values = ", ".join(f"({int(m)}, {int(t)})" for m, t in sorted(first_changed.items()))
    conn.execute(
        sa.text(
            f"WITH changed(market_id, min_open_time) AS (VALUES {values}) "  # noqa: S608 - integers only
            "INSERT INTO candle_changes (version, market_id, timeframe, min_open_time) "
            "SELECT :version, market_id, :timeframe, min_open_time FROM changed"
        ),
        {"version": version, "timeframe": timeframe},
    )
    if version % _PRUNE_EVERY == 0:
        prune_candle_changes(conn)


def prune_candle_changes(conn: Connection, keep_rows: int = CHANGE_LOG_ROWS) -> None:
    """Keep only the newest whole versions of the change log that fit in `keep_rows` rows."""
    first_over = conn.execute(
        sa.select(candle_changes.c.version)
        .order_by(candle_changes.c.version.desc())
        .limit(1)
        .offset(keep_rows)
    ).scalar()
    if first_over is not None:
        conn.execute(candle_changes.delete().where(candle_changes.c.version <= first_over))


SERIES_GAP_DAYS = 7  # markets ending this close to the newest one count as current; a
# market ending this close before another's first candle is continued by it


@dataclass(frozen=True)
class Span:
    """One market's daily candles: how many, from when to when (open times)."""

    market_id: int
    spot: bool
    count: int
    first: int  # open times of the first and last daily candle
    last: int


def series_of(spans: Sequence[Span]) -> tuple[Span, Span | None]:
    """A token's daily series: (primary, history) from its markets' daily-candle spans.

    The primary is the current market: among those whose last candle is at most
    SERIES_GAP_DAYS before the newest, the one with the most candles (spot on ties). The
    history continues it backwards: the market starting earliest (spot on ties) among those
    that start before the primary and run up to at most SERIES_GAP_DAYS before its first
    candle; its candles before the primary's first are the series' older part. So a spot
    market delisted in favour of a perp, or a ticker migration (MATIC → POL), keeps one
    series that is current at its end and whole at its start.
    """
    gap = SERIES_GAP_DAYS * DAY
    newest = max(s.last for s in spans)
    primary = max(
        (s for s in spans if s.last >= newest - gap), key=lambda s: (s.count, s.spot, -s.market_id)
    )
    earlier = [
        s
        for s in spans
        if s.market_id != primary.market_id
        and s.first < primary.first
        and s.last >= primary.first - gap
    ]
    history = min(earlier, key=lambda s: (s.first, not s.spot, s.market_id)) if earlier else None
    return primary, history


def in_series() -> sa.ColumnElement[bool]:
    """Whether a candle (joined with its token) belongs to the token's daily series: its
    primary market's, or the history market's before `history_until` (`series_of`)."""
    return sa.or_(
        candles.c.market_id == tokens.c.primary_market_id,
        sa.and_(
            candles.c.market_id == tokens.c.history_market_id,
            candles.c.open_time < tokens.c.history_until,
        ),
    )


def refresh_token_spans(conn: Connection) -> None:
    """Recompute each token's daily series (`series_of`: primary market and the market that
    continues it backwards) and its first/last daily candle.

    The series feeds the token's analytics panel. When a token's series changes, the candles
    version is bumped with its markets logged as changed from their first candle, so panel
    snapshots re-read that token.
    """
    stats = conn.execute(
        sa.select(
            markets.c.token_id,
            markets.c.id,
            markets.c.instrument,
            sa.func.count(),
            sa.func.min(candles.c.open_time),
            sa.func.max(candles.c.open_time),
        )
        .join(candles, candles.c.market_id == markets.c.id)
        .where(candles.c.timeframe == "1d")
        .group_by(markets.c.token_id, markets.c.id, markets.c.instrument)
    ).all()
    by_token: dict[int, list[Span]] = {}
    for token_id, market_id, instrument, n, first, last in stats:
        span = Span(int(market_id), instrument == "spot", int(n), int(first), int(last))
        by_token.setdefault(int(token_id), []).append(span)
    was = {
        int(t): (p, h, u)
        for t, p, h, u in conn.execute(
            sa.select(
                tokens.c.id,
                tokens.c.primary_market_id,
                tokens.c.history_market_id,
                tokens.c.history_until,
            )
        )
    }
    changed: dict[int, int] = {}
    for token_id, spans in by_token.items():
        primary, history = series_of(spans)
        series = (
            primary.market_id,
            history.market_id if history else None,
            primary.first if history else None,
        )
        if was.get(token_id) != series:
            for s in (primary, history):  # the token is read again from its first candle
                if s is not None:
                    changed[s.market_id] = s.first
        conn.execute(
            tokens.update()
            .where(tokens.c.id == token_id)
            .values(
                primary_market_id=series[0],
                history_market_id=series[1],
                history_until=series[2],
                first_candle=history.first if history else primary.first,
                last_candle=primary.last,
            )
        )
    if changed:
        _log_changes(conn, "1d", changed)


def start_run(conn: Connection, source: str, mode: str) -> int:
    """Record the start of an import run and return its id."""
    result = conn.execute(
        import_runs.insert().values(source=source, mode=mode, status="running", started_at=utcnow())
    )
    key = result.inserted_primary_key
    assert key is not None  # noqa: S101 - an INSERT always returns its primary key
    return int(key[0])


def finish_run(conn: Connection, run_id: int, status: str, **counts: Any) -> None:
    """Close an import run with its final status and counts."""
    conn.execute(
        import_runs.update()
        .where(import_runs.c.id == run_id)
        .values(status=status, finished_at=utcnow(), **counts)
    )


def quarantine_rows(conn: Connection, run_id: int, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store rejected rows with file, line and reason."""
    if rows:
        conn.execute(quarantine.insert(), [{"run_id": run_id, **r} for r in rows])


def write_market_caps(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Upsert market-cap/rank snapshots."""
    upsert(conn, market_caps, rows, ["token_id", "snapshot_date", "source"])


def write_metrics(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Upsert ecosystem metric points."""
    upsert(conn, metrics, rows, ["entity", "metric", "date"])


def set_counter(conn: Connection, key: str, value: int) -> None:
    """Set a state counter to an explicit value."""
    upsert(conn, state, [{"key": key, "value": value}], ["key"])
