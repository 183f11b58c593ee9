"""Owner login for the dashboard: scrypt password hash, HMAC-signed session cookie, CSRF.

- The password hash lives in `<data_dir>/web-owner.json` (mode 0600), set at first run from
  a loopback client or with `coinlens web set-password`.
- The session cookie is `payload.signature`, the signature an HMAC-SHA-256 under a key derived
  from `COINLENS_SECRET`; the payload names the password hash (and logout generation) it was
  issued for, so changing the password or logging out ends every session. HttpOnly,
  SameSite=Lax, Secure over HTTPS and in prod.
- Wrong passwords are throttled per client address (`LoginThrottle`).
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
import threading
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
    return _write_record(settings, hash_password(password))


def _write_record(settings: Settings, record: dict[str, Any]) -> Path:
    path = owner_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)
    tmp.replace(path)
    return path


def end_sessions(settings: Settings) -> None:
    """Log every session out (a logout): a session names the record's generation it was
    issued under, so a copy of the cookie is worthless once the owner logged out."""
    record = password_record(settings)
    if record is not None:
        _write_record(settings, {**record, "generation": int(record.get("generation", 0)) + 1})


class LoginThrottle:
    """Failed owner logins per client address: after FREE_FAILURES, each next try must wait
    twice as long as the one before (1 s, 2 s, 4 s … MAX_WAIT) and is refused without
    running scrypt until then; a success, or MAX_WAIT without a failure, forgets the client.
    Per process; at most `max_clients` addresses are remembered (the oldest go first)."""

    FREE_FAILURES = 5
    MAX_WAIT = 900.0

    def __init__(self, max_clients: int = 10_000) -> None:
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, float]] = {}  # client → (failures, last one)

    def _count(self, client: str, now: float) -> tuple[int, float]:
        n, last = self._failures.get(client, (0, 0.0))
        return (0, 0.0) if now - last > self.MAX_WAIT else (n, last)

    def wait(self, client: str, now: float | None = None) -> float:
        """Seconds before `client` may try a password again (0: now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            n, last = self._count(client, now)
        if n < self.FREE_FAILURES:
            return 0.0
        return max(0.0, last + min(self.MAX_WAIT, 2.0 ** (n - self.FREE_FAILURES)) - now)

    def failed(self, client: str, now: float | None = None) -> None:
        """Count a wrong password from `client`."""
        now = time.monotonic() if now is None else now
        with self._lock:
            n, _ = self._count(client, now)
            self._failures.pop(client, None)
            if len(self._failures) >= self.max_clients:
                self._failures.pop(next(iter(self._failures)))
            self._failures[client] = (n + 1, now)

    def succeeded(self, client: str) -> None:
        """Forget `client`'s failures."""
        with self._lock:
            self._failures.pop(client, None)


def login_throttle(request: Request) -> LoginThrottle:
    """The app's login throttle (`install_web` makes it)."""
    throttle = request.app.state.login_throttle
    assert isinstance(throttle, LoginThrottle)  # noqa: S101 - set by install_web
    return throttle


# --- session ---------------------------------------------------------------------------------


def _fingerprint(record: dict[str, Any]) -> str:
    seen = str(record.get("hash", ""))
    if record.get("generation"):
        seen += f":{record['generation']}"
    return hashlib.sha256(seen.encode()).hexdigest()[:16]


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
    if not hmac.compare_digest(sig.encode(), want.encode()):  # str: ASCII only, else TypeError
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


_FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")


def is_loopback(request: Request) -> bool:
    """Whether the client is on this machine (first-run password setup is allowed only then).

    A request relayed by a reverse proxy on this machine comes from a loopback peer too, on
    behalf of anyone: one that names a forwarded client (`Forwarded`, `X-Forwarded-For`,
    `X-Real-IP`) is never taken as local."""
    if any(request.headers.get(name) is not None for name in _FORWARDED):
        return False
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
    if not hmac.compare_digest(csrf_token_for(settings, cookie).encode(), presented.encode()):
        raise CsrfRejected("invalid CSRF token: reload the page and submit the form again")
