"""`coinlens pipeline`, `signals SYMBOL` and `backtest [SYMBOL | --all]`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from coinlens.analytics.backtest import BacktestConfig
from coinlens.cli.common import (
    cli_context,
    console,
    err_console,
    load_settings,
    plural,
    signed_pct,
    writing,
)
from coinlens.cli.options import DataDir, DbUrl
from coinlens.domain.analytics_models import Metrics, SignalPerformance
from coinlens.services import analytics_queries as aq
from coinlens.services.analytics import DEFAULT_BACKTEST, AnalyticsReport, run_analytics
from coinlens.services.context import Context

Full = Annotated[bool, typer.Option("--full", help="Recompute all history (skip incremental)")]
Fee = Annotated[
    float | None, typer.Option("--fee", min=0, max=0.49, help="Fee per side, e.g. 0.001")
]
Slippage = Annotated[
    float | None, typer.Option("--slippage", min=0, max=0.49, help="Slippage per side, e.g. 0.0005")
]
Start = Annotated[datetime | None, typer.Option("--start", formats=["%Y-%m-%d"], help="First day")]
End = Annotated[datetime | None, typer.Option("--end", formats=["%Y-%m-%d"], help="Last day")]


def _pct(x: float | None) -> str:
    return "—" if x is None else signed_pct(x)


def _rate(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def _num(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def run_pipeline(ctx: Context, *, full: bool = False) -> AnalyticsReport:
    """Run the analytics step with a progress bar and print what it did."""
    with Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("analytics", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        report = run_analytics(ctx, full=full, progress=progress)
    steps = ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items())
    console.print(
        f"analytics {report.mode} ({report.reason}): {plural(report.tokens, 'token')} × "
        f"{plural(report.days, 'day')}, "
        f"{report.events_written} signal events written in {report.total_seconds:.2f}s [{steps}]"
    )
    return report


def pipeline_command(
    data_dir: DataDir = None, database_url: DbUrl = None, full: Full = False
) -> None:
    """Run every pipeline step: analytics (signals, indicators, ROI/risk, levels, backtests),
    grades, then forecasts (retrained when due)."""
    settings = load_settings(data_dir, database_url)
    with writing(settings, "coinlens pipeline"), cli_context(settings) as ctx:
        run_all_steps(ctx, full=full)


def run_all_steps(ctx: Context, *, full: bool = False) -> None:
    """Every pipeline step in order; each is a no-op or incremental when nothing changed."""
    from coinlens.cli.grades import run_grades_step
    from coinlens.cli.predict import run_forecast_step
    from coinlens.services.alerts import evaluate_alerts

    run_pipeline(ctx, full=full)
    run_grades_step(ctx)  # rewrites only days that changed
    run_forecast_step(ctx)  # retrain if due (weekly), then predict every token
    alerts = evaluate_alerts(ctx)
    console.print(f"alerts: {alerts.rules} active rules evaluated, {alerts.fired} fired")


def signals_command(
    symbol: Annotated[str, typer.Argument(help="Token symbol, e.g. ETH")],
    last: Annotated[int, typer.Option("--last", min=1, help="Changes to show")] = 15,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Show a token's current signal, its inputs and its latest changes."""
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        sig = aq.get_signals(ctx, symbol)
    since = sig.since.isoformat() if sig.since else "start"
    console.print(
        f"[bold]{sig.symbol}[/bold] {sig.signal.upper()} since {since}, "
        f"score {_num(sig.score)} (as of {sig.as_of})"
    )
    console.print("  " + ", ".join(f"{k} {_num(v)}" for k, v in sig.indicators.items()))
    table = Table(title=f"last {min(last, len(sig.history))} of {len(sig.history)} changes")
    for col in ("date", "from", "to", "close", "score"):
        table.add_column(col)
    for e in sig.history[-last:]:
        table.add_row(str(e.date), e.from_signal, e.to_signal, f"{e.price:.6g}", _num(e.score))
    console.print(table)
    for w in sig.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {w}")


def _metrics_rows(table: Table, name: str, m: Metrics) -> None:
    table.add_row(
        name,
        _pct(m.total_return),
        _pct(m.cagr),
        _num(m.sharpe),
        _num(m.sortino),
        _pct(m.max_drawdown),
    )


def _print_performance(perf: SignalPerformance) -> None:
    p = perf.params
    console.print(
        f"[bold]{perf.symbol}[/bold] {perf.start} → {perf.end}: long-only signal vs buy-and-hold, "
        f"fee {p.fees:g}, slippage {p.slippage:g} per side, fills at the {p.fill}"
    )
    table = Table()
    for col in ("", "total return", "CAGR", "Sharpe", "Sortino", "max drawdown"):
        table.add_column(col)
    _metrics_rows(table, "strategy", perf.strategy)
    _metrics_rows(table, "buy & hold", perf.buy_hold)
    console.print(table)
    t = perf.trades
    console.print(
        f"trades {t.trades}, win rate {_rate(t.win_rate)}, avg trade {_pct(t.avg_trade_return)}, "
        f"exposure {_rate(t.exposure)}  [dim]({perf.source})[/dim]"
    )


def _day(value: datetime | None) -> date | None:
    return None if value is None else value.date()


def _universe(ctx: Context, cfg: BacktestConfig, start: date | None, end: date | None) -> None:
    with Progress(
        TextColumn("backtest"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("backtest", total=None)
        result = aq.backtest_universe(
            ctx,
            cfg,
            start=start,
            end=end,
            progress=lambda d, n: bar.update(task, completed=d, total=n),
        )
    s = result.summary
    console.print(
        f"universe {result.first_day} → {result.last_day}, fee {cfg.fees:g}, "
        f"slippage {cfg.slippage:g} per side, fills at the next bar open"
    )
    table = Table(title=plural(int(s["tokens"] or 0), "token"))
    table.add_column("measure")
    table.add_column("value")
    for label, key, fmt in (
        ("median strategy return", "median_strategy_return", _pct),
        ("median buy-and-hold return", "median_hold_return", _pct),
        ("tokens where strategy beat hold", "beat_hold_rate", _rate),
        ("trade win rate (all trades)", "trade_win_rate", _rate),
        ("median strategy max drawdown", "median_strategy_max_drawdown", _pct),
        ("median buy-and-hold max drawdown", "median_hold_max_drawdown", _pct),
        ("median exposure", "median_exposure", _rate),
    ):
        value = s[key]
        table.add_row(label, fmt(None if value is None else float(value)))
    table.add_row("trades", str(s["trades"]))
    console.print(table)


def backtest_command(
    symbol: Annotated[str | None, typer.Argument(help="Token symbol (omit with --all)")] = None,
    all_tokens: Annotated[bool, typer.Option("--all", help="Every token, with a summary")] = False,
    fee: Fee = None,
    slippage: Slippage = None,
    start: Start = None,
    end: End = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Backtest the signal against buy-and-hold for one token or the whole universe."""
    if (symbol is None) == (not all_tokens):
        err_console.print("[red]error:[/red] give a SYMBOL or --all (not both)")
        raise typer.Exit(2)
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        if all_tokens:
            cfg = BacktestConfig(
                fees=DEFAULT_BACKTEST.fees if fee is None else fee,
                slippage=DEFAULT_BACKTEST.slippage if slippage is None else slippage,
            )
            _universe(ctx, cfg, _day(start), _day(end))
            return
        assert symbol is not None  # noqa: S101 - guarded by the check above
        perf = aq.get_signal_performance(
            ctx, symbol, fee=fee, slippage=slippage, start=_day(start), end=_day(end)
        )
    _print_performance(perf)
    for w in perf.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {w}")
