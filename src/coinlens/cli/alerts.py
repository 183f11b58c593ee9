"""`coinlens alerts add/list/rm/test/log/worker`: alert rules from the command line."""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from coinlens.alerts.rules import KINDS, AlertRuleCreate
from coinlens.cli.common import cli_context, console, load_settings, parse_model, user_errors
from coinlens.cli.options import DataDir, DbUrl
from coinlens.domain.errors import Problem, ValidationFailed
from coinlens.services import alert_delivery, alerts, keys

alerts_app = typer.Typer(help="Alert rules, their delivery log and the delivery worker.")
Owner = Annotated[
    int, typer.Option("--key-id", envvar="COINLENS_ALERTS_KEY_ID", help="Owning API key id")
]
RuleArg = Annotated[int, typer.Argument(help="Rule id")]


def rule_fields(items: list[str]) -> dict[str, str]:
    """`-s key=value` pairs as text; the rule schema coerces each to its field's type."""
    fields: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValidationFailed(
                f"--set {item!r}: expected key=value",
                [Problem(f"--set {item!r}", "expected key=value")],
            )
        if name in fields:
            raise ValidationFailed(f"{name}: given twice", [Problem(name, "given twice")])
        fields[name] = value.strip()
    return fields


def quiet_window(text: str | None) -> dict[str, str] | None:
    """`22:00-07:00` as the rule's quiet-hours object (validated by the rule schema)."""
    if text is None:
        return None
    start, sep, end = text.partition("-")
    if not sep:
        reason = "expected HH:MM-HH:MM, e.g. 22:00-07:00"
        raise ValidationFailed(f"quiet_hours: {reason}", [Problem("quiet_hours", reason)])
    return {"start": start.strip(), "end": end.strip()}


@alerts_app.command("add")
def add_command(
    symbol: Annotated[str, typer.Argument(help="Token symbol")],
    kind: Annotated[str, typer.Argument(help=", ".join(KINDS))],
    channel: Annotated[list[str], typer.Option("--channel", "-c", help="Apprise URL (repeat)")],
    key_id: Owner,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--set", "-s", help="Rule field, e.g. level=70000, window=24h, expires_at=2027-01-01"
        ),
    ] = None,
    cooldown: Annotated[int, typer.Option("--cooldown", help="Seconds between firings")] = 3600,
    tz: Annotated[str, typer.Option("--timezone", help="IANA zone of the owner")] = "UTC",
    quiet: Annotated[
        str | None,
        typer.Option("--quiet-hours", help="Daily window without deliveries, e.g. 22:00-07:00"),
    ] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Create a rule, e.g. `alerts add BTC price_cross -s direction=above -s level=1e5 -c json://…`."""
    with user_errors():
        fields: dict[str, object] = {**rule_fields(param or [])}
        if quiet is not None:
            fields["quiet_hours"] = quiet_window(quiet)
        body = parse_model(
            AlertRuleCreate,
            {"symbol": symbol, "kind": kind, "channels": channel, "cooldown_seconds": cooldown,
             "timezone": tz, **fields},
        )  # fmt: skip
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        keys.require_key(ctx, key_id)  # else the insert fails on the foreign key
        rule = alerts.create_rule(ctx, key_id, body)
    spec = escape(json.dumps(rule.spec))
    console.print(f"created alert rule {rule.id}: {escape(rule.symbol)} {rule.kind} {spec}")
    for warning in rule.warnings:
        console.print(f"[yellow]warning[/yellow] {escape(warning)}")


@alerts_app.command("list")
def list_command(key_id: Owner, data_dir: DataDir = None, database_url: DbUrl = None) -> None:
    """The key's rules (channels redacted)."""
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        page = alerts.list_rules(ctx, key_id)
    table = Table(title=f"{page.total} alert rules (limit {page.limit})")
    for col in ("id", "symbol", "kind", "spec", "channels", "armed", "last fired"):
        table.add_column(col)
    for r in page.items:
        table.add_row(
            str(r.id), escape(r.symbol), r.kind, escape(json.dumps(r.spec)),
            escape(", ".join(c.redacted for c in r.channels)), str(r.armed),
            r.last_fired_at.isoformat() if r.last_fired_at else "",
        )  # fmt: skip
    console.print(table)


@alerts_app.command("rm")
def rm_command(
    rule_id: RuleArg, key_id: Owner, data_dir: DataDir = None, database_url: DbUrl = None
) -> None:
    """Delete a rule and its log."""
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        alerts.delete_rule(ctx, key_id, rule_id)
    console.print(f"deleted alert rule {rule_id}")


@alerts_app.command("test")
def send_test_command(
    rule_id: RuleArg, key_id: Owner, data_dir: DataDir = None, database_url: DbUrl = None
) -> None:
    """Send a sample message through each channel of the rule."""
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        results = alerts.test_rule(ctx, key_id, rule_id)
    for r in results:
        mark = "[green]ok[/green]" if r.ok else f"[red]failed[/red] {escape(r.error or '')}"
        console.print(f"{escape(r.channel.redacted)}: {mark}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@alerts_app.command("log")
def log_command(
    rule_id: RuleArg, key_id: Owner, data_dir: DataDir = None, database_url: DbUrl = None
) -> None:
    """Events of a rule with each channel's attempts, status and last error."""
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        log = alerts.rule_log(ctx, key_id, rule_id)
    table = Table(title=f"alert rule {rule_id}: {len(log.events)} events")
    for col in ("event", "fired (UTC)", "channel", "status", "attempts", "key", "error"):
        table.add_column(col)
    for e in log.events:
        for d in e.deliveries:
            table.add_row(
                str(e.id), f"{e.fired_at:%Y-%m-%d %H:%M:%S}", escape(d.channel.redacted),
                d.status, str(d.attempts), d.idempotency_key, escape(d.last_error or ""),
            )  # fmt: skip
    console.print(table)


@alerts_app.command("worker")
def worker_command(
    threads: Annotated[
        int, typer.Option("--threads", min=1, help="Destinations sent to in parallel")
    ] = 16,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Rows claimed at a time")] = 200,
    poll: Annotated[
        float, typer.Option("--poll", min=0.001, help="Seconds between polls of an empty outbox")
    ] = 0.05,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Deliver the outbox until SIGINT/SIGTERM (run several for throughput)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        cfg = alert_delivery.worker_config(ctx, threads=threads, batch=batch, poll=poll)
        handled = alert_delivery.run_delivery_worker(
            ctx, stop, cfg,
            on_ready=lambda: console.print("alerts worker: delivering (Ctrl-C to stop)"),
        )  # fmt: skip
    console.print(f"alerts worker: stopped after {handled} deliveries")
