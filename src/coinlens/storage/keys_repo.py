"""Reads and writes of API keys, usage counters and idempotency records (no business rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from coinlens.storage.tables import candles, markets
from coinlens.storage.tables_keys import api_keys, idempotency_keys, usage


def insert_key(conn: Connection, row: Mapping[str, Any]) -> int:
    """Insert one key row; its new id."""
    result = conn.execute(api_keys.insert().values(**row).returning(api_keys.c.id))
    return int(result.scalar_one())


def key_by_lookup(conn: Connection, lookup_id: str) -> Row[Any] | None:
    """The key whose public lookup id is `lookup_id`."""
    return conn.execute(sa.select(api_keys).where(api_keys.c.lookup_id == lookup_id)).first()


def key_exists(conn: Connection, key_id: int) -> bool:
    """Whether a key row with id `key_id` exists (revoked or not)."""
    query = sa.select(api_keys.c.id).where(api_keys.c.id == key_id)
    return conn.execute(query).first() is not None


def key_of_account(conn: Connection, account: str, key_id: int) -> Row[Any] | None:
    """Key `key_id` if (and only if) it belongs to `account`."""
    query = sa.select(api_keys).where(api_keys.c.id == key_id, api_keys.c.account == account)
    return conn.execute(query).first()


def keys_of_account(
    conn: Connection, account: str, *, after_id: int, limit: int
) -> Sequence[Row[Any]]:
    """Up to `limit` keys of `account` with id > after_id, in id order."""
    query = (
        sa.select(api_keys)
        .where(api_keys.c.account == account, api_keys.c.id > after_id)
        .order_by(api_keys.c.id)
        .limit(limit)
    )
    return conn.execute(query).all()


def lock_key(conn: Connection, key_id: int) -> None:
    """Take key `key_id`'s write lock for the rest of the transaction (a no-op update: the row
    lock on PostgreSQL, the database write lock on SQLite), so that what the transaction then
    reads about the key cannot change under it."""
    conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(id=api_keys.c.id))


def live_successor(conn: Connection, key_id: int) -> Row[Any] | None:
    """The unrevoked key rotated from `key_id`, if any."""
    query = sa.select(api_keys).where(
        api_keys.c.rotated_from == key_id, api_keys.c.revoked_at.is_(None)
    )
    return conn.execute(query.order_by(api_keys.c.id.desc())).first()


def update_key(conn: Connection, key_id: int, **values: Any) -> None:
    """Set columns of one key."""
    conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(**values))


def _upsert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def add_usage(
    conn: Connection, counts: Mapping[tuple[int, int], int], last_used: Mapping[int, datetime]
) -> None:
    """Add request counts per (key id, epoch day) and move last_used_at forward. Rows are
    written in key order, so two workers flushing the same keys lock them in the same order
    (in any order, PostgreSQL can deadlock them)."""
    insert = _upsert(conn)
    for (key_id, day), n in sorted(counts.items()):
        stmt = insert(usage).values(key_id=key_id, day=day, requests=n)
        stmt = stmt.on_conflict_do_update(
            index_elements=[usage.c.key_id, usage.c.day],
            set_={"requests": usage.c.requests + stmt.excluded.requests},
        )
        conn.execute(stmt)
    for key_id, when in sorted(last_used.items()):
        conn.execute(
            api_keys.update()
            .where(
                api_keys.c.id == key_id,
                sa.or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < when),
            )
            .values(last_used_at=when)
        )


def usage_of_account(
    conn: Connection,
    account: str,
    *,
    start_day: int,
    end_day: int,
    after: tuple[int, int] | None,
    limit: int,
) -> list[tuple[int, int, str, int]]:
    """(day, key_id, lookup_id, requests) of the account's keys, by day then key id."""
    query = (
        sa.select(usage.c.day, usage.c.key_id, api_keys.c.lookup_id, usage.c.requests)
        .join(api_keys, api_keys.c.id == usage.c.key_id)
        .where(api_keys.c.account == account, usage.c.day.between(start_day, end_day))
        .order_by(usage.c.day, usage.c.key_id)
    )
    if after is not None:
        day, key_id = after
        query = query.where(
            sa.or_(usage.c.day > day, sa.and_(usage.c.day == day, usage.c.key_id > key_id))
        )
    return [(int(d), int(k), str(lk), int(n)) for d, k, lk, n in conn.execute(query.limit(limit))]


def claim_idempotency(conn: Connection, row: Mapping[str, Any]) -> Row[Any] | None:
    """Record a new idempotency key; the existing record instead if the owner used it before."""
    insert = _upsert(conn)
    stmt = (
        insert(idempotency_keys)
        .values(**row)
        .on_conflict_do_nothing()
        .returning(idempotency_keys.c.id)
    )
    if conn.execute(stmt).first() is not None:
        return None
    query = sa.select(idempotency_keys).where(
        idempotency_keys.c.owner == row["owner"], idempotency_keys.c.idem_key == row["idem_key"]
    )
    return conn.execute(query).first()


def finish_idempotency(
    conn: Connection, owner: str, idem_key: str, *, status: int, body: bytes, content_type: str
) -> None:
    """Store the answer given to the first request of an idempotency key."""
    conn.execute(
        idempotency_keys.update()
        .where(idempotency_keys.c.owner == owner, idempotency_keys.c.idem_key == idem_key)
        .values(status=status, response=body, content_type=content_type)
    )


def release_idempotency(conn: Connection, owner: str, idem_key: str) -> None:
    """Forget an idempotency key whose first request failed (it may be retried)."""
    conn.execute(
        idempotency_keys.delete().where(
            idempotency_keys.c.owner == owner, idempotency_keys.c.idem_key == idem_key
        )
    )


def latest_candle_by_source(conn: Connection) -> dict[str, int]:
    """source → newest daily candle open time (epoch s) across its markets (a market merged
    from several sources, `a,b`, counts for each)."""
    newest = (
        sa.select(sa.func.max(candles.c.open_time))
        .where(candles.c.market_id == markets.c.id, candles.c.timeframe == "1d")
        .scalar_subquery()
    )
    out: dict[str, int] = {}
    for sources, last in conn.execute(sa.select(markets.c.source, newest)):
        for source in str(sources).split(",") if last is not None else ():
            out[source] = max(out.get(source, 0), int(last))
    return out
