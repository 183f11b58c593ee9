"""The dashboard: `install_web(app)` mounts the pages, their `/web/...` JSON and `/static`.

Pages call the services directly (never the keyed `/v1` API). Research pages are public unless
`COINLENS_WEB_PRIVATE` is set; alerts and keys need the owner login. Every POST is
CSRF-checked by `csrf_form` before the route body runs.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from coinlens.domain.errors import CoinlensError, ConfigError
from coinlens.services.context import Context
from coinlens.web import auth
from coinlens.web.templating import STATIC_DIR, base_path, build_env, render

# Every page loads only our own files: scripts from /static (no inline script, no eval),
# styles from /static plus inline style attributes (the sub-grade bars), images from /static
# or data: (the empty favicon); fetches and the live WebSocket go to this origin alone ('self'
# covers ws:/wss: in CSP 3, not in older Safari: `page` names the host's ws/wss too). No
# other site may frame a page (clickjacking the owner's key and alert forms).
SECURITY_HEADERS = {
    "Content-Security-Policy": "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def _csp(request: Request) -> str:
    host = request.headers.get("host", "")
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    if not _HOST.fullmatch(host):
        return csp
    return csp.replace("connect-src 'self'", f"connect-src 'self' ws://{host} wss://{host}")


def web_ctx(request: Request) -> Context:
    """The service context the app's lifespan built."""
    ctx = getattr(request.app.state, "ctx", None)
    if not isinstance(ctx, Context):
        raise ConfigError("the dashboard was started without its lifespan; no service context")
    return ctx


def _visit(request: Request) -> auth.Visitor:
    found = getattr(request.state, "visitor", None)
    if isinstance(found, auth.Visitor):
        return found
    v = auth.visitor(request, web_ctx(request).settings)
    request.state.visitor = v
    request.state.csrf_token = v.csrf_token
    request.state.owner = v.owner
    return v


def login_redirect(request: Request) -> RedirectResponse:
    """303 to the login page, coming back to this page afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{base_path(request)}/login?next={quote(target)}", status_code=303)


def gate(request: Request, *, owner_only: bool) -> RedirectResponse | None:
    """None when the caller may see the page, else the redirect to the login page."""
    v = _visit(request)
    private = owner_only or web_ctx(request).settings.web_private
    return login_redirect(request) if private and not v.owner else None


def page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """Render a page and hand out the CSRF cookie the first time we see this browser."""
    v = _visit(request)
    response = render(request, template, context, status_code)
    if v.new_cookie:
        auth.set_cookie(request, response, auth.CSRF_COOKIE, v.csrf_cookie, 30 * 86_400)
    response.headers.setdefault("Cache-Control", "no-store")
    for name, value in {**SECURITY_HEADERS, "Content-Security-Policy": _csp(request)}.items():
        response.headers.setdefault(name, value)
    return response


async def csrf_form(request: Request) -> FormData:
    """The POSTed form, once its CSRF token matched the caller's cookie (else 403)."""
    form = await request.form()
    token = form.get(auth.CSRF_FIELD)
    try:
        auth.check_csrf(
            web_ctx(request).settings,
            request.cookies.get(auth.CSRF_COOKIE),
            token if isinstance(token, str) else None,
        )
    except auth.CsrfRejected as exc:
        raise HTTPException(status_code=403, detail=exc.detail) from exc
    _visit(request)
    return form


CsrfForm = Annotated[FormData, Depends(csrf_form)]


def field(form: FormData, name: str, default: str = "") -> str:
    """A text field of a form, stripped."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default


def error_text(exc: CoinlensError) -> str:
    """A one-line message for a domain error shown in a form."""
    return str(exc.detail) if getattr(exc, "detail", None) else str(exc)


def install_web(app: FastAPI) -> None:
    """Mount the dashboard pages, their JSON endpoints and the static files."""
    from coinlens.web import account, ecosystem_page, overview, token_page

    app.state.web_env = build_env()
    app.state.login_throttle = auth.LoginThrottle()
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    for module in (overview, token_page, ecosystem_page, account):
        app.include_router(module.router, include_in_schema=False)
