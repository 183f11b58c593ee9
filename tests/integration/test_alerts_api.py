"""`/v1/alerts` through the real app (keys, scopes, problem+json) and `coinlens alerts` CLI."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from coinlens.api.app import create_app
from coinlens.cli.main import app as cli
from coinlens.services.context import build_context
from coinlens.settings import get_settings
from coinlens.storage.tables import tokens
from coinlens.storage.tables_alerts import alert_rules
from unit.alerts.alert_receivers import HttpReceiver


def test_alerts_api_crud_log_test_and_refusals(tmp_path: Path, api_headers) -> None:  # type: ignore[no-untyped-def]
    settings = get_settings(env="test", data_dir=tmp_path, alerts_allow_hosts=["127.0.0.1"])
    ctx = build_context(settings)
    with ctx.engine.begin() as conn:
        conn.execute(tokens.insert().values(id=1, symbol="BTC", name="Bitcoin"))
    hook = HttpReceiver().start()
    url = f"json://user:topsecret@127.0.0.1:{hook.port}/hook"
    body = {"symbol": "btc", "kind": "price_cross", "direction": "above", "level": 1e5,
            "channels": [url], "timezone": "Europe/Paris",
            "quiet_hours": {"start": "22:00", "end": "07:00"}}  # fmt: skip
    try:
        with TestClient(create_app(settings), headers=api_headers(ctx)) as client:
            made = client.post("/v1/alerts", json=body)
            assert made.status_code == 201, made.text
            assert "topsecret" not in made.text
            rule_id = made.json()["id"]
            assert client.get("/v1/alerts").json()["total"] == 1
            tested = client.post(f"/v1/alerts/{rule_id}/test")
            assert tested.json()[0]["ok"] is True
            assert client.get(f"/v1/alerts/{rule_id}/log").json()["events"] == []
            bad = client.post("/v1/alerts", json=body | {"channels": ["json://10.0.0.7/x"]})
            assert bad.status_code == 422
            assert bad.headers["content-type"].startswith("application/problem+json")
            assert bad.json()["errors"][0]["location"] == "channels.0"
            absurd = client.post("/v1/alerts", json=body | {"level": -5})
            assert absurd.status_code == 422
            other = client.get(f"/v1/alerts/{rule_id}", headers=api_headers(ctx))
            assert other.status_code == 404  # another key does not see it
            assert client.delete(f"/v1/alerts/{rule_id}").status_code == 204
    finally:
        hook.stop()
    with ctx.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(alert_rules)).scalar_one() == 0
    ctx.engine.dispose()


def test_alerts_cli_add_list_log_rm(tmp_path: Path, api_headers) -> None:  # type: ignore[no-untyped-def]
    settings = get_settings(env="test", data_dir=tmp_path)
    ctx = build_context(settings)
    api_headers(ctx)
    with ctx.engine.begin() as conn:
        conn.execute(tokens.insert().values(id=1, symbol="ETH", name="Ether"))
    ctx.engine.dispose()
    env = {"COINLENS_DATA_DIR": str(tmp_path), "COINLENS_ALERTS_KEY_ID": "1",
           "COINLENS_ENV": "test"}  # fmt: skip
    runner = CliRunner()
    add = runner.invoke(
        cli, ["alerts", "add", "ETH", "grade_cross", "-s", "direction=above", "-s", "grade=trader",
              "-s", "threshold=80", "-c", "tgram://123456789:AAbbccddeeffgghhiijjkkllmmnnooppqqr/42"],
        env=env,
    )  # fmt: skip
    assert add.exit_code == 0, add.output
    listed = runner.invoke(cli, ["alerts", "list"], env=env)
    assert "grade_cross" in listed.output
    assert "AAbbccddeeff" not in listed.output
    assert runner.invoke(cli, ["alerts", "log", "1"], env=env).exit_code == 0
    assert runner.invoke(cli, ["alerts", "rm", "1"], env=env).exit_code == 0
    assert runner.invoke(cli, ["alerts", "rm", "1"], env=env).exit_code == 1
