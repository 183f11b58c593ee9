"""Grades on the real embedded dataset: the run, both endpoints, `coinlens grades`, evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from coinlens.cli.main import app as cli_app
from coinlens.services.context import build_context
from coinlens.services.grades import GradesReport, run_grades
from coinlens.settings import get_settings

pytestmark = pytest.mark.xdist_group("embedded")


@pytest.fixture(scope="module")
def graded(loaded_dir: Path) -> GradesReport:
    """Grades computed once over the loaded embedded dataset."""
    ctx = build_context(get_settings(env="test", data_dir=loaded_dir))
    try:
        return run_grades(ctx)
    finally:
        ctx.engine.dispose()


@pytest.fixture(scope="module")
def client(read_client: TestClient, graded: GradesReport) -> TestClient:
    """The shared read-key client, once grades are computed."""
    return read_client


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_every_day_of_the_history_is_graded(loaded_dir: Path, graded: GradesReport) -> None:
    assert graded.days > 2500  # 2017-08 … 2025-09, minus the 60-day warm-up
    ctx = build_context(get_settings(env="test", data_dir=loaded_dir))
    with ctx.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM grades")).scalar_one()
    ctx.engine.dispose()
    assert stored > 150_000  # written by this run or by the session fixture's pipeline run


def test_leaderboard_endpoint(client: TestClient) -> None:
    body = _ok(client.get("/v1/grades", params={"limit": 5}))
    assert body["day"] == "2025-09-30"
    assert body["total"] > 200
    assert len(body["items"]) == 5
    grades = [e["trader"] for e in body["items"]]
    assert grades == sorted(grades, reverse=True)
    assert 'rel="next"' in client.get("/v1/grades", params={"limit": 5}).headers["Link"]
    nxt = _ok(client.get("/v1/grades", params={"limit": 5, "cursor": body["next_cursor"]}))
    assert nxt["items"][0]["trader"] <= grades[-1]
    l1 = _ok(client.get("/v1/grades", params={"sector": "L1 Smart Contract", "sort": "investor"}))
    assert l1["items"]
    assert {e["sector"] for e in l1["items"]} == {"L1 Smart Contract"}
    buy = _ok(client.get("/v1/grades", params={"band": "strong_buy"}))
    assert all(e["trader"] > 80 for e in buy["items"])
    bad = client.get("/v1/grades", params={"band": "moon"})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


def test_a_cached_page_links_to_the_host_it_was_asked_through(client: TestClient) -> None:
    for host in ("a.example", "b.example", "a.example"):
        answer = client.get("/v1/grades", params={"limit": 3}, headers={"Host": host})
        assert answer.headers["Link"].startswith(f"<http://{host}/v1/grades?"), host


def test_token_grades_endpoint(client: TestClient) -> None:
    body = _ok(client.get("/v1/tokens/eth/grades", params={"start": "2025-09-01"}))
    assert body["symbol"] == "ETH"
    assert body["day"] == "2025-09-30"
    assert len(body["history"]) == 30
    for kind in ("trader", "investor"):
        parts = body[kind]["sub_grades"]
        assert len(parts) == 3
        assert sum(p["contribution"] for p in parts) == pytest.approx(body[kind]["grade"], abs=0.03)
    assert client.get("/v1/tokens/NOPE/grades").status_code == 404


def test_grades_cli(loaded_dir: Path, graded: GradesReport) -> None:
    result = CliRunner().invoke(
        cli_app, ["grades", "--top", "5", "--sort", "investor", "--data-dir", str(loaded_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "investor grades on 2025-09-30" in result.output


def test_evaluate_grades_cli_on_a_short_window(loaded_dir: Path, tmp_path: Path) -> None:
    args = ["evaluate", "grades", "--start", "2024-06-01", "--end", "2024-12-31"]
    result = CliRunner().invoke(
        cli_app, [*args, "--out", str(tmp_path), "--data-dir", str(loaded_dir)]
    )
    assert result.exit_code == 0, result.output
    report = (tmp_path / "grades.md").read_text()
    assert "| trader | 7d | out of sample (2024-06-01" in report
    assert "| investor | 90d |" in report
    for grade in ("trader", "investor"):
        name = f"grades_{grade}_cumulative_ic.png"
        assert f"![{name}]({name})" in report
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
