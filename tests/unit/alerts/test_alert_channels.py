"""Channel URLs: validation, SSRF refusals, redaction, and the payloads each service gets
(Telegram/Discord/Slack pointed at a local receiver through Apprise's configurable hosts)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.slack import NotifySlack
from apprise.plugins.telegram import NotifyTelegram

from coinlens.alerts import channels, crypto
from coinlens.alerts.outbox import Pacer, RetryPolicy
from coinlens.domain.errors import ConfigError, ValidationFailed
from unit.alerts.alert_receivers import HttpReceiver

TG = "tgram://123456789:AAbbccddeeffgghhiijjkkllmmnnooppqqr/4242"
DISCORD = "discord://1234567890/abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"
SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#alerts"


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    r = HttpReceiver().start()
    yield r
    r.stop()


@pytest.mark.parametrize(
    "url",
    ["json://100.64.0.1/x", "json://172.16.0.1/x", "jsons://127.0.0.2/x", "json://0.0.0.0/x",
     "json://[fe80::1]/x", "json://[::ffff:127.0.0.1]/x", "mailtos://u:p@mail.example.com?smtp=10.0.0.1&to=a@b.example",
     "json://169.254.169.254/x", "json://localhost:8080/x"],
)  # fmt: skip
def test_internal_targets_are_refused_unless_allow_listed(url: str) -> None:
    with pytest.raises(ValidationFailed, match="allow-list"):
        channels.validate_channel(url, [])


def test_allow_list_admits_hosts_and_networks() -> None:
    assert channels.validate_channel("json://127.0.0.1:9/x", ["127.0.0.0/8"]).kind == "webhook"
    assert channels.validate_channel("json://10.1.2.3/x", ["10.1.2.3"]).host == "10.1.2.3"
    with pytest.raises(ValidationFailed):
        channels.validate_channel("json://10.1.2.4/x", ["10.1.2.3"])


def test_fixed_host_services_are_redacted() -> None:
    for url, secret in ((TG, "AAbbccddeeff"), (DISCORD, "abcdefghijkl"), (SLACK, "TIiajkdnl")):
        ch = channels.validate_channel(url, [])
        assert secret not in ch.redacted


def test_encryption_round_trips_and_needs_the_same_secret() -> None:
    token = crypto.encrypt("s1", TG)
    assert "AAbb" not in token
    assert crypto.decrypt("s1", token) == TG
    with pytest.raises(ConfigError):
        crypto.decrypt("s2", token)


def test_backoff_is_full_jitter_capped_and_honours_retry_after() -> None:
    import random

    p, rng = RetryPolicy(max_attempts=3, base=1.0, cap=8.0), random.Random(1)
    delays = [p.delay(6, None, rng) for _ in range(500)]
    assert 0 <= min(delays) < 1
    assert 6 < max(delays) <= 8
    assert p.delay(1, 30.0, rng) == 30.0
    assert p.exhausted(3)
    assert not p.exhausted(2)
    pacer = Pacer()
    pacer.sent("tg:1", 100.0, 1.0, None)
    assert pacer.wait_time("tg:1", 100.4) == pytest.approx(0.6)
    assert pacer.wait_time("tg:2", 100.4) == 0


def test_service_payload_formats(hook: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    base = f"http://127.0.0.1:{hook.port}"
    monkeypatch.setattr(NotifyTelegram, "notify_url", f"{base}/bot")
    monkeypatch.setattr(NotifyDiscord, "notify_url", f"{base}/api/webhooks")
    monkeypatch.setattr(NotifySlack, "webhook_url", f"{base}/services")
    for url in (TG, DISCORD, SLACK):
        out = channels.send(channels.parse_channel(url), "BTC above 100k", "body text", "k1")
        assert out.ok, out.error
    paths = [r["path"] for r in hook.received]
    assert paths[0].startswith("/bot123456789:")
    assert paths[0].endswith("/sendMessage")
    assert paths[1].startswith("/api/webhooks/1234567890/")
    assert paths[2].startswith("/services/T1JJ3T3L2/")
    tg, dc, sl = (json.loads(r["body"]) for r in hook.received)
    assert tg["chat_id"] in (4242, "4242")
    assert "BTC above 100k" in tg["text"]
    assert "body text" in json.dumps(dc)
    assert sl["channel"] == "#alerts"
    assert "body text" in json.dumps(sl)


def test_retry_after_and_permanent_errors_are_reported(hook: HttpReceiver) -> None:
    ch = channels.parse_channel(f"json://127.0.0.1:{hook.port}/x")
    hook.script = [(429, {"Retry-After": "7"}), (404, {})]
    first = channels.send(ch, "t", "b", "k")
    assert (first.ok, first.status, first.retry_after, first.permanent) == (False, 429, 7.0, False)
    second = channels.send(ch, "t", "b", "k")
    assert (second.ok, second.permanent) == (False, True)
    assert channels.send(ch, "t", "b", "k2").ok
    assert hook.keys() == {"k2": 1}
