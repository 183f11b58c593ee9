"""Binary float noise (`-0.6000000000000001`, `7.0590000000000005e-06`) off numbers we serve.

Prices divided by a contract multiplier, scores summed from weights and quantiles taken back
from log prices carry rounding error in their 16th–17th significant digit. Rounding to
SIGNIFICANT digits removes it and keeps every digit of real data.
"""

from __future__ import annotations

import math
from typing import Any

SIGNIFICANT = 15


def significant(x: float) -> float:
    """`x` to SIGNIFICANT significant digits (non-finite values unchanged)."""
    return float(f"{x:.{SIGNIFICANT}g}") if math.isfinite(x) else x


def tidy(value: Any) -> Any:
    """`value` (JSON-able: dicts, lists, scalars) with every float rounded by `significant`."""
    if isinstance(value, float):
        return significant(value)
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [tidy(v) for v in value]
    return value
