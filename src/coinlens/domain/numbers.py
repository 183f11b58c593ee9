"""Binary float noise (`-0.6000000000000001`, `7.0590000000000005e-06`) off numbers we serve.

Prices divided by a contract multiplier, scores summed from weights and quantiles taken back
from log prices carry rounding error in their 16th–17th significant digit. Rounding to
SIGNIFICANT digits removes it and keeps every digit of real data. A change `a / b - 1` has
that error as an absolute one (a target equal to the close comes back as -6.7e-16), so it is
rounded to CHANGE_DECIMALS decimal places instead.
"""

from __future__ import annotations

import math
from typing import Any

SIGNIFICANT = 15
CHANGE_DECIMALS = 12


def significant(x: float) -> float:
    """`x` to SIGNIFICANT significant digits (non-finite values unchanged)."""
    return float(f"{x:.{SIGNIFICANT}g}") if math.isfinite(x) else x


def change(new: float, old: float) -> float:
    """`new / old - 1`, without the float noise that makes equal prices differ by ~1e-16."""
    return round(new / old - 1, CHANGE_DECIMALS)


def tidy(value: Any) -> Any:
    """`value` (JSON-able: dicts, lists, scalars) with every float rounded by `significant`."""
    if isinstance(value, float):
        return significant(value)
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [tidy(v) for v in value]
    return value
