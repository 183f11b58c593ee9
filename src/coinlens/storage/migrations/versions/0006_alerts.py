"""alerts: rules, events and the delivery outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_key_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False, comment="kind parameters as validated"),
        sa.Column(
            "channels_enc", sa.JSON(), nullable=False, comment="Fernet-encrypted channel URLs"
        ),
        sa.Column(
            "channels_meta", sa.JSON(), nullable=False, comment="kind, redacted, destination"
        ),
        sa.Column("cooldown_seconds", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("quiet_hours", sa.JSON(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "armed", sa.SmallInteger(), nullable=False, comment="-1 unprimed, 0 fired, 1 armed"
        ),
        sa.Column(
            "ref",
            sa.Float(),
            nullable=True,
            comment="grade_move: value at arming; signal_flip: last signal",
        ),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False, comment="bumped by every state change"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_key_id"],
            ["api_keys.id"],
            name=op.f("fk_alert_rules_owner_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["token_id"], ["tokens.id"], name=op.f("fk_alert_rules_token_id_tokens")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
    )
    op.create_index(
        op.f("ix_alert_rules_owner_key_id"), "alert_rules", ["owner_key_id"], unique=False
    )
    op.create_index(op.f("ix_alert_rules_token_id"), "alert_rules", ["token_id"], unique=False)
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False, comment="idempotency key"),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False, comment="what the evaluator saw"),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["alert_rules.id"],
            name=op.f("fk_alert_events_rule_id_alert_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
        sa.UniqueConstraint("key", name=op.f("uq_alert_events_key")),
        sa.UniqueConstraint("rule_id", "rule_version", name="uq_alert_events_rule_version"),
    )
    op.create_index(op.f("ix_alert_events_rule_id"), "alert_events", ["rule_id"], unique=False)
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("channel_index", sa.SmallInteger(), nullable=False),
        sa.Column("destination", sa.String(length=48), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False, comment="idempotency key"),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status in ('pending', 'sending', 'sent', 'dead')",
            name=op.f("ck_alert_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["alert_events.id"],
            name=op.f("fk_alert_deliveries_event_id_alert_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint("key", name=op.f("uq_alert_deliveries_key")),
    )
    op.create_index(
        op.f("ix_alert_deliveries_event_id"), "alert_deliveries", ["event_id"], unique=False
    )
    op.create_index(
        "ix_alert_deliveries_due",
        "alert_deliveries",
        ["status", "next_attempt_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_alert_deliveries_due", table_name="alert_deliveries")
    op.drop_index(op.f("ix_alert_deliveries_event_id"), table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index(op.f("ix_alert_events_rule_id"), table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_index(op.f("ix_alert_rules_token_id"), table_name="alert_rules")
    op.drop_index(op.f("ix_alert_rules_owner_key_id"), table_name="alert_rules")
    op.drop_table("alert_rules")
