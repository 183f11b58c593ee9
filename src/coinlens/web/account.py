"""Owner pages: login/logout (first-run password setup from loopback), API keys and alerts.

Keys created here belong to the owner account `web-owner`; alert rules belong to one of its
keys (the form picks which), exactly as if made through `/v1/keys` and `/v1/alerts`.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from coinlens.alerts.rules import KINDS, AlertRuleCreate
from coinlens.domain.errors import CoinlensError
from coinlens.services import alerts as alert_service
from coinlens.services import keys as key_service
from coinlens.web import auth
from coinlens.web.routes import CsrfForm, error_text, field, gate, page, web_ctx
from coinlens.web.templating import base_path

router = APIRouter()
OWNER_ACCOUNT = "web-owner"


def _safe_next(request: Request, target: str) -> str:
    """Only local paths: never `//host` or a full URL (open redirect)."""
    base = base_path(request)
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target if target.startswith(base + "/") or not base else base + target
    return base + "/"


@router.get("/login", name="login")
def login_form(request: Request, next: str = "/") -> Response:
    """The login form, or the first-run 'set a password' form (loopback clients only)."""
    settings = web_ctx(request).settings
    first_run = auth.password_record(settings) is None
    context = {"title": "Owner login", "next": next, "first_run": first_run, "error": None,
               "loopback": auth.is_loopback(request)}  # fmt: skip
    return page(request, "login.html", context)


@router.post("/login")
def login(request: Request, form: CsrfForm) -> Response:
    """Check the password (or set it on first run) and start a session."""
    settings = web_ctx(request).settings
    password, target = field(form, "password"), field(form, "next", "/")
    record = auth.password_record(settings)
    client = request.client.host if request.client is not None else ""
    throttle = auth.login_throttle(request)
    error, wait = None, throttle.wait(client) if record is not None else 0.0
    if wait > 0:
        seconds = math.ceil(wait)
        context = {"title": "Owner login", "next": target, "first_run": False, "loopback": False,
                   "error": f"too many wrong passwords: try again in {seconds} s"}  # fmt: skip
        response = page(request, "login.html", context, 429)
        response.headers["Retry-After"] = str(seconds)
        return response
    if record is None:
        if not auth.is_loopback(request):
            error = "set the owner password on this machine: coinlens web set-password"
        elif password != field(form, "confirm"):
            error = "the two passwords differ"
        else:
            try:
                auth.set_password(settings, password)
            except CoinlensError as exc:
                error = error_text(exc)
        record = auth.password_record(settings)
    elif not auth.verify_password(record, password):
        error = "wrong password"
        throttle.failed(client)
    if error or record is None:
        context = {"title": "Owner login", "next": target, "first_run": record is None,
                   "error": error, "loopback": auth.is_loopback(request)}  # fmt: skip
        return page(request, "login.html", context, 401 if record else 400)
    throttle.succeeded(client)
    response = RedirectResponse(_safe_next(request, target), status_code=303)
    value = auth.make_session(settings, record)
    auth.set_cookie(request, response, auth.SESSION_COOKIE, value, auth.SESSION_SECONDS)
    return response


@router.post("/logout")
def logout(request: Request, form: CsrfForm) -> Response:
    """End the owner's sessions (every copy of the cookie, not only this browser's)."""
    del form
    settings = web_ctx(request).settings
    if auth.session_valid(settings, request.cookies.get(auth.SESSION_COOKIE)):
        auth.end_sessions(settings)  # only the owner may: anyone can post a CSRF-valid form
    response = RedirectResponse(base_path(request) + "/", status_code=303)
    auth.set_cookie(request, response, auth.SESSION_COOKIE, "", 0)
    return response


# --- keys ----------------------------------------------------------------------------------


def _keys(request: Request) -> list[key_service.ApiKey]:
    ctx = web_ctx(request)
    out, cursor = [], None
    while True:
        found = key_service.list_keys(ctx, OWNER_ACCOUNT, cursor=cursor, limit=200)
        out.extend(found.items)
        if found.next_cursor is None:
            return out
        cursor = found.next_cursor


def _keys_page(request: Request, **extra: Any) -> Response:
    context = {"title": "API keys", "keys": _keys(request), "scopes": key_service.SCOPES,
               "plans": [p for p in web_ctx(request).settings.plans if p != "anonymous"],
               "created": None, "error": None, **extra}  # fmt: skip
    return page(request, "keys.html", context, 400 if extra.get("error") else 200)


@router.get("/keys", name="keys")
def keys_view(request: Request) -> Response:
    """The owner's keys."""
    if (redirect := gate(request, owner_only=True)) is not None:
        return redirect
    return _keys_page(request)


@router.post("/keys")
def keys_create(request: Request, form: CsrfForm) -> Response:
    """Create a key; its plaintext is shown once, in this answer."""
    if (redirect := gate(request, owner_only=True)) is not None:
        return redirect
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str)]
    spec = key_service.KeySpec(name=field(form, "name") or None, scopes=scopes or ["read"],
                               plan=field(form, "plan", "free"), account=OWNER_ACCOUNT)  # fmt: skip
    try:
        created = key_service.create_key(web_ctx(request), spec)
    except CoinlensError as exc:
        return _keys_page(request, error=error_text(exc))
    return _keys_page(request, created=created)


@router.post("/keys/{key_id}/rotate")
def keys_rotate(request: Request, key_id: int, form: CsrfForm) -> Response:
    """A successor key; the old one keeps working for the chosen overlap."""
    if (redirect := gate(request, owner_only=True)) is not None:
        return redirect
    most = key_service.MAX_OVERLAP.total_seconds() / 3600
    try:
        hours = float(field(form, "overlap_hours", "24") or 24)
        if not 0 <= hours <= most:  # NaN and 1e20 too: timedelta cannot hold those
            return _keys_page(request, error=f"overlap_hours: between 0 and {most:g}")
        created = key_service.rotate_key(
            web_ctx(request), OWNER_ACCOUNT, key_id, overlap=timedelta(hours=hours)
        )
    except (CoinlensError, ValueError) as exc:
        return _keys_page(request, error=str(getattr(exc, "detail", exc)))
    return _keys_page(request, created=created)


@router.post("/keys/{key_id}/revoke")
def keys_revoke(request: Request, key_id: int, form: CsrfForm) -> Response:
    """Revoke a key at once."""
    del form
    if (redirect := gate(request, owner_only=True)) is not None:
        return redirect
    try:
        key_service.revoke_key(web_ctx(request), OWNER_ACCOUNT, key_id)
    except CoinlensError as exc:
        return _keys_page(request, error=error_text(exc))
    return RedirectResponse(base_path(request) + "/keys", status_code=303)


# --- alerts --------------------------------------------------------------------------------


def _alerts_page(request: Request, **extra: Any) -> Response:
    ctx = web_ctx(request)
    keys = [k for k in _keys(request) if k.revoked_at is None]
    rules = [(k, r) for k in keys for r in alert_service.list_rules(ctx, k.id).items]
    logs = {r.id: alert_service.rule_log(ctx, k.id, r.id, limit=10) for k, r in rules}
    context = {"title": "Alerts", "keys": keys, "rules": rules, "logs": logs, "kinds": KINDS,
               "error": None, "created": None, **extra}  # fmt: skip
    return page(request, "alerts.html", context, 400 if extra.get("error") else 200)


@router.get("/alerts", name="alerts")
def alerts_view(request: Request) -> Response:
    """The owner's alert rules (per key) with their delivery log."""
    if (redirect := gate(request, owner_only=True)) is not None:
        return redirect
    return _alerts_page(request)


def _rule_body(form: Any) -> AlertRuleCreate:
    spec: dict[str, Any] = {"symbol": field(form, "symbol").upper(), "kind": field(form, "kind")}
    for name in ("direction", "window", "grade", "signal"):
        if field(form, name):
            spec[name] = field(form, name)
    for name in ("level", "threshold", "points", "target"):
        if field(form, name):
            spec[name] = float(field(form, name))
    if field(form, "horizon_days"):
        spec["horizon_days"] = int(field(form, "horizon_days"))
    channels = [c.strip() for c in field(form, "channels").splitlines() if c.strip()]
    spec |= {"channels": channels, "timezone": field(form, "timezone") or "UTC"}
    if field(form, "cooldown_seconds"):
        spec["cooldown_seconds"] = int(field(form, "cooldown_seconds"))
    if field(form, "note"):
        spec["note"] = field(form, "note")
    return AlertRuleCreate.model_validate(spec)


def _invalid(exc: ValueError) -> str:
    """A refused form's first problem: `field: reason` (a pydantic error's last line is only
    its documentation link), or a number that did not parse."""
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(exc) or "invalid"


@router.post("/alerts")
def alerts_create(request: Request, form: CsrfForm) -> Response:
    """Create an alert rule owned by the chosen key."""
    if (redirect := gate(request, owner_only=True)) is not None:
        return redirect
    owned = {k.id for k in _keys(request) if k.revoked_at is None}
    try:
        key_id = int(field(form, "key_id") or 0)
        if key_id not in owned:
            return _alerts_page(request, error="choose one of your active keys")
        body = _rule_body(form)
        created = alert_service.create_rule(web_ctx(request), key_id, body)
    except CoinlensError as exc:
        return _alerts_page(request, error=error_text(exc))
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        return _alerts_page(request, error=_invalid(exc))
    return _alerts_page(request, created=created)


@router.post("/alerts/{key_id}/{rule_id}/delete")
def alerts_delete(request: Request, key_id: int, rule_id: int, form: CsrfForm) -> Response:
    """Delete one rule (and its log)."""
    del form
    if (redirect := gate(request, owner_only=True)) is not None:
        return redirect
    if key_id not in {k.id for k in _keys(request)}:
        return _alerts_page(request, error="not your key")
    try:
        alert_service.delete_rule(web_ctx(request), key_id, rule_id)
    except CoinlensError as exc:
        return _alerts_page(request, error=error_text(exc))
    return RedirectResponse(base_path(request) + "/alerts", status_code=303)
