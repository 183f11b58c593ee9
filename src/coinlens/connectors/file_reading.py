"""Read an OHLCV file (CSV, CSV.gz, Parquet) as text cells, each row with its file line.

The first step of `files.parse_file`: nothing is interpreted yet, so every later rejection
can quote the row as the file has it. Rows with the wrong number of fields are rejected here
with their line; a file that cannot be read at all raises `ValidationFailed` naming why.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from coinlens.domain.errors import NotFound, Problem, ValidationFailed

_READ_ERRORS = (OSError, EOFError, UnicodeDecodeError, csv.Error, zlib.error, pa.ArrowException)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A rejected row: where it is, why, and its raw text (as stored in quarantine)."""

    file: str
    line: int | None
    reason: str
    raw: str

    def as_row(self) -> dict[str, Any]:
        """The quarantine-table row for this rejection."""
        return {"file": self.file[-512:], "line": self.line, "reason": self.reason, "raw": self.raw}


@dataclass(slots=True)
class RawTable:
    """A file's cells as text, each row with its file line number."""

    header: list[str]
    frame: pd.DataFrame
    lines: np.ndarray
    raw: list[str]
    rejected: list[Rejection]


def read_table(path: Path) -> RawTable:
    """Read a .csv, .csv.gz or .parquet file as text cells; unreadable files raise."""
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    try:
        if path.name.endswith((".parquet", ".pq")):
            return _read_parquet(path)
        return _read_csv(path)
    except _READ_ERRORS as exc:
        raise ValidationFailed(
            f"{path}: cannot read the file", [Problem(str(path), f"{type(exc).__name__}: {exc}")]
        ) from exc


def _read_csv(path: Path) -> RawTable:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        first = fh.readline()
        reader = csv.reader(itertools.chain([first], fh), delimiter=_delimiter(first))
        header = [h.strip().lower() for h in next(reader, [])]
        if not header:
            raise ValidationFailed(f"{path}: empty file", [Problem(str(path), "no header line")])
        rows: list[list[str]] = []
        lines: list[int] = []
        rejected: list[Rejection] = []
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue  # a blank line is not a row
            if len(fields) != len(header):
                reason = f"expected {len(header)} fields, found {len(fields)}"
                rejected.append(Rejection(str(path), reader.line_num, reason, ",".join(fields)))
                continue
            rows.append(fields)
            lines.append(reader.line_num)
    _check_header(header, path)
    frame = pd.DataFrame(rows, columns=header, dtype=str) if rows else _empty(header)
    raw = [",".join(r) for r in rows]
    return RawTable(header, frame, np.asarray(lines, dtype=np.int64), raw, rejected)


def _delimiter(header: str) -> str:
    """`,` unless the header line has none and is `;`- or tab-separated (spreadsheet exports)."""
    if "," not in header:
        for candidate in (";", "\t"):
            if candidate in header:
                return candidate
    return ","


def _read_parquet(path: Path) -> RawTable:
    """Parquet rows are numbered as if exported to CSV with a header: row i is line i + 2."""
    table = pq.read_table(path)
    header = [n.strip().lower() for n in table.column_names]
    _check_header(header, path)
    columns = {name: _texts(col) for name, col in zip(header, table.columns, strict=True)}
    frame = pd.DataFrame(columns, dtype=str) if table.num_rows else _empty(header)
    raw = frame.apply(lambda r: ",".join(r), axis=1).tolist() if table.num_rows else []
    return RawTable(header, frame, np.arange(2, table.num_rows + 2, dtype=np.int64), raw, [])


def _texts(col: pa.ChunkedArray) -> list[str]:
    """One Parquet column as text; typed timestamps keep (or lack) their zone explicitly."""
    if pa.types.is_timestamp(col.type):
        series = col.to_pandas()
        if col.type.tz is not None:
            text = series.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        else:
            text = series.dt.strftime("%Y-%m-%dT%H:%M:%S.%f")  # naive: no zone to claim
        return [str(v) for v in text.fillna("").tolist()]
    return [str(v) for v in pc.cast(col, pa.string()).fill_null("").to_pylist()]


def _empty(header: list[str]) -> pd.DataFrame:
    return pd.DataFrame({h: pd.Series([], dtype=str) for h in header})


def _check_header(header: list[str], path: Path) -> None:
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ValidationFailed(
            f"{path}: duplicate columns", [Problem(str(path), f"repeated: {', '.join(dupes)}")]
        )
