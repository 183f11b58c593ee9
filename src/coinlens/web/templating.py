"""Jinja2 environment, number/time formatting shared by every page, and `render`.

Prices span 1e-8 (meme tokens) to 1e5 (BTC): `fmt_price` shows PRICE_DIGITS significant
digits (never rounding away integer digits), drops trailing zeros, separates thousands and
writes long runs of zeros as a subscript count (0.0₅1234), the notation exchanges use.
`static/app.js` has the same rules for numbers drawn in the browser. Form inputs get
`input_number` instead: a plain decimal an <input type="number"> can parse.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from coinlens import __version__

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
PRICE_DIGITS = 5


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def price_text(x: Any) -> str:
    """A price to PRICE_DIGITS significant digits without trailing zeros; '—' when unknown."""
    v = _finite(x)
    if v is None:
        return "—"
    if v == 0:
        return "0"
    sig = max(PRICE_DIGITS, math.floor(math.log10(abs(v))) + 1)
    a = float(f"{abs(v):.{sig - 1}e}")  # rounded first, so 9.99999 is written as 10
    sign = "-" if v < 0 else ""
    lead = math.floor(math.log10(a))  # position of the first significant digit
    if lead >= 0:
        text = f"{a:,.{max(0, PRICE_DIGITS - 1 - lead)}f}"
        return sign + (text.rstrip("0").rstrip(".") if "." in text else text)
    zeros = -lead - 1  # zeros right after the decimal point
    digits = f"{a:.{zeros + PRICE_DIGITS}f}".split(".")[1][zeros:].rstrip("0") or "0"
    if zeros >= 4:
        return f"{sign}0.0{str(zeros).translate(_SUBSCRIPT)}{digits}"
    return f"{sign}0.{'0' * zeros}{digits}"


def input_number(x: Any) -> str:
    """A number as a plain decimal of 6 significant digits (0.00001658, 6054.61 — never
    1.658e-05, 0.0₄1658 or 6054.609602599356), for the value of an <input type="number">;
    '' when unknown."""
    v = _finite(x)
    return "" if v is None else format(Decimal(f"{v:.6g}").normalize(), "f")


def fmt_price(x: Any) -> Markup:
    """A price in a <span> whose title is the full value (screen readers get it too)."""
    v = _finite(x)
    text = price_text(v)
    if v is None:
        return Markup('<span class="na" title="not available">—</span>')
    return Markup('<span class="num" title="{}">{}</span>').format(f"{v:.10g}", text)


def fmt_big(x: Any, prefix: str = "$") -> str:
    """1.23B, 456.7M, 12.3K."""
    v = _finite(x)
    if v is None:
        return "—"
    for cut, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= cut:
            return f"{prefix}{v / cut:,.2f}{suffix}"
    return f"{prefix}{v:,.2f}"


def fmt_pct(x: Any, digits: int = 2) -> Markup:
    """A fraction as a signed percent, coloured up/down; '—' when unknown."""
    v = _finite(x)
    if v is None:
        return Markup('<span class="na">—</span>')
    shown = round(v * 100, digits)  # a change that rounds to 0.0% is neither up nor down
    cls = "up" if shown > 0 else "down" if shown < 0 else "flat"
    sign = "+" if shown > 0 else "−" if shown < 0 else ""
    return Markup('<span class="{}">{}{}%</span>').format(cls, sign, f"{abs(shown):,.{digits}f}")


def fmt_share(x: Any, digits: int = 1) -> str:
    """A fraction of a whole as an unsigned percent."""
    v = _finite(x)
    return "—" if v is None else f"{v * 100:,.{digits}f}%"


def fmt_num(x: Any, digits: int = 2) -> str:
    """A plain number with thousands separators."""
    v = _finite(x)
    return "—" if v is None else f"{v:,.{digits}f}"


def fmt_grade(x: Any) -> str:
    """A 0–100 grade as the integer its band is read from: halves round up (60.5 is 61, a
    buy), where `num(0)` rounded half to even and showed a buy as 60."""
    v = _finite(x)
    return "—" if v is None else str(math.floor(v + 0.5))


_TICKS = re.compile(r"`([^`]+)`")


def fmt_message(x: Any) -> Markup:
    """A service message (reason, warning, error) for a page: escaped, with its `code` spans
    (field names, commands such as `coinlens load`) set as <code>, not raw backticks."""
    text, out, pos = str(x), Markup(""), 0
    for m in _TICKS.finditer(text):
        out += escape(text[pos : m.start()]) + Markup("<code>{}</code>").format(m[1])
        pos = m.end()
    return out + escape(text[pos:])


def fmt_utc(x: Any) -> Markup:
    """A date or time written in UTC, with a machine-readable <time> the JS adds local time to."""
    if x is None:
        return Markup('<span class="na">—</span>')
    if isinstance(x, datetime):
        iso = x.isoformat()
        text = x.strftime("%Y-%m-%d %H:%M UTC")
        return Markup('<time datetime="{}" data-local>{}</time>').format(iso, text)
    if isinstance(x, date):
        return Markup('<time datetime="{}">{} UTC</time>').format(x.isoformat(), x.isoformat())
    return escape(str(x))


def to_json(value: Any) -> Markup:
    """JSON safe to embed in <script type="application/json"> (no `</script>` breakout)."""
    text = json.dumps(value, separators=(",", ":"), default=str, allow_nan=False)
    safe = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(safe)  # noqa: S704 - JSON with <, > and & escaped cannot leave the <script>


def build_env() -> Environment:
    """The dashboard's Jinja2 environment (autoescaping on, undefined names refused)."""
    from jinja2 import StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        price=fmt_price,
        input_number=input_number,
        big=fmt_big,
        pct=fmt_pct,
        num=fmt_num,
        grade=fmt_grade,
        message=fmt_message,
        share=fmt_share,
        utc=fmt_utc,
        tojson_safe=to_json,
    )
    env.globals.update(version=__version__, cos=math.cos, sin=math.sin)
    return env


def base_path(request: Request) -> str:
    """The reverse-proxy path prefix (ASGI root_path, e.g. uvicorn --root-path /coinlens)."""
    return str(request.scope.get("root_path") or "").rstrip("/")


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """Render a page or fragment with the request-wide globals (base path, CSRF, owner)."""
    env: Environment = request.app.state.web_env
    page = env.get_template(template).render(
        request=request,
        base=base_path(request),
        csrf_token=request.state.csrf_token if hasattr(request.state, "csrf_token") else "",
        owner=getattr(request.state, "owner", False),
        **context,
    )
    return HTMLResponse(page, status_code=status_code)
