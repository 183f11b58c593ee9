"""Scale-out end to end: 2 Celery workers + beat on the real Redis and PostgreSQL.

A week of SYNTHETIC history is replayed twice from the same source: once with the whole
pipeline in this process, once with every recompute fanned out as token shards + a join
onto two worker processes while beat schedules its jobs. One worker is killed (SIGKILL, its
whole process group) while it holds a task; acks-late redelivers that task to the other
worker. The stored tables must be byte-identical to the single-process run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from coinlens.cli.live import recompute_via_celery
from coinlens.pipeline import synthetic
from coinlens.services.context import Context, build_context
from coinlens.services.replay import ReplayConfig, ReplayReport, canonical_dump, replay
from coinlens.services.scheduler import recompute_in_process, wait_until
from coinlens.settings import Settings, get_settings
from coinlens.storage.db import make_engine

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

PG_ADMIN_URL = os.environ.get(
    "COINLENS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WINDOW = ReplayConfig(start=date(2025, 3, 30), end=date(2025, 4, 5))
VISIBILITY = 8.0
SHARDS = 4
COINLENS = str(Path(sys.executable).with_name("coinlens"))
TASK = re.compile(r"Task (coinlens\.\w+)\[([0-9a-f-]+)\] (received|succeeded)")


@pytest.fixture
def pg_schemas(pg_url: str) -> Iterator[list[str]]:
    """Two more fresh PostgreSQL schemas (pg_url checks the server and gives the first)."""
    names = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    admin = make_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        for name in names:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    sep = "&" if "?" in PG_ADMIN_URL else "?"
    yield [f"{PG_ADMIN_URL}{sep}options=-csearch_path%3D{n}" for n in names]
    with admin.begin() as conn:
        for name in names:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    admin.dispose()


@pytest.fixture
def broker_url(redis_url: str) -> Iterator[str]:
    """A Redis database of its own for the broker and results, emptied before and after."""
    import redis

    url = redis_url.rsplit("/", 1)[0] + "/13"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def _tasks(log: Path) -> tuple[set[str], set[str]]:
    received: set[str] = set()
    done: set[str] = set()
    text = log.read_text(errors="replace") if log.exists() else ""
    for _, task_id, what in TASK.findall(text):
        (received if what == "received" else done).add(task_id)
    return received, done


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [COINLENS, *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


class Killer:
    """Kills worker 1 (its process group) the first time it holds an unfinished task."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc, self.log = proc, log
        self.armed = threading.Event()
        self.victims: set[str] = set()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        self.armed.wait(120)
        end = time.monotonic() + 60
        while time.monotonic() < end and self.proc.poll() is None:
            received, done = _tasks(self.log)
            if received - done:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.victims = received - done
                return
            time.sleep(0.005)

    def on_day(self, day: int, report: ReplayReport) -> None:
        if report.days >= 2:
            self.armed.set()


def _seed_source(tmp_path: Path) -> Context:
    src = build_context(get_settings(env="test", data_dir=tmp_path / "source"))
    synthetic.write_universe(src, synthetic.make_universe(16, 900, start=date(2022, 10, 20)))
    return src


def _single(src: Context, url: str, tmp_path: Path) -> bytes:
    dst = build_context(get_settings(env="test", data_dir=tmp_path / "single", database_url=url))
    try:
        replay(src, dst, WINDOW, recompute_in_process)
        return canonical_dump(dst)
    finally:
        dst.engine.dispose()


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COINLENS_")}
    env.update(
        COINLENS_ENV="test",
        COINLENS_DATA_DIR=str(settings.data_dir),
        COINLENS_DATABASE_URL=str(settings.database_url),
        COINLENS_REDIS_URL=str(settings.redis_url),
        COINLENS_VISIBILITY_TIMEOUT=str(VISIBILITY),
    )
    return env


def _scale_out(src: Context, settings: Settings, tmp_path: Path) -> dict[str, Any]:
    env = _env(settings)
    logs = [tmp_path / f"{n}.log" for n in ("w1", "w2", "beat")]
    dst = build_context(settings)  # migrate before the workers start
    # each process keeps its own panel cache, as on separate hosts
    procs = [
        _spawn(
            ["worker", "--name", f"{n}@%h"], {**env, "COINLENS_DATA_DIR": str(tmp_path / n)}, log
        )
        for n, log in zip(("w1", "w2"), logs, strict=False)
    ]
    beat_args = ["beat", "--mode", "replay", "--period-scale", "1e-5", f"--shards={SHARDS}"]
    procs.append(_spawn(beat_args, {**env, "COINLENS_DATA_DIR": str(tmp_path / "beat")}, logs[2]))
    try:
        ready = wait_until(lambda: all("ready." in p.read_text() for p in logs[:2]), 60, 0.1)
        assert ready, "workers did not start: " + logs[0].read_text()[-2000:]
        killer = Killer(procs[0], logs[0])
        recompute = recompute_via_celery(settings, SHARDS, VISIBILITY, timeout=80)
        replay(src, dst, WINDOW, recompute, on_day=killer.on_day)
        dump = canonical_dump(dst)

        def redelivered() -> bool:
            return killer.victims - _tasks(logs[0])[1] <= _tasks(logs[1])[1]

        # a killed beat task (not part of the replayed recompute) is redelivered only after
        # the visibility timeout, possibly after the replay ended: give it that long
        wait_until(redelivered, VISIBILITY * 4, 0.2)
    finally:
        for p in procs:
            _stop(p)
        dst.engine.dispose()
    return {
        "dump": dump,
        "victims": killer.victims,
        "w1_rc": procs[0].returncode,
        "w1": _tasks(logs[0]),  # read after the kill: lines flushed just before it count
        "w2": _tasks(logs[1]),
        "beat": logs[2].read_text(errors="replace"),
    }


def test_killed_worker_scale_out_stores_exactly_what_one_process_stores(
    tmp_path: Path, pg_url: str, pg_schemas: list[str], broker_url: str
) -> None:
    src = _seed_source(tmp_path)
    expected = _single(src, pg_url, tmp_path)
    settings = get_settings(
        env="test", data_dir=tmp_path / "multi", database_url=pg_schemas[0], redis_url=broker_url
    )

    got = _scale_out(src, settings, tmp_path)
    src.engine.dispose()

    assert got["w1_rc"] == -signal.SIGKILL, "worker 1 was never caught holding a task"
    assert got["victims"], "worker 1 held no unfinished task when killed"
    _, w1_done = got["w1"]
    _, w2_done = got["w2"]
    # a task whose success line reached worker 1's log was finished (and possibly acked) just
    # before the kill; every other task it held must have been redelivered to worker 2
    unfinished = got["victims"] - w1_done
    assert unfinished <= w2_done, "the killed worker's task was not re-run by worker 2"
    assert "Sending due task" in got["beat"], "beat scheduled nothing"
    assert b"## token_analytics" in expected
    assert expected.count(b"\n") > 1000
    assert got["dump"] == expected
