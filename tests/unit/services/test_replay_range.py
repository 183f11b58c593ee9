"""Replay refuses a range with no stored data before it touches the target database."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from coinlens.cli.main import app
from coinlens.domain.errors import UserInputError
from coinlens.services.context import Context, build_context
from coinlens.services.importer import Hints, ImportOptions, import_file
from coinlens.services.replay import ReplayConfig, replay, replay_days
from coinlens.settings import get_settings
from coinlens.storage.tables import tokens

DAYS = "\n".join(
    f"2024-01-0{d}T00:00:00Z,10,13,9,12,100" for d in range(1, 6)
)  # 2024-01-01 … 2024-01-05


@pytest.fixture
def source(tmp_path: Path) -> Context:
    ctx = build_context(get_settings(env="test", data_dir=tmp_path / "src"))
    path = tmp_path / "BTCUSDT_1d.csv"
    path.write_text("open_time,open,high,low,close,volume\n" + DAYS + "\n", encoding="utf-8")
    import_file(ctx, path, ImportOptions(hints=Hints(exchange="binance", instrument="spot")))
    return ctx


@pytest.fixture
def target(tmp_path: Path) -> Context:
    return build_context(get_settings(env="test", data_dir=tmp_path / "dst"))


def test_the_days_walked_are_clipped_to_the_stored_data(source: Context) -> None:
    days = replay_days(source, ReplayConfig(start=date(2024, 1, 3)))

    assert [date.fromordinal(date(1970, 1, 1).toordinal() + d) for d in days] == [
        date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("cfg", "says"),
    [
        (ReplayConfig(start=date(2030, 1, 1)), "stored daily candles end on 2024-01-05"),
        (ReplayConfig(start=date(2020, 1, 1), end=date(2020, 2, 1)), "begin on 2024-01-01"),
        (ReplayConfig(start=date(2024, 1, 3), end=date(2024, 1, 2)), "end is before its start"),
    ],
)
def test_an_empty_range_is_refused_and_the_target_left_untouched(
    source: Context, target: Context, cfg: ReplayConfig, says: str
) -> None:
    with pytest.raises(UserInputError, match=says):
        replay(source, target, cfg, lambda ctx, now: None)

    with target.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tokens)).scalar() == 0


def test_the_cli_refuses_before_the_previous_replay_is_wiped(source: Context) -> None:
    previous = source.settings.data_dir / "replay" / "coinlens.db"
    previous.parent.mkdir(parents=True, exist_ok=True)
    previous.write_bytes(b"an earlier replay")
    data_dir = str(source.settings.data_dir)

    bogus = CliRunner().invoke(app, ["replay", "--from", "2024-01-02", "--executor", "bogus"])
    late = CliRunner().invoke(app, ["replay", "--from", "2030-01-01", "--data-dir", data_dir])

    assert bogus.exit_code == 2
    assert late.exit_code == 1
    assert "stored daily candles end on 2024-01-05" in " ".join(late.output.split())
    assert previous.read_bytes() == b"an earlier replay"
