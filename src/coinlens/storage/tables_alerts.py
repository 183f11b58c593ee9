"""Tables for alert rules, their events and the delivery outbox (one row per event × channel).

Channel URLs are stored Fernet-encrypted (`channels_enc`); `channels_meta` keeps only the
kind, a redacted form and the pacing destination. `alert_events` has one row per firing,
unique per (rule, rule version), so two evaluators racing on one update write one event.
"""

from __future__ import annotations

import sqlalchemy as sa

from coinlens.storage import tables_keys  # noqa: F401 - api_keys must exist for the FK
from coinlens.storage.tables import UtcDateTime, metadata

alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "owner_key_id",
        sa.Integer,
        sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False, comment="kind parameters as validated"),
    sa.Column("channels_enc", sa.JSON, nullable=False, comment="Fernet-encrypted channel URLs"),
    sa.Column("channels_meta", sa.JSON, nullable=False, comment="kind, redacted, destination"),
    sa.Column("cooldown_seconds", sa.Integer, nullable=False),
    sa.Column("expires_at", UtcDateTime),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("quiet_hours", sa.JSON),
    sa.Column("note", sa.String(200)),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("armed", sa.SmallInteger, nullable=False, comment="-1 unprimed, 0 fired, 1 armed"),
    sa.Column("ref", sa.Float, comment="grade_move: value at arming; signal_flip: last signal"),
    sa.Column("last_fired_at", UtcDateTime),
    sa.Column("version", sa.Integer, nullable=False, comment="bumped by every state change"),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "rule_id",
        sa.Integer,
        sa.ForeignKey("alert_rules.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("rule_version", sa.Integer, nullable=False),
    sa.Column("key", sa.String(64), nullable=False, unique=True, comment="idempotency key"),
    sa.Column("fired_at", UtcDateTime, nullable=False),
    sa.Column("context", sa.JSON, nullable=False, comment="what the evaluator saw"),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.UniqueConstraint("rule_id", "rule_version", name="uq_alert_events_rule_version"),
)

alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "event_id",
        sa.Integer,
        sa.ForeignKey("alert_events.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("channel_index", sa.SmallInteger, nullable=False),
    sa.Column("destination", sa.String(48), nullable=False),
    sa.Column("key", sa.String(80), nullable=False, unique=True, comment="idempotency key"),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("lease_until", UtcDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("last_status", sa.Integer),
    sa.Column("sent_at", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.CheckConstraint("status in ('pending', 'sending', 'sent', 'dead')", name="status"),
    sa.Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
)
