"""An operator's bad day, in one line each: a bad setting, a damaged database file, a port
another server holds, a database busy with another writer; and a second writer waits."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from coinlens.cli.common import console, err_console, user_errors
from coinlens.cli.main import app
from coinlens.settings import get_settings
from coinlens.storage.db import make_engine, upgrade


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 250)
    monkeypatch.setattr(err_console, "width", 250)


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("COINLENS_PORT", "abc", "error: setting COINLENS_PORT: Input should be a valid integer"),
        (
            "COINLENS_DATABASE_URL",
            "mysql://admin:hunter2secret@db/x",
            "error: setting COINLENS_DATABASE_URL: database_url must be a sqlite:// or "
            "postgresql:// URL",
        ),
        ("COINLENS_PLANS", "{", "error: setting COINLENS_PLANS is not valid JSON"),
        (
            "COINLENS_PLANS",
            '{"free": {"per_minute": 0, "per_day": 1}}',
            "error: setting COINLENS_PLANS (free.per_minute): Input should be greater than",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, said: str
) -> None:
    monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["tokens", "--data-dir", str(tmp_path)])

    assert result.exit_code == 2
    assert _lines(result.output) == [_lines(result.output)[0]]
    assert _lines(result.output)[0].startswith(said), result.output
    assert "hunter2secret" not in result.output  # a URL's password is never echoed
    assert "Traceback" not in result.output


def test_a_setting_left_blank_means_its_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`COINLENS_PORT=` in .env or the environment: the default, not a parse error."""
    for name in ("COINLENS_PORT", "COINLENS_DATABASE_URL", "COINLENS_LOG_LEVEL"):
        monkeypatch.setenv(name, "")
    assert get_settings().port == 8000
    result = CliRunner().invoke(app, ["db", "upgrade", "--data-dir", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "coinlens.db").exists()


def test_a_damaged_database_file_is_one_line_naming_it_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "coinlens.db").write_bytes(os.urandom(8192))
    for command in (["tokens"], ["serve", "--port", str(_free_port())]):
        result = CliRunner().invoke(app, [*command, "--data-dir", str(tmp_path)])

        assert result.exit_code == 2, result.output
        assert _lines(result.output) == [
            f"error: while migrating: the SQLite file {tmp_path / 'coinlens.db'} is damaged "
            "or not a Coinlens database (file is not a database): restore it from a backup, "
            "or move it aside to start afresh"
        ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", ["serve", "up"])
def test_a_port_in_use_is_refused_before_the_banner_and_before_loading(
    tmp_path: Path, command: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            app, [command, "--port", str(port), "--data-dir", str(tmp_path / "data")]
        )

    assert result.exit_code == 2
    assert _lines(result.output) == [
        f"error: port {port} on 127.0.0.1 is already in use (another Coinlens?): stop that "
        "server or choose another --port / COINLENS_PORT"
    ]
    if command == "up":  # refused at once: nothing was migrated or loaded first
        assert not (tmp_path / "data" / "coinlens.db").exists()


def test_a_busy_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """What a command meets when another process keeps SQLite's write lock past the busy
    timeout (a real 'database is locked', with the timeout shortened)."""
    url = f"sqlite:///{tmp_path / 'coinlens.db'}"
    holder, engine = make_engine(url), make_engine(url)
    upgrade(holder)
    runner = CliRunner()
    try:
        with holder.connect() as held, engine.connect() as conn:
            held.exec_driver_sql("BEGIN IMMEDIATE")
            conn.exec_driver_sql("PRAGMA busy_timeout=50")

            def write() -> None:
                with user_errors(1, database_url=url):
                    conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")

            cli = typer.Typer()
            cli.command()(write)
            result = runner.invoke(cli, [])
            held.rollback()
    finally:
        holder.dispose()
        engine.dispose()

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert _lines(result.output) == [
        f"error: the SQLite file {tmp_path / 'coinlens.db'} is busy (database is locked): "
        "another process is writing to it; try again when it has finished"
    ]


def test_a_bug_is_not_dressed_as_a_database_problem(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'coinlens.db'}"
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER NOT NULL)")

        def insert_null() -> None:
            with user_errors(1, database_url=url), engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (NULL)")

        with pytest.raises(sa.exc.IntegrityError):
            insert_null()
    finally:
        engine.dispose()


HOLD = """
import sys, time
from coinlens.storage.writer_lock import writer_lock
with writer_lock(sys.argv[1], "coinlens load"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""

ROWS = """open_time,open,high,low,close,volume
2024-01-01T00:00:00Z,10,13,9,12,100
2024-01-02T00:00:00Z,11,13,10,12,100
"""


def test_import_waits_for_a_load_in_another_process_and_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{(data / 'coinlens.db').resolve()}"
    csv = tmp_path / "BTCUSDT_1d.csv"
    csv.write_text(ROWS, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, url, "1.5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "held\n"
        started = time.perf_counter()
        command = ["import", str(csv), "--exchange", "binance", "--instrument", "spot"]
        result = CliRunner().invoke(app, [*command, "--data-dir", str(data)])
        assert time.perf_counter() - started > 1.0  # it ran only once the load had finished
    finally:
        proc.communicate(timeout=30)

    assert result.exit_code == 0, result.output
    first = _lines(result.output)[0]
    assert first.startswith(f"waiting: pid {proc.pid} (coinlens load, since ")
    assert first.endswith(
        f"is writing to {data.resolve() / 'coinlens.db'}; this starts when it has finished "
        "(Ctrl-C to stop)"
    )
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM candles").scalar() == 2
    finally:
        engine.dispose()
