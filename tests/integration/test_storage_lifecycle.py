"""One SQLite data dir through an operator's lifecycle: migrations all or nothing and one
migrator at a time, the writer lock between processes, driver errors named by their file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from coinlens.domain.errors import ConfigError, TemporaryError
from coinlens.storage.db import code_revision, current_revision, database_error, make_engine
from coinlens.storage.db import upgrade as migrate
from coinlens.storage.writer_lock import lock_path, writer_lock


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_migration_that_fails_part_way_leaves_no_table_behind(tmp_path: Path) -> None:
    """pysqlite commits each CREATE TABLE on its own unless a transaction is open: a failing
    (or killed) upgrade left the tables of the migrations before it without a revision,
    and every later start failed on 'table … already exists'."""
    url = f"sqlite:///{tmp_path / 'coinlens.db'}"
    engine = make_engine(url)
    try:
        with engine.begin() as conn:  # in the way of migration 0005, after 0001–0004 ran
            conn.exec_driver_sql("CREATE TABLE api_keys (x INTEGER)")
        with pytest.raises(Exception, match="api_keys"):
            migrate(engine)
        assert _tables(url) == {"api_keys"}  # 0001–0004's tables rolled back with it
        assert current_revision(engine) is None
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE api_keys")
        migrate(engine)  # and the next start migrates from scratch
        assert current_revision(engine) == code_revision()
    finally:
        engine.dispose()


def test_two_processes_migrating_a_new_file_at_once_both_succeed(tmp_path: Path) -> None:
    """`coinlens up` beside `coinlens serve` (or `serve --workers N`) on a new data dir: the
    second migrator waits for the first, then finds nothing to do."""
    url = f"sqlite:///{tmp_path / 'coinlens.db'}"
    code = (
        "import sys; from coinlens.storage.db import make_engine, upgrade; "
        "upgrade(make_engine(sys.argv[1]))"
    )
    for _ in range(3):
        (tmp_path / "coinlens.db").unlink(missing_ok=True)
        procs = [
            subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors
    engine = make_engine(url)
    try:
        assert current_revision(engine) == code_revision()
    finally:
        engine.dispose()


def test_an_up_to_date_database_opens_while_another_process_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    """Serving must start while a load or pipeline writes (a grades run holds SQLite's
    write lock for seconds): with nothing to migrate, no write lock is asked for."""
    url = f"sqlite:///{tmp_path / 'coinlens.db'}"
    engine = make_engine(url)
    migrate(engine)
    other = make_engine(url)
    try:
        with other.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            started = time.perf_counter()
            migrate(engine)
            assert time.perf_counter() - started < 5  # not the 10 s busy timeout
            conn.rollback()
    finally:
        other.dispose()
        engine.dispose()


def test_driver_errors_name_the_file_and_what_to_do(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(os.urandom(8192))
    engine = make_engine(f"sqlite:///{damaged}")
    try:
        with pytest.raises(ConfigError, match="damaged or not a Coinlens database"):
            migrate(engine)
    finally:
        engine.dispose()

    url = f"sqlite:///{tmp_path / 'busy.db'}"
    holder, waiter = make_engine(url), make_engine(url)
    try:
        migrate(holder)
        with holder.connect() as held, waiter.connect() as conn:
            held.exec_driver_sql("BEGIN IMMEDIATE")
            conn.exec_driver_sql("PRAGMA busy_timeout=50")
            with pytest.raises(sa.exc.OperationalError) as caught:
                conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            held.rollback()
        problem = database_error(caught.value, url)
        assert isinstance(problem, TemporaryError)
        assert "busy.db is busy (database is locked): another process is writing" in (
            problem.detail
        )
    finally:
        holder.dispose()
        waiter.dispose()


def test_make_engine_refuses_a_driver_that_is_not_installed_in_one_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot use the database URL .*\*\*\*@.*asyncpg"):
        make_engine("postgresql+asyncpg://user:secret@127.0.0.1:1/db")
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ConfigError, match=r"cannot create .* for the database coinlens\.db"):
        make_engine(f"sqlite:///{tmp_path / 'file' / 'sub' / 'coinlens.db'}")


HOLD = """
import sys, time
from coinlens.storage.writer_lock import writer_lock
with writer_lock(sys.argv[1], "test holder"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(url: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, url, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "held\n"
    return proc


def test_the_writer_lock_waits_for_its_holder_and_names_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'coinlens.db'}"
    proc = _holder(url, 1.5)
    waited: list[str] = []
    try:
        started = time.perf_counter()
        with writer_lock(url, "coinlens pipeline", waited.append):
            held_after = time.perf_counter() - started
            assert "coinlens pipeline" in lock_path(url).read_text()  # type: ignore[union-attr]
    finally:
        proc.communicate(timeout=30)
    assert len(waited) == 1
    assert waited[0].startswith(f"pid {proc.pid} (test holder, since ")
    assert held_after > 0.5  # it waited for the holder, it did not barge in


def test_a_killed_holder_never_leaves_the_writer_lock_stale(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'coinlens.db'}"
    proc = _holder(url, 600)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    waited: list[str] = []
    started = time.perf_counter()
    with writer_lock(url, "coinlens up", waited.append):
        assert time.perf_counter() - started < 2
    assert waited == []


def test_the_writer_lock_is_exclusive_within_one_process_too(tmp_path: Path) -> None:
    """Two threads (the scheduler beside a command) get it one after the other."""
    url = f"sqlite:///{tmp_path / 'coinlens.db'}"
    inside: list[int] = []
    overlap: list[bool] = []

    def work(i: int) -> None:
        with writer_lock(url, f"thread {i}"):
            overlap.append(bool(inside))
            inside.append(i)
            time.sleep(0.2)
            inside.remove(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert overlap == [False, False, False]


def test_postgresql_urls_take_no_file_lock() -> None:
    assert lock_path("postgresql+psycopg://u@127.0.0.1:5432/db") is None
    with writer_lock("postgresql+psycopg://u@127.0.0.1:5432/db", "x"):
        pass
