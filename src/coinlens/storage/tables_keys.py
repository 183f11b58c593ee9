"""Tables for API keys (hashes only, never plaintext), daily usage and idempotent POST replays."""

from __future__ import annotations

import sqlalchemy as sa

from coinlens.storage.tables import UtcDateTime, metadata

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "lookup_id", sa.String(16), nullable=False, unique=True, comment="public part of the key"
    ),
    sa.Column("key_hash", sa.String(64), nullable=False, comment="hex HMAC-SHA-256 of the key"),
    sa.Column(
        "account", sa.String(32), nullable=False, index=True, comment="owner; shared on rotation"
    ),
    sa.Column("name", sa.String(128)),
    sa.Column("email", sa.String(254)),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("plan", sa.String(32), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_used_at", UtcDateTime),
    sa.Column("expires_at", UtcDateTime),
    sa.Column("revoked_at", UtcDateTime),
    sa.Column("rotated_from", sa.Integer, sa.ForeignKey("api_keys.id")),
)

usage = sa.Table(
    "usage",
    metadata,
    sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), primary_key=True),
    sa.Column("day", sa.Integer, primary_key=True, comment="epoch day (UTC)"),
    sa.Column("requests", sa.BigInteger, nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "owner", sa.String(80), nullable=False, comment="key:<id> or ip:<address> of the caller"
    ),
    sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id")),
    sa.Column("idem_key", sa.String(128), nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer, comment="NULL while the first call runs"),
    sa.Column("response", sa.LargeBinary, comment="stored body; key plaintexts are redacted"),
    sa.Column("content_type", sa.String(96)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("owner", "idem_key", name="uq_idempotency_keys_owner_idem_key"),
)
