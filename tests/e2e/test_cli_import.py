"""`coinlens import`: exit codes, the summary table and row-numbered rejection reasons."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coinlens.cli.common import console, err_console
from coinlens.cli.main import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "import"
YANNIEDOG = FIXTURES / "yanniedog" / "BTCUSDT_1d.csv"
BAD = """symbol,open_time,open,high,low,close,volume
ETHUSDT,2024-01-01T00:00:00Z,10,12,9,11,100
ETHUSDT,2024-01-02T00:00:00Z,11,10,12,11,100
ETHUSDT,2024-01-05T00:00:00Z,12,14,11,13,100
"""


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich sizes the table to the terminal; fix it so rows are not wrapped mid-name."""
    monkeypatch.setattr(console, "width", 200)
    monkeypatch.setattr(err_console, "width", 200)


@pytest.fixture
def db_args(tmp_path: Path) -> list[str]:
    return ["--data-dir", str(tmp_path / "data"), "--database-url", f"sqlite:///{tmp_path}/c.db"]


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "ETHUSDT_1d.csv"
    path.write_text(BAD, encoding="utf-8")
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["import", *args])
    return result.exit_code, result.output


def test_clean_import_exits_0_and_reimport_is_unchanged(db_args: list[str]) -> None:
    code, out = _run(str(YANNIEDOG), *db_args)
    again_code, again = _run(str(YANNIEDOG), *db_args)

    assert code == 0, out
    assert "import summary" in out
    assert "BTCUSDT_1d.csv" in out
    assert again_code == 0
    row = next(line for line in again.splitlines() if line.strip().startswith("BTCUSDT_1d.csv"))
    # rows, inserted, updated, unchanged, merged, rejected, gaps
    assert row.split()[1:] == ["30", "0", "0", "30", "0", "0", "0"]
    assert "BTCUSDT_1d.csv: ok (yanniedog layout, 1d" in again


def test_rejected_rows_exit_1_with_line_numbers(db_args: list[str], bad_file: Path) -> None:
    code, out = _run(str(bad_file), "--exchange", "binance", "--instrument", "spot", *db_args)

    assert code == 1
    assert "ETHUSDT_1d.csv:3: high (10) < low (12)" in out
    assert "gap binance:spot:ETHUSDT: 3 candle(s) missing from 2024-01-02T00:00Z" in out


def test_strict_rejects_the_file_and_says_so(db_args: list[str], bad_file: Path) -> None:
    code, out = _run(
        str(bad_file), "--strict", "--exchange", "binance", "--instrument", "spot", *db_args
    )

    assert code == 1
    assert "strict mode: file rejected, no candle written" in out


def test_a_file_needing_an_option_fails_but_others_import(
    db_args: list[str], bad_file: Path
) -> None:
    code, out = _run(str(bad_file), str(YANNIEDOG), *db_args)

    assert code == 1
    assert "pass --exchange and --instrument" in out
    assert "BTCUSDT_1d.csv" in out  # the good file still went in


def test_the_installed_command_runs(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("coinlens")
    env = {**os.environ, "COINLENS_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    env.pop("COINLENS_DATABASE_URL", None)

    done = subprocess.run(
        [str(exe), "import", str(FIXTURES / "marketlab" / "ETH_USDT-1d.csv")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,  # no stray .env from the working directory
    )

    assert done.returncode == 0, done.stderr
    assert "ETH_USDT-1d.csv" in done.stdout
