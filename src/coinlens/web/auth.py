"""Owner login for the dashboard: scrypt password hash, HMAC-signed session cookie, CSRF.

- The password hash lives in `<data_dir>/web-owner.json` (mode 0600), set at first run from
  a loopback client or with `coinlens web set-password`.
- The session cookie is `payload.signature`, the signature an HMAC-SHA-256 under a key derived
  from `COINLENS_SECRET`; the payload names the password hash it was issued for, so changing
  the password logs every session out. HttpOnly, SameSite=Lax, Secure over HTTPS and in prod.
- CSRF: every visitor gets a random `coinlens_csrf` cookie; forms carry HMAC(cookie) and a
  POST whose field does not match is refused (403) before the route runs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request, Response

from coinlens.domain.errors import UserInputError
from coinlens.settings import Settings

SESSION_COOKIE = "coinlens_session"
CSRF_COOKIE = "coinlens_csrf"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 7 * 86_400
MIN_PASSWORD = 10
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}


class CsrfRejected(UserInputError):
    """A state-changing form arrived without a valid CSRF token (HTTP 403)."""

    title = "Forbidden"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(settings: Settings, purpose: str) -> bytes:
    secret = settings.secret.get_secret_value().encode()
    return hmac.new(secret, f"coinlens-web:{purpose}".encode(), hashlib.sha256).digest()


# --- password --------------------------------------------------------------------------------


def owner_file(settings: Settings) -> Path:
    """Where the owner's password hash is kept."""
    return settings.data_dir / "web-owner.json"


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """An scrypt record of `password` (random 16-byte salt)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return {"alg": "scrypt", **_SCRYPT, "salt": _b64(salt), "hash": _b64(digest)}


def verify_password(record: dict[str, Any], password: str) -> bool:
    """Whether `password` matches the stored scrypt record (constant-time compare)."""
    try:
        digest = hashlib.scrypt(
            password.encode(),
            salt=_unb64(record["salt"]),
            dklen=32,
            n=int(record["n"]),
            r=int(record["r"]),
            p=int(record["p"]),
        )
    except (KeyError, ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, _unb64(record["hash"]))


def password_record(settings: Settings) -> dict[str, Any] | None:
    """The stored owner record, or None before a password was set."""
    path = owner_file(settings)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else None


def set_password(settings: Settings, password: str) -> Path:
    """Store a new owner password (at least MIN_PASSWORD characters); ends all sessions."""
    if len(password) < MIN_PASSWORD:
        raise UserInputError(f"the password needs at least {MIN_PASSWORD} characters")
    path = owner_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(hash_password(password), fh)
    tmp.replace(path)
    return path


# --- session ---------------------------------------------------------------------------------


def _fingerprint(record: dict[str, Any]) -> str:
    return hashlib.sha256(str(record.get("hash", "")).encode()).hexdigest()[:16]


def make_session(settings: Settings, record: dict[str, Any], now: float | None = None) -> str:
    """A signed session value for the owner."""
    payload: dict[str, Any] = {"sub": "owner", "exp": int((now or time.time()) + SESSION_SECONDS)}
    payload["pw"] = _fingerprint(record)
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    sig = _b64(hmac.new(_key(settings, "session"), body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}"


def session_valid(settings: Settings, value: str | None, now: float | None = None) -> bool:
    """Whether a session cookie is signed by us, unexpired and issued for the current password."""
    record = password_record(settings)
    if not value or record is None or "." not in value:
        return False
    body, sig = value.rsplit(".", 1)
    want = _b64(hmac.new(_key(settings, "session"), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(sig, want):
        return False
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        return False
    return (
        isinstance(payload, dict)
        and payload.get("sub") == "owner"
        and int(payload.get("exp", 0)) > (now or time.time())
        and payload.get("pw") == _fingerprint(record)
    )


def cookie_secure(request: Request, settings: Settings) -> bool:
    """Secure cookies over HTTPS (also behind a proxy that says so) and always in prod."""
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    return settings.env == "prod" or proto == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """Set one of our cookies: HttpOnly, SameSite=Lax, scoped to the app's path prefix."""
    settings: Settings = request.app.state.ctx.settings
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=(str(request.scope.get("root_path") or "").rstrip("/") or "/"),
        secure=cookie_secure(request, settings),
        httponly=True,
        samesite="lax",
    )


def is_loopback(request: Request) -> bool:
    """Whether the client is on this machine (first-run password setup is allowed only then)."""
    return request.client is not None and request.client.host in _LOOPBACK


# --- CSRF ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Visitor:
    """What the pages need to know about the caller: owner or not, and the CSRF pair."""

    owner: bool
    csrf_cookie: str
    csrf_token: str
    new_cookie: bool


def csrf_token_for(settings: Settings, cookie: str) -> str:
    """The form token that goes with a CSRF cookie value."""
    return _b64(hmac.new(_key(settings, "csrf"), cookie.encode(), hashlib.sha256).digest())


def visitor(request: Request, settings: Settings) -> Visitor:
    """The caller's session state and CSRF token (a new cookie value when it had none)."""
    cookie = request.cookies.get(CSRF_COOKIE) or ""
    fresh = len(cookie) < 16
    if fresh:
        cookie = secrets.token_urlsafe(24)
    return Visitor(
        owner=session_valid(settings, request.cookies.get(SESSION_COOKIE)),
        csrf_cookie=cookie,
        csrf_token=csrf_token_for(settings, cookie),
        new_cookie=fresh,
    )


def check_csrf(settings: Settings, cookie: str | None, presented: str | None) -> None:
    """Refuse a POST whose CSRF field does not match its cookie."""
    if not cookie or not presented:
        raise CsrfRejected("missing CSRF token: reload the page and submit the form again")
    if not hmac.compare_digest(csrf_token_for(settings, cookie), presented):
        raise CsrfRejected("invalid CSRF token: reload the page and submit the form again")
