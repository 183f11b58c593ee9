"""Analytics on the real embedded dataset: the six endpoints, their errors, and the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from coinlens.cli.common import console, err_console
from coinlens.cli.main import app as cli_app
from coinlens.services.analytics import AnalyticsReport, run_analytics
from coinlens.services.context import build_context
from coinlens.settings import get_settings

pytestmark = pytest.mark.xdist_group("embedded")
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def analysed(loaded_dir: Path) -> AnalyticsReport:
    """The pipeline run once over the loaded embedded dataset."""
    ctx = build_context(get_settings(env="test", data_dir=loaded_dir))
    try:
        return run_analytics(ctx, full=True)
    finally:
        ctx.engine.dispose()


@pytest.fixture(scope="module")
def client(read_client: TestClient, analysed: AnalyticsReport) -> TestClient:
    """The shared read-key client, once the pipeline has run."""
    return read_client


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _problem(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON


def test_pipeline_covers_the_universe(analysed: AnalyticsReport) -> None:
    assert analysed.mode == "full"
    assert analysed.tokens > 200
    assert analysed.events_written > analysed.tokens


def test_indicators_page_and_agree_with_the_pipeline(client: TestClient) -> None:
    first = _ok(client.get("/v1/tokens/eth/indicators?start=2024-01-01&end=2024-03-31&limit=60"))
    rest = _ok(
        client.get(f"/v1/tokens/ETH/indicators?end=2024-03-31&cursor={first['next_cursor']}")
    )
    latest = _ok(client.get("/v1/tokens/ETH/indicators?start=2025-09-30"))["rows"][-1]
    stored = _ok(client.get("/v1/tokens/ETH/signals"))["indicators"]

    assert [r["date"] for r in first["rows"]][:1] == ["2024-01-01"]
    assert len(first["rows"]) == 60
    assert rest["rows"][0]["date"] == "2024-03-01"
    assert rest["rows"][-1]["date"] == "2024-03-31"
    assert rest["next_cursor"] is None
    assert all(0 <= r["rsi_14"] <= 100 for r in first["rows"])
    # On-demand series (token's own candles) equals the pipeline's panel computation
    # (to the 15 significant digits the signal's answer keeps).
    assert latest["ema_20"] == pytest.approx(stored["ema_fast"], rel=1e-12)
    assert latest["adx_14"] == pytest.approx(stored["adx"], rel=1e-12)


def test_indicator_pages_count_candles_not_calendar_days(client: TestClient) -> None:
    # POL has no candles on 2024-09-11 and 2024-09-12 (the only gap of the embedded data)
    page = _ok(client.get("/v1/tokens/POL/indicators?start=2024-09-10&limit=2"))
    in_gap = _ok(client.get("/v1/tokens/POL/indicators?start=2024-09-11&limit=2"))
    rest = _ok(client.get(f"/v1/tokens/POL/indicators?cursor={page['next_cursor']}&limit=2"))

    assert [r["date"] for r in page["rows"]] == ["2024-09-10", "2024-09-13"]
    assert [r["date"] for r in in_gap["rows"]] == ["2024-09-13", "2024-09-14"]
    assert "no candles in the requested range" not in in_gap["warnings"]
    assert [r["date"] for r in rest["rows"]] == ["2024-09-14", "2024-09-15"]
    tail = _ok(client.get("/v1/tokens/POL/indicators?start=2025-09-29&limit=2"))
    assert [r["date"] for r in tail["rows"]] == ["2025-09-29", "2025-09-30"]
    assert tail["next_cursor"] is None


def test_indicator_candles_equal_the_ohlcv_candles(client: TestClient) -> None:
    # FLOKI trades as 1000FLOKI: prices ÷ 1000 carry float noise unless tidied like /ohlcv
    path = "/v1/tokens/FLOKI/{}?start=2025-06-01&end=2025-09-30"
    candles = _ok(client.get(path.format("ohlcv")))["candles"]
    rows = _ok(client.get(path.format("indicators")))["rows"]

    fields = ("open", "high", "low", "close", "volume")
    assert [[r[f] for f in fields] for r in rows] == [[c[f] for f in fields] for c in candles]


def test_signals_current_and_history(client: TestClient) -> None:
    body = _ok(client.get("/v1/tokens/BTC/signals"))

    assert body["signal"] in {"long", "flat", "short"}
    assert body["history"]
    assert body["history"][-1]["to_signal"] == body["signal"]
    assert body["history"][-1]["date"] == body["since"]
    assert body["as_of"] == "2025-09-30"
    assert any(w.startswith("stale: last candle is") for w in body["warnings"])
    assert not any("stablecoin" in w for w in body["warnings"])


def test_a_stablecoins_signal_says_it_calls_no_market_move(client: TestClient) -> None:
    body = _ok(client.get("/v1/tokens/usd1/signals"))

    assert (
        "USD1 is a stablecoin: its price is pegged, so its trend signal does not call a "
        "market move" in body["warnings"]
    )


def test_performance_stored_equals_on_demand(client: TestClient) -> None:
    stored = _ok(client.get("/v1/tokens/ETH/signals/performance"))
    explicit = _ok(client.get("/v1/tokens/ETH/signals/performance?fee=0.001&slippage=0.0005"))
    costly = _ok(client.get("/v1/tokens/ETH/signals/performance?fee=0.01"))

    assert stored["params"]["fill"] == "next bar open"
    assert (stored["params"]["fees"], stored["params"]["slippage"]) == (0.001, 0.0005)
    assert 2 <= len(stored["equity"]) <= 200
    assert stored["source"] != explicit["source"]
    for key in ("total_return", "sharpe", "max_drawdown"):
        assert explicit["strategy"][key] == pytest.approx(stored["strategy"][key], rel=1e-9)
        assert explicit["buy_hold"][key] == pytest.approx(stored["buy_hold"][key], rel=1e-9)
    assert explicit["trades"] == stored["trades"]
    assert costly["strategy"]["total_return"] < stored["strategy"]["total_return"]


def test_performance_over_a_range(client: TestClient) -> None:
    body = _ok(client.get("/v1/tokens/SOL/signals/performance?start=2024-01-01&end=2024-12-31"))

    assert (body["params"]["start"], body["params"]["end"]) == ("2024-01-01", "2024-12-31")
    assert body["start"] == "2024-01-01"
    assert body["end"] == "2024-12-31"


def test_a_past_backtest_window_is_not_called_stale_by_its_own_end(client: TestClient) -> None:
    stored = _ok(client.get("/v1/tokens/SOL/signals/performance"))
    past = _ok(client.get("/v1/tokens/SOL/signals/performance?start=2024-01-01&end=2024-12-31"))

    assert past["as_of"] == "2024-12-31"  # the last close the window used
    # staleness is about the token's data (last candle 2025-09-30), as on every other answer
    assert past["warnings"] == stored["warnings"]


def test_levels_and_roi(client: TestClient) -> None:
    levels = _ok(client.get("/v1/tokens/ETH/levels"))
    roi = _ok(client.get("/v1/tokens/ETH/roi"))
    candles = _ok(client.get("/v1/tokens/ETH/ohlcv?start=2025-09-29"))["candles"]

    close = levels["close"]
    assert levels["support"] is None or levels["support"]["price"] < close
    assert levels["resistance"] is None or levels["resistance"]["price"] > close
    assert levels["strongest"]
    assert set(roi["roi"]) == {"1d", "7d", "30d", "90d", "1y", "ytd", "since_listing"}
    assert roi["roi"]["1d"] == pytest.approx(candles[-1]["close"] / candles[-2]["close"] - 1)
    assert roi["risk"]["max_drawdown"] <= roi["risk"]["drawdown_from_ath"] <= 0


def test_an_unknown_sector_says_so_instead_of_an_empty_page(client: TestClient) -> None:
    known = _ok(client.get("/v1/signals?sector=defi%20blue%20chips"))
    unknown = _ok(client.get("/v1/signals?sector=defi"))

    assert known["total"] > 0
    assert not any("sector" in w for w in known["warnings"])
    assert unknown["total"] == 0
    assert any(
        w.startswith("no token is in sector 'defi'; known sectors: ") and "DeFi Blue Chips" in w
        for w in unknown["warnings"]
    )


def test_universe_signals_filter_and_page(client: TestClient) -> None:
    first = _ok(client.get("/v1/signals?limit=100"))
    second = _ok(client.get(f"/v1/signals?limit=100&cursor={first['next_cursor']}"))
    longs = _ok(client.get("/v1/signals?signal=long&limit=500"))
    recent = _ok(client.get("/v1/signals?changed_within_days=7&limit=500"))

    assert first["total"] > 200
    assert len(first["items"]) == 100
    assert first["items"][-1]["symbol"] < second["items"][0]["symbol"]
    assert longs["items"]
    assert all(i["signal"] == "long" for i in longs["items"])
    assert all(i["since"] >= "2025-09-24" for i in recent["items"])
    assert all(i["previous_signal"] is not None for i in recent["items"])


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/tokens/NOPE/signals", 404),
        ("/v1/tokens/NOPE/indicators", 404),
        ("/v1/tokens/ETH/indicators?limit=0", 422),
        ("/v1/tokens/ETH/indicators?cursor=garbage", 422),
        ("/v1/tokens/ETH/signals/performance?fee=0.7", 422),
        ("/v1/tokens/ETH/signals/performance?start=2024-02-01&end=2024-01-01", 422),
        ("/v1/signals?signal=maybe", 422),
        ("/v1/signals?changed_within_days=0", 422),
    ],
)
def test_errors_are_problems(client: TestClient, path: str, status: int) -> None:
    _problem(client.get(path), status)


def test_cli_signals_and_backtest(
    loaded_dir: Path, analysed: AnalyticsReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "width", 200)
    monkeypatch.setattr(err_console, "width", 200)
    runner = CliRunner()
    args = ["--data-dir", str(loaded_dir)]

    signals = runner.invoke(cli_app, ["signals", "ETH", *args])
    single = runner.invoke(cli_app, ["backtest", "ETH", "--fee", "0.002", *args])
    neither = runner.invoke(cli_app, ["backtest", *args])

    assert signals.exit_code == 0, signals.output
    assert "ETH" in signals.output
    assert "changes" in signals.output
    assert single.exit_code == 0, single.output
    assert "buy & hold" in single.output
    assert "fee 0.002" in single.output
    assert neither.exit_code == 2


def test_cli_tokens_names_the_sectors_when_none_matches(
    loaded_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "width", 200)
    monkeypatch.setattr(err_console, "width", 400)
    runner = CliRunner()
    args = ["--data-dir", str(loaded_dir)]

    known = runner.invoke(cli_app, ["tokens", "--sector", "dex tokens", *args])
    unknown = runner.invoke(cli_app, ["tokens", "--sector", "dex", *args])

    assert known.exit_code == 0, known.output
    assert "UNI" in known.output
    assert unknown.exit_code == 1
    assert "no token is in sector 'dex'; known sectors:" in unknown.output
    assert "DEX Tokens" in unknown.output
