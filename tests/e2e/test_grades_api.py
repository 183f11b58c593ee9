"""Grades on the real embedded dataset: the run, both endpoints, `coinlens grades`, evaluation."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from coinlens.cli.main import app as cli_app
from coinlens.client import models as sdk_models
from coinlens.domain.grades import GradeTrackRecord
from coinlens.services import track_records
from coinlens.services.context import Context, build_context
from coinlens.services.evaluation import SPLIT, evaluate_and_record, track_record
from coinlens.services.grades import EVALUATION_KIND, METHOD, GradesReport, run_grades
from coinlens.settings import get_settings
from coinlens.storage.tables import utcnow
from coinlens.storage.tables_forecasts import evaluations

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


@pytest.mark.parametrize(
    "path",
    ["", "/ohlcv", "/signals", "/grades", "/predictions", "/probability?above=1&by=2025-12-31"],
)
def test_a_contract_or_old_ticker_points_at_its_token(client: TestClient, path: str) -> None:
    contract = client.get(f"/v1/tokens/1000pepe{path}")
    renamed = client.get(f"/v1/tokens/MATIC{path}")
    unknown = client.get(f"/v1/tokens/1000NOPE{path}")

    assert (contract.status_code, renamed.status_code, unknown.status_code) == (404, 404, 404)
    assert contract.json()["detail"] == (
        "no token with symbol '1000pepe': 1000PEPE quotes 1000 PEPE; its data are under PEPE "
        "(prices per 1 PEPE)"
    )
    assert "MATIC was renamed POL; its data are under POL" in renamed.json()["detail"]
    assert unknown.json()["detail"] == "no token with symbol '1000NOPE'"


def test_a_stablecoin_is_not_graded_and_says_so(client: TestClient) -> None:
    answer = client.get("/v1/tokens/USD1/grades")

    assert answer.status_code == 404
    assert answer.json()["detail"] == "USD1 is a stablecoin: stablecoins are not graded"


def test_grades_cli(loaded_dir: Path, graded: GradesReport) -> None:
    result = CliRunner().invoke(
        cli_app, ["grades", "--top", "5", "--sort", "investor", "--data-dir", str(loaded_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "investor grades on 2025-09-30" in result.output


def test_grades_cli_refuses_an_unknown_sector_and_names_the_known_ones(
    loaded_dir: Path, graded: GradesReport
) -> None:
    """An unknown sector once printed an empty table and exit 0, like a sector without buys."""
    args = ["grades", "--data-dir", str(loaded_dir), "--sector"]
    result = CliRunner().invoke(cli_app, [*args, "nope"])
    assert result.exit_code == 1, result.output
    assert "no token is in sector 'nope'" in result.output
    assert "Meme Coins" in result.output
    assert "Traceback" not in result.output
    known = CliRunner().invoke(cli_app, [*args, "meme coins", "--top", "3"])  # any case
    assert known.exit_code == 0, known.output
    assert "DOGE" in known.output


def test_grades_cli_never_cuts_a_symbol_or_a_grade_in_a_narrow_terminal(
    loaded_dir: Path, graded: GradesReport
) -> None:
    """At 80 columns rich cut every cell: "ETH…" for ETHFI, "84…" for a grade."""
    env = {**os.environ, "COLUMNS": "80", "COINLENS_DATA_DIR": str(loaded_dir)}
    env.pop("COINLENS_DATABASE_URL", None)
    out = subprocess.run(
        [str(Path(sys.executable).with_name("coinlens")), "grades", "--top", "10"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    table = out[: out.index("track record")]
    assert "…" not in table, table
    assert max(len(line) for line in table.splitlines()) <= 80
    assert "ETHFI" in table
    assert "sub-grades left out" in table
    wide = subprocess.run(
        [str(Path(sys.executable).with_name("coinlens")), "grades", "--top", "10"],
        env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "fundamentals" in wide
    assert "…" not in wide


def test_evaluate_grades_cli_on_a_short_window(loaded_dir: Path, tmp_path: Path) -> None:
    """A window is a report only: the served track record covers the whole history."""
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
    assert "not stored as the track record" in result.output


def test_the_whole_history_evaluation_is_served_as_the_track_record(
    client: TestClient, loaded_ctx: Context, loaded_dir: Path, tmp_path: Path
) -> None:
    with loaded_ctx.engine.begin() as conn:  # this test owns the grades' records
        conn.execute(sa.delete(evaluations).where(evaluations.c.kind == EVALUATION_KIND))
    assert _ok(client.get("/v1/tokens/ETH/grades"))["track_record"] is None
    assert "make evaluate</code> (or <code>coinlens evaluate grades" in client.get("/t/ETH").text
    cli = ["grades", "--top", "3", "--data-dir", str(loaded_dir)]
    assert "track record: none stored yet" in CliRunner().invoke(cli_app, cli).output

    result, written, kept = evaluate_and_record(loaded_ctx, out=tmp_path)
    assert kept
    served = _ok(client.get("/v1/tokens/ETH/grades"))["track_record"]
    assert served["report"] == str(written[0]) == str(tmp_path / "grades.md")

    # a newer record measured under other weights is never shown next to today's grades
    stale = track_record(result, utcnow(), "elsewhere.md").model_copy(update={"method": "v0"})
    track_records.save(loaded_ctx, EVALUATION_KIND, stale)
    assert _ok(client.get("/v1/tokens/ETH/grades"))["track_record"] is None

    # the whole history under the current method: served on the API, the SDK and the page
    record = track_record(result, utcnow(), str(written[0]))
    track_records.save(loaded_ctx, EVALUATION_KIND, record)
    body = _ok(client.get("/v1/tokens/ETH/grades"))
    got = GradeTrackRecord.model_validate(body["track_record"])
    assert got == record
    assert got.method == METHOD
    assert (got.first_day, got.data_end) == (result.start, dt.date(2025, 9, 30))
    assert got.out_of_sample_from == SPLIT
    trader = next(g for g in got.grades if g.grade == "trader")
    oos = next(p for p in trader.periods if p.period == "out of sample")
    summary = next(p for p in result.tracks["trader"].periods if p.name == "out of sample").summary
    assert (trader.horizon, oos.start, oos.days) == (7, SPLIT, summary.ic.n)
    assert oos.rank_ic == pytest.approx(summary.ic.mean)
    assert oos.rank_ic_t == pytest.approx(summary.ic.t)
    assert oos.spread == pytest.approx(summary.spread.mean)
    assert [y.year for y in trader.years] == sorted(result.tracks["trader"].years)
    investor = next(g for g in got.grades if g.grade == "investor")
    assert investor.horizon == 90
    assert {p.period for p in investor.periods} == {"in sample", "out of sample", "all"}
    sdk = sdk_models.TokenGrades.model_validate(body)
    assert sdk.track_record is not None
    assert sdk.track_record.grades[0].periods[1].rank_ic == pytest.approx(
        got.grades[0].periods[1].rank_ic
    )

    shown = CliRunner().invoke(cli_app, cli).output
    assert f"trader vs 7d returns {summary.ic.mean:+.4f} (t {summary.ic.t:.2f})" in shown

    page = client.get("/t/ETH").text
    start = page.index('id="grade-track-record"')
    table = page[start : page.index("</table>", start)]
    assert table.count("<tr>") == 1 + 4  # header, in/out of sample for each grade
    assert f'{summary.ic.mean:,.4f}</td><td class="r">{summary.ic.t:,.2f}<' in table
    assert f"before {SPLIT}" in page
