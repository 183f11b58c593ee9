"""The daily candle panel (tokens × days) read columnar, with a Parquet snapshot.

Row-by-row reads of millions of candles take seconds. Ingest bumps `candles_version`;
the first read after a change brings the long-format Parquet snapshot up to date, later
reads load it and scatter it into NumPy arrays. Bringing it up to date merges into the
previous snapshot only the candles that changed since (the writers log, per version, which
markets changed from which open time in `candle_changes`) plus every row of a token whose
series (primary market, or the market continuing it backwards: `repo.series_of`) changed;
it rebuilds from the database in one bulk query when there is no
previous snapshot, the log does not cover the gap, or most rows changed. Both paths read
inside one consistent database snapshot, so a snapshot holds exactly its version's data.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
import structlog
from numpy.typing import NDArray
from sqlalchemy.engine import Connection, Engine

from coinlens.domain.errors import DataUnavailable
from coinlens.storage.repo import CANDLES_VERSION, DAY, in_series, read_counter, span_groups
from coinlens.storage.tables import candle_changes, candles, markets, tokens

log = structlog.get_logger(__name__)

FIELDS = ("open", "high", "low", "close", "volume", "quote_volume")
RELEASE_ROWS = 2_000_000  # hand Arrow's freed pages back from this many rows on: ~300 MB at
# 10,000 tokens × 3 years; the release itself costs ~0.3 s, too much for small live panels
MAX_MERGED_SHARE = 0.5  # rebuild in full when more of the old rows than this would be replaced
_ALL_DAYS = -(2**31)  # "from the first day": before any candle
_NONE, _EVERY = np.iinfo(np.int64).min, np.iinfo(np.int64).max  # keep-before days
_SERIES_KEY = b"coinlens.series"

# a token's series: its primary market's daily candles, and those of the market continuing it
# backwards before `history_until` (the condition of `repo.in_series`, as text for the cursor)
_SQL = """
SELECT t.id, c.open_time / 86400 AS day, c.open / m.contract_multiplier,
       c.high / m.contract_multiplier, c.low / m.contract_multiplier,
       c.close / m.contract_multiplier, c.volume * m.contract_multiplier,
       COALESCE(c.quote_volume, -1.0)
FROM candles c
JOIN markets m ON m.id = c.market_id
JOIN tokens t ON t.id = m.token_id
WHERE c.timeframe = '1d'
  AND (c.market_id = t.primary_market_id
       OR (c.market_id = t.history_market_id AND c.open_time < t.history_until))
"""

# token id → its series: ((market id, contract multiplier, until open time or None), ...)
Series = dict[int, tuple[tuple[int, float, int | None], ...]]


@dataclass(frozen=True)
class Panel:
    """Daily OHLCV for all tokens on one calendar; NaN where a token has no candle."""

    token_ids: NDArray[np.int64]
    symbols: list[str]
    days: NDArray[np.int64]  # epoch days (UTC) of each column
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    volume: NDArray[np.float64]
    quote_volume: NDArray[np.float64]
    version: int

    def take(self, rows: NDArray[np.int64]) -> Panel:
        """The panel restricted to the tokens at `rows` (same calendar, same version)."""
        return Panel(
            token_ids=self.token_ids[rows],
            symbols=[self.symbols[int(i)] for i in rows],
            days=self.days,
            open=self.open[rows],
            high=self.high[rows],
            low=self.low[rows],
            close=self.close[rows],
            volume=self.volume[rows],
            quote_volume=self.quote_volume[rows],
            version=self.version,
        )

    def columns(self, lo: int, hi: int) -> Panel:
        """The panel restricted to the days at columns [lo, hi) (same tokens, same version)."""
        return Panel(
            token_ids=self.token_ids,
            symbols=self.symbols,
            days=self.days[lo:hi],
            open=self.open[:, lo:hi],
            high=self.high[:, lo:hi],
            low=self.low[:, lo:hi],
            close=self.close[:, lo:hi],
            volume=self.volume[:, lo:hi],
            quote_volume=self.quote_volume[:, lo:hi],
            version=self.version,
        )

    def row(self, symbol: str) -> int:
        """Row index of a token symbol."""
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise DataUnavailable(f"{symbol} has no daily candles") from None


def _snapshot_path(cache_dir: Path, engine: Engine, version: int) -> Path:
    ident = hashlib.sha1(str(engine.url).encode(), usedforsecurity=False).hexdigest()[:10]
    return cache_dir / f"panel-1d-{ident}-v{version}.parquet"


def _version_of(path: Path) -> int:
    return int(path.stem.rsplit("-v", 1)[1])


def _siblings(path: Path) -> list[Path]:
    return list(path.parent.glob(path.name.rsplit("-v", 1)[0] + "-v*.parquet"))


@contextmanager
def _consistent_read(engine: Engine) -> Iterator[Connection]:
    """A connection whose statements all see one database snapshot (read-only)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            conn.exec_driver_sql("SELECT 1")  # starts the transaction: its snapshot is taken
        else:  # pysqlite begins only before writes; in WAL mode a read transaction is a snapshot
            conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            conn.rollback()


# --- full rebuild ---------------------------------------------------------------------------


def _fetch_sqlite(conn: Connection) -> NDArray[np.float64]:
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cur.execute(_SQL)
    flat = np.fromiter(itertools.chain.from_iterable(cur), dtype=np.float64)  # type: ignore[arg-type]
    cur.close()
    return flat.reshape(-1, 8)


def _fetch_postgres(conn: Connection, spool: Path) -> pa.Table:
    """COPY the rows as CSV into a spool file (not memory: 10,000 tokens × 3 years is ~1 GB
    of text) and parse it with its column types, straight into the snapshot's table."""
    names = ["token_id", "day", *FIELDS]
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    spool.parent.mkdir(parents=True, exist_ok=True)
    try:
        with spool.open("wb") as out, cur.copy(f"COPY ({_SQL}) TO STDOUT WITH (FORMAT csv)") as cp:
            for chunk in cp:
                out.write(chunk)
        if spool.stat().st_size == 0:
            return _as_table(np.empty((0, 8)))
        types = {"token_id": pa.int64(), "day": pa.int64(), **dict.fromkeys(FIELDS, pa.float64())}
        table = pacsv.read_csv(
            spool,
            read_options=pacsv.ReadOptions(column_names=names),
            convert_options=pacsv.ConvertOptions(column_types=types),
        )
    finally:
        spool.unlink(missing_ok=True)
    qv = _known_quote_volume(table.column("quote_volume").to_numpy())
    return table.set_column(names.index("quote_volume"), "quote_volume", pa.array(qv))


def _known_quote_volume(qv: NDArray[np.float64]) -> NDArray[np.float64]:
    """The queries return an unknown quote volume as -1 (COALESCE): NaN here."""
    return np.where(qv < 0, np.nan, qv)


def _as_table(arr: NDArray[np.float64]) -> pa.Table:
    """Long-format rows (token id, day, FIELDS; quote volume < 0 meaning unknown) as a table."""
    return pa.table(
        {
            "token_id": arr[:, 0].astype(np.int64),
            "day": arr[:, 1].astype(np.int64),
            **{name: arr[:, 2 + i] for i, name in enumerate(FIELDS[:-1])},
            "quote_volume": _known_quote_volume(arr[:, 7]),
        }
    )


def _rebuild(conn: Connection, spool: Path) -> pa.Table:
    if conn.dialect.name == "postgresql":
        return _fetch_postgres(conn, spool)
    return _as_table(_fetch_sqlite(conn))


# --- incremental merge ----------------------------------------------------------------------


def _series(conn: Connection) -> Series:
    primary = sa.alias(markets)
    history = sa.alias(markets)
    q = (
        sa.select(
            tokens.c.id,
            primary.c.id,
            primary.c.contract_multiplier,
            history.c.id,
            history.c.contract_multiplier,
            tokens.c.history_until,
        )
        .join(primary, primary.c.id == tokens.c.primary_market_id)
        .outerjoin(history, history.c.id == tokens.c.history_market_id)
    )
    out: Series = {}
    for t, m, x, hm, hx, until in conn.execute(q):
        parts: list[tuple[int, float, int | None]] = [(int(m), float(x), None)]
        if hm is not None:
            parts.append((int(hm), float(hx), int(until)))
        out[int(t)] = tuple(parts)
    return out


def _with_series(table: pa.Table, series: Series) -> pa.Table:
    blob = json.dumps(sorted([t, [list(p) for p in s]] for t, s in series.items()))
    return table.replace_schema_metadata({_SERIES_KEY: blob.encode()})


def _series_of(table: pa.Table) -> Series | None:
    meta = table.schema.metadata or {}
    if _SERIES_KEY not in meta:
        return None  # a snapshot written before the metadata existed: rebuild
    return {
        int(t): tuple((int(m), float(x), None if u is None else int(u)) for m, x, u in parts)
        for t, parts in json.loads(meta[_SERIES_KEY])
    }


def _changed_since(conn: Connection, old: int, new: int) -> dict[int, int] | None:
    """Daily-candle market → oldest changed open time over versions (old, new]; None if the
    change log does not record every one of those versions (pruned, or a bare bump)."""
    in_gap = candle_changes.c.version > old, candle_changes.c.version <= new
    logged = conn.execute(
        sa.select(sa.func.count(sa.distinct(candle_changes.c.version))).where(*in_gap)
    ).scalar_one()
    if logged != new - old:
        return None
    q = (
        sa.select(candle_changes.c.market_id, sa.func.min(candle_changes.c.min_open_time))
        .where(*in_gap, candle_changes.c.timeframe == "1d")
        .group_by(candle_changes.c.market_id)
    )
    return {int(m): int(t) for m, t in conn.execute(q)}


def _fetch(conn: Connection, groups: list[tuple[list[int], int, int]]) -> NDArray[np.float64]:
    """The panel rows of each group's tokens (their whole series) from the group's first day on."""
    parts = [np.empty((0, 8))]
    for ids, first_day, _ in groups:
        q = (
            sa.select(
                tokens.c.id,
                candles.c.open_time,
                *[candles.c[f] for f in FIELDS[:-1]],
                sa.func.coalesce(candles.c.quote_volume, -1.0),
                markets.c.contract_multiplier,
            )
            .join(markets, markets.c.id == candles.c.market_id)
            .join(tokens, tokens.c.id == markets.c.token_id)
            .where(
                tokens.c.id.in_(ids),
                in_series(),
                candles.c.timeframe == "1d",
                candles.c.open_time >= first_day * DAY,
            )
        )
        flat = itertools.chain.from_iterable(conn.execute(q))
        parts.append(_convert(np.fromiter(flat, dtype=np.float64).reshape(-1, 9)))
    return np.concatenate(parts)


def _convert(rows: NDArray[np.float64]) -> NDArray[np.float64]:
    """(token, open time, OHLCV, quote volume, multiplier) → the rows `_SQL` returns."""
    out = np.empty((len(rows), 8))
    mult = rows[:, 8]
    out[:, 0] = rows[:, 0]
    out[:, 1] = rows[:, 1] // DAY
    out[:, 2:6] = rows[:, 2:6] / mult[:, None]
    out[:, 6] = rows[:, 6] * mult
    out[:, 7] = rows[:, 7]
    return out


def _merge(conn: Connection, old: pa.Table, old_version: int, version: int) -> pa.Table | None:
    """`old` brought up to `version`, or None when a full rebuild is needed or cheaper."""
    was, now = _series_of(old), _series(conn)
    changed = _changed_since(conn, old_version, version)
    if was is None or changed is None:
        return None
    wanted = []  # (token, first day to read its series again)
    for token, series in now.items():
        if was.get(token) != series:  # new or changed series: all its rows again
            wanted.append((token, _ALL_DAYS, _ALL_DAYS))
            continue
        since = [changed[m] // DAY for m, _, _ in series if m in changed]
        if since:
            wanted.append((token, min(since), min(since)))
    groups = span_groups(wanted)  # may read from earlier than asked: drop the same rows
    token_col = old.column("token_id").to_numpy()
    top = max(max(now, default=0), int(token_col.max(initial=0))) + 1
    keep_before = np.full(top, _NONE)
    keep_before[list(now)] = _EVERY  # tokens that lost their series keep nothing
    for ids, first_day, _ in groups:
        keep_before[ids] = first_day
    keep = old.column("day").to_numpy() < keep_before[token_col]
    dropped = len(keep) - int(np.count_nonzero(keep))
    if dropped > MAX_MERGED_SHARE * len(keep):
        return None
    kept = old.replace_schema_metadata(None)
    if dropped:  # NumPy masks the columns several times faster than pyarrow's filter
        kept = pa.table({n: kept.column(n).to_numpy()[keep] for n in kept.column_names})
    merged = pa.concat_tables([kept, _as_table(_fetch(conn, groups))]) if groups else kept
    return _with_series(merged, now)


def _previous(path: Path) -> Path | None:
    """The newest older snapshot of the same database, if any."""
    version = _version_of(path)
    older = [p for p in _siblings(path) if _version_of(p) < version]
    return max(older, key=_version_of) if older else None


def _load(path: Path) -> pa.Table | None:
    try:
        return pq.read_table(path)
    except FileNotFoundError:  # never written, or replaced by a newer version meanwhile
        return None


def _bring_up_to_date(conn: Connection, path: Path, version: int) -> pa.Table:
    """The snapshot table of `version`: the previous snapshot merged, or a rebuild."""
    previous = _previous(path)
    if previous is not None:
        old = _load(previous)
        merged = _merge(conn, old, _version_of(previous), version) if old is not None else None
        if merged is not None:
            log.info("panel.snapshot", mode="merged", version=version, base=_version_of(previous))
            return merged
    series = _series(conn)  # read in the same database snapshot as the rows
    log.info("panel.snapshot", mode="rebuilt", version=version)
    return _with_series(_rebuild(conn, _unique(path, ".csv")), series)


def _unique(path: Path, suffix: str) -> Path:
    """A scratch file beside `path`, unique per process and thread."""
    return path.with_suffix(f".{os.getpid()}.{threading.get_ident()}{suffix}")


def _write_snapshot(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # unique per writer: processes may share a data dir, and threads of one process (a
    # request and the overview warm-up) may rebuild the same snapshot at once
    tmp = _unique(path, ".tmp")
    # prices barely compress: lz4 without float dictionaries or statistics writes ~2.5x and
    # reads ~3x faster than zstd for a few % more disk (4M rows: 0.35 s / 0.18 s, 194 MB)
    pq.write_table(
        table, tmp, compression="lz4", use_dictionary=["token_id", "day"], write_statistics=False
    )
    tmp.replace(path)  # atomic: readers never see half a snapshot
    version = _version_of(path)
    for old in _siblings(path):
        if _version_of(old) < version:
            old.unlink(missing_ok=True)


def _to_panel(
    column: Callable[[str], pa.ChunkedArray], names: dict[int, str], version: int
) -> Panel:
    """The long table scattered into tokens × days grids, one column at a time: `column(n)`
    hands over column n (read from the snapshot file, or popped from a table no one else
    holds), so the long table and all the grids never coexist in memory."""
    token_col = column("token_id").to_numpy()
    day_col = column("day").to_numpy()
    if len(token_col) == 0:
        raise DataUnavailable("no daily candles loaded yet: run `coinlens up` or `coinlens import`")
    present = np.zeros(int(token_col.max()) + 1, dtype=bool)
    present[token_col] = True
    ids = np.flatnonzero(present)  # sorted token ids, without a sort
    first = int(day_col.min())
    days = np.arange(first, int(day_col.max()) + 1, dtype=np.int64)
    cell = (np.cumsum(present) - 1)[token_col]
    cell *= len(days)
    cell += day_col - first
    del token_col, day_col
    out = {}
    for name in FIELDS:
        grid = np.full((len(ids), len(days)), np.nan)
        grid.ravel()[cell] = column(name).to_numpy(zero_copy_only=False)
        out[name] = grid
    if len(cell) >= RELEASE_ROWS:  # Arrow's allocator keeps freed pages otherwise
        pa.default_memory_pool().release_unused()
    return Panel(
        token_ids=ids.astype(np.int64),
        symbols=[names.get(int(i), str(i)) for i in ids],
        days=days,
        version=version,
        **out,
    )


def _read_snapshot(path: Path, names: dict[int, str], version: int) -> Panel | None:
    """The panel of the snapshot file at `path`, or None if it is gone."""
    try:
        snapshot = pq.ParquetFile(path)
    except FileNotFoundError:  # replaced by a newer version meanwhile
        return None
    with snapshot:
        return _to_panel(lambda n: snapshot.read(columns=[n]).column(n), names, version)


# The last panel this process built, by snapshot path (database + candles version) and
# token names: a pipeline run reads it several times (analytics, grades, alerts) per version.
_LAST: dict[str, tuple[tuple[str, dict[int, str]], Panel]] = {}


def read_daily_panel(engine: Engine, cache_dir: Path) -> Panel:
    """Read the whole daily panel; brings the snapshot up to date if candles changed since."""
    with _consistent_read(engine) as conn:
        version = read_counter(conn, CANDLES_VERSION)
        names = {
            int(i): str(s)
            for i, s in conn.execute(
                sa.text("SELECT id, symbol FROM tokens WHERE primary_market_id IS NOT NULL")
            )
        }
        path = _snapshot_path(cache_dir, engine, version)
        hit = _LAST.get("panel")
        if hit is not None and hit[0] == (str(path), names):
            return hit[1]  # same candles version, same tokens: the panel this process built
        _LAST.clear()  # do not pin the old panel while the new one is built
        panel = _read_snapshot(path, names, version)
        if panel is None:
            table = _bring_up_to_date(conn, path, version)
    if panel is None:
        _write_snapshot(table, path)
        columns = {n: table.column(n) for n in table.column_names}
        del table  # each column is freed once scattered into its grid
        panel = _to_panel(columns.pop, names, version)
    for arr in (panel.days, panel.token_ids, *(getattr(panel, f) for f in FIELDS)):
        arr.flags.writeable = False  # shared by every later reader of this version
    _LAST["panel"] = ((str(path), names), panel)
    return panel
