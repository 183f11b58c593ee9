"""The relational schema. Times are UTC: candle open times are epoch seconds (BigInteger)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite and PostgreSQL; naive input is refused."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: pass a timezone-aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("symbol", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("sector", sa.String(64)),
    sa.Column("categories", sa.JSON, nullable=False, default=list),
    sa.Column("coingecko_id", sa.String(128)),
    sa.Column("cmc_symbol", sa.String(32)),
    sa.Column("circulating_supply", sa.Float),
    sa.Column("total_supply", sa.Float),
    sa.Column("max_supply", sa.Float),
    sa.Column("is_stablecoin", sa.Boolean, nullable=False, default=False),
    sa.Column("primary_market_id", sa.Integer),
    sa.Column(
        "history_market_id",
        sa.Integer,
        comment="market whose earlier daily candles continue the series backwards",
    ),
    sa.Column(
        "history_until",
        sa.BigInteger,
        comment="open time of the primary's first daily candle: history before it",
    ),
    sa.Column("first_candle", sa.BigInteger),
    sa.Column("last_candle", sa.BigInteger),
    sa.Column("notes", sa.Text),
)

markets = sa.Table(
    "markets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("market_key", sa.String(96), nullable=False, unique=True),
    sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id"), nullable=False, index=True),
    sa.Column("exchange", sa.String(32), nullable=False),
    sa.Column("pair", sa.String(48), nullable=False),
    sa.Column("quote", sa.String(16), nullable=False),
    sa.Column("instrument", sa.String(8), nullable=False),
    sa.Column("contract_multiplier", sa.Float, nullable=False, default=1.0),
    sa.Column("source", sa.String(256), nullable=False),
    sa.CheckConstraint("instrument in ('spot', 'perp')", name="instrument"),
    sa.CheckConstraint("contract_multiplier > 0", name="multiplier"),
)

candles = sa.Table(
    "candles",
    metadata,
    sa.Column("market_id", sa.Integer, sa.ForeignKey("markets.id"), primary_key=True),
    sa.Column("timeframe", sa.String(4), primary_key=True),
    sa.Column("open_time", sa.BigInteger, primary_key=True, comment="candle open, epoch s UTC"),
    sa.Column("open", sa.Float, nullable=False),
    sa.Column("high", sa.Float, nullable=False),
    sa.Column("low", sa.Float, nullable=False),
    sa.Column("close", sa.Float, nullable=False),
    sa.Column("volume", sa.Float, nullable=False),
    sa.Column("quote_volume", sa.Float),
    sa.Column("trades", sa.BigInteger),
    sa.CheckConstraint("timeframe in ('1h', '1d')", name="timeframe"),
)

candle_changes = sa.Table(
    "candle_changes",
    metadata,
    sa.Column("version", sa.BigInteger, primary_key=True, comment="candles_version of the write"),
    sa.Column("market_id", sa.Integer, primary_key=True),
    sa.Column("timeframe", sa.String(4), primary_key=True),
    sa.Column("min_open_time", sa.BigInteger, nullable=False, comment="oldest changed candle"),
    comment="which markets each candles_version changed, from when: lets panel snapshots merge",
)

market_caps = sa.Table(
    "market_caps",
    metadata,
    sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id"), primary_key=True),
    sa.Column("snapshot_date", sa.Date, primary_key=True),
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("rank", sa.Integer),
    sa.Column("market_cap", sa.Float),
    sa.Column("price", sa.Float),
    sa.Column("circulating_supply", sa.Float),
    sa.Column("volume_24h", sa.Float),
)

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("metric", sa.String(64), primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("unit", sa.String(16)),
    sa.Column("source", sa.String(64), nullable=False),
)

import_runs = sa.Table(
    "import_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source", sa.String(256), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("rows_total", sa.Integer, nullable=False, default=0),
    sa.Column("rows_inserted", sa.Integer, nullable=False, default=0),
    sa.Column("rows_updated", sa.Integer, nullable=False, default=0),
    sa.Column("rows_unchanged", sa.Integer, nullable=False, default=0),
    sa.Column("rows_rejected", sa.Integer, nullable=False, default=0),
    sa.Column("message", sa.Text),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("import_runs.id"), nullable=False, index=True),
    sa.Column("file", sa.String(512), nullable=False),
    sa.Column("line", sa.Integer),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw", sa.Text),
)

state = sa.Table(
    "state",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    comment="monotonic counters, e.g. candles_version bumped by every candle write",
)


def utcnow() -> datetime:
    """The current time, UTC-aware."""
    return datetime.now(UTC)
