"""The analytics step's saved state, and which mode its next run takes.

Incremental rule (documented in docs/signals.md). The state (signals, indicators,
drawdowns, backtest) is saved next to the panel snapshot with a checksum per panel day (a
wrapping uint64 sum of every token's OHLCV bit patterns times odd per-token/per-field
multipliers — exact, order-free, and any single changed candle changes its day's sum). The
next run is

* ``unchanged``   same tokens, same days, every day's checksum equal and rows stored: no-op;
* ``incremental`` same tokens in the same order, the same first day, exactly ONE new day
  appended and every earlier day's checksum equal: signals, indicators, drawdowns and
  the default backtest advance one bar from their saved states (`update_signals`,
  `update_indicators`, `update_drawdown_state`, `update_backtest`); events are appended
  for that day;
* ``full``        anything else (a new token, a corrected old candle, several new days,
  no or unreadable state, or ``full=True``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from coinlens.analytics.backtest import BacktestState
from coinlens.analytics.signals import SignalState
from coinlens.services.context import Context
from coinlens.storage.panel import Panel

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Mode = Literal["full", "incremental", "unchanged"]
STATE_FORMAT = 3


def day_checksums(p: Panel) -> NDArray[np.uint64]:
    """Per panel day, a wrapping uint64 checksum of every token's OHLCV bit patterns."""
    m = len(p.token_ids)
    rows = (np.arange(m, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)
    total = np.zeros(len(p.days), dtype=np.uint64)
    for k, arr in enumerate((p.open, p.high, p.low, p.close, p.volume)):
        mult = rows * np.uint64(2 * k + 3)
        bits = np.ascontiguousarray(arr).view(np.uint64)
        total += (bits * mult[:, None]).sum(axis=0, dtype=np.uint64)
    return total


@dataclass(frozen=True)
class SavedState:
    """Everything a run leaves for the next one to continue from, per token."""

    token_ids: I64
    first_day: int
    checksums: NDArray[np.uint64]
    signals: SignalState
    values: F64  # (N_VALUES, tokens) signal values at each token's last valid bar
    valid_last: I64  # last bar with finite high, low, close and volume (-1: none)
    since: I64  # bar of the last signal change (-1: the signal never left 0)
    indicators: F64  # `indicator_state` state, (tokens, WIDTH)
    latest: F64  # (indicators, tokens) at each token's last close
    close_end: I64  # last bar with a finite close (-1: none)
    ath: F64
    mdd: F64
    backtest: BacktestState

    def arrays(self) -> dict[str, Any]:
        """The state as named arrays for `np.savez`."""
        return {
            "token_ids": self.token_ids,
            "first_day": self.first_day,
            "checksums": self.checksums,
            "signal_indicators": self.signals.indicators,
            "signal": self.signals.signal,
            "values": self.values,
            "valid_last": self.valid_last,
            "since": self.since,
            "indicators": self.indicators,
            "latest": self.latest,
            "close_end": self.close_end,
            "ath": self.ath,
            "mdd": self.mdd,
            "backtest_core": self.backtest.core,
            "backtest_curve": self.backtest.curve,
        }


def state_path(ctx: Context) -> Path:
    ident = hashlib.sha1(str(ctx.engine.url).encode(), usedforsecurity=False).hexdigest()[:10]
    return ctx.cache_dir / f"signal-state-{ident}.npz"


def load_state(path: Path) -> SavedState | None:
    try:
        with np.load(path) as z:
            if int(z["format"]) != STATE_FORMAT:
                return None
            return SavedState(
                z["token_ids"],
                int(z["first_day"]),
                z["checksums"],
                SignalState(z["signal_indicators"], z["signal"]),
                z["values"],
                z["valid_last"],
                z["since"],
                z["indicators"],
                z["latest"],
                z["close_end"],
                z["ath"],
                z["mdd"],
                BacktestState(z["backtest_core"], z["backtest_curve"]),
            )
    except (OSError, KeyError, ValueError):
        return None


def save_state(path: Path, saved: SavedState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, format=STATE_FORMAT, **saved.arrays())
    tmp.replace(path)  # atomic: a crash never leaves half a state


def plan(p: Panel, sums: NDArray[np.uint64], saved: SavedState | None) -> tuple[Mode, str]:
    """Which mode the rule in the module docstring selects, and why."""
    if saved is None:
        return "full", "no saved signal state"
    if not np.array_equal(saved.token_ids, p.token_ids):
        return "full", "the token list changed"
    if saved.first_day != int(p.days[0]):
        return "full", "the panel's first day changed"
    n_old, n_new = len(saved.checksums), len(sums)
    if n_new not in (n_old, n_old + 1):
        return "full", f"{n_new - n_old} days appended (incremental handles exactly one)"
    changed = np.nonzero(saved.checksums != sums[:n_old])[0]
    if changed.size:
        day = datetime.fromtimestamp(int(p.days[changed[0]]) * 86_400, tz=UTC).date()
        return "full", f"candles of {changed.size} earlier day(s) changed, first {day}"
    if n_new == n_old:
        return "unchanged", "no candle changed since the last run"
    return "incremental", "exactly one new day appended"
