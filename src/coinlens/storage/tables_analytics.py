"""Tables for the analytics core's stored outputs (signals, levels, ROI/risk, backtests)."""

from __future__ import annotations

import sqlalchemy as sa

from coinlens.storage.tables import UtcDateTime, metadata

token_analytics = sa.Table(
    "token_analytics",
    metadata,
    sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id"), primary_key=True),
    sa.Column(
        "as_of_day", sa.Integer, nullable=False, comment="epoch day (UTC) of the last close used"
    ),
    sa.Column("panel_version", sa.BigInteger, nullable=False),
    sa.Column("signal", sa.SmallInteger, nullable=False),
    sa.Column("score", sa.Float),
    sa.Column("signal_since_day", sa.Integer),
    sa.Column("payload", sa.JSON, nullable=False, comment="latest indicators, ROI, risk, levels"),
    sa.Column("computed_at", UtcDateTime, nullable=False),
)

signal_events = sa.Table(
    "signal_events",
    metadata,
    sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id"), primary_key=True),
    sa.Column("day", sa.Integer, primary_key=True, comment="epoch day (UTC) of the change"),
    sa.Column("from_signal", sa.SmallInteger, nullable=False),
    sa.Column("to_signal", sa.SmallInteger, nullable=False),
    sa.Column("price", sa.Float, nullable=False),
    sa.Column("score", sa.Float),
)

backtests = sa.Table(
    "backtests",
    metadata,
    sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id"), primary_key=True),
    sa.Column("params_key", sa.String(128), primary_key=True),
    sa.Column("as_of_day", sa.Integer, nullable=False),
    sa.Column(
        "payload", sa.JSON, nullable=False, comment="strategy vs buy-and-hold metrics + params"
    ),
    sa.Column("computed_at", UtcDateTime, nullable=False),
)
