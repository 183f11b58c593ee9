"""`coinlens import` output: data text is never Rich markup, an error prints once, bad options."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from coinlens.cli.common import console, err_console
from coinlens.cli.main import app
from coinlens.storage.db import make_engine

ROWS = """open_time,open,high,low,close,volume
2024-01-01T00:00:00Z,10,13,9,12,100
2024-01-02T00:00:00Z,-11,13,10,12,100
2099-01-01T00:00:00Z,10,13,9,12,100
"""


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 250)
    monkeypatch.setattr(err_console, "width", 250)


def _import(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["import", *args, "--data-dir", str(tmp_path)])
    return result.exit_code, result.output


def _file(tmp_path: Path, name: str = "BTCUSDT_1d.csv") -> Path:
    path = tmp_path / name
    path.write_text(ROWS, encoding="utf-8")
    return path


def test_reasons_keep_their_brackets_and_future_rows_are_rejected(tmp_path: Path) -> None:
    code, out = _import(
        tmp_path, str(_file(tmp_path)), "--exchange", "binance", "--instrument", "spot"
    )

    assert code == 1
    assert "open (-11) outside [low, high] = [10, 13]" in out
    assert "open time 2099-01-01T00:00:00Z is in the future (after now + 1d)" in out
    assert "gap " not in out  # the future row made no 27,000-candle gap


def test_a_file_error_is_printed_and_recorded_once(tmp_path: Path) -> None:
    path = _file(tmp_path, "good.csv")

    code, out = _import(tmp_path, str(path), "--exchange", "binance", "--instrument", "spot")

    assert code == 1
    assert out.count("cannot infer the timeframe") == 1, out
    with make_engine(f"sqlite:///{tmp_path / 'coinlens.db'}").connect() as conn:
        message = conn.execute(sa.text("SELECT message FROM import_runs")).scalar_one()
    assert message.count("cannot infer the timeframe") == 1, message


def test_an_exchange_that_cannot_be_a_market_key_is_refused_up_front(tmp_path: Path) -> None:
    code, out = _import(
        tmp_path, str(_file(tmp_path)), "--exchange", "Bad Exchange!", "--instrument", "spot"
    )

    assert code == 2
    assert out.startswith("error: --exchange 'Bad Exchange!'"), out
    assert not (tmp_path / "coinlens.db").exists()


def test_show_cannot_be_negative(tmp_path: Path) -> None:
    code, out = _import(tmp_path, str(_file(tmp_path)), "--show", "-1")

    assert code == 2
    assert "--show" in out
