"""MCP tools: `create_alert` takes every rule field and kind; answers carry no float noise."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.client import Client
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from coinlens.alerts.rules import KINDS, AlertRuleCreate
from coinlens.domain.grades import BAND_NAMES
from coinlens.mcp import server as mcp_server
from coinlens.mcp.server import CoinlensTools, build_server
from coinlens.services import alerts
from coinlens.services.context import Context

pytestmark = pytest.mark.anyio
HOOK = "json://user:s3cret@127.0.0.1:9/hook"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def stored(monkeypatch: pytest.MonkeyPatch) -> list[AlertRuleCreate]:
    """Bodies the tool hands to the service (owner and store stubbed)."""
    bodies: list[AlertRuleCreate] = []

    class Answer(BaseModel):
        threshold: float

    def create_rule(ctx: Any, owner: int, body: AlertRuleCreate) -> Answer:
        bodies.append(body)
        return Answer(threshold=-0.6000000000000001)

    monkeypatch.setattr(alerts, "create_rule", create_rule)
    monkeypatch.setattr(CoinlensTools, "_owner", lambda self: 7)
    return bodies


async def _schema(ctx: Context, tool: str = "create_alert") -> dict[str, Any]:
    async with Client(build_server(ctx)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    return tools[tool].input_schema


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_create_alert_offers_every_rule_field_and_the_kinds(ctx: Context) -> None:
    schema = await _schema(ctx)

    assert set(schema["properties"]) == set(AlertRuleCreate.model_fields)
    assert schema["properties"]["kind"]["enum"] == list(KINDS)


@pytest.mark.parametrize(
    ("tool", "argument", "says"),
    [
        ("backtest", "fee", "fraction"),
        ("backtest", "slippage", "fraction"),
        ("backtest", "start", "YYYY-MM-DD"),
        ("backtest", "end", "YYYY-MM-DD"),
        ("probability", "by", "YYYY-MM-DD"),
        ("probability", "level", "USD"),
        ("ecosystem", "chain", "ethereum"),
        ("screener", "sector", "known sectors"),
    ],
)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_arguments_state_their_units_and_formats(
    ctx: Context, tool: str, argument: str, says: str
) -> None:
    schema = await _schema(ctx, tool)

    assert says in schema["properties"][argument].get("description", "")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_screener_offers_the_grade_bands(ctx: Context) -> None:
    band = (await _schema(ctx, "screener"))["properties"]["band"]
    assert [*BAND_NAMES, None] == [
        v for choice in band["anyOf"] for v in choice.get("enum", [None])
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"kind": "grade_move", "grade": "investor", "points": 5}, {"points": 5.0}),
        (
            {"kind": "probability_cross", "direction": "above", "target": 5000,
             "horizon_days": 30, "threshold": 0.6,
             "quiet_hours": {"start": "22:00", "end": "07:00"},
             "expires_at": "2099-01-01T00:00:00Z", "cooldown_seconds": 60,
             "timezone": "Europe/Paris"},
            {"target": 5000.0, "horizon_days": 30, "cooldown_seconds": 60,
             "timezone": "Europe/Paris"},
        ),
    ],
)  # fmt: skip
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_create_alert_builds_every_kind(
    ctx: Context, stored: list[AlertRuleCreate], args: dict[str, Any], expected: dict[str, Any]
) -> None:
    async with Client(build_server(ctx, api_key="k")) as client:
        result = await client.call_tool(
            "create_alert", {"symbol": "ETH", "channels": [HOOK], **args}
        )

    assert not result.is_error, result.content
    assert {k: getattr(stored[0], k) for k in expected} == expected
    assert result.structured_content == {"threshold": -0.6}  # float noise rounded


def test_an_invalid_rule_names_the_field_without_echoing_channels(
    stored: list[AlertRuleCreate],
) -> None:
    tools = CoinlensTools(ctx=None, api_key="k")  # type: ignore[arg-type]

    with pytest.raises(ToolError) as caught:
        tools.create_alert("ETH", "grade_move", [HOOK], grade="trader")

    assert "points: Value error" not in str(caught.value)
    assert "points: a grade_move rule needs points" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert stored == []


@pytest.mark.parametrize(
    ("channels", "problem"),
    [
        ([HOOK] * 6, "channels: List should have at most 5 items"),
        (HOOK, "channels: Input should be a valid list"),
    ],
    ids=["too-many", "not-a-list"],
)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_invalid_arguments_name_the_field_without_echoing_them(
    ctx: Context, stored: list[AlertRuleCreate], channels: Any, problem: str
) -> None:
    async with Client(build_server(ctx, api_key="k")) as client:
        result = await client.call_tool(
            "create_alert", {"symbol": "ETH", "kind": "signal_flip", "channels": channels}
        )

    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert result.is_error
    assert f"create_alert: invalid arguments: {problem}" in text
    assert "s3cret" not in text
    assert "errors.pydantic.dev" not in text
    assert stored == []


def test_answers_are_rounded_to_fifteen_significant_digits() -> None:
    class Nested(BaseModel):
        values: list[float]
        inner: dict[str, float]

    dumped = mcp_server._dump(Nested(values=[7.0590000000000005e-06], inner={"x": 0.1 + 0.2}))

    assert dumped == {"values": [7.059e-06], "inner": {"x": 0.3}}
