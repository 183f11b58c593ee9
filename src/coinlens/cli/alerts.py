"""`coinlens alerts add/list/rm/test/log/worker`: alert rules from the command line."""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated

import typer
from rich.table import Table

from coinlens.alerts.rules import AlertRuleCreate
from coinlens.cli.common import cli_context, console, load_settings
from coinlens.cli.options import DataDir, DbUrl
from coinlens.services import alerts

alerts_app = typer.Typer(help="Alert rules, their delivery log and the delivery worker.")
Owner = Annotated[
    int, typer.Option("--key-id", envvar="COINLENS_ALERTS_KEY_ID", help="Owning API key id")
]
RuleArg = Annotated[int, typer.Argument(help="Rule id")]


@alerts_app.command("add")
def add_command(
    symbol: Annotated[str, typer.Argument(help="Token symbol")],
    kind: Annotated[str, typer.Argument(help="price_cross, pct_change, grade_cross, ...")],
    channel: Annotated[list[str], typer.Option("--channel", "-c", help="Apprise URL (repeat)")],
    key_id: Owner,
    param: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Rule field, e.g. level=70000")
    ] = None,
    cooldown: Annotated[int, typer.Option("--cooldown", help="Seconds between firings")] = 3600,
    tz: Annotated[str, typer.Option("--timezone", help="IANA zone of the owner")] = "UTC",
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Create a rule, e.g. `alerts add BTC price_cross -s direction=above -s level=1e5 -c json://…`."""
    fields: dict[str, object] = {}
    for item in param or []:
        name, _, value = item.partition("=")
        fields[name] = json.loads(value) if value[:1].isdigit() or value[:1] == "-" else value
    body = AlertRuleCreate.model_validate(
        {"symbol": symbol, "kind": kind, "channels": channel, "cooldown_seconds": cooldown,
         "timezone": tz, **fields}
    )  # fmt: skip
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        rule = alerts.create_rule(ctx, key_id, body)
    console.print(f"created alert rule {rule.id}: {rule.symbol} {rule.kind} {rule.spec}")


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
            str(r.id), r.symbol, r.kind, json.dumps(r.spec),
            ", ".join(c.redacted for c in r.channels), str(r.armed),
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
        mark = "[green]ok[/green]" if r.ok else f"[red]failed[/red] {r.error}"
        console.print(f"{r.channel.redacted}: {mark}")
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
                str(e.id), f"{e.fired_at:%Y-%m-%d %H:%M:%S}", d.channel.redacted, d.status,
                str(d.attempts), d.idempotency_key, d.last_error or "",
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
        cfg = alerts.worker_config(ctx, threads=threads, batch=batch, poll=poll)
        handled = alerts.run_delivery_worker(
            ctx, stop, cfg,
            on_ready=lambda: console.print("alerts worker: delivering (Ctrl-C to stop)"),
        )  # fmt: skip
    console.print(f"alerts worker: stopped after {handled} deliveries")
