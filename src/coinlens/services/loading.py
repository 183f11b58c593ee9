"""Load the packaged real dataset into the database, idempotently."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from coinlens.connectors.embedded import EMBEDDED_DIR, read_embedded
from coinlens.services.context import Context
from coinlens.storage import repo

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total) — called as work advances."""

DATASET_KEY = "embedded_dataset"
_FILES = ("tokens", "markets", "candles_1d", "candles_1h", "market_caps", "metrics")
_TOKEN_COLS = (
    "symbol",
    "name",
    "sector",
    "coingecko_id",
    "circulating_supply",
    "total_supply",
    "max_supply",
    "is_stablecoin",
    "notes",
)


@dataclass
class LoadReport:
    """What a load wrote."""

    skipped: bool = False
    tokens: int = 0
    markets: int = 0
    candles: repo.WriteCounts = field(default_factory=repo.WriteCounts)
    market_caps: int = 0
    metrics: int = 0


def dataset_fingerprint(directory: Path) -> int:
    """A stable 63-bit fingerprint of the packaged files' contents."""
    digest = hashlib.sha256()
    for name in _FILES:
        digest.update((directory / f"{name}.parquet").read_bytes())
    return int.from_bytes(digest.digest()[:8], "big") >> 1


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _records(table: pa.Table) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in table.to_pylist()]


def _load_tokens(ctx: Context, directory: Path) -> tuple[dict[str, int], dict[str, int]]:
    tokens = _records(read_embedded("tokens", directory))
    rows = []
    for t in tokens:
        row = {c: t.get(c) for c in _TOKEN_COLS}
        row["categories"] = json.loads(t.get("categories") or "[]")
        row["is_stablecoin"] = bool(row["is_stablecoin"])
        row["name"] = row["name"] or row["symbol"]  # some perps have no name in the metadata
        rows.append(row)
    markets = _records(read_embedded("markets", directory))
    with ctx.engine.begin() as conn:
        ids = repo.upsert_tokens(conn, rows)
        market_rows = [
            {
                "market_key": m["market_key"],
                "token_id": ids[m["symbol"]],
                "exchange": m["exchange"],
                "pair": m["pair"],
                "quote": m["quote"],
                "instrument": m["instrument"],
                "contract_multiplier": float(m["contract_multiplier"]),
                "source": m["source"],
            }
            for m in markets
        ]
        mids = repo.upsert_markets(conn, market_rows)
    return ids, mids


def _load_candles(
    ctx: Context, directory: Path, mids: dict[str, int], progress: Progress | None
) -> repo.WriteCounts:
    counts = repo.WriteCounts()
    for timeframe in ("1d", "1h"):
        table = read_embedded(f"candles_{timeframe}", directory)
        table = table.set_column(
            table.schema.get_field_index("open_time"),
            "open_time",
            table.column("open_time").cast(pa.int64()),  # µs since epoch
        )
        keys = table.column("market_key").unique().to_pylist()
        for i, key in enumerate(sorted(keys)):
            part = table.filter(pa.compute.equal(table.column("market_key"), key))
            rows = _records(part.drop_columns(["market_key"]))
            for r in rows:
                r["open_time"] = int(r["open_time"]) // 1_000_000
            with ctx.engine.begin() as conn:
                counts.add(repo.write_candles(conn, mids[key], timeframe, rows))
            if progress:
                progress(f"candles {timeframe}", i + 1, len(keys))
    return counts


def load_embedded(
    ctx: Context,
    *,
    directory: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> LoadReport:
    """Load the packaged dataset; a no-op when this exact dataset was loaded before (but for
    refreshing each token's series, `repo.refresh_token_spans`, whose rules may be newer).

    `force` re-checks every row (still idempotent: unchanged rows are left alone).
    """
    directory = directory or EMBEDDED_DIR
    fingerprint = dataset_fingerprint(directory)
    with ctx.engine.begin() as conn:
        if not force and repo.read_counter(conn, DATASET_KEY) == fingerprint:
            repo.refresh_token_spans(conn)  # series rules may have changed since (cheap)
            return LoadReport(skipped=True)
    ids, mids = _load_tokens(ctx, directory)
    report = LoadReport(tokens=len(ids), markets=len(mids))
    report.candles = _load_candles(ctx, directory, mids, progress)
    caps = _records(read_embedded("market_caps", directory))
    cap_rows = [
        {
            "token_id": ids[c["symbol"]],
            **{k: c[k] for k in ("snapshot_date", "source", "rank", "market_cap", "price")},
            "circulating_supply": c.get("circulating_supply"),
            "volume_24h": c.get("volume_24h"),
        }
        for c in caps
        if c["symbol"] in ids
    ]
    metric_rows = _records(read_embedded("metrics", directory))
    with ctx.engine.begin() as conn:
        repo.write_market_caps(conn, cap_rows)
        repo.write_metrics(conn, metric_rows)
        repo.refresh_token_spans(conn)
        repo.set_counter(conn, DATASET_KEY, fingerprint)
    report.market_caps, report.metrics = len(cap_rows), len(metric_rows)
    if progress:
        progress("done", 1, 1)
    return report


def count_rows(ctx: Context) -> dict[str, int]:
    """Row counts of the main tables (for summaries and readiness)."""
    out: dict[str, int] = {}
    with ctx.engine.connect() as conn:
        for name in ("tokens", "markets", "candles", "market_caps", "metrics"):
            out[name] = int(conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())  # noqa: S608
    return out
