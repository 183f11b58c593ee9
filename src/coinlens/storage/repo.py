"""Repositories: bulk, idempotent writes and the reads the services need (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from coinlens.storage.tables import (
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
_CHUNK = 5_000


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
    """Increment a monotonic counter in the state table and return its new value."""
    current = conn.execute(sa.select(state.c.value).where(state.c.key == key)).scalar()
    new = (current or 0) + 1
    upsert(conn, state, [{"key": key, "value": new}], ["key"])
    return new


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
    """Idempotently write one market's candles: new rows inserted, changed rows updated.

    Rows carry `open_time` (epoch s UTC) and CANDLE_FIELDS. Bumps the candles version when
    anything changed, so panel snapshots know they are stale.
    """
    counts = WriteCounts()
    if not rows:
        return counts
    times = [int(r["open_time"]) for r in rows]
    existing: dict[int, tuple[Any, ...]] = {}
    q = sa.select(candles.c.open_time, *[candles.c[f] for f in CANDLE_FIELDS]).where(
        candles.c.market_id == market_id,
        candles.c.timeframe == timeframe,
        candles.c.open_time.between(min(times), max(times)),
    )
    for row in conn.execute(q):
        existing[int(row[0])] = tuple(row[1:])
    fresh, changed = [], []
    for r in rows:
        old = existing.get(int(r["open_time"]))
        record = {"market_id": market_id, "timeframe": timeframe, "open_time": int(r["open_time"])}
        record.update({f: r.get(f) for f in CANDLE_FIELDS})
        if old is None:
            fresh.append(record)
        elif _same(r, old):
            counts.unchanged += 1
        else:
            changed.append(record)
    _bulk_insert_candles(conn, fresh)
    if changed:
        upsert(conn, candles, changed, ["market_id", "timeframe", "open_time"])
    counts.inserted, counts.updated = len(fresh), len(changed)
    if fresh or changed:
        bump(conn, CANDLES_VERSION)
    return counts


def refresh_token_spans(conn: Connection) -> None:
    """Recompute each token's first/last daily candle and its primary market.

    The primary market is the one with the most daily candles, spot preferred on ties;
    it feeds the token's analytics panel.
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
    best: dict[int, tuple[int, int, int, int, int]] = {}
    for token_id, market_id, instrument, n, first, last in stats:
        rank = (int(n), 1 if instrument == "spot" else 0)
        cur = best.get(token_id)
        if cur is None or rank > (cur[0], cur[1]):
            best[token_id] = (rank[0], rank[1], market_id, int(first), int(last))
    for token_id, (_, _, market_id, first, last) in best.items():
        conn.execute(
            tokens.update()
            .where(tokens.c.id == token_id)
            .values(primary_market_id=market_id, first_candle=first, last_candle=last)
        )


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
