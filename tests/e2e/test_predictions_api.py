"""Predictions on the real embedded data: API endpoints, `coinlens predict`, quick evaluation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from coinlens.analytics.forecast import ForecastConfig
from coinlens.cli.main import app
from coinlens.services import forecasts
from coinlens.services.context import Context, build_context
from coinlens.settings import get_settings

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


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/v1/tokens/NOPE/predictions", 404),
        ("/v1/tokens/ETH/probability?above=100&by=2001-01-01", 422),
        ("/v1/tokens/ETH/probability?above=100&by=2099-01-01", 422),
        ("/v1/tokens/ETH/probability?by=2025-12-31", 422),
        ("/v1/tokens/ETH/probability?above=-5&by=2025-12-31", 422),
    ],
)
def test_errors_are_problem_documents(client: TestClient, url: str, status: int) -> None:
    resp = client.get(url)
    assert resp.status_code == status
    assert resp.headers["content-type"].startswith("application/problem+json")


def test_cli_predict_and_quick_evaluation(
    client: TestClient, loaded_ctx: Context, tmp_path: Path
) -> None:
    env = {"COINLENS_DATA_DIR": str(loaded_ctx.settings.data_dir), "COINLENS_ENV": "test"}
    runner = CliRunner()
    result = runner.invoke(app, ["predict", "ETH"], env=env)
    assert result.exit_code == 0, result.output
    assert "p95" in result.output
    assert "bear" in result.output
    out = tmp_path / "reports"
    result = runner.invoke(
        app, ["evaluate", "forecasts", "--quick", "--out", str(out), "--ets-tokens", "0"], env=env
    )
    assert result.exit_code == 0, result.output
    report = (out / "forecasts.md").read_text()
    assert "pinball skill vs RW" in report
    assert (out / "forecasts_calibration_90d.svg").exists()
