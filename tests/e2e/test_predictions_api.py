"""Predictions on the real embedded data: API endpoints, `coinlens predict`, quick evaluation."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from coinlens.analytics.forecast import ForecastConfig
from coinlens.api.responses import tidy
from coinlens.cli.main import app
from coinlens.client import models as sdk_models
from coinlens.domain.forecasts import TrackRecord
from coinlens.services import analytics_queries, forecasts
from coinlens.services.context import Context, build_context
from coinlens.services.forecast_eval import (
    EvalConfig,
    evaluate_forecasts,
    record_track,
    run_walk_forward,
    track_record,
)
from coinlens.settings import get_settings
from coinlens.storage import forecasts_repo as fc_repo
from coinlens.storage.panel import read_daily_panel
from coinlens.storage.tables import utcnow
from coinlens.storage.tables_forecasts import evaluations
from e2e.stale_token import StaleToken

pytestmark = pytest.mark.xdist_group("embedded")

FAST = ForecastConfig(n_trees=10, max_rows=15_000, refit=False)


@pytest.fixture(scope="module")
def client(loaded_dir: Path, read_client: TestClient) -> TestClient:
    ctx = build_context(get_settings(env="test", data_dir=loaded_dir))
    try:
        forecasts.run_forecasts(ctx, FAST)  # retrains only if no recent model exists
    finally:
        ctx.engine.dispose()
    return read_client


def test_predictions_endpoint(client: TestClient) -> None:
    body = client.get("/v1/tokens/eth/predictions").json()
    assert body["symbol"] == "ETH"
    assert [h["horizon"] for h in body["horizons"]] == [1, 7, 30, 90]
    q = body["horizons"][2]["quantiles"]
    assert q["p05"] < q["p50"] < q["p95"]
    assert body["model"]["model_id"].startswith("lgbm-q-")
    assert "ret_30d" in body["model"]["features"]


def test_scenarios_probability_and_models(client: TestClient) -> None:
    sc = client.get("/v1/tokens/BTC/scenarios").json()["scenarios"]
    assert all(s["bear"] < s["base"] < s["bull"] for s in sc)
    origin = dt.date.fromisoformat(client.get("/v1/tokens/ETH/predictions").json()["origin"])
    by = origin + dt.timedelta(days=90)
    far = client.get(f"/v1/tokens/ETH/probability?above=10000&by={by}").json()
    near = client.get(f"/v1/tokens/ETH/probability?above=1000&by={by}").json()
    assert 0 <= far["p_at"] < near["p_at"] <= 1
    below = client.get(f"/v1/tokens/ETH/probability?below=1000&by={by}").json()
    assert below["p_at"] == pytest.approx(1 - near["p_at"], abs=1e-6)
    models = client.get("/v1/models").json()
    assert {m["kind"] for m in models} >= {"lgbm-quantile", "random-walk"}


def _between(price: float, a: float, b: float) -> bool:
    return min(a, b) <= price <= max(a, b)


def test_scenarios_sit_among_the_stored_key_levels(client: TestClient, loaded_ctx: Context) -> None:
    """On the embedded data: the levels are the analytics step's, each target placed among them."""
    scen = forecasts.get_scenarios(loaded_ctx, "ETH")
    stored = analytics_queries.get_levels(loaded_ctx, "ETH")
    assert scen.levels_as_of == stored.as_of
    assert [lv.price for lv in scen.levels] == sorted(lv.price for lv in stored.distinct())
    assert len(scen.levels) >= 2
    for s in scen.scenarios:
        for target, placed in ((s.bear, s.bear_levels), (s.bull, s.bull_levels)):
            up = target >= scen.last_close
            assert all(_between(lv.price, scen.last_close, target) for lv in placed.crossed)
            assert [lv.price for lv in placed.crossed] == sorted(
                (lv.price for lv in placed.crossed), reverse=not up
            )
            if placed.beyond is not None:
                assert (placed.beyond.price > target) if up else (placed.beyond.price < target)
            on_the_way = {
                lv.price for lv in scen.levels if _between(lv.price, scen.last_close, target)
            }
            on_the_way -= set() if up else {scen.last_close}  # a level at the close is resistance
            assert {lv.price for lv in placed.crossed} == on_the_way
    far = scen.scenarios[-1]
    assert far.bull_levels.crossed or far.bull_levels.beyond is not None


def test_scenarios_endpoint_carries_the_key_levels(client: TestClient) -> None:
    body = client.get("/v1/tokens/ETH/scenarios").json()
    assert body["levels_as_of"] is not None
    assert body["levels"]
    assert set(body["levels"][0]) == {"price", "kind", "strength", "distance"}
    lv = body["levels"][0]
    assert lv["distance"] == pytest.approx(lv["price"] / body["last_close"] - 1)
    bull = body["scenarios"][-1]["bull_levels"]
    assert set(bull) == {"crossed", "beyond"}
    assert "key levels" in body["method"]
    assert isinstance(body["warnings"], list)
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"bear_levels", "base_levels", "bull_levels"} <= set(schemas["Scenario"]["properties"])
    assert {"levels", "levels_as_of", "warnings"} <= set(schemas["Scenarios"]["properties"])
    assert set(schemas["KeyLevel"]["properties"]) == {"price", "kind", "strength", "distance"}


@pytest.mark.parametrize(
    ("url", "status", "location"),
    [
        ("/v1/tokens/NOPE/predictions", 404, None),
        ("/v1/tokens/ETH/probability?above=100&by=2001-01-01", 422, None),
        ("/v1/tokens/ETH/probability?above=100&by=2099-01-01", 422, None),
        ("/v1/tokens/ETH/probability?by=2025-12-31", 422, "query.above"),
        ("/v1/tokens/ETH/probability?above=-5&by=2025-12-31", 422, "query.above"),
        ("/v1/tokens/ETH/probability?above=inf&by=2025-12-31", 422, "query.above"),
        ("/v1/tokens/ETH/probability?below=nan&by=2025-12-31", 422, "query.below"),
    ],
)
def test_errors_are_problem_documents(
    client: TestClient, url: str, status: int, location: str | None
) -> None:
    resp = client.get(url)
    assert resp.status_code == status
    assert resp.headers["content-type"].startswith("application/problem+json")
    if location is not None:
        assert [e["location"] for e in resp.json()["errors"]] == [location]


def test_a_token_whose_prices_stopped_says_so(client: TestClient, stale_token: StaleToken) -> None:
    symbol = stale_token.symbol
    reason = (
        f"{symbol}'s newest close is {stale_token.newest}, more than 7 days before the data's "
        f"end {stale_token.end}: forecasts are made only for tokens with current prices"
    )
    for path in ("predictions", "scenarios", f"probability?above=1&by={stale_token.end}"):
        answer = client.get(f"/v1/tokens/{symbol}/{path}")
        assert answer.status_code == 404, path
        assert answer.json()["detail"] == reason, path


def test_cli_predict_and_quick_evaluation(
    client: TestClient, loaded_ctx: Context, tmp_path: Path
) -> None:
    env = {"COINLENS_DATA_DIR": str(loaded_ctx.settings.data_dir), "COINLENS_ENV": "test"}
    runner = CliRunner()
    result = runner.invoke(app, ["predict", "ETH"], env=env)
    assert result.exit_code == 0, result.output
    assert "p95" in result.output
    assert "bear" in result.output
    assert "key levels as of" in result.output
    assert "track record" in result.output
    out = tmp_path / "reports"
    with loaded_ctx.engine.connect() as conn:
        before = fc_repo.latest_evaluation(conn, forecasts.EVALUATION_KIND)
    result = runner.invoke(
        app, ["evaluate", "forecasts", "--quick", "--out", str(out), "--ets-tokens", "0"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "not stored as the track record" in result.output
    with loaded_ctx.engine.connect() as conn:  # a quick run is a report, not the track record
        assert fc_repo.latest_evaluation(conn, forecasts.EVALUATION_KIND) == before
    report = (out / "forecasts.md").read_text()
    assert "pinball skill vs RW" in report
    for h in (1, 7, 30, 90):
        assert f"![{h}-day calibration](forecasts_calibration_{h}d.png)" in report
        assert (out / f"forecasts_calibration_{h}d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quick_evaluation_keeps_until_and_labels_the_direction_test(
    loaded_ctx: Context, tmp_path: Path
) -> None:
    """--quick once dropped --until (scoring every target), a window with no origin was a
    traceback, and each horizon's p-value sat next to the accuracy it was not computed on."""
    env = {"COINLENS_DATA_DIR": str(loaded_ctx.settings.data_dir), "COINLENS_ENV": "test"}
    runner = CliRunner()
    base = ["evaluate", "forecasts", "--out", str(tmp_path), "--ets-tokens", "0"]
    for extra in (["--quick"], []):
        refused = runner.invoke(app, [*base, *extra, "--until", "2010-01-01"], env=env)
        assert refused.exit_code == 1, refused.output
        assert "error: nothing to evaluate" in refused.output
        assert "2010-01-01" in refused.output
        assert refused.exception is None or isinstance(refused.exception, SystemExit)

    result = runner.invoke(app, [*base, "--quick", "--until", "2024-12-31"], env=env)
    assert result.exit_code == 0, result.output
    lines = {ln.split("d ", 1)[0].strip(): ln for ln in result.output.splitlines() if "skill" in ln}
    assert "(non-overlapping " in lines["30"]
    assert "no non-overlapping origins to test" in lines["90"]  # no 90d target by 2024-12-31
    report = (tmp_path / "forecasts.md").read_text()
    row = next(ln for ln in report.splitlines() if ln.startswith("| 90d | "))
    assert "nan" not in row
    assert row.endswith("| — | 0 | — |")


def test_a_full_walk_forward_is_served_as_the_track_record(
    client: TestClient, loaded_ctx: Context, tmp_path: Path
) -> None:
    with loaded_ctx.engine.begin() as conn:  # this test owns the forecasts' records
        conn.execute(sa.delete(evaluations).where(evaluations.c.kind == forecasts.EVALUATION_KIND))
    assert "No track record stored" in client.get("/t/ETH").text
    assert all(m["track_record"] is None for m in client.get("/v1/models").json())

    # a record of another method (a smaller model) is never shown next to these models
    short = EvalConfig(start=dt.date(2024, 6, 1), end=dt.date(2024, 9, 30), ets_tokens=0)
    panel = read_daily_panel(loaded_ctx.engine, loaded_ctx.cache_dir)
    other = run_walk_forward(panel, dataclasses.replace(short, model=FAST))
    record_track(loaded_ctx, track_record(other, utcnow(), "elsewhere.md"))
    assert all(m["track_record"] is None for m in client.get("/v1/models").json())

    # the production method over a short window (two retrains): stored, then served
    result = evaluate_forecasts(loaded_ctx, short, tmp_path)
    assert result["recorded"]
    with loaded_ctx.engine.connect() as conn:
        record = forecasts.latest_track_record(conn)
    assert record is not None
    assert record.method == forecasts.PRODUCTION_METHOD
    assert record.retrains == len(result["origins"]) == 2
    assert record.data_end == dt.date(2025, 9, 30)
    h30 = next(h for h in record.horizons if h.horizon == 30)
    m30 = result["horizons"][30]
    assert h30.rows == m30["rows"]
    assert h30.pinball_skill == pytest.approx(m30["pinball_skill"])
    assert [c.level for c in h30.coverage] == [50, 80, 90]
    assert h30.coverage[1].observed == pytest.approx(m30["coverage_80_model"])

    served = {m["kind"]: m for m in client.get("/v1/models").json()}
    assert served["random-walk"]["track_record"] is None
    got = TrackRecord.model_validate(served["lgbm-quantile"]["track_record"])
    answered = TrackRecord.model_validate(tidy(record.model_dump(mode="json")))  # 10 digits
    assert got == answered
    predictions = client.get("/v1/tokens/ETH/predictions").json()
    assert TrackRecord.model_validate(predictions["model"]["track_record"]) == answered
    sdk = sdk_models.ModelInfo.model_validate(served["lgbm-quantile"])
    assert sdk.track_record is not None
    assert sdk.track_record.horizons[2].coverage[1].level == 80

    page = client.get("/t/ETH").text
    table = page[
        page.index('id="track-record"') : page.index("</table>", page.index('id="track-record"'))
    ]
    assert "80 % held" in table
    held_80 = h30.coverage[1].observed
    assert held_80 is not None
    assert f"{100 * held_80:.1f}%" in table
    assert "retrained 2 times" in page
    env = {"COINLENS_DATA_DIR": str(loaded_ctx.settings.data_dir), "COINLENS_ENV": "test"}
    shown = CliRunner().invoke(app, ["predict", "ETH"], env=env).output
    assert f"track record (2 retrains, {record.first_origin} … {record.last_origin})" in shown
    assert h30.pinball_skill is not None
    assert f"30d skill vs random walk {h30.pinball_skill:+.1%}, 80 % interval held" in shown
