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
     "json://169.254.169.254/x", "json://localhost:8080/x", "json://[2002:7f00:1::]/x",
     "json://[2002:a00:1::1]/x"],
)  # fmt: skip
def test_internal_targets_are_refused_unless_allow_listed(url: str) -> None:
    with pytest.raises(ValidationFailed, match="allow-list") as refused:
        channels.validate_channel(url, [])
    # The answer names the host the user gave, never the address it resolved to (a refusal
    # that did would map the internal network's DNS for any key holder).
    said = str(refused.value.problems)
    assert "resolves to" not in said
    assert "localhost" not in url or ("127.0.0.1" not in said and "::1" not in said)


def test_a_6to4_address_of_a_public_ipv4_is_allowed() -> None:
    assert channels.validate_channel("json://[2002:808:808::1]/x", []).host == "[2002:808:808::1]"


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


def test_bodies_are_sent_as_plain_text(hook: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from unit.alerts.alert_receivers import SmtpReceiver

    base = f"http://127.0.0.1:{hook.port}"
    monkeypatch.setattr(NotifyTelegram, "notify_url", f"{base}/bot")
    monkeypatch.setattr(NotifySlack, "webhook_url", f"{base}/services")
    body = "Rule: A<B & C price above 1.00\nObserved: price 2.00\nref: k1"
    for url in (TG, SLACK):
        assert channels.send(channels.parse_channel(url), "A<B alert", body, "k1").ok
    tg, sl = (json.loads(r["body"]) for r in hook.received)
    # Telegram parses HTML: markup characters escaped, or it answers 400 "can't parse entities"
    assert "A&lt;B &amp; C" in tg["text"]
    assert "<B" not in tg["text"]
    assert "A&lt;B &amp; C" in sl["attachments"][0]["text"]  # Slack's escapes
    smtp = SmtpReceiver().start()
    try:
        url = f"mailto://127.0.0.1:{smtp.port}?from=alerts@coinlens.test&to=me@example.com"
        out = channels.send(channels.validate_channel(url, ["127.0.0.1"]), "t", body, "k1")
        assert out.ok, out.error
        (msg,) = smtp.messages
    finally:
        smtp.stop()
    # one text/plain part keeping the lines (as HTML, every line ran into one)
    assert msg.get_content_type() == "text/plain"
    text = msg.get_payload(decode=True).decode()
    assert text.splitlines() == body.splitlines()


def test_failures_without_an_answer_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from unit.alerts.alert_receivers import free_port

    closed = free_port()
    refused = channels.send(channels.parse_channel(f"json://127.0.0.1:{closed}/x"), "t", "b", "k")
    assert (refused.ok, refused.permanent) == (False, False)
    assert refused.error == f"connection refused by 127.0.0.1:{closed}"
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"json://127.0.0.1:{silent.getsockname()[1]}/x"
        hung = channels.send(channels.parse_channel(url), "t", "b", "k", timeout=0.5)
    assert (hung.ok, hung.permanent) == (False, False)
    assert hung.error is not None
    assert hung.error.endswith("within 0.5 s (timed out)")
    # the bot token sits in Telegram's URL path: the reason names the host only
    monkeypatch.setattr(NotifyTelegram, "notify_url", f"http://127.0.0.1:{closed}/bot")
    tg = channels.send(channels.parse_channel(TG), "t", "b", "k")
    assert tg.error == f"connection refused by 127.0.0.1:{closed}"


def test_smtp_failures_say_why_and_a_refusal_is_not_retried() -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from unit.alerts.alert_receivers import free_port

    class Refusing:
        async def handle_RCPT(self, *args: object) -> str:
            return "550 5.1.1 no such user"

    port = free_port()

    def send(userinfo: str) -> channels.SendOutcome:
        url = f"mailto://{userinfo}127.0.0.1:{port}?from=a@coinlens.test&to=me@example.com"
        return channels.send(channels.parse_channel(url), "t", "b", "k", timeout=5)

    server = Controller(
        Refusing(), hostname="127.0.0.1", port=port, auth_require_tls=False,
        authenticator=lambda *args: AuthResult(success=False, handled=False),
    )  # fmt: skip
    server.start()
    try:
        login, recipient = send("user:wrongpw@"), send("")
    finally:
        server.stop()
    # was "Connection error while submitting email", retried up to the attempt limit
    assert (login.ok, login.permanent) == (False, True)
    assert login.error == (
        "SMTP server 127.0.0.1 rejected the login: 535 5.7.8 Authentication credentials invalid"
    )
    assert "wrongpw" not in login.error
    assert (recipient.ok, recipient.permanent) == (False, True)
    assert recipient.error is not None
    assert "me@example.com: 550 5.1.1 no such user" in recipient.error
    down = send("")  # the server is gone: a network error, retried
    assert (down.ok, down.permanent) == (False, False)
    assert down.error == "connection refused by 127.0.0.1"


def test_a_url_without_scheme_is_refused_without_echoing_it() -> None:
    bare = TG.removeprefix("tgram://").rsplit("/", 1)[0]  # a bot token pasted bare
    with pytest.raises(ValidationFailed) as err:
        channels.validate_channel(bare, [], "channels.1")
    assert err.value.problems[0].location == "channels.1"
    assert "no scheme" in err.value.detail
    assert "123456789" not in err.value.detail
    assert "AAbb" not in err.value.detail


def test_a_redirect_says_where_to_and_a_permanent_one_is_not_retried(hook: HttpReceiver) -> None:
    ch = channels.parse_channel(f"json://127.0.0.1:{hook.port}/x")
    location = {"Location": "https://hooks.example.org/secret-path-token"}
    hook.script = [(301, location), (307, location)]
    moved, temporary = channels.send(ch, "t", "b", "k"), channels.send(ch, "t", "b", "k")
    assert (moved.ok, moved.status, moved.permanent) == (False, 301, True)
    assert moved.error == (
        "HTTP 301: redirected to https://hooks.example.org; redirects are not followed: put "
        "the final URL in the channel (jsons:// for HTTPS)"
    )
    assert (temporary.ok, temporary.status, temporary.permanent) == (False, 307, False)
    assert temporary.error is not None
    assert "secret-path-token" not in temporary.error
    assert hook.received == []  # never followed
