"""JSON answers without binary float noise (`-0.6000000000000001`, `7.0590000000000005e-06`).

Prices divided by a contract multiplier, scores summed from weights and quantiles taken back
from log prices carry rounding error in their last digits. Stored values keep full precision;
the answers of the routes that serve such numbers round every float to SIGNIFICANT
significant digits (far below any price tick or score step, far above float error).
"""

from __future__ import annotations

import math
from typing import Any

from fastapi.responses import JSONResponse

SIGNIFICANT = 15  # float noise sits in the 16th–17th digit; data keeps 15


def tidy(value: Any) -> Any:
    """`value` (JSON-able) with every finite float rounded to SIGNIFICANT significant digits."""
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tidy(v) for v in value]
    return value


class TidyJSONResponse(JSONResponse):
    """A JSON answer whose floats are rounded by `tidy`."""

    def render(self, content: Any) -> bytes:
        return super().render(tidy(content))
