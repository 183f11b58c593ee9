"""Storage benchmark: bulk ingest (candles/s) and full daily-panel read, SQLite and PostgreSQL,
next to writing/reading the same panel as Parquet with pyarrow — all in one run. Then the live
step: one new daily candle for every token in one bulk write, the panel read that merges it
into the snapshot, and a cold rebuild of the same panel (checked equal to the merged one).

Data: a SYNTHETIC 2,000 tokens × 2,000 days panel (bench/synthetic.py), never shown as market data.
Run: .venv/bin/python bench/storage.py [--tokens 2000 --days 2000 --pg postgresql://...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import LABEL, SyntheticPanel, make_panel

from coinlens.storage import panel as panel_module
from coinlens.storage import repo
from coinlens.storage.db import make_engine, upgrade
from coinlens.storage.panel import read_daily_panel

DAY = 86_400
T0_DAY = 17_000  # 2016-07-18


def _ingest(engine: sa.Engine, panel: SyntheticPanel) -> tuple[float, int]:
    upgrade(engine)
    n_tok = panel.close.shape[0]
    with engine.begin() as conn:
        ids = repo.upsert_tokens(
            conn,
            [
                {
                    "symbol": s,
                    "name": f"{s} ({LABEL})",
                    "categories": [LABEL],
                    "is_stablecoin": False,
                }
                for s in panel.symbols
            ],
        )
        mids = repo.upsert_markets(
            conn,
            [
                {
                    "market_key": f"synthetic:spot:{s}USDT",
                    "token_id": ids[s],
                    "exchange": "synthetic",
                    "pair": f"{s}USDT",
                    "quote": "USDT",
                    "instrument": "spot",
                    "contract_multiplier": 1.0,
                    "source": LABEL.lower(),
                }
                for s in panel.symbols
            ],
        )
    total = 0
    t0 = time.perf_counter()
    for i, sym in enumerate(panel.symbols):
        valid = np.flatnonzero(~np.isnan(panel.close[i]))
        rows = [
            {
                "open_time": (T0_DAY + int(d)) * DAY,
                "open": float(panel.open[i, d]),
                "high": float(panel.high[i, d]),
                "low": float(panel.low[i, d]),
                "close": float(panel.close[i, d]),
                "volume": float(panel.volume[i, d]),
                "quote_volume": None,
                "trades": None,
            }
            for d in valid
        ]
        with engine.begin() as conn:
            repo.write_candles(conn, mids[f"synthetic:spot:{sym}USDT"], "1d", rows)
        total += len(rows)
        if i % 200 == 0:
            print(f"  ingest {i}/{n_tok} tokens", end="\r", flush=True)
    elapsed = time.perf_counter() - t0
    with engine.begin() as conn:
        repo.refresh_token_spans(conn)
    print(" " * 40, end="\r")
    return elapsed, total


def _read(engine: sa.Engine, cache: Path, reps: int = 3) -> tuple[float, float]:
    t0 = time.perf_counter()
    cold = read_daily_panel(engine, cache)
    cold_s = time.perf_counter() - t0
    warm = []
    for _ in range(reps):
        panel_module._LAST.clear()  # the snapshot file, not this process's panel of the version
        t0 = time.perf_counter()
        p = read_daily_panel(engine, cache)
        warm.append(time.perf_counter() - t0)
    assert p.close.shape == cold.close.shape
    return cold_s, min(warm)


def _new_day(engine: sa.Engine, panel: SyntheticPanel, cache: Path) -> tuple[float, float, float]:
    """Seconds to write one new candle per token, to read the panel after it (merged into
    the snapshot) and to rebuild that panel cold; the two panels must be equal."""
    day = T0_DAY + panel.close.shape[1]
    with engine.connect() as conn:
        mids = repo.market_ids(conn)
    rows = {
        mids[f"synthetic:spot:{sym}USDT"]: [
            {
                "open_time": day * DAY,
                "open": float(panel.close[i, -1]),
                "high": float(panel.close[i, -1]) * 1.02,
                "low": float(panel.close[i, -1]) * 0.98,
                "close": float(panel.close[i, -1]) * 1.01,
                "volume": float(panel.volume[i, -1]),
                "quote_volume": None,
                "trades": None,
            }
        ]
        for i, sym in enumerate(panel.symbols)
    }
    t0 = time.perf_counter()
    with engine.begin() as conn:
        repo.write_candles_many(conn, "1d", rows)
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    merged = read_daily_panel(engine, cache)
    merged_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cold = read_daily_panel(engine, cache.with_name(cache.name + "-cold"))
    cold_s = time.perf_counter() - t0
    for f in ("open", "high", "low", "close", "volume", "quote_volume"):
        assert np.array_equal(getattr(merged, f), getattr(cold, f), equal_nan=True), f
    return write_s, merged_s, cold_s


def _parquet(panel: SyntheticPanel, path: Path, reps: int = 3) -> tuple[float, float]:
    tok, day = np.nonzero(~np.isnan(panel.close))
    t0 = time.perf_counter()
    table = pa.table(
        {
            "token": tok.astype(np.int32),
            "day": day.astype(np.int32),
            **{f: getattr(panel, f)[tok, day] for f in ("open", "high", "low", "close", "volume")},
        }
    )
    pq.write_table(table, path, compression="zstd")
    write_s = time.perf_counter() - t0
    reads = []
    for _ in range(reps):
        t0 = time.perf_counter()
        t = pq.read_table(path)
        r, c = t.column("token").to_numpy(), t.column("day").to_numpy()
        for f in ("open", "high", "low", "close", "volume"):
            grid = np.full(panel.close.shape, np.nan)
            grid[r, c] = t.column(f).to_numpy()
        reads.append(time.perf_counter() - t0)
    return write_s, min(reads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--days", type=int, default=2000)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    panel = make_panel(args.tokens, args.days, stagger=False)
    n = int(np.isfinite(panel.close).sum())
    print(f"{LABEL} panel: {args.tokens} tokens × {args.days} days = {n:,} candles\n")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        pq_write, pq_read = _parquet(panel, base / "anchor.parquet")
        results = {}
        engines = {"sqlite": make_engine(f"sqlite:///{base / 'bench.db'}")}
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(args.pg)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engines["postgresql"] = make_engine(f"{args.pg}?options=-csearch_path%3D{schema}")
        try:
            for name, engine in engines.items():
                ingest_s, rows = _ingest(engine, panel)
                cold, warm = _read(engine, base / f"cache-{name}")
                live = _new_day(engine, panel, base / f"cache-{name}")
                results[name] = (rows / ingest_s, cold, warm, *live)
                engine.dispose()
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    parquet_rate = n / pq_write
    print(
        f"{'store':<12}{'ingest candles/s':>18}{'panel read s':>14}{'cold rebuild s':>16}"
        f"{'read vs Parquet':>17}"
    )
    print(f"{'parquet':<12}{parquet_rate:>18,.0f}{pq_read:>14.3f}{'-':>16}{'1.00x':>17}")
    for name, (rate, cold, warm, *_) in results.items():
        print(f"{name:<12}{rate:>18,.0f}{warm:>14.3f}{cold:>16.2f}{warm / pq_read:>16.2f}x")
    print(f"\none new daily candle for all {args.tokens:,} tokens (bulk write, then panel read)")
    print(f"{'store':<12}{'write s':>10}{'merged read s':>15}{'cold rebuild s':>16}")
    for name, (*_, write_s, merged_s, cold_s) in results.items():
        print(f"{name:<12}{write_s:>10.3f}{merged_s:>15.3f}{cold_s:>16.2f}")
    print("\ntarget: full-panel read ≤ 1.0 s on the default store (SQLite)")


if __name__ == "__main__":
    main()
