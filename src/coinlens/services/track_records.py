"""Stored track records: the newest full evaluation of a method (forecasts, grades), kept in
the `evaluations` table and served next to what the method produces."""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol, TypeVar

from sqlalchemy.engine import Connection

from coinlens.domain.models import DomainModel
from coinlens.services.analytics_queries import to_date, to_day
from coinlens.services.context import Context
from coinlens.storage import forecasts_repo as repo


class Record(Protocol):
    evaluated_at: datetime
    data_end: date
    method: str

    def model_dump(self, *, mode: str, exclude: set[str]) -> dict[str, object]: ...


R = TypeVar("R", bound=DomainModel)


def save(ctx: Context, kind: str, record: Record) -> None:
    """Keep `record` as the newest track record of `kind`."""
    summary = record.model_dump(mode="json", exclude={"evaluated_at", "data_end"})
    with ctx.engine.begin() as conn:
        repo.save_evaluation(
            conn,
            {
                "kind": kind,
                "evaluated_at": record.evaluated_at,
                "data_end_day": to_day(record.data_end),
                "summary": summary,
            },
        )


def latest(conn: Connection, kind: str, method: str, model: type[R]) -> R | None:
    """The newest stored record of `kind`, or None (also when it measured another method
    than `method`, the fingerprint of what is computed now)."""
    row = repo.latest_evaluation(conn, kind)
    if row is None or row["summary"].get("method") != method:
        return None
    return model.model_validate(
        {
            **row["summary"],
            "evaluated_at": row["evaluated_at"],
            "data_end": to_date(row["data_end_day"]),
        }
    )
