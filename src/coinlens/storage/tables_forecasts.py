"""Tables for forecast models (versioned artifacts), their quantile forecasts and the
method's walk-forward evaluations (and the grades')."""

from __future__ import annotations

import sqlalchemy as sa

from coinlens.storage.tables import UtcDateTime, metadata

models = sa.Table(
    "models",
    metadata,
    sa.Column("model_id", sa.String(96), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("trained_at", UtcDateTime, nullable=False),
    sa.Column("cutoff_day", sa.Integer, nullable=False, comment="last epoch day of training data"),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False, comment="measured out-of-sample accuracy"),
    sa.Column("artifact", sa.LargeBinary),
)

forecasts = sa.Table(
    "forecasts",
    metadata,
    sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id"), primary_key=True),
    sa.Column(
        "origin_day", sa.Integer, primary_key=True, comment="epoch day of the last close used"
    ),
    sa.Column("horizon", sa.Integer, primary_key=True, comment="days ahead"),
    sa.Column("model_id", sa.String(96), sa.ForeignKey("models.model_id"), primary_key=True),
    sa.Column("p05", sa.Float, nullable=False),
    sa.Column("p10", sa.Float, nullable=False),
    sa.Column("p25", sa.Float, nullable=False),
    sa.Column("p50", sa.Float, nullable=False),
    sa.Column("p75", sa.Float, nullable=False),
    sa.Column("p90", sa.Float, nullable=False),
    sa.Column("p95", sa.Float, nullable=False),
)

evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "kind", sa.String(32), nullable=False, comment="what was evaluated: forecasts or grades"
    ),
    sa.Column("evaluated_at", UtcDateTime, nullable=False),
    sa.Column("data_end_day", sa.Integer, nullable=False, comment="last epoch day evaluated"),
    sa.Column("summary", sa.JSON, nullable=False, comment="headline out-of-sample figures"),
    sa.Index("ix_evaluations_kind_evaluated_at", "kind", "evaluated_at"),
    comment="full walk-forward evaluations of a method (quick and development runs not kept)",
)
