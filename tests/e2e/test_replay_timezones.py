"""Replay stores byte-identical data whatever the host timezone, across a DST change.

`coinlens replay` runs in subprocesses under four `TZ` values (and the matching `PGTZ`, so
PostgreSQL sessions use it too) over 2025-03-29 … 2025-04-06, a window containing Europe's
switch to summer time (03-30) and Lord Howe's end of summer time (04-06). Each run replays
the same SYNTHETIC source into its own fresh PostgreSQL schema and writes a canonical dump;
the dumps must be equal byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from coinlens.pipeline import synthetic
from coinlens.services.context import build_context
from coinlens.settings import get_settings
from coinlens.storage.db import make_engine

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PG_ADMIN_URL = os.environ.get(
    "COINLENS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe")
COINLENS = str(Path(sys.executable).with_name("coinlens"))


@pytest.fixture
def schemas(pg_url: str) -> Iterator[list[str]]:
    """One fresh PostgreSQL schema per timezone (pg_url checks the server is there)."""
    names = [f"t_{uuid.uuid4().hex[:12]}" for _ in ZONES]
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


def _replay(zone: str, source: Path, url: str, out: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COINLENS_")}
    env.update(TZ=zone, PGTZ=zone, COINLENS_ENV="test", COINLENS_DATA_DIR=str(source))
    args = ["replay", "--from", "2025-03-29", "--to", "2025-04-06", "--speed", "0"]
    return subprocess.Popen(
        [COINLENS, *args, "--into", url, "--dump", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_replay_dumps_are_identical_under_four_timezones(
    tmp_path: Path, schemas: list[str]
) -> None:
    source = tmp_path / "source"
    ctx = build_context(get_settings(env="test", data_dir=source))
    synthetic.write_universe(ctx, synthetic.make_universe(12, 900, start=date(2022, 10, 20)))
    ctx.engine.dispose()
    outs = [tmp_path / f"dump-{i}.jsonl" for i in range(len(ZONES))]

    # two at a time: the machine has two cores
    for batch in (range(0, 2), range(2, 4)):
        procs = [_replay(ZONES[i], source, schemas[i], outs[i]) for i in batch]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err.decode(errors="replace")[-3000:]

    dumps = [p.read_bytes() for p in outs]
    assert b"## grades" in dumps[0]
    assert dumps[0].count(b"\n") > 1000
    for zone, dump in zip(ZONES[1:], dumps[1:], strict=True):
        assert dump == dumps[0], f"stored data differ under TZ={zone}"
