"""api keys, usage and idempotency keys

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 11:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "lookup_id", sa.String(length=16), nullable=False, comment="public part of the key"
        ),
        sa.Column(
            "key_hash", sa.String(length=64), nullable=False, comment="hex HMAC-SHA-256 of the key"
        ),
        sa.Column(
            "account", sa.String(length=32), nullable=False, comment="owner; shared on rotation"
        ),
        sa.Column("name", sa.String(length=128), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("plan", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rotated_from", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["rotated_from"], ["api_keys.id"], name=op.f("fk_api_keys_rotated_from_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("lookup_id", name=op.f("uq_api_keys_lookup_id")),
    )
    op.create_index(op.f("ix_api_keys_account"), "api_keys", ["account"], unique=False)
    op.create_table(
        "usage",
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False, comment="epoch day (UTC)"),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], name=op.f("fk_usage_key_id_api_keys")),
        sa.PrimaryKeyConstraint("key_id", "day", name=op.f("pk_usage")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "owner",
            sa.String(length=80),
            nullable=False,
            comment="key:<id> or ip:<address> of the caller",
        ),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("idem_key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Integer(),
            nullable=True,
            comment="NULL while the first call runs",
        ),
        sa.Column(
            "response",
            sa.LargeBinary(),
            nullable=True,
            comment="stored body; key plaintexts are redacted",
        ),
        sa.Column("content_type", sa.String(length=96), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_idempotency_keys_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("owner", "idem_key", name="uq_idempotency_keys_owner_idem_key"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("usage")
    op.drop_index(op.f("ix_api_keys_account"), table_name="api_keys")
    op.drop_table("api_keys")
