"""Scenario targets placed among the key levels: which levels a move crosses, which one is next.

The key levels are the analytics step's (`TokenLevels`: nearest support, nearest resistance
and the strongest levels, swing pivots over 365 days). They are re-classed against the
forecast's last close: a level below it is support, one at or above it resistance, and
`distance` is price / last close - 1, the same scale as a scenario's `*_change`.
"""

from __future__ import annotations

import datetime as dt

from coinlens.domain.analytics_models import TokenLevels
from coinlens.domain.forecasts import KeyLevel, TargetLevels
from coinlens.domain.numbers import change

LEVELS_METHOD = (
    "key levels: the nearest support / resistance and the strongest levels of the analytics "
    "step (swing pivots, 365 days), classed against the last close; each target lists the "
    "levels between the last close and it and the first level past it"
)


def key_levels(levels: TokenLevels, last_close: float) -> list[KeyLevel]:
    """The distinct key levels, price ascending, classed and measured against `last_close`."""
    out = [
        KeyLevel(
            price=lv.price,
            kind="support" if lv.price < last_close else "resistance",
            strength=lv.strength,
            distance=change(lv.price, last_close),
        )
        for lv in levels.distinct()
    ]
    return sorted(out, key=lambda lv: lv.price)


def place_target(target: float, last_close: float, levels: list[KeyLevel]) -> TargetLevels:
    """The levels a move from `last_close` to `target` meets, and the first level past it.

    A target at or above the last close moves up through the resistances (a level exactly at
    the target counts as crossed); one below it moves down through the supports. `levels`
    must be price ascending, as `key_levels` returns them.
    """
    if target >= last_close:
        path = [lv for lv in levels if lv.price >= last_close]
        crossed = [lv for lv in path if lv.price <= target]
        beyond = next((lv for lv in path if lv.price > target), None)
    else:
        path = [lv for lv in reversed(levels) if lv.price < last_close]
        crossed = [lv for lv in path if lv.price >= target]
        beyond = next((lv for lv in path if lv.price < target), None)
    return TargetLevels(crossed=crossed, beyond=beyond)


def as_of_warnings(as_of: dt.date, origin: dt.date) -> list[str]:
    """Say which day the levels are from when it is not the forecast origin."""
    days = (as_of - origin).days
    if days > 0:
        return [
            f"key levels are as of {as_of}, {days} days after the forecast origin {origin}: "
            "they include closes the forecast did not see"
        ]
    if days < 0:
        return [f"key levels are as of {as_of}, {-days} days before the forecast origin {origin}"]
    return []
