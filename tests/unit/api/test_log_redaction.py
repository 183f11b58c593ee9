"""A key pasted into a WebSocket URL must not reach the logs through uvicorn's own lines."""

from __future__ import annotations

import logging

import pytest

from coinlens.api.logging import configure_logging

KEY = "cl_live_abcdefghijkl0123456789abcdefghijklmnopqrstuvABCDEF"


def test_uvicorn_websocket_line_cuts_a_key_in_the_query(caplog: pytest.LogCaptureFixture) -> None:
    configure_logging("INFO")
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        # uvicorn logs a WebSocket handshake with the path and its query string
        logging.getLogger("uvicorn.error").info(
            '%s - "WebSocket %s" 403', "127.0.0.1:5000", f"/v1/stream?api_key={KEY}&x=1"
        )
    assert KEY not in caplog.text
    assert "/v1/stream?api_key=cl_live_[redacted]&x=1" in caplog.text
