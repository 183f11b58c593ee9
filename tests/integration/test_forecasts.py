"""Forecast service on both databases: train, predict, store, retrain only when due."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import sqlalchemy as sa

from coinlens.analytics.forecast import ForecastConfig
from coinlens.domain.errors import DataUnavailable, NotFound, ValidationFailed
from coinlens.services import analytics_queries, forecasts
from coinlens.services.analytics import run_analytics
from coinlens.services.context import Context
from coinlens.storage import forecasts_repo, repo

T0_DAY = 19_000  # 2022-01-08
SMALL = ForecastConfig(n_trees=5, min_data_in_leaf=50, max_rows=5_000, calib_days=60, min_age=30)


def _load(ctx: Context, days: int, tokens: int = 12) -> None:
    rng = np.random.default_rng(4)
    with ctx.engine.begin() as conn:
        ids = repo.upsert_tokens(
            conn,
            [
                {"symbol": f"SYN{i}", "name": f"SYN{i} (SYNTHETIC)", "categories": []}
                for i in range(tokens)
            ],
        )
        mids = repo.upsert_markets(
            conn,
            [
                {
                    "market_key": f"synthetic:spot:SYN{i}USDT",
                    "token_id": ids[f"SYN{i}"],
                    "exchange": "synthetic",
                    "pair": f"SYN{i}USDT",
                    "quote": "USDT",
                    "instrument": "spot",
                    "contract_multiplier": 1.0,
                    "source": "synthetic",
                }
                for i in range(tokens)
            ],
        )
        for i in range(tokens):
            close = 10 * np.exp(np.cumsum(rng.normal(0, 0.04, days)))
            start = 350 if i == tokens - 1 else 0  # the last token: too little history
            rows = [
                {
                    "open_time": (T0_DAY + d) * 86_400,
                    "open": c,
                    "high": c * 1.01,
                    "low": c * 0.99,
                    "close": c,
                    "volume": 1000.0,
                    "quote_volume": None,
                    "trades": None,
                }
                for d, c in enumerate(close)
                if d >= start
            ]
            repo.write_candles(conn, mids[f"synthetic:spot:SYN{i}USDT"], "1d", rows)
        repo.refresh_token_spans(conn)


def test_run_trains_predicts_and_retrains_only_when_due(ctx: Context) -> None:
    _load(ctx, days=500)
    first = forecasts.run_forecasts(ctx, SMALL)
    assert first.retrained
    assert first.tokens == 11  # the late listing has < 200 closes
    assert first.rows == 11 * 4
    again = forecasts.run_forecasts(ctx, SMALL)
    assert not again.retrained
    assert again.model_id == first.model_id
    with ctx.engine.connect() as conn:
        assert forecasts_repo.count_forecasts(conn, first.model_id) == 44  # idempotent
    models = forecasts.list_models(ctx)
    assert {m.kind for m in models} == {"lgbm-quantile", "random-walk"}
    lgbm = next(m for m in models if m.kind == "lgbm-quantile")
    assert lgbm.cutoff == dt.date(1970, 1, 1) + dt.timedelta(days=T0_DAY + 499)
    assert "ret_30d" in lgbm.features
    assert set(lgbm.metrics) >= {"1d", "7d", "30d", "90d"}
    # the synthetic data end years before today: the forecast says its origin is old, as the
    # signals and levels answers do (its target dates have passed)
    age = (dt.datetime.now(dt.UTC).date() - forecasts.get_predictions(ctx, "SYN0").origin).days
    assert forecasts.get_predictions(ctx, "SYN0").warnings == [
        f"stale: last candle is {age} days old"
    ]


def _stored(ctx: Context) -> list[tuple]:
    from coinlens.storage.tables_forecasts import forecasts as table

    with ctx.engine.connect() as conn:
        rows = conn.execute(table.select().order_by(*table.primary_key.columns)).all()
    return [tuple(r) for r in rows]


def test_token_parts_store_what_one_prediction_stores(ctx: Context) -> None:
    _load(ctx, days=500)
    first = forecasts.run_forecasts(ctx, SMALL)
    whole = _stored(ctx)
    assert len(whole) == 2 * 44  # the model's and the random walk's
    with ctx.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM forecasts"))

    assert forecasts.predict_part(ctx, 1, 2, SMALL) == first.model_id
    odd = _stored(ctx)
    assert odd
    assert all(row in whole for row in odd)
    assert len({r[0] for r in odd}) < 11  # only part 1's tokens so far
    assert forecasts.predict_part(ctx, 0, 2, SMALL) == first.model_id  # leaves part 1's rows alone
    assert _stored(ctx) == whole
    assert forecasts.predict_part(ctx, 0, 2, SMALL) == first.model_id  # idempotent
    assert _stored(ctx) == whole

    # the join then has nothing left to predict, unless the parts used another model
    done = forecasts.run_forecasts(ctx, SMALL, predicted_with=first.model_id)
    assert (done.retrained, done.tokens) == (False, 0)
    redo = forecasts.run_forecasts(ctx, SMALL, predicted_with="lgbm-q-older")
    assert redo.tokens == 11
    assert _stored(ctx) == whole


def test_predicting_in_token_chunks_stores_what_one_pass_stores(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load(ctx, days=500)
    first = forecasts.run_forecasts(ctx, SMALL)
    whole = _stored(ctx)
    with ctx.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM forecasts"))
    monkeypatch.setattr(forecasts, "PREDICT_CHUNK", 4)  # 11 tokens: chunks of 4, 4 and 3
    assert forecasts.predict_latest(ctx, first.model_id) == (11, len(whole) // 2)
    assert _stored(ctx) == whole


def test_parts_defer_to_the_join_when_a_retrain_is_due(ctx: Context) -> None:
    _load(ctx, days=500)
    assert forecasts.predict_part(ctx, 0, 2, SMALL) is None  # no model yet: the join trains
    assert _stored(ctx) == []


def test_queries_answer_with_reasons(ctx: Context) -> None:
    _load(ctx, days=500)
    forecasts.run_forecasts(ctx, SMALL)
    pred = forecasts.get_predictions(ctx, "syn1")
    assert [h.horizon for h in pred.horizons] == [1, 7, 30, 90]
    q = pred.horizons[-1].quantiles
    assert q.p05 <= q.p25 <= q.p50 <= q.p75 <= q.p95
    assert pred.horizons[0].baseline is not None
    scen = forecasts.get_scenarios(ctx, "SYN1")
    assert scen.scenarios[0].bear == pytest.approx(pred.horizons[0].quantiles.p10)
    # no analytics run: the scenarios stand without key levels, and say why
    assert scen.levels == []
    assert scen.levels_as_of is None
    assert scen.scenarios[-1].bull_levels.crossed == []
    assert scen.scenarios[-1].bull_levels.beyond is None
    assert any("key levels unavailable" in w for w in scen.warnings)
    by = pred.origin + dt.timedelta(days=60)
    prob = forecasts.probability(ctx, "SYN1", pred.last_close * 1.5, by)
    assert 0 <= prob.p_at <= prob.p_by <= 1
    first, last = pred.origin + dt.timedelta(days=1), pred.origin + dt.timedelta(days=366)
    with pytest.raises(ValidationFailed) as too_early:  # the detail alone says what to ask
        forecasts.probability(ctx, "SYN1", 1.0, pred.origin - dt.timedelta(days=1))
    assert f"between {first} and {last}" in too_early.value.detail
    # a symbol with stray spaces is found, as by the token and grades endpoints
    assert forecasts.get_predictions(ctx, " syn1 ").symbol == "SYN1"
    with pytest.raises(ValidationFailed):
        forecasts.probability(ctx, "SYN1", 1.0, pred.origin + dt.timedelta(days=400))
    with pytest.raises(NotFound):
        forecasts.get_predictions(ctx, "NOPE")
    with pytest.raises(DataUnavailable, match="at least 200"):
        forecasts.get_predictions(ctx, "SYN11")


def test_a_model_made_by_another_trainer_is_retrained(ctx: Context) -> None:
    """After an upgrade that changes how models are trained (or their settings), the next run
    retrains instead of serving the old code's model until the data move on."""
    _load(ctx, days=500)
    first = forecasts.run_forecasts(ctx, SMALL)
    with ctx.engine.begin() as conn:
        from coinlens.storage.tables_forecasts import models

        row = conn.execute(sa.select(models.c.metrics).where(models.c.model_id == first.model_id))
        metrics = dict(row.scalar_one())
        assert metrics["trainer"] == forecasts.trainer_id(SMALL)
        metrics["trainer"] = "made-by-an-older-version"
        conn.execute(
            models.update().where(models.c.model_id == first.model_id).values(metrics=metrics)
        )

    second = forecasts.run_forecasts(ctx, SMALL)
    third = forecasts.run_forecasts(ctx, SMALL)

    assert second.retrained
    assert not third.retrained
    assert forecasts.trainer_id(SMALL) != forecasts.trainer_id()  # settings are part of it


def test_new_data_a_week_later_triggers_a_retrain(ctx: Context) -> None:
    _load(ctx, days=493)
    first = forecasts.run_forecasts(ctx, SMALL)
    _load(ctx, days=500)
    second = forecasts.run_forecasts(ctx, SMALL)
    assert second.retrained
    assert second.model_id != first.model_id


def test_scenarios_name_levels_newer_than_the_forecast_origin(ctx: Context) -> None:
    _load(ctx, days=493)
    forecasts.run_forecasts(ctx, SMALL)
    _load(ctx, days=500)
    run_analytics(ctx)  # levels a week past the stored forecast's origin
    scen = forecasts.get_scenarios(ctx, "SYN1")
    stored = analytics_queries.get_levels(ctx, "SYN1")
    assert scen.levels_as_of == stored.as_of == scen.origin + dt.timedelta(days=7)
    assert any(
        f"as of {stored.as_of}, 7 days after the forecast origin" in w for w in scen.warnings
    )
    assert sorted(lv.price for lv in stored.distinct()) == [lv.price for lv in scen.levels]
    assert all((lv.kind == "support") == (lv.price < scen.last_close) for lv in scen.levels)
