"""The daily candle panel (tokens × days) read columnar, with a Parquet snapshot.

Row-by-row reads of millions of candles take seconds. Ingest bumps `candles_version`;
the first read after a change rebuilds a long-format Parquet snapshot from the database
(one bulk query), later reads load the snapshot and scatter it into NumPy arrays.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.engine import Engine

from coinlens.domain.errors import DataUnavailable
from coinlens.storage.repo import CANDLES_VERSION, read_counter

DAY = 86_400
FIELDS = ("open", "high", "low", "close", "volume", "quote_volume")

_SQL = """
SELECT t.id, c.open_time / 86400 AS day, c.open / m.contract_multiplier,
       c.high / m.contract_multiplier, c.low / m.contract_multiplier,
       c.close / m.contract_multiplier, c.volume * m.contract_multiplier,
       COALESCE(c.quote_volume, -1.0)
FROM candles c
JOIN markets m ON m.id = c.market_id
JOIN tokens t ON t.primary_market_id = c.market_id
WHERE c.timeframe = '1d'
"""


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

    def row(self, symbol: str) -> int:
        """Row index of a token symbol."""
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise DataUnavailable(f"{symbol} has no daily candles") from None


def _snapshot_path(cache_dir: Path, engine: Engine, version: int) -> Path:
    ident = hashlib.sha1(str(engine.url).encode(), usedforsecurity=False).hexdigest()[:10]
    return cache_dir / f"panel-1d-{ident}-v{version}.parquet"


def _fetch_sqlite(engine: Engine) -> NDArray[np.float64]:
    with engine.connect() as conn:
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cur.execute(_SQL)
        flat = np.fromiter(itertools.chain.from_iterable(cur), dtype=np.float64)  # type: ignore[arg-type]
        cur.close()
    return flat.reshape(-1, 8)


def _fetch_postgres(engine: Engine) -> NDArray[np.float64]:
    buf = io.BytesIO()
    with engine.connect() as conn:
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cur.copy(f"COPY ({_SQL}) TO STDOUT WITH (FORMAT csv)") as copy:
            for chunk in copy:
                buf.write(chunk)
    if buf.tell() == 0:
        return np.empty((0, 8))
    buf.seek(0)
    names = ["token_id", "day", *FIELDS]
    table = pacsv.read_csv(buf, read_options=pacsv.ReadOptions(column_names=names))
    return np.column_stack([table.column(n).to_numpy().astype(np.float64) for n in names])


def _build_snapshot(engine: Engine, path: Path) -> None:
    fetch = _fetch_postgres if engine.dialect.name == "postgresql" else _fetch_sqlite
    arr = fetch(engine)
    arr[arr[:, 7] < 0, 7] = np.nan  # quote volume unknown
    table = pa.table(
        {
            "token_id": arr[:, 0].astype(np.int64),
            "day": arr[:, 1].astype(np.int64),
            **{name: arr[:, 2 + i] for i, name in enumerate(FIELDS)},
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # unique per process: workers share a data dir
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)  # atomic: readers never see half a snapshot
    for old in path.parent.glob(path.name.rsplit("-v", 1)[0] + "-v*.parquet"):
        if old != path:
            old.unlink(missing_ok=True)


def read_daily_panel(engine: Engine, cache_dir: Path) -> Panel:
    """Read the whole daily panel; rebuilds the snapshot only if candles changed since."""
    with engine.connect() as conn:
        version = read_counter(conn, CANDLES_VERSION)
        names = {
            int(i): str(s)
            for i, s in conn.execute(
                sa.text("SELECT id, symbol FROM tokens WHERE primary_market_id IS NOT NULL")
            )
        }
    path = _snapshot_path(cache_dir, engine, version)
    if not path.exists():
        _build_snapshot(engine, path)
    table = pq.read_table(path)
    token_col = table.column("token_id").to_numpy()
    day_col = table.column("day").to_numpy()
    if len(token_col) == 0:
        raise DataUnavailable("no daily candles loaded yet: run `coinlens up` or `coinlens import`")
    ids = np.unique(token_col)
    row = np.searchsorted(ids, token_col)
    first = int(day_col.min())
    days = np.arange(first, int(day_col.max()) + 1, dtype=np.int64)
    col = day_col - first
    out = {}
    for name in FIELDS:
        grid = np.full((len(ids), len(days)), np.nan)
        grid[row, col] = table.column(name).to_numpy(zero_copy_only=False)
        out[name] = grid
    return Panel(
        token_ids=ids.astype(np.int64),
        symbols=[names.get(int(i), str(i)) for i in ids],
        days=days,
        version=version,
        **out,
    )
