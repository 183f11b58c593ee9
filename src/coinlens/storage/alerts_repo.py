"""Queries on alert rules, events and the delivery outbox.

`write_firings` stores events, their deliveries and the rules' new state in one
transaction; an event is unique per (rule, rule version) and a rule's state update is
guarded by its version, so a stale or racing evaluator writes nothing twice.
`SqlDeliveryStore` is the worker's outbox: PostgreSQL claims with FOR UPDATE SKIP LOCKED,
SQLite (one writer at a time) with an atomic UPDATE … WHERE id IN (…) that sets a lease.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from coinlens.storage.tables import tokens
from coinlens.storage.tables_alerts import alert_deliveries, alert_events, alert_rules

_CHUNK = 500


def count_rules(conn: Connection, owner: int) -> int:
    """How many rules a key owns."""
    q = sa.select(sa.func.count()).select_from(alert_rules)
    return int(conn.execute(q.where(alert_rules.c.owner_key_id == owner)).scalar_one())


def lock_owner(conn: Connection, owner: int) -> None:
    """Serialise rule creation per key on PostgreSQL (the per-key limit stays exact)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7007, :k)"), {"k": owner})


def insert_rule(conn: Connection, row: Mapping[str, Any]) -> int:
    """Store a rule; its id."""
    result = conn.execute(alert_rules.insert().values(**row).returning(alert_rules.c.id))
    return int(result.scalar_one())


def token_ids(conn: Connection, symbols: Iterable[str]) -> dict[str, int]:
    """Token id by upper-case symbol for the symbols that exist."""
    wanted = {s.upper() for s in symbols}
    q = sa.select(tokens.c.symbol, tokens.c.id).where(sa.func.upper(tokens.c.symbol).in_(wanted))
    return {str(s).upper(): int(i) for s, i in conn.execute(q)}


def _rules_select() -> sa.Select[Any]:
    return sa.select(alert_rules, tokens.c.symbol).join(
        tokens, tokens.c.id == alert_rules.c.token_id
    )


def list_rules(conn: Connection, owner: int) -> list[dict[str, Any]]:
    """A key's rules, newest first."""
    q = _rules_select().where(alert_rules.c.owner_key_id == owner)
    return [dict(r._mapping) for r in conn.execute(q.order_by(alert_rules.c.id.desc()))]


def get_rule(conn: Connection, owner: int | None, rule_id: int) -> dict[str, Any] | None:
    """One rule (of `owner`, unless None), or None."""
    q = _rules_select().where(alert_rules.c.id == rule_id)
    if owner is not None:
        q = q.where(alert_rules.c.owner_key_id == owner)
    row = conn.execute(q).first()
    return dict(row._mapping) if row else None


def update_rule(conn: Connection, rule_id: int, values: Mapping[str, Any]) -> None:
    """Change a rule's options; bumps its version (a racing evaluator then writes nothing)."""
    stmt = alert_rules.update().where(alert_rules.c.id == rule_id)
    conn.execute(stmt.values(**values, version=alert_rules.c.version + 1))


CHANNEL_REMOVED = "channel removed from the rule before delivery"


def remap_deliveries(conn: Connection, rule_id: int, moves: Mapping[int, int]) -> None:
    """Follow a change of a rule's channel list in its deliveries: a channel kept at another
    position moves to its new index (`moves`: old → new); a removed one gets a negative index
    (−1 − old, shown as removed) and its still-pending deliveries are dropped (dead, reason
    CHANNEL_REMOVED). Without this a delivery kept its old index: it went to whichever channel
    now sat there (a second copy to a kept channel) or past the end of the list."""
    d = alert_deliveries
    events = sa.select(alert_events.c.id).where(alert_events.c.rule_id == rule_id)
    mine = d.c.event_id.in_(events.scalar_subquery()) & (d.c.channel_index >= 0)
    removed = mine & d.c.channel_index.not_in(list(moves))
    conn.execute(
        d.update()
        .where(removed & (d.c.status == "pending"))
        .values(status="dead", last_error=CHANNEL_REMOVED, last_status=None)
    )
    whens = [(d.c.channel_index == old, new) for old, new in moves.items()]
    index = sa.case(*whens, else_=-1 - d.c.channel_index) if whens else -1 - d.c.channel_index
    conn.execute(d.update().where(mine).values(channel_index=index))


def delete_rule(conn: Connection, owner: int, rule_id: int) -> bool:
    """Delete a rule with its events and deliveries; whether it existed."""
    ids = sa.select(alert_events.c.id).where(alert_events.c.rule_id == rule_id)
    owned = (alert_rules.c.id == rule_id) & (alert_rules.c.owner_key_id == owner)
    if conn.execute(sa.select(alert_rules.c.id).where(owned)).first() is None:
        return False
    conn.execute(alert_deliveries.delete().where(alert_deliveries.c.event_id.in_(ids)))
    conn.execute(alert_events.delete().where(alert_events.c.rule_id == rule_id))
    conn.execute(alert_rules.delete().where(owned))
    return True


EVAL_COLUMNS = (
    "id", "token_id", "kind", "spec", "cooldown_seconds", "expires_at", "armed", "ref",
    "last_fired_at", "version",
)  # fmt: skip


def active_rules(conn: Connection, token_filter: Sequence[int] | None = None) -> list[Any]:
    """Rows (EVAL_COLUMNS) of every active rule, optionally only for some tokens."""
    q = sa.select(*(alert_rules.c[c] for c in EVAL_COLUMNS)).where(alert_rules.c.active)
    if token_filter is not None:
        q = q.where(alert_rules.c.token_id.in_(list(token_filter)))
    return list(conn.execute(q.order_by(alert_rules.c.id)))


def _insert_events(conn: Connection, events: list[dict[str, Any]]) -> dict[int, int]:
    """Insert events, skipping (rule, version) pairs already stored; event id by rule id."""
    out: dict[int, int] = {}
    insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    # executemany + RETURNING: compiled once and cached (a 500-row VALUES literal is not).
    # No conflict target: the idempotency key is a function of (rule, version), so a clash
    # on either unique index is the same event. With the (rule_id, rule_version) target only,
    # PostgreSQL let a racing evaluator's insert fail on the key's index (UniqueViolation)
    # instead of skipping it.
    stmt = insert(alert_events).on_conflict_do_nothing()
    stmt = stmt.returning(alert_events.c.id, alert_events.c.rule_id)
    for i in range(0, len(events), _CHUNK):
        for ev_id, rule_id in conn.execute(stmt, events[i : i + _CHUNK]):
            out[int(rule_id)] = int(ev_id)
    return out


def write_firings(
    conn: Connection,
    updates: list[dict[str, Any]],
    events: list[dict[str, Any]],
    deliveries: Callable[[int, int], list[dict[str, Any]]],
) -> dict[int, int]:
    """Events + their deliveries + rule state, in the caller's transaction; the new event's
    id by rule id (rules another evaluator already fired for this version are left out).

    `updates` rows hold rule_id, expected version, armed, ref, last_fired_at;
    `deliveries(rule_id, event_id)` builds the outbox rows of a stored event.
    """
    stored = _insert_events(conn, events) if events else {}
    rows = [row for rule_id, ev_id in stored.items() for row in deliveries(rule_id, ev_id)]
    for i in range(0, len(rows), _CHUNK):
        conn.execute(alert_deliveries.insert(), rows[i : i + _CHUNK])
    if updates:
        stmt = (
            alert_rules.update()
            .where(alert_rules.c.id == sa.bindparam("rule_id"))
            .where(alert_rules.c.version == sa.bindparam("expected"))
            .values(
                armed=sa.bindparam("armed"),
                ref=sa.bindparam("ref"),
                last_fired_at=sa.bindparam("fired"),
                version=alert_rules.c.version + 1,
            )
        )
        conn.execute(stmt, updates)
    return stored


def rule_log(conn: Connection, rule_id: int, limit: int) -> list[tuple[dict[str, Any], list[Any]]]:
    """A rule's newest events with their deliveries."""
    q = (
        sa.select(alert_events)
        .where(alert_events.c.rule_id == rule_id)
        .order_by(alert_events.c.id.desc())
        .limit(limit)
    )
    events = [dict(r._mapping) for r in conn.execute(q)]
    ids = [e["id"] for e in events]
    dq = (
        sa.select(alert_deliveries)
        .where(alert_deliveries.c.event_id.in_(ids))
        .order_by(alert_deliveries.c.channel_index)
    )
    by_event: dict[int, list[Any]] = {i: [] for i in ids}
    for d in conn.execute(dq):
        by_event[d.event_id].append(d)
    return [(e, by_event[e["id"]]) for e in events]


def delivery_counts(conn: Connection) -> dict[str, int]:
    """Outbox rows by status."""
    q = sa.select(alert_deliveries.c.status, sa.func.count()).group_by(alert_deliveries.c.status)
    return {str(s): int(n) for s, n in conn.execute(q)}


class SqlDeliveryStore:
    """The outbox on the database (rows carry the channel URL still encrypted)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, now: datetime, limit: int, lease: timedelta) -> list[dict[str, Any]]:
        """Lease up to `limit` due rows: pending and due, or leased by a worker that died."""
        d = alert_deliveries
        due = (d.c.status == "pending") & (d.c.next_attempt_at <= now)
        expired = (d.c.status == "sending") & (d.c.lease_until < now)
        pick = sa.select(d.c.id).where(due | expired).order_by(d.c.next_attempt_at).limit(limit)
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            stmt = (
                d.update()
                .where(d.c.id.in_(pick.scalar_subquery()))
                .values(status="sending", attempts=d.c.attempts + 1, lease_until=now + lease)
                .returning(d.c.id, d.c.key, d.c.attempts, d.c.destination, d.c.event_id,
                           d.c.channel_index)
            )  # fmt: skip
            claimed = list(conn.execute(stmt))
            if not claimed:
                return []
            q = (
                sa.select(alert_events.c.id, alert_events.c.title, alert_events.c.body,
                          alert_rules.c.channels_enc)
                .join(alert_rules, alert_rules.c.id == alert_events.c.rule_id)
                .where(alert_events.c.id.in_({c.event_id for c in claimed}))
            )  # fmt: skip
            events = {r.id: r for r in conn.execute(q)}
            sendable = [
                c for c in claimed
                if c.event_id in events
                and 0 <= c.channel_index < len(events[c.event_id].channels_enc)
            ]  # fmt: skip
            gone = {c.id for c in claimed} - {c.id for c in sendable}
            if gone:  # its channel left the rule (or the rule went): nothing to send to
                conn.execute(
                    d.update()
                    .where(d.c.id.in_(gone))
                    .values(status="dead", lease_until=None, last_error=CHANNEL_REMOVED)
                )
        return [
            {
                "id": c.id,
                "key": c.key,
                "url_enc": events[c.event_id].channels_enc[c.channel_index],
                "destination": c.destination,
                "title": events[c.event_id].title,
                "body": events[c.event_id].body,
                "attempts": c.attempts,
            }
            for c in sorted(sendable, key=lambda c: c.id)
        ]

    def record(self, marks: Sequence[Mapping[str, Any]]) -> None:
        """Store outcomes of leased rows in one transaction (one commit per worker batch).

        Each mark: `job_id`, `status` (sent / pending / dead), `at` (sent time, or when due
        again), `http_status`, `error`, `released` (handed back untried: attempt not counted).
        Only rows still `sending` change, so a mark never overwrites another worker's outcome.
        """
        groups: dict[str, list[dict[str, Any]]] = {}
        for m in marks:
            kind = m["status"]
            if kind == "pending":
                kind = "released" if m.get("released") else "retry"
            groups.setdefault(kind, []).append(
                {k: m.get(k) for k in ("job_id", "at", "http_status", "error")}
            )
        with self.engine.begin() as conn:  # one commit; each group one executemany
            for kind, rows in groups.items():
                conn.execute(_MARK_STATEMENTS[kind], rows)


def _mark_statements() -> dict[str, Any]:
    """The outcome updates, built once (building them per commit cost more than running them)."""
    d, p = alert_deliveries, sa.bindparam
    base = d.update().where(d.c.id == p("job_id"), d.c.status == "sending")
    base = base.values(lease_until=None)
    return {
        "sent": base.values(status="sent", sent_at=p("at"), last_status=p("http_status")),
        "released": base.values(
            status="pending", next_attempt_at=p("at"), attempts=d.c.attempts - 1
        ),
        "retry": base.values(
            status="pending",
            next_attempt_at=p("at"),
            last_error=p("error"),
            last_status=p("http_status"),
        ),
        "dead": base.values(status="dead", last_error=p("error"), last_status=p("http_status")),
    }


_MARK_STATEMENTS = _mark_statements()


# --- market state inputs ------------------------------------------------------------------


def latest_grades(conn: Connection) -> list[tuple[int, float, float | None]]:
    """(token_id, trader, investor) on each token's latest graded day."""
    from coinlens.storage.tables_grades import grades

    last = (
        sa.select(grades.c.token_id, sa.func.max(grades.c.day).label("day"))
        .group_by(grades.c.token_id)
        .subquery()
    )
    q = sa.select(grades.c.token_id, grades.c.trader, grades.c.investor).join(
        last, (last.c.token_id == grades.c.token_id) & (last.c.day == grades.c.day)
    )
    return [
        (int(t), float(tr), None if inv is None else float(inv)) for t, tr, inv in conn.execute(q)
    ]


def latest_signals(conn: Connection) -> list[tuple[int, int, Any]]:
    """(token_id, signal, levels payload) of every token with stored analytics."""
    from coinlens.storage.tables_analytics import token_analytics as ta

    q = sa.select(ta.c.token_id, ta.c.signal, ta.c.payload)
    return [(int(t), int(s), (p or {}).get("levels")) for t, s, p in conn.execute(q)]


def hourly_closes(conn: Connection) -> list[tuple[int, int, float]]:
    """(token_id, open_time, close) of the last two 1h candles of each primary market."""
    from coinlens.storage.tables import candles, markets

    c, t = candles, tokens
    last = (
        sa.select(c.c.market_id, sa.func.max(c.c.open_time).label("last"))
        .where(c.c.timeframe == "1h")
        .group_by(c.c.market_id)
        .subquery()
    )
    q = (
        sa.select(t.c.id, c.c.open_time, c.c.close / markets.c.contract_multiplier)
        .join(t, t.c.primary_market_id == c.c.market_id)
        .join(markets, markets.c.id == c.c.market_id)
        .join(last, last.c.market_id == c.c.market_id)
        .where(c.c.timeframe == "1h", c.c.open_time >= last.c.last - 3600)
    )
    return [(int(i), int(o), float(v)) for i, o, v in conn.execute(q)]


def token_ids_all(conn: Connection) -> list[int]:
    """Every token id."""
    return [int(i) for (i,) in conn.execute(sa.select(tokens.c.id))]


def symbols_by_id(conn: Connection) -> dict[int, str]:
    """Symbol of every token id."""
    return {int(i): str(s) for i, s in conn.execute(sa.select(tokens.c.id, tokens.c.symbol))}


def rules_meta(conn: Connection, rule_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Delivery options (symbol, zone, quiet hours, channel meta, owner key) of rules, by id."""
    out: dict[int, dict[str, Any]] = {}
    ids = list(rule_ids)
    for i in range(0, len(ids), _CHUNK):
        q = sa.select(
            alert_rules.c.id, tokens.c.symbol, alert_rules.c.timezone,
            alert_rules.c.quiet_hours, alert_rules.c.channels_meta, alert_rules.c.owner_key_id,
        ).join(tokens, tokens.c.id == alert_rules.c.token_id).where(
            alert_rules.c.id.in_(ids[i : i + _CHUNK])
        )  # fmt: skip
        for r in conn.execute(q):
            out[int(r.id)] = dict(r._mapping)
    return out
