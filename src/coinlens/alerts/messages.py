"""Alert message text: what fired and what was observed, price and context, times, link.

Words and precision follow the API and CLI: signals are long/flat/short, every price (the
observed one, a level, the price line) goes through one formatter, changes are percent. A
live tick's price is labelled as such, and the changes next to it as of the last daily close
(they are computed from stored closes). The body is rendered once per event; the `ref:` line
carries the per-channel idempotency key, so it is added per delivery (`with_ref`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

SIGNALS = {1.0: "long", -1.0: "short", 0.0: "flat"}
_SPEC_SIGNALS = {"bullish": "long", "bearish": "short"}
REF = "ref: "


@dataclass(frozen=True)
class Message:
    """A rendered alert: title and plain-text body."""

    title: str
    body: str


def price(x: Any) -> str:
    """A price: two decimals with thousands separators, 6 significant digits below 1."""
    if x is None:
        return "n/a"
    v = float(x)
    return f"{v:,.2f}" if abs(v) >= 1 else f"{v:.6g}"


def pct(x: Any) -> str:
    """A fraction as a signed percent (-0.067051 → -6.71%)."""
    return "n/a" if x is None else f"{float(x) * 100:+.2f}%"


def _grade(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.1f}"


def signal(x: Any) -> str:
    """The signal's word (long/flat/short), as the API and CLI print it."""
    return "n/a" if x is None else SIGNALS.get(float(x), "n/a")


def describe(kind: str, spec: dict[str, Any]) -> str:
    """One line saying what a rule watches, e.g. `price above 70,000.00`."""
    d = spec.get("direction")
    if kind == "price_cross":
        return f"price {d} {price(spec['level'])}"
    if kind == "pct_change":
        sign = {"above": "≥ +", "below": "≤ −", "either": "beyond ±"}[str(d)]
        return f"{spec['window']} change {sign}{spec['threshold']:g}%"
    if kind == "grade_cross":
        return f"{spec['grade']} grade {d} {spec['threshold']:g}"
    if kind == "grade_move":
        return f"{spec['grade']} grade moves by ≥ {spec['points']:g} points"
    if kind == "signal_flip":
        side = _SPEC_SIGNALS.get(str(spec["signal"]))
        return f"signal flips to {side}" if side else "signal flips (either way)"
    if kind == "level_break":
        return "price breaks resistance" if d == "above" else "price breaks support"
    return (
        f"P(reach {price(spec['target'])} within {spec['horizon_days']}d) {d} {spec['threshold']:g}"
    )


def _level_observed(c: dict[str, Any]) -> str:
    what = "price" if c.get("live") else "close"
    name = "resistance" if c["spec"].get("direction") == "above" else "support"
    p, level = c.get("price"), c.get("level")
    if p is None or level is None:
        return f"{what} {price(p)}, {name} {price(level)}"
    side = "below" if p < level else "above" if p > level else "at"
    return f"{what} {price(p)} {side} {name} {price(level)} ({pct(c.get('value'))})"


def observed(c: dict[str, Any]) -> str:
    """What the rule saw, in its own terms (a percent, a price, the flip, the level)."""
    kind, spec, v = c["kind"], c["spec"], c.get("value")
    if kind == "price_cross":
        return f"price {price(v)}"
    if kind == "pct_change":
        return f"{spec['window']} change {pct(v)}"
    if kind in ("grade_cross", "grade_move"):
        moved = f" (from {_grade(c['previous'])})" if c.get("previous") is not None else ""
        return f"{spec['grade']} grade {_grade(v)}{moved}"
    if kind == "signal_flip":
        before = f"{signal(c['previous'])} → " if c.get("previous") is not None else ""
        return f"signal {before}{signal(v)}"
    if kind == "level_break":
        return _level_observed(c)
    return f"P = {'n/a' if v is None else format(float(v), '.2f')}"


def headline(c: dict[str, Any]) -> str:
    """The title's phrase of a fired alert: the flip or the broken level when known."""
    kind, spec = c["kind"], c["spec"]
    if kind == "signal_flip" and c.get("previous") is not None and c.get("value") is not None:
        return f"signal flipped {signal(c['previous'])} → {signal(c['value'])}"
    if kind == "level_break" and c.get("level") is not None:
        name = "resistance" if spec.get("direction") == "above" else "support"
        return f"broke {name} {price(c['level'])}"
    return describe(kind, spec)


def _price_lines(c: dict[str, Any]) -> list[str]:
    changes = (
        f"1h {pct(c.get('change_1h'))}, 24h {pct(c.get('change_24h'))}, "
        f"7d {pct(c.get('change_7d'))}"
    )
    if c.get("live"):
        return [
            f"Price: {price(c.get('price'))} (live tick)",
            f"Last daily close: {price(c.get('close'))}  (as of that close: {changes})",
        ]
    return [f"Price: {price(c.get('price'))}  ({changes})"]


def render(
    context: dict[str, Any], fired_at: datetime, zone: str, link: str, *, test: bool = False
) -> Message:
    """The title and body of one alert; `context` holds what the evaluator saw. A `test`
    message says it is one and shows the values the rule would see now."""
    c, symbol = context, context["symbol"]
    local = fired_at.astimezone(ZoneInfo(zone))
    lines = [
        *(["TEST MESSAGE: the rule did not fire; these are the current values."] if test else []),
        f"Rule: {symbol} {describe(c['kind'], c['spec'])}",
        f"Observed: {observed(c)}",
        *_price_lines(c),
        f"Trader Grade: {_grade(c.get('trader'))}  Investor Grade: {_grade(c.get('investor'))}"
        f"  Signal: {signal(c.get('signal'))}",
        f"Time: {fired_at:%Y-%m-%d %H:%M:%S} UTC / {local:%Y-%m-%d %H:%M %Z} ({zone})",
        f"Token page: {link}",
    ]
    what = describe(c["kind"], c["spec"]) if test else headline(c)
    title = f"{'[test] ' if test else ''}Coinlens alert: {symbol} {what}"
    return Message(title=title, body="\n".join(lines))


def with_ref(body: str, key: str) -> str:
    """The body with its `ref:` line set to `key` (a delivery's per-channel idempotency key);
    an older body's event-level ref line is replaced."""
    lines = body.split("\n")
    if lines and lines[-1].startswith(REF):
        lines.pop()
    return "\n".join([*lines, REF + key])
