"""JSON answers without binary float noise (`domain.numbers`): the answers of the routes that
serve computed numbers round every float to its SIGNIFICANT significant digits. Stored
values keep full precision.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from coinlens.domain.numbers import tidy

__all__ = ["TidyJSONResponse", "tidy"]


class TidyJSONResponse(JSONResponse):
    """A JSON answer whose floats are rounded by `tidy`."""

    def render(self, content: Any) -> bytes:
        return super().render(tidy(content))
