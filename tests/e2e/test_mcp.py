"""The MCP server on the real embedded dataset, driven by the MCP SDK's own in-process client."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client
from typer.testing import CliRunner

from coinlens.analytics.forecast import ForecastConfig
from coinlens.cli.main import app as cli_app
from coinlens.domain.errors import CoinlensError
from coinlens.domain.numbers import tidy
from coinlens.mcp import server as mcp_server
from coinlens.mcp.server import build_server
from coinlens.services import analytics_queries, forecasts, grades
from coinlens.services.analytics import run_analytics
from coinlens.services.context import Context, build_context
from coinlens.services.keys import KeySpec, create_key
from coinlens.settings import get_settings

pytestmark = [pytest.mark.xdist_group("embedded"), pytest.mark.anyio]
TOOLS = {
    "token_summary",
    "screener",
    "signals",
    "backtest",
    "grades",
    "predictions",
    "scenarios",
    "probability",
    "levels",
    "ecosystem",
    "create_alert",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _missing(fetch: Any) -> bool:
    try:
        fetch()
    except CoinlensError:
        return True
    return False


@pytest.fixture(scope="module")
def research(loaded_dir: Path) -> Iterator[Context]:
    """The loaded dataset with signals, grades and a forecast (computed here only if no
    other module of this worker did it first), allowing alert webhooks to 127.0.0.1."""
    settings = get_settings(env="test", data_dir=loaded_dir, alerts_allow_hosts=["127.0.0.1"])
    ctx = build_context(settings)
    if _missing(lambda: analytics_queries.get_signals(ctx, "ETH")):
        run_analytics(ctx, full=True)
    if _missing(lambda: grades.leaderboard(ctx)):
        grades.run_grades(ctx)
    if _missing(lambda: forecasts.get_predictions(ctx, "ETH")):
        forecasts.run_forecasts(ctx, ForecastConfig(n_trees=10, max_rows=15_000, refit=False))
    yield ctx
    ctx.engine.dispose()


async def _call(ctx: Context, tool: str, args: dict[str, Any], key: str | None = None) -> Any:
    async with Client(build_server(ctx, api_key=key)) as client:
        result = await client.call_tool(tool, args)
    if result.is_error:
        return {"error": " ".join(getattr(c, "text", "") for c in result.content)}
    assert result.structured_content is not None
    return result.structured_content


async def test_lists_every_tool_with_a_description(loaded_ctx: Context) -> None:
    async with Client(build_server(loaded_ctx)) as client:
        listed = (await client.list_tools()).tools
    assert {t.name for t in listed} == TOOLS
    assert all(t.description and t.input_schema["type"] == "object" for t in listed)
    probability = next(t for t in listed if t.name == "probability")
    assert set(probability.input_schema["required"]) == {"symbol", "level", "by"}


async def test_token_summary_of_eth(research: Context) -> None:
    summary = await _call(research, "token_summary", {"symbol": "eth"})
    assert summary["token"]["symbol"] == "ETH"
    assert summary["token"]["markets"]
    assert summary["signal"]["signal"] in {"long", "flat", "short"}
    assert len(summary["signal"]["history"]) <= 5
    assert 0 <= summary["grades"]["trader"]["grade"] <= 100
    assert summary["grades"]["history"] == []
    assert summary["unavailable"] == {}


async def test_unknown_token_is_a_readable_tool_error(research: Context) -> None:
    answer = await _call(research, "token_summary", {"symbol": "NOPE-XYZ"})
    assert "NOPE-XYZ" in answer["error"]


async def test_a_contract_symbol_points_at_its_token(research: Context) -> None:
    answer = await _call(research, "grades", {"symbol": "1000pepe"})
    assert "1000PEPE quotes 1000 PEPE; its data are under PEPE" in answer["error"]


async def test_data_that_will_never_exist_is_unavailable_not_pending(research: Context) -> None:
    answer = await _call(research, "grades", {"symbol": "DAI"})
    assert "grades: unavailable: DAI is a stablecoin" in answer["error"]
    assert "not computed yet" not in answer["error"]


async def test_screener_filters_by_grade_band_signal_and_sector(research: Context) -> None:
    direct = grades.leaderboard(research, grades.LeaderboardQuery(limit=10))
    top = await _call(research, "screener", {"limit": 10})
    assert [r["symbol"] for r in top["items"]] == [e.symbol for e in direct.items]
    longs = await _call(research, "screener", {"signal": "long", "limit": 100})
    expected = {
        s.symbol for s in analytics_queries.list_signals(research, signal="long", limit=500).items
    }
    assert longs["items"]
    assert {r["symbol"] for r in longs["items"]} <= expected
    assert all(r["signal"] == "long" for r in longs["items"])
    band = top["items"][0]["trader_band"]
    banded = await _call(research, "screener", {"band": band, "limit": 100})
    assert {r["trader_band"] for r in banded["items"]} == {band}


async def test_an_unknown_sector_is_an_error_naming_the_known_ones(research: Context) -> None:
    for args in ({"sector": "Narnia"}, {"sector": "Narnia", "signal": "long"}):
        answer = await _call(research, "screener", args)
        assert "no token is in sector 'Narnia'; known sectors: " in answer["error"]
        assert "DeFi Blue Chips" in answer["error"]
    known = await _call(research, "screener", {"sector": "defi blue chips", "limit": 100})
    assert known["items"]
    assert {r["sector"] for r in known["items"]} == {"DeFi Blue Chips"}


async def test_screener_counts_and_intersects_across_pages(
    research: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pages of 7 rows stand in for a universe larger than one page of the listings
    monkeypatch.setattr(mcp_server, "SCREEN_PAGE", 7)
    board = grades.leaderboard(research, grades.LeaderboardQuery(limit=500))
    top = await _call(research, "screener", {"limit": 5})
    assert (top["matches"], len(top["items"])) == (board.total, 5)
    longs = {
        s.symbol for s in analytics_queries.list_signals(research, signal="long", limit=500).items
    }
    expected = [e.symbol for e in board.items if e.symbol in longs]
    found = await _call(research, "screener", {"signal": "long", "limit": 100})
    assert found["matches"] == len(expected) > 7
    assert [r["symbol"] for r in found["items"]] == expected[:100]


async def test_signals_backtest_levels_and_grades_match_the_services(research: Context) -> None:
    sig = await _call(research, "signals", {"symbol": "BTC"})
    direct = tidy(analytics_queries.get_signals(research, "BTC").model_dump(mode="json"))
    flips = direct.pop("history")
    assert len(flips) > 30
    # the same answer, its float noise rounded off, with the newest 30 flips and their count
    assert sig == {**direct, "history": flips[-30:], "history_total": len(flips)}
    perf = await _call(research, "backtest", {"symbol": "BTC", "fee": 0.002})
    assert perf["params"]["fees"] == 0.002
    assert "equity" not in perf
    levels = await _call(research, "levels", {"symbol": "BTC"})
    assert levels["symbol"] == "BTC"
    graded = await _call(research, "grades", {"symbol": "BTC"})
    assert 0 < len(graded["history"]) <= 30
    assert graded["trader"]["sub_grades"]


async def test_predictions_and_probability(research: Context) -> None:
    pred = await _call(research, "predictions", {"symbol": "ETH"})
    assert [h["horizon"] for h in pred["horizons"]] == [1, 7, 30, 90]
    by = (dt.date.fromisoformat(pred["origin"]) + dt.timedelta(days=30)).isoformat()
    far = await _call(research, "probability", {"symbol": "ETH", "level": 100_000, "by": by})
    near = await _call(research, "probability", {"symbol": "ETH", "level": 100, "by": by})
    assert 0 <= far["p_at"] < near["p_at"] <= 1
    below = await _call(
        research, "probability", {"symbol": "ETH", "level": 100, "by": by, "direction": "below"}
    )
    assert below["p_at"] == pytest.approx(1 - near["p_at"], abs=1e-6)
    bad = await _call(research, "probability", {"symbol": "ETH", "level": 100, "by": "2000-01-01"})
    assert "error" in bad


async def test_scenarios_are_placed_among_the_key_levels(research: Context) -> None:
    sc = await _call(research, "scenarios", {"symbol": "ETH"})
    assert [s["horizon"] for s in sc["scenarios"]] == [1, 7, 30, 90]
    close = sc["last_close"]
    for s in sc["scenarios"]:
        assert s["bear"] <= s["base"] <= s["bull"]
        for name in ("bear", "base", "bull"):
            target, placed = s[name], s[f"{name}_levels"]
            for level in placed["crossed"]:  # between the last close and the target
                assert min(close, target) <= level["price"] <= max(close, target)
            if placed["beyond"] is not None:
                assert not min(close, target) <= placed["beyond"]["price"] <= max(close, target)
    missing = await _call(research, "scenarios", {"symbol": "NOPE"})
    assert "error" in missing


async def test_ecosystem_chains_and_one_chain_window(research: Context) -> None:
    chains = await _call(research, "ecosystem", {})
    assert chains["items"][0]["chain"] == "ethereum"  # largest TVL first
    eth = await _call(research, "ecosystem", {"chain": "ethereum", "days": 7})
    tvl = next(s for s in eth["series"] if s["metric"] == "tvl_usd")
    assert len(tvl["points"]) == 7
    assert tvl["points"][-1]["date"] == tvl["last"]
    assert tvl["first"] == tvl["points"][0]["date"]


async def test_create_alert_needs_a_key_and_then_stores_the_rule(research: Context) -> None:
    rule = {
        "symbol": "ETH",
        "kind": "price_cross",
        "direction": "above",
        "level": 5000,
        "channels": ["json://127.0.0.1:9/hook"],
    }
    refused = await _call(research, "create_alert", rule)
    assert "api key" in refused["error"].lower()
    read_only = create_key(research, KeySpec(name="mcp-ro", scopes=("read",), plan="pro"))
    refused = await _call(research, "create_alert", rule, key=read_only.plaintext)
    assert "alerts:write" in refused["error"]
    writer = create_key(research, KeySpec(name="mcp", scopes=("read", "alerts:write")))
    made = await _call(research, "create_alert", rule, key=writer.plaintext)
    assert made["symbol"] == "ETH"
    assert made["spec"] == {"direction": "above", "level": 5000.0}
    from coinlens.services import alerts

    stored = alerts.get_rule(research, writer.key.id, made["id"])
    assert stored.kind == "price_cross"
    invalid = await _call(research, "create_alert", {**rule, "level": None}, key=writer.plaintext)
    assert "level" in invalid["error"]


def test_cli_refuses_a_public_http_bind(loaded_dir: Path) -> None:
    result = CliRunner().invoke(
        cli_app,
        ["mcp", "--data-dir", str(loaded_dir), "--transport", "http", "--host", "0.0.0.0"],  # noqa: S104 - refused
    )
    assert result.exit_code == 2
