"""Import OHLCV files (CSV, CSV.gz, Parquet) into the candle store, one transaction per file.

Each file gets an `import_runs` row, committed first so that an interrupted import stays
visible (`running`, or `failed` with the error). Everything else for the file — new tokens
and markets, candles, quarantined rows and the run's final counts — is written in ONE
transaction: a crash part-way leaves no partial batch. Re-importing a file changes no
candle (`unchanged`); a row whose values differ from the stored candle is a correction and
is `updated`. In strict mode a file with any rejected row writes no candle at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coinlens.connectors.files import Gap, Hints, MarketBatch, ParsedFile, Rejection, parse_file
from coinlens.connectors.layouts import hint_problems
from coinlens.domain.errors import TemporaryError, UserInputError, ValidationFailed
from coinlens.services.context import Context
from coinlens.storage import repo

__all__ = [
    "Gap",
    "Hints",
    "ImportOptions",
    "ImportReport",
    "Rejection",
    "failure_message",
    "hint_problems",
    "import_file",
]


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How to import: hints the file cannot tell us, and whether a file is all-or-nothing."""

    hints: Hints = field(default_factory=Hints)
    strict: bool = False


@dataclass(slots=True)
class ImportReport:
    """What importing one file did; `rows` = written + unchanged + merged + skipped + rejected."""

    file: str
    run_id: int
    status: str
    layout: str = ""
    timeframe: str = ""
    rows: int = 0
    counts: repo.WriteCounts = field(default_factory=repo.WriteCounts)
    merged: int = 0
    skipped: int = 0
    markets: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def import_file(ctx: Context, path: Path, options: ImportOptions | None = None) -> ImportReport:
    """Validate one file and upsert its good rows; quarantine the bad ones with line and reason.

    Raises UserInputError (nothing written but the failed run) when the file as a whole is
    unusable: missing, unreadable, unknown layout, or a market/timeframe it cannot infer.
    """
    options = options or ImportOptions()
    mode = "strict" if options.strict else "lenient"
    with ctx.engine.begin() as conn:
        run_id = repo.start_run(conn, str(path)[-256:], mode)
    try:
        parsed = parse_file(path, options.hints)
        with ctx.engine.begin() as conn:
            return _write(conn, run_id, parsed, options.strict)
    except UserInputError as exc:
        _fail(ctx, run_id, failure_message(exc))
        raise
    except sa.exc.OperationalError as exc:
        _fail(ctx, run_id, f"rolled back: {exc.orig}")
        raise TemporaryError(f"{path}: database error, nothing was imported: {exc.orig}") from exc
    except BaseException as exc:
        _fail(ctx, run_id, f"rolled back: {type(exc).__name__}: {exc}")
        raise


def failure_message(exc: UserInputError) -> str:
    """The error and each problem reason it does not already say, joined by `; `."""
    problems = exc.problems if isinstance(exc, ValidationFailed) else []
    parts = [exc.detail]
    for reason in (p.reason for p in problems):
        if not any(reason in part for part in parts):
            parts.append(reason)
    return "; ".join(parts)


def _fail(ctx: Context, run_id: int, message: str) -> None:
    """Mark a run failed in its own transaction (the file's transaction is already gone)."""
    try:
        with ctx.engine.begin() as conn:
            repo.finish_run(conn, run_id, "failed", message=message[:4000])
    except sa.exc.SQLAlchemyError:
        pass  # the database itself is failing: the run stays 'running', which is still true


def _write(conn: Connection, run_id: int, parsed: ParsedFile, strict: bool) -> ImportReport:
    report = ImportReport(
        file=parsed.file,
        run_id=run_id,
        status="ok",
        layout=parsed.layout,
        timeframe=parsed.timeframe,
        rows=parsed.rows_total,
        merged=parsed.merged,
        skipped=parsed.skipped,
        markets=[b.market.market_key for b in parsed.batches],
        rejected=list(parsed.rejected),
        gaps=list(parsed.gaps),
        warnings=list(parsed.warnings),
    )
    repo.quarantine_rows(conn, run_id, [r.as_row() for r in parsed.rejected])
    if strict and parsed.rejected:
        report.status = "rejected"
        report.warnings.append("strict mode: file rejected, no candle written")
    else:
        report.status = "partial" if parsed.rejected else "ok"
        ids = _ensure_markets(conn, parsed.batches)
        for batch in parsed.batches:
            counts = repo.write_candles(
                conn, ids[batch.market.market_key], parsed.timeframe, batch.rows
            )
            report.counts.add(counts)
        if parsed.batches:
            repo.refresh_token_spans(conn)
    repo.finish_run(conn, run_id, report.status, **_run_counts(report))
    return report


def _run_counts(report: ImportReport) -> dict[str, Any]:
    extras = [f"layout {report.layout} {report.timeframe}", f"{len(report.gaps)} gap(s)"]
    if report.merged:
        extras.append(f"{report.merged} identical duplicate(s) merged")
    if report.skipped:
        extras.append(f"{report.skipped} row(s) skipped by --symbol")
    return {
        "rows_total": report.rows,
        "rows_inserted": report.counts.inserted,
        "rows_updated": report.counts.updated,
        "rows_unchanged": report.counts.unchanged,
        "rows_rejected": len(report.rejected),
        "message": "; ".join(extras),
    }


def _ensure_markets(conn: Connection, batches: tuple[MarketBatch, ...]) -> dict[str, int]:
    """Create the tokens and markets the file needs; existing ones are left untouched.

    A market that exists keeps its token (the loaded data may map a renamed ticker the
    importer does not know): its token is not created again under the file's name.
    """
    specs = {b.market.market_key: b.market for b in batches}
    ids = repo.market_ids(conn, specs)
    needed = {s.token for key, s in specs.items() if key not in ids}
    known = repo.token_ids(conn, needed)
    new_tokens = sorted(needed - set(known))
    if new_tokens:
        rows: list[dict[str, Any]] = [
            {"symbol": t, "name": t, "sector": None, "categories": [], "is_stablecoin": False}
            for t in new_tokens
        ]
        known.update(repo.upsert_tokens(conn, rows))
    new_markets = [
        {
            "market_key": s.market_key,
            "token_id": known[s.token],
            "exchange": s.exchange,
            "pair": s.pair,
            "quote": s.quote,
            "instrument": s.instrument,
            "contract_multiplier": s.contract_multiplier,
            "source": s.source,
        }
        for key, s in specs.items()
        if key not in ids
    ]
    if new_markets:
        ids.update(repo.upsert_markets(conn, new_markets))
    return ids
