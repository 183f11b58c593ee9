"""`serve`/`mcp` options: ports in 1..65535, a given port wins, IPv6 URLs, no empty database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from coinlens.cli import platform
from coinlens.cli.common import http_url
from coinlens.cli.main import app
from coinlens.settings import get_settings


@pytest.mark.parametrize("port", ["70000", "0", "-1"])
def test_serve_refuses_a_port_outside_1_to_65535(tmp_path: Path, port: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--port", port, "--data-dir", str(tmp_path)])

    assert result.exit_code == 2
    assert "--port" in result.output


def test_serve_refuses_unsafe_settings_in_one_line_before_serving(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COINLENS_PLANS", '{"free": {"per_minute": 1, "per_day": 2}}')
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path)])

    assert result.exit_code == 2
    assert "error: plans must define at least `free` and `anonymous`" in result.output
    assert "Traceback" not in result.output
    assert "Coinlens on" not in result.output


@pytest.mark.parametrize(("given", "served"), [(None, 8123), (8124, 8124)])
def test_serve_uses_the_given_port_else_the_settings_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: int | None, served: int
) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    monkeypatch.setattr("coinlens.api.app.create_app", lambda settings: object())
    settings = get_settings(env="test", data_dir=tmp_path, port=8123, host="::1")

    platform._serve(settings, None, given)

    assert calls[0]["port"] == served
    assert calls[0]["host"] == "::1"


@pytest.mark.parametrize(
    ("host", "url"),
    [("127.0.0.1", "http://127.0.0.1:8776"), ("::1", "http://[::1]:8776"),
     ("localhost", "http://localhost:8776")],
)  # fmt: skip
def test_http_url_brackets_ipv6_hosts(host: str, url: str) -> None:
    assert http_url(host, 8776) == url


def test_mcp_refuses_a_data_dir_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"

    result = CliRunner().invoke(app, ["mcp", "--data-dir", str(missing)])

    assert result.exit_code == 2
    assert "does not exist" in " ".join(result.output.split())
    assert not missing.exists()
