"""Alert rules end to end on SQLite and PostgreSQL: CRUD, refusals, evaluation, outbox,
delivery to real local receivers (HTTP and SMTP), retries, dead letters and races."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from coinlens.alerts import evaluate as ev
from coinlens.alerts.rules import AlertRuleCreate
from coinlens.domain.errors import UserInputError, ValidationFailed
from coinlens.services import alert_delivery, alerts
from coinlens.services.context import Context, build_context
from coinlens.services.keys import KeySpec, create_key
from coinlens.settings import Settings
from coinlens.storage.tables import tokens
from coinlens.storage.tables_alerts import alert_deliveries, alert_events, alert_rules
from unit.alerts.alert_receivers import HttpReceiver, SmtpReceiver

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def actx(settings: Settings) -> Iterator[Context]:
    """A context whose allow-list admits the local receivers."""
    s = settings.model_copy(
        update={"alerts_allow_hosts": ["127.0.0.1"], "alerts_max_rules_per_key": 3,
                "alerts_backoff_base": 0.05, "alerts_backoff_cap": 0.2}
    )  # fmt: skip
    ctx = build_context(s)
    with ctx.engine.begin() as conn:
        conn.execute(tokens.insert(), [{"id": 1, "symbol": "BTC", "name": "Bitcoin"},
                                       {"id": 2, "symbol": "ETH", "name": "Ether"}])  # fmt: skip
    yield ctx
    ctx.engine.dispose()


@pytest.fixture
def owner(actx: Context) -> int:
    return create_key(actx, KeySpec(name="alerts-test")).key.id


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    r = HttpReceiver().start()
    yield r
    r.stop()


def state(btc: float, eth: float = 3000.0) -> ev.MarketState:
    values = np.full((2, ev.N_METRICS), np.nan)
    values[:, ev.PRICE] = [btc, eth]
    return ev.MarketState(np.array([1, 2], dtype=np.int64), values)


def rule(url: str, **kw: object) -> AlertRuleCreate:
    body = {"symbol": "BTC", "kind": "price_cross", "direction": "above", "level": 100_000.0,
            "channels": [url], "cooldown_seconds": 0} | kw  # fmt: skip
    return AlertRuleCreate.model_validate(body)


def count(ctx: Context, table: sa.Table) -> int:
    with ctx.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_create_stores_encrypted_and_shows_redacted(actx: Context, owner: int) -> None:
    url = "jsons://user:s3cr3tpass@127.0.0.1:9/hook"
    made = alerts.create_rule(actx, owner, rule(url))
    listed = alerts.list_rules(actx, owner)
    assert [r.id for r in listed.items] == [made.id]
    assert "s3cr3tpass" not in made.model_dump_json()
    with actx.engine.connect() as conn:
        raw = conn.execute(sa.select(alert_rules.c.channels_enc)).scalar_one()
    assert "s3cr3tpass" not in str(raw)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("json://", "not a valid"),
        ("ftp://example.com/x", "unsupported channel scheme"),
        ("json://10.1.2.3/hook", "private"),
        ("json://169.254.169.254/latest", "metadata"),
        ("mailto://user:pw@192.168.1.5?to=a@b.example", "private"),
        ("json://[::1]:8080/x", "private"),
    ],
)
def test_bad_channels_are_refused_and_nothing_stored(
    actx: Context, owner: int, url: str, reason: str
) -> None:
    actx.settings.alerts_allow_hosts.clear()
    with pytest.raises(ValidationFailed) as err:
        alerts.create_rule(actx, owner, rule(url))
    assert reason in err.value.detail
    assert err.value.problems[0].location == "channels.0"
    assert count(actx, alert_rules) == 0


def test_unknown_symbols_absurd_levels_and_floods_are_refused(
    actx: Context, owner: int, hook: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"json://127.0.0.1:{hook.port}/hook"
    with pytest.raises(ValidationFailed, match="unknown symbol"):
        alerts.create_rule(actx, owner, rule(url, symbol="NOPE"))
    monkeypatch.setattr(alerts, "market_state", lambda ctx, prices=None: state(90_000.0))
    with pytest.raises(ValidationFailed, match="1000x"):
        alerts.create_rule(actx, owner, rule(url, level=1e11))
    with pytest.raises(ValidationError, match="threshold must be"):
        rule(url, kind="pct_change", direction="above", level=None, window="24h", threshold=5e6)
    for _ in range(3):
        alerts.create_rule(actx, owner, rule(url))
    with pytest.raises(UserInputError, match="limit"):
        alerts.create_rule(actx, owner, rule(url))
    assert count(actx, alert_rules) == 3


def _fire_once(actx: Context, owner: int, url: str) -> int:
    made = alerts.create_rule(actx, owner, rule(url))
    alerts.evaluate_alerts(actx, state(90_000.0), now=NOW)  # primes below the level
    report = alerts.evaluate_alerts(actx, state(101_000.0), now=NOW + timedelta(minutes=1))
    assert report.events_written == 1
    return made.id


def test_fire_deliver_and_log(actx: Context, owner: int, hook: HttpReceiver) -> None:
    rule_id = _fire_once(actx, owner, f"json://127.0.0.1:{hook.port}/hook")
    assert alert_delivery.deliver_pending(actx) == 1
    assert list(hook.keys().values()) == [1]
    (key,) = hook.keys()
    assert key == f"cl-{rule_id}-1-c0"
    body = hook.json_bodies()[0]
    assert "BTC" in body["title"]
    assert "Observed: price 101,000.00" in body["message"]
    assert "UTC" in body["message"]
    assert "Token page: http://127.0.0.1:8000/t/BTC\n" in body["message"]
    assert body["message"].endswith(f"\nref: {key}")  # the per-channel key, as documented
    log = alerts.rule_log(actx, owner, rule_id)
    (d,) = log.events[0].deliveries
    assert (d.status, d.attempts, d.idempotency_key) == ("sent", 1, key)
    # holds above: silent; resets and crosses again: a second event
    later = [NOW + timedelta(minutes=m) for m in (2, 3, 4)]
    assert alerts.evaluate_alerts(actx, state(102_000.0), now=later[0]).events_written == 0
    alerts.evaluate_alerts(actx, state(99_000.0), now=later[1])
    assert alerts.evaluate_alerts(actx, state(100_500.0), now=later[2]).events_written == 1


def test_a_firing_reaches_the_owners_streams(actx: Context, owner: int) -> None:
    from coinlens.services import events

    bus = events.bus_for(actx.settings)
    head = bus.head()
    rule_id = _fire_once(actx, owner, "json://127.0.0.1:9/hook")
    quiet = alerts.evaluate_alerts(actx, state(102_000.0), now=NOW + timedelta(minutes=2))

    (published,) = bus.after(head, 10)  # one per stored event: none for the quiet round
    assert quiet.events_written == 0
    assert (published.type, published.symbol, published.audience) == (
        "alert",
        "BTC",
        f"key:{owner}",
    )
    assert published.data["rule_id"] == rule_id
    assert "BTC" in published.data["title"]
    assert published.data["body"]


def test_two_evaluators_racing_write_one_event(
    actx: Context, owner: int, hook: HttpReceiver
) -> None:
    alerts.create_rule(actx, owner, rule(f"json://127.0.0.1:{hook.port}/hook"))
    alerts.evaluate_alerts(actx, state(90_000.0), now=NOW)
    barrier = threading.Barrier(2)
    results: list[int] = []

    def run() -> None:
        barrier.wait()
        results.append(alerts.evaluate_alerts(actx, state(101_000.0), now=NOW).events_written)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 1]
    assert count(actx, alert_events) == 1
    assert count(actx, alert_deliveries) == 1


def test_retry_after_is_honoured_then_delivered_once(
    actx: Context, owner: int, hook: HttpReceiver
) -> None:
    hook.script = [(429, {"Retry-After": "1"}), (503, {})]
    _fire_once(actx, owner, f"json://127.0.0.1:{hook.port}/hook")
    alert_delivery.deliver_pending(actx)
    with actx.engine.connect() as conn:
        row = conn.execute(sa.select(alert_deliveries)).one()
    assert (row.status, row.attempts, row.last_status) == ("pending", 1, 429)
    assert row.next_attempt_at >= datetime.now(UTC) + timedelta(seconds=0.5)
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    while alert_delivery.outbox_counts(actx).get("sent", 0) == 0 and datetime.now(UTC) < deadline:
        alert_delivery.deliver_pending(actx)
    assert alert_delivery.outbox_counts(actx) == {"sent": 1}
    assert list(hook.keys().values()) == [1]


def test_permanent_errors_and_exhausted_retries_go_to_dead_letter(
    actx: Context, owner: int, hook: HttpReceiver
) -> None:
    hook.script = [(404, {})]
    _fire_once(actx, owner, f"json://127.0.0.1:{hook.port}/hook")
    alert_delivery.deliver_pending(actx)
    assert alert_delivery.outbox_counts(actx) == {"dead": 1}
    with actx.engine.connect() as conn:
        assert "HTTP 404" in conn.execute(sa.select(alert_deliveries.c.last_error)).scalar_one()


def test_email_alert_reaches_the_smtp_server_with_its_key(actx: Context, owner: int) -> None:
    smtp = SmtpReceiver().start()
    try:
        url = f"mailto://127.0.0.1:{smtp.port}?from=alerts@coinlens.test&to=me@example.com"
        rule_id = _fire_once(actx, owner, url)
        assert alert_delivery.deliver_pending(actx) == 1
        (msg,) = smtp.messages
        assert msg["X-Coinlens-Idempotency-Key"] == f"cl-{rule_id}-1-c0"
        assert "BTC" in msg["Subject"]
        assert msg["Message-ID"]
    finally:
        smtp.stop()


def test_test_sends_a_sample_through_each_channel(
    actx: Context, owner: int, hook: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = alerts.create_rule(actx, owner, rule(f"json://127.0.0.1:{hook.port}/hook"))
    current = state(90_000.0)
    current.values[0, [ev.CHG_24H, ev.TRADER, ev.INVESTOR, ev.SIGNAL]] = [-0.02, 55, 70, 1]
    monkeypatch.setattr(alerts, "market_state", lambda ctx, prices=None: current)
    (result,) = alerts.test_rule(actx, owner, made.id)
    assert result.ok
    assert result.status == 200
    (body,) = hook.json_bodies()
    assert body["title"].startswith("[test]")
    assert body["message"].startswith("TEST MESSAGE")
    assert "Observed: price 90,000.00" in body["message"]
    assert "24h -2.00%" in body["message"]
    assert "Trader Grade: 55.0  Investor Grade: 70.0  Signal: long" in body["message"]
    (key,) = hook.keys()
    assert body["message"].endswith(f"ref: {key}")


def test_changing_channels_carries_pending_deliveries_along(
    actx: Context, owner: int, hook: HttpReceiver
) -> None:
    from coinlens.alerts.rules import AlertRuleUpdate

    down = HttpReceiver()  # never started: its deliveries fail and wait for a retry
    a, b = f"json://127.0.0.1:{down.port}/a", f"json://127.0.0.1:{hook.port}/b"
    made = alerts.create_rule(actx, owner, rule(a, channels=[a, b]))
    alerts.evaluate_alerts(actx, state(90_000.0), now=NOW)
    assert alerts.evaluate_alerts(actx, state(101_000.0), now=NOW + timedelta(minutes=1))
    alert_delivery.deliver_pending(actx)
    assert hook.keys() == {f"cl-{made.id}-1-c1": 1}
    # the broken channel is dropped: its pending delivery must not go to `b`, now at index 0
    alerts.update_rule(actx, owner, made.id, AlertRuleUpdate(channels=[b]))
    with actx.engine.begin() as conn:
        conn.execute(alert_deliveries.update().values(next_attempt_at=NOW))  # due now
    alert_delivery.deliver_pending(actx)
    assert hook.keys() == {f"cl-{made.id}-1-c1": 1}
    dead, sent = alerts.rule_log(actx, owner, made.id).events[0].deliveries
    assert dead.status == "dead"
    assert dead.last_error == "channel removed from the rule before delivery"
    assert (dead.channel.kind, dead.channel.redacted) == ("webhook", "(removed from the rule)")
    assert (sent.status, sent.channel.redacted) == ("sent", b)


def test_a_channel_removed_before_delivery_does_not_stop_the_worker(
    actx: Context, owner: int, hook: HttpReceiver
) -> None:
    from coinlens.alerts.rules import AlertRuleUpdate

    urls = [f"json://127.0.0.1:{hook.port}/{n}" for n in ("a", "b")]
    made = alerts.create_rule(actx, owner, rule(urls[0], channels=urls))
    alerts.evaluate_alerts(actx, state(90_000.0), now=NOW)
    alerts.evaluate_alerts(actx, state(101_000.0), now=NOW + timedelta(minutes=1))
    alerts.update_rule(actx, owner, made.id, AlertRuleUpdate(channels=urls[:1]))
    assert alert_delivery.deliver_pending(actx) == 1  # was an IndexError, every row left leased
    assert hook.keys() == {f"cl-{made.id}-1-c0": 1}
    assert alert_delivery.outbox_counts(actx) == {"sent": 1, "dead": 1}


def test_a_host_that_does_not_resolve_at_send_time_is_retried(
    actx: Context, owner: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    def public(host: str, *args: object, **kwargs: object) -> list[object]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 0))]

    monkeypatch.setattr(socket, "getaddrinfo", public)
    _fire_once(actx, owner, "json://hooks.example.org/x")

    def unresolved(host: str, *args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", unresolved)  # a resolver hiccup
    alert_delivery.deliver_pending(actx)
    with actx.engine.connect() as conn:
        row = conn.execute(sa.select(alert_deliveries)).one()
    # was dead at the first try, as if the host were refused for good
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "host hooks.example.org does not resolve"
