"""`coinlens predict SYMBOL`: quantile forecasts and scenarios; the forecast pipeline step."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from coinlens.cli.common import cli_context, console, load_settings, plural, signed_pct
from coinlens.cli.options import DataDir, DbUrl
from coinlens.domain.forecasts import KeyLevel, Scenarios, TargetLevels, TrackRecord
from coinlens.services.context import Context
from coinlens.services.forecasts import get_predictions, get_scenarios, run_forecasts


def run_forecast_step(ctx: Context) -> None:
    """Pipeline step after loading: retrain if due, then predict; prints one line."""
    with console.status("forecasts: retrain if due, predict every token"):
        report = run_forecasts(ctx)
    action = "trained" if report.retrained else "reused"
    console.print(
        f"forecasts: {action} {report.model_id}; {plural(report.tokens, 'token')}, "
        f"{plural(report.rows, 'row')}"
    )


def _price(x: float) -> str:
    return f"{x:,.2f}" if x >= 1 else f"{x:.6g}"


def predict_command(
    symbol: Annotated[str, typer.Argument(help="Token symbol, e.g. ETH")],
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Quantile forecasts of the close per horizon, bear/base/bull scenarios and the model."""
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        pred = get_predictions(ctx, symbol)
        scen = get_scenarios(ctx, symbol)
    table = Table(
        title=f"{pred.symbol}: close {_price(pred.last_close)} on {pred.origin}, forecast quantiles"
    )
    table.add_column("horizon")
    table.add_column("date")
    for name in ("p05", "p10", "p25", "p50", "p75", "p90", "p95"):
        table.add_column(name, justify="right")
    for h in pred.horizons:
        q = h.quantiles.model_dump()
        table.add_row(f"{h.horizon}d", str(h.target_date), *(_price(v) for v in q.values()))
    console.print(table)
    console.print(_scenario_table(scen))
    if scen.levels:
        ladder = ", ".join(f"{_level(lv)} ({signed_pct(lv.distance)})" for lv in scen.levels)
        console.print(f"key levels as of {scen.levels_as_of}: {ladder}")
    console.print(
        f"model {pred.model.model_id} (cut-off {pred.model.cutoff}, "
        f"{len(pred.model.features)} features)"
    )
    console.print(_track_line(pred.model.track_record), soft_wrap=True)
    for w in [*pred.warnings, *scen.warnings]:
        console.print(f"[yellow]warning:[/yellow] {w}")


def _track_line(record: TrackRecord | None) -> str:
    """The forecasts' walk-forward skill and 80 % interval coverage, or how to measure them."""
    if record is None:
        return "track record: none stored yet (`make evaluate` or `coinlens evaluate forecasts`)"
    parts = []
    for h in record.horizons:
        cov = next((c.observed for c in h.coverage if c.level == 80), None)
        skill = "n/a" if h.pinball_skill is None else signed_pct(h.pinball_skill)
        held = "" if cov is None else f", 80 % interval held {cov:.1%}"
        parts.append(f"{h.horizon}d skill vs random walk {skill}{held}")
    return (
        f"track record ({record.retrains} retrains, {record.first_origin} … {record.last_origin}): "
        f"{'; '.join(parts)} — {record.report}"
    )


def _level(lv: KeyLevel) -> str:
    return f"{'S' if lv.kind == 'support' else 'R'} {_price(lv.price)}"


def _placement(t: TargetLevels) -> str:
    """E.g. "above R 4,750.00 · next R 5,100.00": the farthest level crossed, the next one."""
    parts = []
    if t.crossed:
        last = t.crossed[-1]
        more = f" (+{len(t.crossed) - 1} more)" if len(t.crossed) > 1 else ""
        side = "above" if last.kind == "resistance" else "below"
        parts.append(f"{side} {_level(last)}{more}")
    if t.beyond is not None:
        parts.append(f"next {_level(t.beyond)}")
    return " · ".join(parts)


def _target(price: float, change: float, levels: TargetLevels) -> str:
    where = _placement(levels)
    return f"{_price(price)} ({signed_pct(change)})" + (f"\n{where}" if where else "")


def _scenario_table(scen: Scenarios) -> Table:
    sc = Table(title="scenarios (bear = p10, base = p50, bull = p90) and key levels (S / R)")
    for col in ("horizon", "bear", "base", "bull"):
        sc.add_column(col, justify="right")
    for s in scen.scenarios:
        sc.add_row(
            f"{s.horizon}d",
            _target(s.bear, s.bear_change, s.bear_levels),
            _target(s.base, s.base_change, s.base_levels),
            _target(s.bull, s.bull_change, s.bull_levels),
        )
    return sc
