"""CLI wording: counts agree with their noun, changes never read "-0.0%", errors print once."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from coinlens.cli.common import plural, signed_pct
from coinlens.cli.main import app


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 tokens"), (1, "1 token"), (2, "2 tokens"), (2665, "2,665 tokens")]
)
def test_plural_agrees_with_the_count(n: int, text: str) -> None:
    assert plural(n, "token") == text


@pytest.mark.parametrize(
    ("x", "text"),
    [(0.035, "+3.5%"), (-0.093, "-9.3%"), (-0.0001, "0.0%"), (0.0004, "0.0%"), (0.0, "0.0%")],
)
def test_signed_pct_writes_a_zero_change_without_sign(x: float, text: str) -> None:
    assert signed_pct(x) == text


def test_a_validation_error_is_printed_once(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["grades", "--band", "bogus", "--data-dir", str(tmp_path)])

    assert result.exit_code == 1
    assert result.output.count("must be one of") == 1, result.output
