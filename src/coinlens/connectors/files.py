"""Read OHLCV files (CSV, CSV.gz, Parquet) of any known layout into validated candle batches.

Pure with respect to the outside world: no database, and the clock only as the default of
`parse_file`'s `now` (open times after it are rejected). `parse_file` reads one file,
detects its layout (see `layouts`), parses every row with its 1-based file line number (the
header is line 1), runs the validation rules of docs/import.md and returns a `ParsedFile`:
good rows per market, every rejected row with its line and reason, and the gaps it found.
Nothing is dropped silently: read rows = good + merged duplicates + skipped + rejected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coinlens.connectors.file_reading import RawTable, Rejection, read_table
from coinlens.connectors.layouts import (
    FIELDS,
    TIMEFRAME_SECONDS,
    Hints,
    Layout,
    MarketSpec,
    detect_layout,
    hint_problems,
    market_for,
    pair_from_name,
    timeframe_from_name,
)
from coinlens.domain.errors import Problem, ValidationFailed

__all__ = ["Gap", "Hints", "MarketBatch", "ParsedFile", "Rejection", "parse_file", "read_table"]

EARLIEST = int(datetime(2009, 1, 3, tzinfo=UTC).timestamp())
"""No crypto candle opens before the Bitcoin genesis block; earlier times mean a wrong unit."""
LATEST = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())
PRICES: tuple[str, ...] = ("open", "high", "low", "close")
_MS_THRESHOLD = 100_000_000_000  # epoch values above this are milliseconds (1e11 s ≈ year 5138)
_MISSING = frozenset({"", "null", "none", "na", "n/a"})
_NON_FINITE = frozenset({"nan", "inf", "infinity"})
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_COMMA_HINT = "a comma: write decimals with '.' and no thousands separators"
_OFFSET = r"[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$"

Problems = dict[int, list[str]]
"""Row position → the reasons that row is rejected."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing candles between two present ones (reported, never filled in)."""

    market_key: str
    first_missing: int
    last_missing: int
    missing: int


@dataclass(frozen=True, slots=True)
class MarketBatch:
    """The validated, time-ordered candles of one market in a file."""

    market: MarketSpec
    rows: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """The outcome of reading and validating one file."""

    file: str
    layout: str
    timeframe: str
    rows_total: int
    batches: tuple[MarketBatch, ...]
    rejected: tuple[Rejection, ...]
    gaps: tuple[Gap, ...]
    merged: int
    skipped: int
    warnings: tuple[str, ...]

    @property
    def rows_good(self) -> int:
        """Rows that passed validation (after merging identical duplicates)."""
        return sum(len(b.rows) for b in self.batches)


def iso(epoch_s: float) -> str:
    """Epoch seconds as an ISO-8601 UTC string (`2024-01-01T00:00:00Z`)."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- parsing kernels (pure, vectorised) ------------------------------------------------------


def parse_open_times(text: pd.Series, naive_is_utc: bool) -> tuple[np.ndarray, Problems]:
    """Epoch seconds (float, NaN where invalid) from ISO-8601 strings or epoch s/ms numbers.

    Explicit offsets are converted to UTC; naive ISO strings are UTC only where the layout's
    source documents it (`naive_is_utc`), otherwise ambiguous.
    """
    s = text.astype(str).str.strip()
    raw: list[str] = s.tolist()
    out = np.full(len(s), np.nan)
    problems: Problems = {}
    is_epoch = s.str.fullmatch(r"\d+(?:\.0*)?").to_numpy(dtype=bool)
    epoch = pd.to_numeric(s[is_epoch], errors="coerce").to_numpy(dtype=float)
    out[is_epoch] = np.where(epoch >= _MS_THRESHOLD, epoch / 1000.0, epoch)
    stamps = pd.to_datetime(s[~is_epoch], format="ISO8601", utc=True, errors="coerce")
    out[~is_epoch] = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    if not naive_is_utc:
        naive = ~is_epoch & ~s.str.contains(_OFFSET, regex=True).to_numpy(dtype=bool)
        naive &= ~np.isnan(out)
        for i in np.flatnonzero(naive):
            _add(problems, i, f"ambiguous timestamp {raw[i]!r}: no UTC offset (add Z)")
        out[naive] = np.nan
    for i in np.flatnonzero(np.isnan(out)):
        if i not in problems:
            _add(problems, i, f"unparseable timestamp {raw[i]!r}")
    for i in np.flatnonzero((out < EARLIEST) | (out >= LATEST)):
        _add(problems, i, f"timestamp {raw[i]!r} out of range 2009..2100 (wrong unit?)")
    for i in np.flatnonzero(~np.isnan(out) & (out != np.floor(out))):
        _add(problems, i, f"timestamp {raw[i]!r} is not a whole second")
    bad = list(problems)
    out[bad] = np.nan
    return out, problems


def parse_numbers(text: pd.Series, name: str, required: bool) -> tuple[np.ndarray, Problems]:
    """Floats from text; missing (unless optional), NaN/inf and non-numbers are problems."""
    texts: list[str] = text.astype(str).tolist()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    problems: Problems = {}
    for i in np.flatnonzero(~np.isfinite(values)):
        raw = texts[i].strip()
        low = raw.lower().lstrip("+-")
        if low in _MISSING:
            if required:
                _add(problems, i, f"{name} is missing")
        elif low in _NON_FINITE:
            _add(problems, i, f"{name} is NaN or infinite ({raw})")
        elif _DECIMAL_COMMA.fullmatch(raw):
            _add(problems, i, f"{name} is not a number: {raw!r} ({_COMMA_HINT})")
        else:
            _add(problems, i, f"{name} is not a number: {raw!r}")
        values[i] = np.nan
    return values, problems


def check_candles(v: dict[str, np.ndarray]) -> Problems:
    """OHLCV sanity: positive prices, non-negative volumes and trades, low ≤ open/close ≤ high."""
    problems: Problems = {}
    for name in PRICES:
        for i in np.flatnonzero(v[name] <= 0):
            _add(problems, i, f"non-positive {name} ({v[name][i]:g})")
    for name in ("volume", "quote_volume", "trades"):
        for i in np.flatnonzero(v[name] < 0):
            _add(problems, i, f"negative {name} ({v[name][i]:g})")
    for i in np.flatnonzero(np.isfinite(v["trades"]) & (v["trades"] != np.floor(v["trades"]))):
        _add(problems, i, f"trades is not a whole number ({v['trades'][i]:g})")
    high, low = v["high"], v["low"]
    for i in np.flatnonzero(high < low):
        _add(problems, i, f"high ({high[i]:g}) < low ({low[i]:g})")
    for name in ("open", "close"):
        outside = (high >= low) & ((v[name] < low) | (v[name] > high))
        for i in np.flatnonzero(outside):
            _add(
                problems,
                i,
                f"{name} ({v[name][i]:g}) outside [low, high] = [{low[i]:g}, {high[i]:g}]",
            )
    return problems


def check_grid(times: np.ndarray, timeframe: str) -> Problems:
    """Candles must open on their timeframe's UTC grid (1d at 00:00, 1h on the hour)."""
    step = TIMEFRAME_SECONDS[timeframe]
    grid = "00:00 UTC" if timeframe == "1d" else "the hour"
    off = np.isfinite(times) & (np.mod(np.nan_to_num(times), step) != 0)
    return {
        int(i): [
            f"open time {iso(times[i])} is not on the {timeframe} grid (candles open at {grid})"
        ]
        for i in np.flatnonzero(off)
    }


def check_future(times: np.ndarray, timeframe: str, now: float) -> Problems:
    """No candle opens later than one timeframe after `now` (epoch s): such rows are bad data."""
    step = TIMEFRAME_SECONDS[timeframe]
    late = np.isfinite(times) & (np.nan_to_num(times) > now + step)
    return {
        int(i): [f"open time {iso(times[i])} is in the future (after now + {timeframe})"]
        for i in np.flatnonzero(late)
    }


def find_gaps(market_key: str, times: np.ndarray, step: int) -> list[Gap]:
    """Runs of missing candles between sorted, unique open times."""
    diffs = np.diff(times)
    return [
        Gap(market_key, int(times[i] + step), int(times[i + 1] - step), int(diffs[i] // step) - 1)
        for i in np.flatnonzero(diffs > step)
    ]


def _add(problems: Problems, position: int | np.integer[Any], reason: str) -> None:
    problems.setdefault(int(position), []).append(reason)


def _merge(*many: Problems) -> Problems:
    out: Problems = {}
    for problems in many:
        for pos, reasons in problems.items():
            out.setdefault(pos, []).extend(reasons)
    return out


# --- orchestration ---------------------------------------------------------------------------


def _fail(path: Path, reason: str) -> ValidationFailed:
    return ValidationFailed(f"{path}: {reason}", [Problem(str(path), reason)])


def _timeframe(path: Path, hints: Hints) -> str:
    timeframe = hints.timeframe or timeframe_from_name(path)
    if timeframe is None:
        raise _fail(
            path, "cannot infer the timeframe from the file name: pass --timeframe 1d or 1h"
        )
    if timeframe not in TIMEFRAME_SECONDS:
        raise _fail(path, f"unsupported timeframe {timeframe!r}: use 1d or 1h")
    return timeframe


@dataclass(slots=True)
class _Markets:
    """Which market each row belongs to (None where it cannot be told)."""

    keys: np.ndarray
    specs: dict[str, MarketSpec]
    problems: Problems
    skip: np.ndarray


def _single_market(path: Path, layout: Layout, hints: Hints, n: int) -> _Markets:
    symbol = hints.symbol or pair_from_name(path)
    if symbol is None:
        raise _fail(
            path,
            "no symbol column and no pair in the file name: pass --symbol "
            "(e.g. --symbol BTCUSDT, or --symbol BTC --quote USDT)",
        )
    spec = market_for(symbol, layout, hints)
    if isinstance(spec, str):
        raise _fail(path, spec)
    keys = np.full(n, spec.market_key, dtype=object)
    return _Markets(keys, {spec.market_key: spec}, {}, np.zeros(n, dtype=bool))


def _resolve_markets(table: RawTable, layout: Layout, hints: Hints, path: Path) -> _Markets:
    """Map each row's symbol to a market; `--symbol` on a multi-symbol file is a filter."""
    n = len(table.frame)
    column = layout.symbol_column or ("symbol" if "symbol" in table.header else None)
    if column is None:
        return _single_market(path, layout, hints, n)
    symbols = table.frame[column].astype(str).str.strip()
    wanted = hints.symbol.upper() if hints.symbol else None
    specs: dict[str, MarketSpec] = {}
    by_symbol: dict[str, MarketSpec | str] = {}
    skipped: set[str] = set()
    for symbol in map(str, symbols.unique()):
        spec = market_for(symbol, layout, hints) if symbol else "symbol is missing"
        by_symbol[symbol] = spec
        if wanted and not _matches(symbol, spec, wanted):
            skipped.add(symbol)
        elif isinstance(spec, MarketSpec):
            specs[spec.market_key] = spec
    mapped = symbols.map(lambda s: _key(by_symbol[s]))
    keys = mapped.to_numpy(dtype=object)
    skip = symbols.isin(skipped).to_numpy(dtype=bool)
    problems: Problems = {}
    for i in np.flatnonzero(mapped.isna().to_numpy(dtype=bool) & ~skip):
        _add(problems, i, str(by_symbol[str(symbols.iat[int(i)])]))
    return _Markets(keys, specs, problems, skip)


def _key(spec: MarketSpec | str) -> str | None:
    return spec.market_key if isinstance(spec, MarketSpec) else None


def _matches(symbol: str, spec: MarketSpec | str, wanted: str) -> bool:
    if symbol.upper() == wanted:
        return True
    return isinstance(spec, MarketSpec) and wanted in (spec.pair, spec.token)


def _values(frame: pd.DataFrame, layout: Layout) -> tuple[dict[str, np.ndarray], Problems]:
    values: dict[str, np.ndarray] = {}
    problems: list[Problems] = []
    for name in FIELDS:
        column = layout.columns.get(name)
        if column is None or column not in frame.columns:
            values[name] = np.full(len(frame), np.nan)
            continue
        values[name], found = parse_numbers(frame[column], name, required=name in FIELDS[:5])
        problems.append(found)
    return values, _merge(*problems)


@dataclass(slots=True)
class _Dedupe:
    keep: np.ndarray
    problems: Problems
    merged_lines: list[int]


def dedupe(
    keys: np.ndarray,
    times: np.ndarray,
    values: dict[str, np.ndarray],
    lines: np.ndarray,
    good: np.ndarray,
) -> _Dedupe:
    """Identical duplicates of (market, open time) are merged; conflicting ones all rejected."""
    idx = np.flatnonzero(good)
    frame = pd.DataFrame(
        {"k": keys[idx], "t": times[idx], **{f: values[f][idx] for f in FIELDS}}, index=idx
    )
    keep = good.copy()
    dup = frame.duplicated(["k", "t"], keep=False)
    if not dup.any():
        return _Dedupe(keep, {}, [])
    both = frame[dup]
    distinct = both.drop_duplicates().groupby(["k", "t"]).size()
    conflicting = pd.MultiIndex.from_frame(both[["k", "t"]]).isin(distinct[distinct > 1].index)
    problems: Problems = {}
    for _, group in both[conflicting].groupby(["k", "t"]):
        when = iso(float(group["t"].to_numpy(dtype=float)[0]))
        for pos in group.index:
            others = ", ".join(str(lines[o]) for o in group.index if o != pos)
            _add(
                problems,
                pos,
                f"conflicting duplicate: open time {when} also on line {others} "
                "with different values",
            )
    merged = both[~conflicting & both.duplicated(keep="first")].index.to_numpy()
    keep[merged] = False
    keep[list(problems)] = False
    return _Dedupe(keep, problems, [int(lines[m]) for m in merged])


def _batches(
    marks: _Markets, times: np.ndarray, values: dict[str, np.ndarray], keep: np.ndarray, step: int
) -> tuple[list[MarketBatch], list[Gap]]:
    """Split the kept rows by market, each in open-time order, and find each market's gaps."""
    idx = np.flatnonzero(keep)
    codes, _ = pd.factorize(pd.Series(marks.keys[idx], dtype=object), sort=True)
    order = np.lexsort((times[idx], codes))
    idx, codes = idx[order], codes[order]
    bounds = np.flatnonzero(np.diff(codes)) + 1
    batches: list[MarketBatch] = []
    gaps: list[Gap] = []
    for part in np.split(idx, bounds) if len(idx) else []:
        key = str(marks.keys[part[0]])
        batches.append(MarketBatch(marks.specs[key], _records(times, values, part)))
        gaps.extend(find_gaps(key, times[part], step))
    return batches, gaps


def _records(
    times: np.ndarray, values: dict[str, np.ndarray], idx: np.ndarray
) -> list[dict[str, Any]]:
    cols = {f: values[f][idx].tolist() for f in FIELDS}
    qv = [None if math.isnan(q) else q for q in cols["quote_volume"]]
    trades = [None if math.isnan(t) else int(t) for t in cols["trades"]]
    return [
        {
            "open_time": int(t),
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": v,
            "quote_volume": q,
            "trades": n,
        }
        for t, o, h, lo, c, v, q, n in zip(
            times[idx].tolist(),
            cols["open"],
            cols["high"],
            cols["low"],
            cols["close"],
            cols["volume"],
            qv,
            trades,
            strict=True,
        )
    ]


def _warnings(
    marks: _Markets,
    grid: Problems,
    timed: int,
    dd: _Dedupe,
    batches: Iterable[MarketBatch],
    timeframe: str,
) -> list[str]:
    out: list[str] = []
    if dd.merged_lines:
        shown = ", ".join(map(str, dd.merged_lines[:10]))
        out.append(f"{len(dd.merged_lines)} identical duplicate row(s) merged (lines {shown}…)")
    if skipped := int(marks.skip.sum()):
        out.append(f"{skipped} row(s) of other symbols skipped (--symbol filter)")
    if timed and len(grid) > timed / 2:
        out.append(f"most open times are off the {timeframe} grid: is --timeframe right?")
    step = TIMEFRAME_SECONDS[timeframe]
    for batch in batches:
        times = np.array([r["open_time"] for r in batch.rows])
        if len(times) > 2 and np.median(np.diff(times)) > step:
            out.append(
                f"{batch.market.market_key}: candles are further apart than {timeframe} "
                "on median: is --timeframe right?"
            )
    return out


def parse_file(path: Path, hints: Hints | None = None, *, now: float | None = None) -> ParsedFile:
    """Read, validate and split one OHLCV file into per-market candle batches; rows opening
    more than one timeframe after `now` (epoch seconds, default the clock) are rejected."""
    hints = hints or Hints()
    if wrong := hint_problems(hints):
        raise _fail(path, "; ".join(wrong))
    now = datetime.now(UTC).timestamp() if now is None else now
    table = read_table(path)
    layout = detect_layout(table.header, str(path))
    timeframe = _timeframe(path, hints)
    if not (hints.exchange or layout.exchange) or not (hints.instrument or layout.instrument):
        raise _fail(
            path, f"the {layout.name} layout names no venue: pass --exchange and --instrument"
        )
    marks = _resolve_markets(table, layout, hints, path)
    times, time_problems = parse_open_times(table.frame[layout.time_column], layout.naive_is_utc)
    values, value_problems = _values(table.frame, layout)
    grid = check_grid(times, timeframe)
    future = check_future(times, timeframe, now)
    problems = _merge(
        marks.problems, time_problems, future, value_problems, check_candles(values), grid
    )
    for pos in np.flatnonzero(marks.skip):
        problems.pop(int(pos), None)
    good = ~marks.skip
    good[list(problems)] = False
    dd = dedupe(marks.keys, times, values, table.lines, good)
    problems = _merge(problems, dd.problems)
    batches, gaps = _batches(marks, times, values, dd.keep, TIMEFRAME_SECONDS[timeframe])
    rejected = table.rejected + [
        Rejection(str(path), int(table.lines[p]), "; ".join(r), table.raw[p])
        for p, r in problems.items()
    ]
    return ParsedFile(
        file=str(path),
        layout=layout.name,
        timeframe=timeframe,
        rows_total=len(table.frame) + len(table.rejected),
        batches=tuple(batches),
        rejected=tuple(sorted(rejected, key=lambda r: r.line or 0)),
        gaps=tuple(gaps),
        merged=len(dd.merged_lines),
        skipped=int(marks.skip.sum()),
        warnings=tuple(
            _warnings(marks, grid, int(np.isfinite(times).sum()), dd, batches, timeframe)
        ),
    )
