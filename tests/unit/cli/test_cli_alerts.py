"""`coinlens alerts add`: every `-s` value shape reaches the rule schema typed; errors are lines."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from coinlens.alerts.rules import AlertRuleCreate
from coinlens.cli import alerts as cli_alerts
from coinlens.cli.main import app

HOOK = "json://127.0.0.1:8791/hook"


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> list[AlertRuleCreate]:
    """Bodies handed to the service (the key check and the store are stubbed out)."""
    bodies: list[AlertRuleCreate] = []

    class Rule:
        id, symbol, kind, spec, warnings = 1, "BTC", "x", {"a": "[b]"}, ["[stale]"]

    def create_rule(ctx: Any, owner: int, body: AlertRuleCreate) -> Rule:
        bodies.append(body)
        return Rule()

    monkeypatch.setattr(cli_alerts.alerts, "create_rule", create_rule)
    monkeypatch.setattr(cli_alerts.keys, "require_key", lambda ctx, key_id: None)
    return bodies


def _add(tmp_path: Path, *args: str) -> Any:
    argv = ["alerts", "add", "BTC", *args, "-c", HOOK, "--key-id", "1"]
    return CliRunner().invoke(app, [*argv, "--data-dir", str(tmp_path)])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["pct_change", "-s", "direction=either", "-s", "window=24h", "-s", "threshold=3"],
            {"window": "24h", "threshold": 3.0},
        ),
        (["pct_change", "-s", "direction=up", "-s", "window=7d", "-s", "threshold=2.5"], None),
        (["price_cross", "-s", "direction=above", "-s", "level=1_000"], {"level": 1000.0}),
        (["price_cross", "-s", "direction=above", "-s", "level=1e5"], {"level": 100000.0}),
        (
            ["price_cross", "-s", "direction=below", "-s", "level=5", "-s", "note=42"],
            {"note": "42"},
        ),
        (
            ["price_cross", "-s", "direction=above", "-s", "level=5",
             "-s", "expires_at=2099-01-01T00:00:00Z"],
            {"expires_at": datetime(2099, 1, 1, tzinfo=UTC)},
        ),
        (
            ["grade_move", "-s", "grade=trader", "-s", "points=10"],
            {"grade": "trader", "points": 10.0},
        ),
        (
            ["probability_cross", "-s", "direction=above", "-s", "target=1e5",
             "-s", "horizon_days=30", "-s", "threshold=0.6"],
            {"target": 100000.0, "horizon_days": 30, "threshold": 0.6},
        ),
    ],
)  # fmt: skip
def test_set_values_are_typed_by_the_rule_schema(
    tmp_path: Path, created: list[AlertRuleCreate], args: list[str], expected: dict[str, Any]
) -> None:
    result = _add(tmp_path, *args)

    if expected is None:  # direction=up is not a direction: a clean error, not a traceback
        assert result.exit_code == 1
        assert "direction:" in result.output
        assert "Traceback" not in result.output
        return
    assert result.exit_code == 0, result.output
    assert {k: getattr(created[0], k) for k in expected} == expected


def test_quiet_hours_option_sets_the_window(tmp_path: Path, created: list[AlertRuleCreate]) -> None:
    result = _add(
        tmp_path, "price_cross", "-s", "direction=above", "-s", "level=5",
        "--quiet-hours", "22:00-07:00",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    quiet = created[0].quiet_hours
    assert quiet is not None
    assert (quiet.start, quiet.end) == (time(22), time(7))
    assert "[b]" in result.output  # spec and warnings printed as text, not markup
    assert "[stale]" in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["price_cross", "-s", "direction=above", "-s", "level=-5"], "level: Input should be"),
        (["bogus"], "kind: Input should be"),
        (["price_cross", "-s", "direction=above", "-s", "level=5", "--timezone", "Mars/Base"],
         "timezone: unknown IANA time zone 'Mars/Base'"),
        (["price_cross", "-s", "direction"], "expected key=value"),
        (["price_cross", "-s", "direction=above", "-s", "level=5", "--quiet-hours", "22:00"],
         "quiet_hours: expected HH:MM-HH:MM"),
        (["price_cross", "-s", "direction=above", "-s", "level=5", "-s", "colour=red"],
         "colour: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_invalid_rules_are_one_error_line_naming_the_field(
    tmp_path: Path, created: list[AlertRuleCreate], args: list[str], says: str
) -> None:
    result = _add(tmp_path, *args)

    assert result.exit_code == 1
    assert result.output.startswith("error: "), result.output
    assert says in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    assert HOOK not in result.output
    assert created == []


def test_an_unknown_key_id_is_named_and_nothing_secret_is_printed(tmp_path: Path) -> None:
    result = CliRunner(env={"COINLENS_ALERTS_ALLOW_HOSTS": '["127.0.0.1"]'}).invoke(
        app,
        ["alerts", "add", "BTC", "price_cross", "-s", "direction=above", "-s", "level=5",
         "-c", HOOK, "--key-id", "999", "--data-dir", str(tmp_path)],
    )  # fmt: skip

    assert result.exit_code == 1
    assert result.output.strip() == "error: no API key with id 999"
