"""Opaque keyset cursors shared by every paginated listing, and the 4xx they raise."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from coinlens.domain.errors import Problem, ValidationFailed


def invalid(location: str, reason: str) -> ValidationFailed:
    """A validation error about one input, located for problem+json."""
    return ValidationFailed(f"{location}: {reason}", [Problem(location=location, reason=reason)])


def encode_cursor(kind: str, **fields: Any) -> str:
    """An opaque cursor for the listing `kind` carrying `fields` (JSON, base64url)."""
    raw = json.dumps({"k": kind, **fields}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(kind: str, cursor: str) -> dict[str, Any]:
    """The fields of a cursor made by `encode_cursor(kind, ...)`; anything else is a 422."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise invalid("cursor", "not a cursor this API issued") from exc
    if not isinstance(data, dict) or data.get("k") != kind:
        raise invalid("cursor", "not a cursor for this listing")
    return data
