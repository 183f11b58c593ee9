"""JSON structured logs (structlog) with a request id bound to every line of a request."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

from coinlens.services.keys import PREFIX

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_configured: dict[str, str] = {}
# the request id of the request being served: a plain ContextVar costs a tenth of
# structlog's bind/unbind per request; `_add_request_id` puts it on every log line
REQUEST_ID: ContextVar[str | None] = ContextVar("coinlens_request_id", default=None)


def _add_request_id(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    rid = REQUEST_ID.get()
    if rid is not None:
        event.setdefault("request_id", rid)
    return event


_KEY_IN_URL = re.compile(re.escape(PREFIX) + r"[^/?#&\s\"]*")


def redact_keys(text: str) -> str:
    """`text` with every API key in it cut to its prefix (`cl_live_[redacted]`)."""
    return _KEY_IN_URL.sub(PREFIX + "[redacted]", text) if PREFIX in text else text


class _RedactKeys(logging.Filter):
    """uvicorn logs a WebSocket handshake with its path and query string
    (`"WebSocket /v1/stream?api_key=cl_live_…" 403`): a key pasted there is cut to its prefix
    before any handler sees it, as in our own access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_keys(a) if isinstance(a, str) else a for a in record.args)
        return True


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Route structlog and stdlib logging to one JSON-lines stream on stderr (idempotent)."""
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _RedactKeys) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_RedactKeys())
    if _configured.get("level") == level:
        return
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_request_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=stderr_logger,
        cache_logger_on_first_use=False,
    )
    _configured["level"] = level


def stderr_logger(*_args: object) -> structlog.PrintLogger:
    # resolved per logger: test runners and daemons swap sys.stderr after start-up
    return structlog.PrintLogger(sys.stderr)


def request_id_from(header: bytes | None) -> str:
    """The caller's X-Request-ID if it is sane, else a fresh one."""
    if header:
        text = header.decode("latin-1")
        if _REQUEST_ID.fullmatch(text):
            return text
    return _fresh_id()


_IDS_PER_READ = 256
_ids: list[str] = []
os.register_at_fork(after_in_child=_ids.clear)  # a forked worker must not repeat ids


def _fresh_id() -> str:
    """128 random bits in hex, as random as uuid4().hex. The system's randomness is read
    for 256 ids at a time: one `getrandom` system call per request was a measurable share
    of the kernel time an API request costs."""
    try:
        return _ids.pop()
    except IndexError:  # read ahead again; this caller keeps one, so a race cannot drain it
        block = os.urandom(16 * _IDS_PER_READ).hex()
        fresh = [block[i : i + 32] for i in range(0, len(block), 32)]
        own = fresh.pop()
        _ids.extend(fresh)
        return own
