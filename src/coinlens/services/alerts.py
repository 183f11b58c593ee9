"""Alerts: rule CRUD with per-key limits, evaluation after updates, and outbox delivery.

`evaluate_alerts(ctx)` runs after every ingest/pipeline update (and `evaluate_ticks` on
live ticks): it reads the latest market state, evaluates every active rule with the
vectorised evaluator, and writes events, their outbox rows and the rules' new state in one
transaction. `services.alert_delivery` sends the outbox.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from coinlens.alerts import channels, crypto, messages
from coinlens.alerts import evaluate as ev
from coinlens.alerts.outbox import delivery_key, event_key
from coinlens.alerts.rules import (
    AlertEventPublic,
    AlertLog,
    AlertRuleCreate,
    AlertRulePublic,
    AlertRulesPage,
    AlertRuleUpdate,
    ChannelPublic,
    DeliveryPublic,
    QuietHours,
    RuleSpec,
    TestResult,
    quiet_until,
)
from coinlens.domain.errors import (
    CoinlensError,
    DataUnavailable,
    NotFound,
    Problem,
    UserInputError,
    ValidationFailed,
)
from coinlens.services.alerts_state import F64, RuleValues, market_state, rule_values
from coinlens.services.context import Context
from coinlens.storage import alerts_repo as repo
from coinlens.storage.panel import read_daily_panel

ABSURD_FACTOR = 1000.0  # a price level 1000x away from the current price is a typo


# --- compiling a rule to (metric, op, threshold, target) -----------------------------------

_WINDOW_METRIC = {"1h": ev.CHG_1H, "24h": ev.CHG_24H, "7d": ev.CHG_7D}
_GRADE_METRIC = {"trader": ev.TRADER, "investor": ev.INVESTOR}
_SIGNAL_TARGET = {"bullish": 1.0, "bearish": -1.0, "any": 0.0}


def compile_spec(kind: str, spec: Mapping[str, Any]) -> tuple[int, int, float, float]:
    """The evaluator's (metric, op, threshold, target) for one rule."""
    d = spec.get("direction")
    op = ev.ABOVE if d == "above" else ev.BELOW
    if kind == "price_cross":
        return ev.PRICE, op, float(spec["level"]), 0.0
    if kind == "pct_change":
        x = float(spec["threshold"]) / 100.0
        metric = _WINDOW_METRIC[str(spec["window"])]
        if d == "either":
            return metric, ev.ABS_ABOVE, x, 0.0
        return metric, op, x if d == "above" else -x, 0.0
    if kind == "grade_cross":
        return _GRADE_METRIC[str(spec["grade"])], op, float(spec["threshold"]), 0.0
    if kind == "grade_move":
        return _GRADE_METRIC[str(spec["grade"])], ev.MOVE, float(spec["points"]), 0.0
    if kind == "signal_flip":
        return ev.SIGNAL, ev.FLIP, 0.0, _SIGNAL_TARGET[str(spec["signal"])]
    if kind == "level_break":
        # the value is the price's gap to the level known before it (`alerts_state`)
        return ev.RULE_VALUE, op, 0.0, 0.0
    return ev.RULE_VALUE, op, float(spec["threshold"]), 0.0  # probability_cross


def _epoch(t: datetime | None, default: float) -> float:
    return t.timestamp() if t is not None else default


def _rule_arrays(rows: Sequence[Any]) -> ev.RuleArrays:
    compiled = [compile_spec(r.kind, r.spec) for r in rows]
    return ev.build_rules(
        {
            "rule_id": [r.id for r in rows],
            "token_id": [r.token_id for r in rows],
            "metric": [c[0] for c in compiled],
            "op": [c[1] for c in compiled],
            "threshold": [c[2] for c in compiled],
            "target": [c[3] for c in compiled],
            "cooldown": [r.cooldown_seconds for r in rows],
            "expires": [_epoch(r.expires_at, math.inf) for r in rows],
            "armed": [r.armed for r in rows],
            "ref": [math.nan if r.ref is None else r.ref for r in rows],
            "last_fired": [_epoch(r.last_fired_at, math.nan) for r in rows],
        }
    )


# --- evaluation ------------------------------------------------------------------------------


@dataclass
class EvaluationReport:
    """What one evaluation did."""

    rules: int = 0
    fired: int = 0
    events_written: int = 0
    state_changes: int = 0
    evaluate_ms: float = 0.0
    seconds: float = 0.0
    event_ids: list[int] = field(default_factory=list)


def _num(x: Any) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def _context(
    state: ev.MarketState, row: int, rule: Any, symbol: str, seen: Mapping[str, Any]
) -> dict[str, Any]:
    """What the message says: the rule, the value it saw (`seen`: value, level, previous
    ref, live) and the token's market state."""
    v = state.values[row] if row >= 0 else np.full(ev.N_METRICS, np.nan)
    previous = rule.ref if rule.kind in ("grade_move", "signal_flip") else None
    return {
        "symbol": symbol, "kind": rule.kind, "spec": rule.spec,
        "value": _num(seen.get("value")), "level": _num(seen.get("level")),
        "previous": _num(previous), "live": bool(seen.get("live")),
        "price": _num(v[ev.PRICE]), "close": _num(v[ev.CLOSE]),
        "change_1h": _num(v[ev.CHG_1H]), "change_24h": _num(v[ev.CHG_24H]),
        "change_7d": _num(v[ev.CHG_7D]), "trader": _num(v[ev.TRADER]),
        "investor": _num(v[ev.INVESTOR]), "signal": _num(v[ev.SIGNAL]),
    }  # fmt: skip


def token_link(ctx: Context, symbol: str) -> str:
    """The public URL of a token's page (the web app's `/t/{symbol}`)."""
    return f"{ctx.settings.alerts_public_url.rstrip('/')}/t/{symbol}"


@dataclass(frozen=True)
class _Seen:
    """What one evaluation saw: the state, each rule's value and level, tick or close."""

    state: ev.MarketState
    value: F64
    level: F64
    live: bool


def _event_rows(
    ctx: Context, rows: Sequence[Any], fired: Sequence[int], seen: _Seen,
    meta: Mapping[int, Any], now: datetime,
) -> list[dict[str, Any]]:  # fmt: skip
    tokens = np.asarray([rows[j].token_id for j in fired], dtype=np.int64)
    pos, found = seen.state.lookup(tokens)
    out = []
    for n, j in enumerate(fired):
        r = rows[j]
        symbol, zone = meta[r.id]["symbol"], meta[r.id]["timezone"]
        key = event_key(r.id, r.version)
        at = {"value": seen.value[j], "level": seen.level[j], "live": seen.live}
        context = _context(seen.state, int(pos[n]) if found[n] else -1, r, symbol, at)
        msg = messages.render(context, now, zone, token_link(ctx, symbol))
        out.append(
            {"rule_id": r.id, "rule_version": r.version, "key": key, "fired_at": now,
             "context": context, "title": msg.title, "body": msg.body}
        )  # fmt: skip
    return out


def _outbox_rows(meta: Mapping[int, Any], versions: Mapping[int, int], now: datetime) -> Any:
    def build(rule_id: int, event_id: int) -> list[dict[str, Any]]:
        m = meta[rule_id]
        quiet = QuietHours(**m["quiet_hours"]) if m["quiet_hours"] else None
        due = quiet_until(quiet, m["timezone"], now)
        ekey = event_key(rule_id, versions[rule_id])
        return [
            {"event_id": event_id, "channel_index": i, "destination": ch["destination"],
             "key": delivery_key(ekey, i), "status": "pending", "attempts": 0,
             "next_attempt_at": due, "created_at": now}
            for i, ch in enumerate(m["channels_meta"])
        ]  # fmt: skip

    return build


def _rebase_levels(rules: ev.RuleArrays, rows: Sequence[Any], levels: RuleValues) -> Any:
    """Set each `level_break` rule's ref to the level stored now (its next comparison's
    level); the positions whose ref changed."""
    moved = [
        j for j, r in enumerate(rows)
        if r.kind == "level_break"
        and not (rules.ref[j] == levels.level_now[j]
                 or (math.isnan(rules.ref[j]) and math.isnan(levels.level_now[j])))
    ]  # fmt: skip
    rules.ref[moved] = levels.level_now[moved]
    return np.asarray(moved, dtype=np.int64)


def evaluate_alerts(
    ctx: Context,
    state: ev.MarketState | None = None,
    *,
    now: datetime | None = None,
    token_filter: Sequence[int] | None = None,
    live: bool = False,
) -> EvaluationReport:
    """Evaluate every active rule against the latest state; store events + outbox + state.

    `live`: the state's prices are live ticks (messages say so), not the last daily close.
    """
    started, report = time.perf_counter(), EvaluationReport()
    now = now or datetime.now(UTC)
    state = state if state is not None else market_state(ctx)
    with ctx.engine.connect() as conn:
        rows = repo.active_rules(conn, token_filter)
    report.rules = len(rows)
    if not rows:
        return report
    rules = _rule_arrays(rows)
    per_rule = rule_values(ctx, rows, state)
    t0 = time.perf_counter()
    result = ev.evaluate(rules, state, now.timestamp(), per_rule.value)
    report.evaluate_ms = (time.perf_counter() - t0) * 1000
    changed = np.union1d(result.changed, _rebase_levels(rules, rows, per_rule))
    report.fired, report.state_changes = len(result.fired), len(changed)
    if not len(changed):
        report.seconds = time.perf_counter() - started
        return report
    fired_set = set(result.fired.tolist())
    updates = [
        {"rule_id": rows[j].id, "expected": rows[j].version, "armed": int(rules.armed[j]),
         "ref": None if not math.isfinite(rules.ref[j]) else float(rules.ref[j]),
         "fired": now if j in fired_set else rows[j].last_fired_at}
        for j in changed.tolist()
    ]  # fmt: skip
    seen = _Seen(state, result.value, per_rule.level, live)
    with ctx.engine.begin() as conn:
        meta = repo.rules_meta(conn, [rows[j].id for j in result.fired.tolist()])
        fired = [j for j in result.fired.tolist() if rows[j].id in meta]
        events = _event_rows(ctx, rows, fired, seen, meta, now)
        versions = {rows[j].id: rows[j].version for j in fired}
        build = _outbox_rows(meta, versions, now)
        stored = repo.write_firings(conn, updates, events, build)
    report.event_ids = sorted(stored.values())
    report.events_written = len(report.event_ids)
    _publish(ctx, [e for e in events if e["rule_id"] in stored], meta)
    report.seconds = time.perf_counter() - started
    return report


def _publish(ctx: Context, events: Sequence[Mapping[str, Any]], meta: Mapping[int, Any]) -> None:
    """Each stored event to the streams of its rule's key (`/v1/stream`), once committed."""
    if not events:
        return
    from coinlens.services.events import publish_alert

    for e in events:
        m = meta[e["rule_id"]]
        publish_alert(ctx, m["symbol"], m["owner_key_id"], e["rule_id"], e["title"], e["body"])


def evaluate_ticks(
    ctx: Context, prices: Mapping[str, float], *, now: datetime | None = None
) -> EvaluationReport:
    """Evaluate the rules of the ticked tokens with live prices (symbol → price)."""
    with ctx.engine.connect() as conn:
        ids = repo.token_ids(conn, prices)
    by_id = {ids[s.upper()]: float(p) for s, p in prices.items() if s.upper() in ids}
    state = market_state(ctx, by_id)
    return evaluate_alerts(ctx, state, now=now, token_filter=sorted(by_id), live=True)


# --- CRUD ------------------------------------------------------------------------------------


def _secret(ctx: Context) -> str:
    return ctx.settings.secret.get_secret_value()


def _check_channels(ctx: Context, urls: Sequence[str]) -> list[channels.Channel]:
    out, problems = [], []
    for i, url in enumerate(urls):
        try:
            out.append(
                channels.validate_channel(url, ctx.settings.alerts_allow_hosts, f"channels.{i}")
            )
        except ValidationFailed as exc:
            problems.extend(exc.problems)
    if problems:
        raise ValidationFailed("; ".join(f"{p.location}: {p.reason}" for p in problems), problems)
    return out


def _check_absurd(state: ev.MarketState, token_id: int, spec: RuleSpec) -> None:
    pos, found = state.lookup(np.asarray([token_id], dtype=np.int64))
    price = float(state.values[pos[0], ev.PRICE]) if found[0] else math.nan
    level = spec.level if spec.kind == "price_cross" else spec.target
    if level is None or not math.isfinite(price) or price <= 0:
        return
    if not price / ABSURD_FACTOR <= level <= price * ABSURD_FACTOR:
        field_ = "level" if spec.kind == "price_cross" else "target"
        raise ValidationFailed(
            f"{field_} {level:g} is more than {ABSURD_FACTOR:g}x away from the price {price:g}",
            [Problem(field_, f"must be within {ABSURD_FACTOR:g}x of the current price {price:g}")],
        )


def _check_forecast(ctx: Context, symbol: str) -> None:
    """A probability_cross rule needs the token's forecast: without one it never fires."""
    from coinlens.services.forecasts import latest_forecast

    try:
        latest_forecast(ctx, symbol)
    except DataUnavailable as exc:
        raise ValidationFailed(
            f"a probability_cross rule on {symbol} could never fire: {exc.detail}",
            [Problem("symbol", f"has no forecast: {exc.detail}")],
        ) from exc


def _stale_warnings(ctx: Context, symbol: str, token_id: int) -> list[str]:
    """A rule on a token whose prices stopped is kept (a new candle or a live tick revives
    it) but the caller is told it will not fire until then."""
    from coinlens.services.forecasts import day_to_date, stale_close

    try:
        panel = read_daily_panel(ctx.engine, ctx.cache_dir)
    except DataUnavailable:
        return []
    rows = np.flatnonzero(panel.token_ids == token_id)
    newest = stale_close(panel, int(rows[0])) if rows.size else None
    if newest is None:
        return []
    end = day_to_date(int(panel.days[-1]))
    return [
        f"{symbol}'s newest close is {newest}, long before the data's end {end}: the rule "
        f"fires only once {symbol} has current prices again (new candles or live ticks)"
    ]


def _public(ctx: Context, row: Mapping[str, Any]) -> AlertRulePublic:
    """The rule as its owner sees it: channels redacted, and why it may not fire soon."""
    spec = {k: v for k, v in row["spec"].items() if v is not None}
    return AlertRulePublic(
        id=row["id"], symbol=row["symbol"], kind=row["kind"], spec=spec,
        channels=[ChannelPublic(kind=c["kind"], redacted=c["redacted"])
                  for c in row["channels_meta"]],
        cooldown_seconds=row["cooldown_seconds"], expires_at=row["expires_at"],
        timezone=row["timezone"],
        quiet_hours=QuietHours(**row["quiet_hours"]) if row["quiet_hours"] else None,
        active=row["active"], armed=row["armed"] != ev.DISARMED, note=row["note"],
        created_at=row["created_at"], last_fired_at=row["last_fired_at"],
        warnings=_stale_warnings(ctx, row["symbol"], row["token_id"]),
    )  # fmt: skip


def _primed(
    ctx: Context, row: Mapping[str, Any], state: ev.MarketState, now: datetime
) -> tuple[int, float | None]:
    """The initial armed/ref of a new rule: whether its condition already holds now (a
    probability from the latest forecast, a level break against the levels stored now)."""
    rule = type("Row", (), {**row, "id": 0, "version": 0, "armed": ev.UNPRIMED, "ref": None,
                            "last_fired_at": None})  # fmt: skip
    rules = _rule_arrays([rule])
    per_rule = rule_values(ctx, [rule], state)
    ev.evaluate(rules, state, now.timestamp(), per_rule.value)
    _rebase_levels(rules, [rule], per_rule)
    ref = float(rules.ref[0])
    return int(rules.armed[0]), (ref if math.isfinite(ref) else None)


def create_rule(
    ctx: Context, owner: int, body: AlertRuleCreate, *, now: datetime | None = None
) -> AlertRulePublic:
    """Validate and store a rule of key `owner` (channels encrypted); 4xx and nothing stored
    on a bad channel, an SSRF target, an unknown symbol, an absurd level, a probability rule
    on a token without a forecast or the key's limit; a stale token's rule carries a warning."""
    now = now or datetime.now(UTC)
    chans = _check_channels(ctx, body.channels)
    with ctx.engine.connect() as conn:
        token_id = repo.token_ids(conn, [body.symbol]).get(body.symbol.upper())
    if token_id is None:
        raise ValidationFailed(
            f"unknown symbol {body.symbol!r}", [Problem("symbol", "no token with this symbol")]
        )
    if body.kind == "probability_cross":
        _check_forecast(ctx, body.symbol)
    state = market_state(ctx)
    _check_absurd(state, token_id, body)
    spec = RuleSpec.model_validate(body.model_dump(include=set(RuleSpec.model_fields)))
    row: dict[str, Any] = {
        "owner_key_id": owner, "token_id": token_id, "kind": body.kind,
        "spec": spec.model_dump(mode="json", exclude={"symbol", "kind"}, exclude_none=True),
        "channels_enc": [crypto.encrypt(_secret(ctx), c.url) for c in chans],
        "channels_meta": [{"kind": c.kind, "redacted": c.redacted, "destination": c.destination}
                          for c in chans],
        "cooldown_seconds": body.cooldown_seconds, "expires_at": body.expires_at,
        "timezone": body.timezone, "note": body.note,
        "quiet_hours": body.quiet_hours.model_dump(mode="json") if body.quiet_hours else None,
        "active": True, "last_fired_at": None, "version": 0, "created_at": now,
    }  # fmt: skip
    row["armed"], row["ref"] = _primed(ctx, row, state, now)
    limit = ctx.settings.alerts_max_rules_per_key
    with ctx.engine.begin() as conn:
        repo.lock_owner(conn, owner)
        if repo.count_rules(conn, owner) >= limit:
            raise UserInputError(f"this key already has {limit} alert rules (the limit); "
                                 "delete some first")  # fmt: skip
        rule_id = repo.insert_rule(conn, row)
        stored = repo.get_rule(conn, owner, rule_id)
    assert stored is not None  # noqa: S101 - just inserted in this transaction
    return _public(ctx, stored)


def _owned(ctx: Context, owner: int, rule_id: int) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        row = repo.get_rule(conn, owner, rule_id)
    if row is None:
        raise NotFound(f"no alert rule {rule_id} for this key")
    return row


def list_rules(ctx: Context, owner: int) -> AlertRulesPage:
    """The key's rules, newest first, with channel URLs redacted."""
    with ctx.engine.connect() as conn:
        rows = repo.list_rules(conn, owner)
    items = [_public(ctx, r) for r in rows]
    return AlertRulesPage(
        items=items, total=len(items), limit=ctx.settings.alerts_max_rules_per_key
    )


def get_rule(ctx: Context, owner: int, rule_id: int) -> AlertRulePublic:
    """One of the key's rules."""
    return _public(ctx, _owned(ctx, owner, rule_id))


def _channel_moves(ctx: Context, old_enc: Sequence[str], new: Sequence[str]) -> dict[int, int]:
    """Old index → new index of each channel URL the new list keeps (each new entry matched
    once); channels that cannot be decrypted any more count as removed."""
    free = {i: url for i, url in enumerate(new)}
    moves: dict[int, int] = {}
    for i, enc in enumerate(old_enc):
        try:
            url = crypto.decrypt(_secret(ctx), enc)
        except CoinlensError:
            continue
        j = next((j for j, u in free.items() if u == url), None)
        if j is not None:
            moves[i] = j
            del free[j]
    return moves


def update_rule(ctx: Context, owner: int, rule_id: int, body: AlertRuleUpdate) -> AlertRulePublic:
    """Change a rule's delivery options or pause/resume it. A new channel list carries the
    rule's deliveries along: kept channels keep theirs, a removed channel's pending ones are
    dropped (never sent to whichever channel now has its position)."""
    row = _owned(ctx, owner, rule_id)
    values = body.model_dump(exclude_unset=True, exclude={"channels"}, mode="python")
    if "quiet_hours" in values and body.quiet_hours is not None:
        values["quiet_hours"] = body.quiet_hours.model_dump(mode="json")
    moves: dict[int, int] | None = None
    if body.channels is not None:
        chans = _check_channels(ctx, body.channels)
        values["channels_enc"] = [crypto.encrypt(_secret(ctx), c.url) for c in chans]
        values["channels_meta"] = [
            {"kind": c.kind, "redacted": c.redacted, "destination": c.destination} for c in chans
        ]
        moves = _channel_moves(ctx, row["channels_enc"], [c.url for c in chans])
    with ctx.engine.begin() as conn:
        repo.update_rule(conn, rule_id, values)
        if moves is not None:
            repo.remap_deliveries(conn, rule_id, moves)
    return get_rule(ctx, owner, rule_id)


def delete_rule(ctx: Context, owner: int, rule_id: int) -> None:
    """Delete one of the key's rules with its log."""
    with ctx.engine.begin() as conn:
        if not repo.delete_rule(conn, owner, rule_id):
            raise NotFound(f"no alert rule {rule_id} for this key")


def _delivery(d: Any, meta: Sequence[Mapping[str, Any]]) -> DeliveryPublic:
    ch = (
        meta[d.channel_index]
        if 0 <= d.channel_index < len(meta)
        else {"kind": d.destination.split(":", 1)[0], "redacted": "(removed from the rule)"}
    )
    return DeliveryPublic(
        event_id=d.event_id, channel=ChannelPublic(kind=ch["kind"], redacted=ch["redacted"]),
        status=d.status, attempts=d.attempts, idempotency_key=d.key, last_error=d.last_error,
        last_status=d.last_status,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None, sent_at=d.sent_at,
    )  # fmt: skip


def rule_log(ctx: Context, owner: int, rule_id: int, limit: int = 50) -> AlertLog:
    """The rule's newest events and, per channel, attempts, status and last error."""
    row = _owned(ctx, owner, rule_id)
    with ctx.engine.connect() as conn:
        log = repo.rule_log(conn, rule_id, limit)
    events = [
        AlertEventPublic(
            id=e["id"], rule_id=rule_id, fired_at=e["fired_at"], title=e["title"], body=e["body"],
            deliveries=[_delivery(d, row["channels_meta"]) for d in ds],
        )
        for e, ds in log
    ]  # fmt: skip
    return AlertLog(rule_id=rule_id, events=events)


def _sample(ctx: Context, row: Mapping[str, Any], now: datetime) -> messages.Message:
    """A test message of a rule: the current market state and the value the rule would see
    now, labelled as a test (the rule's state is left unchanged)."""
    rule = type("Row", (), {**row, "version": 0, "last_fired_at": None})
    state = market_state(ctx)
    pos, found = state.lookup(np.asarray([row["token_id"]], dtype=np.int64))
    per_rule = rule_values(ctx, [rule], state)
    value = ev.rule_values(_rule_arrays([rule]), state, per_rule.value)[0]
    seen = {"value": value, "level": per_rule.level[0]}
    context = _context(state, int(pos[0]) if found[0] else -1, rule, row["symbol"], seen)
    return messages.render(context, now, row["timezone"], token_link(ctx, row["symbol"]),
                           test=True)  # fmt: skip


def test_rule(ctx: Context, owner: int, rule_id: int) -> list[TestResult]:
    """Send a sample message (current values, marked as a test) through each of the rule's
    channels now (SSRF re-checked)."""
    row = _owned(ctx, owner, rule_id)
    now = datetime.now(UTC)
    key = f"cl-test-{rule_id}-{int(now.timestamp() * 1000)}"
    msg = _sample(ctx, row, now)
    out = []
    for i, enc in enumerate(row["channels_enc"]):
        meta = row["channels_meta"][i]
        public = ChannelPublic(kind=meta["kind"], redacted=meta["redacted"])
        try:
            channel = channels.parse_channel(crypto.decrypt(_secret(ctx), enc))
            channels.check_ssrf(channel, ctx.settings.alerts_allow_hosts)
        except ValidationFailed as exc:
            out.append(TestResult(channel=public, ok=False, error=exc.detail))
            continue
        ckey = f"{key}-c{i}"
        res = channels.send(channel, msg.title, messages.with_ref(msg.body, ckey), ckey,
                            timeout=ctx.settings.alerts_send_timeout)  # fmt: skip
        out.append(TestResult(channel=public, ok=res.ok, status=res.status, error=res.error))
    return out
