"""Reader for the dataset packaged with Coinlens (``connectors/dataset/*.parquet``).

The files are built by ``scripts/build_dataset.py`` from real historical market data
(see ``dataset/PROVENANCE.md``); every time series ends on 2025-09-30 UTC. This module
only reads them and checks that each file still has the columns and types it promises.

Candle prices are quoted *per contract*: divide by ``markets.contract_multiplier`` to get
the price of one token (e.g. ``binance:perp:1000PEPEUSDT`` quotes 1000 PEPE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from coinlens.domain.errors import DataUnavailable, NotFound, Problem, ValidationFailed

EMBEDDED_DIR: Path = Path(__file__).resolve().parent / "dataset"
"""Folder holding the packaged parquet files."""

CUTOFF: date = date(2025, 9, 30)
"""Last day (UTC, inclusive) covered by every time series in the packaged dataset."""

_UTC_US = pa.timestamp("us", tz="UTC")

_CANDLES = pa.schema(
    [
        pa.field("market_key", pa.string(), nullable=False),
        pa.field("open_time", _UTC_US, nullable=False),
        pa.field("open", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.float64(), nullable=False),
        pa.field("quote_volume", pa.float64()),
        pa.field("trades", pa.int64()),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "tokens": pa.schema(
        [
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("name", pa.string()),
            pa.field("sector", pa.string()),
            pa.field("categories", pa.string(), nullable=False),
            pa.field("coingecko_id", pa.string()),
            pa.field("circulating_supply", pa.float64()),
            pa.field("total_supply", pa.float64()),
            pa.field("max_supply", pa.float64()),
            pa.field("is_stablecoin", pa.bool_(), nullable=False),
            pa.field("notes", pa.string()),
        ]
    ),
    "markets": pa.schema(
        [
            pa.field("market_key", pa.string(), nullable=False),
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("exchange", pa.string(), nullable=False),
            pa.field("pair", pa.string(), nullable=False),
            pa.field("quote", pa.string(), nullable=False),
            pa.field("instrument", pa.string(), nullable=False),
            pa.field("contract_multiplier", pa.float64(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
        ]
    ),
    "candles_1d": _CANDLES,
    "candles_1h": _CANDLES,
    "market_caps": pa.schema(
        [
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("snapshot_date", pa.date32(), nullable=False),
            pa.field("rank", pa.int64(), nullable=False),
            pa.field("market_cap", pa.float64()),
            pa.field("price", pa.float64()),
            pa.field("circulating_supply", pa.float64()),
            pa.field("volume_24h", pa.float64()),
            pa.field("source", pa.string(), nullable=False),
        ]
    ),
    "metrics": pa.schema(
        [
            pa.field("entity", pa.string(), nullable=False),
            pa.field("metric", pa.string(), nullable=False),
            pa.field("date", pa.date32(), nullable=False),
            pa.field("value", pa.float64(), nullable=False),
            pa.field("unit", pa.string(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
        ]
    ),
}
"""Expected columns and types of each packaged file (the builder writes exactly these)."""

DATASET_NAMES: tuple[str, ...] = tuple(SCHEMAS)


def _path(name: str, directory: Path | None) -> Path:
    if name not in SCHEMAS:
        raise NotFound(
            f"No embedded dataset named {name!r}; expected one of {', '.join(DATASET_NAMES)}."
        )
    return (directory if directory is not None else EMBEDDED_DIR) / f"{name}.parquet"


def _check(name: str, table: pa.Table) -> pa.Table:
    expected = SCHEMAS[name]
    problems: list[Problem] = []
    actual = {f.name: f for f in table.schema}
    for want in expected:
        got = actual.get(want.name)
        if got is None:
            problems.append(Problem(f"{name}.{want.name}", "column is missing"))
        elif not got.type.equals(want.type):
            problems.append(
                Problem(f"{name}.{want.name}", f"type is {got.type}, expected {want.type}")
            )
        elif not want.nullable and table.column(want.name).null_count:
            problems.append(
                Problem(
                    f"{name}.{want.name}",
                    f"{table.column(want.name).null_count} null values in a required column",
                )
            )
    for extra in sorted(set(actual) - set(expected.names)):
        problems.append(Problem(f"{name}.{extra}", "unexpected column"))
    if problems:
        listed = "; ".join(f"{p.location}: {p.reason}" for p in problems)
        raise ValidationFailed(
            f"Embedded dataset {name!r} does not match its contract ({listed}). "
            "Rebuild it with scripts/build_dataset.py.",
            problems,
        )
    return table.select(expected.names)


def read_embedded(name: str, directory: Path | None = None) -> pa.Table:
    """Read one packaged file (``tokens``, ``markets``, ``candles_1d``, ``candles_1h``,
    ``market_caps`` or ``metrics``) and check its columns and types.

    Raises `NotFound` for an unknown name, `DataUnavailable` when the file is absent or
    unreadable, and `ValidationFailed` when its columns or types differ from `SCHEMAS`.
    """
    path = _path(name, directory)
    if not path.is_file():
        raise DataUnavailable(
            f"Embedded dataset file {path} is missing; run scripts/build_dataset.py to build it."
        )
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataUnavailable(f"Embedded dataset file {path} cannot be read: {exc}") from exc
    return _check(name, table)


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    """Counts describing the packaged dataset."""

    rows: dict[str, int]
    tokens: int
    stablecoins: int
    markets: int
    markets_by_instrument: dict[str, int]
    markets_by_exchange: dict[str, int]
    candle_ranges: dict[str, tuple[date, date]] = field(default_factory=dict)


def _day_range(table: pa.Table, column: str) -> tuple[date, date] | None:
    if table.num_rows == 0:
        return None
    bounds = pc.min_max(table.column(column))
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return (low.date(), high.date())


def _value_counts(table: pa.Table, column: str) -> dict[str, int]:
    counts = pc.value_counts(table.column(column)).to_pylist()
    return {str(c["values"]): int(c["counts"]) for c in sorted(counts, key=lambda c: c["values"])}


def dataset_summary(directory: Path | None = None) -> DatasetSummary:
    """Row counts of every file plus token/market counts and candle date ranges."""
    rows: dict[str, int] = {}
    for name in DATASET_NAMES:
        path = _path(name, directory)
        if not path.is_file():
            raise DataUnavailable(f"Embedded dataset file {path} is missing.")
        rows[name] = pq.read_metadata(path).num_rows
    tokens = read_embedded("tokens", directory)
    markets = read_embedded("markets", directory)
    ranges: dict[str, tuple[date, date]] = {}
    for name in ("candles_1d", "candles_1h"):
        times = pq.read_table(_path(name, directory), columns=["open_time"])
        span = _day_range(times, "open_time")
        if span is not None:
            ranges[name] = span
    stable = pc.sum(tokens.column("is_stablecoin").cast(pa.int64())).as_py() or 0
    return DatasetSummary(
        rows=rows,
        tokens=tokens.num_rows,
        stablecoins=int(stable),
        markets=markets.num_rows,
        markets_by_instrument=_value_counts(markets, "instrument"),
        markets_by_exchange=_value_counts(markets, "exchange"),
        candle_ranges=ranges,
    )
