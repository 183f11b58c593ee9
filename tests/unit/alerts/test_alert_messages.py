"""Alert message wording: observed values in the rule's terms, API words, one precision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coinlens.alerts import messages

AT = datetime(2025, 9, 26, 0, 0, 5, tzinfo=UTC)
LINK = "http://127.0.0.1:8000/t/BTC"


def ctx(kind: str, spec: dict[str, Any], **kw: Any) -> dict[str, Any]:
    base = {"symbol": "BTC", "kind": kind, "spec": spec, "value": None, "level": None,
            "previous": None, "live": False, "price": 108_994.49, "close": 108_994.49,
            "change_1h": 0.001, "change_24h": -0.067051, "change_7d": 0.02,
            "trader": 41.0, "investor": 62.5, "signal": 0.0}  # fmt: skip
    return base | kw


def render(c: dict[str, Any], **kw: Any) -> messages.Message:
    return messages.render(c, AT, "Europe/Paris", LINK, **kw)


def test_pct_change_shows_a_percent() -> None:
    spec = {"window": "24h", "direction": "either", "threshold": 5.0}
    msg = render(ctx("pct_change", spec, value=-0.067051))
    assert "Rule: BTC 24h change beyond ±5%" in msg.body
    assert "Observed: 24h change -6.71%" in msg.body


def test_level_break_names_the_level_and_the_close() -> None:
    c = ctx("level_break", {"direction": "below"}, value=108_994.49 / 111_957 - 1, level=111_957.0)
    msg = render(c)
    assert msg.title == "Coinlens alert: BTC broke support 111,957.00"
    assert "Observed: close 108,994.49 below support 111,957.00 (-2.65%)" in msg.body


def test_signal_flip_says_the_flip_in_api_words() -> None:
    msg = render(ctx("signal_flip", {"signal": "any"}, value=0.0, previous=1.0, symbol="AVAX"))
    assert msg.title == "Coinlens alert: AVAX signal flipped long → flat"
    assert "Observed: signal long → flat" in msg.body
    assert "Signal: flat" in msg.body
    assert "neutral" not in msg.body
    assert "bullish" not in msg.body
    assert "signal flips to long" in messages.describe("signal_flip", {"signal": "bullish"})


def test_observed_price_has_the_price_lines_precision() -> None:
    spec = {"direction": "below", "level": 110_000.0}
    msg = render(ctx("price_cross", spec, value=108_994.49))
    assert "Observed: price 108,994.49" in msg.body
    assert "Price: 108,994.49  (1h +0.10%, 24h -6.71%, 7d +2.00%)" in msg.body
    assert messages.price(0.000123456) == "0.000123456"


def test_a_tick_alert_labels_the_changes_as_of_the_last_close() -> None:
    spec = {"direction": "below", "level": 110_000.0}
    msg = render(ctx("price_cross", spec, value=108_500.0, price=108_500.0, live=True))
    assert "Price: 108,500.00 (live tick)" in msg.body
    assert "Last daily close: 108,994.49  (as of that close: 1h +0.10%" in msg.body


def test_test_messages_say_so_and_carry_no_ref_until_sent() -> None:
    spec = {"direction": "above", "level": 120_000.0}
    msg = render(ctx("price_cross", spec, value=108_994.49), test=True)
    assert msg.title.startswith("[test] Coinlens alert: BTC price above 120,000.00")
    assert msg.body.startswith("TEST MESSAGE")
    assert "ref:" not in msg.body
    assert f"Token page: {LINK}" in msg.body


def test_the_ref_line_is_the_per_channel_key() -> None:
    body = messages.with_ref("a\nb", "cl-1-0-c0")
    assert body == "a\nb\nref: cl-1-0-c0"
    assert messages.with_ref("a\nref: cl-1-0", "cl-1-0-c1") == "a\nref: cl-1-0-c1"
