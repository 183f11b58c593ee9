"""Fingerprints of a method's settings: a measured track record is served only next to
results computed with the same settings (forecast models, grades)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def settings_id(doc: Any) -> str:
    """12 hex digits of SHA-1 over `doc` as canonical JSON (keys sorted)."""
    text = json.dumps(doc, sort_keys=True)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]
