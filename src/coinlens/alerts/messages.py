"""Alert message text: symbol, price, change, grade/signal context, UTC and local time, link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

_SIGNALS = {1.0: "bullish", -1.0: "bearish", 0.0: "neutral"}


@dataclass(frozen=True)
class Message:
    """A rendered alert: title and plain-text body."""

    title: str
    body: str


def _num(x: Any, spec: str) -> str:
    return "n/a" if x is None else format(float(x), spec)


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{float(x) * 100:+.2f}%"


def describe(kind: str, spec: dict[str, Any]) -> str:
    """One line saying what a rule watches, e.g. `price above 70,000`."""
    d = spec.get("direction")
    if kind == "price_cross":
        return f"price {d} {spec['level']:,.8g}"
    if kind == "pct_change":
        sign = {"above": "≥ +", "below": "≤ −", "either": "beyond ±"}[str(d)]
        return f"{spec['window']} change {sign}{spec['threshold']:g}%"
    if kind == "grade_cross":
        return f"{spec['grade']} grade {d} {spec['threshold']:g}"
    if kind == "grade_move":
        return f"{spec['grade']} grade moves by ≥ {spec['points']:g} points"
    if kind == "signal_flip":
        return f"signal flips to {spec['signal']}"
    if kind == "level_break":
        return "price breaks resistance" if d == "above" else "price breaks support"
    return (
        f"P(reach {spec['target']:,.8g} within {spec['horizon_days']}d) {d} {spec['threshold']:g}"
    )


def render(context: dict[str, Any], fired_at: datetime, zone: str, link: str, key: str) -> Message:
    """The title and body of one alert; `context` holds what the evaluator saw."""
    symbol = context["symbol"]
    what = describe(context["kind"], context["spec"])
    local = fired_at.astimezone(ZoneInfo(zone))
    signal = context.get("signal")
    lines = [
        f"{symbol}: {what}",
        f"Price: {_num(context.get('price'), ',.8g')}  "
        f"(1h {_pct(context.get('change_1h'))}, 24h {_pct(context.get('change_24h'))}, "
        f"7d {_pct(context.get('change_7d'))})",
        f"Trader Grade: {_num(context.get('trader'), '.1f')}  "
        f"Investor Grade: {_num(context.get('investor'), '.1f')}  "
        f"Signal: {_SIGNALS.get(signal, 'n/a') if signal is not None else 'n/a'}",
        f"Observed: {_num(context.get('value'), ',.6g')}",
        f"Time: {fired_at:%Y-%m-%d %H:%M:%S} UTC / {local:%Y-%m-%d %H:%M %Z} ({zone})",
        f"Token page: {link}",
        f"ref: {key}",
    ]
    return Message(title=f"Coinlens alert: {symbol} {what}", body="\n".join(lines))
