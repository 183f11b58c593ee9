"""Find a token of a loaded database whose prices stopped long before the data's end."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coinlens.services.context import build_context
from coinlens.services.forecasts import MIN_HISTORY, day_to_date, stale_close
from coinlens.settings import get_settings
from coinlens.storage.panel import read_daily_panel


@dataclass(frozen=True)
class StaleToken:
    """A token with enough history for a forecast whose newest close is too old for one."""

    symbol: str
    newest: str  # its newest close (ISO date)
    end: str  # the data's newest day (ISO date)
    close: float  # its newest close


def find_stale_token(data_dir: Path) -> StaleToken | None:
    """The first such token in the daily panel of the database under `data_dir`, if any."""
    ctx = build_context(get_settings(env="test", data_dir=data_dir))
    try:
        panel = read_daily_panel(ctx.engine, ctx.cache_dir)
    finally:
        ctx.engine.dispose()
    for row, symbol in enumerate(panel.symbols):
        closes = panel.close[row][np.isfinite(panel.close[row])]
        newest = stale_close(panel, row)
        if newest is not None and closes.size >= MIN_HISTORY:
            end = day_to_date(int(panel.days[-1])).isoformat()
            return StaleToken(symbol, newest.isoformat(), end, float(closes[-1]))
    return None
