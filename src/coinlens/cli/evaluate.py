"""`coinlens evaluate …`: out-of-sample evaluations that write reports/*.md."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from coinlens.cli.common import cli_context, console, load_settings
from coinlens.cli.options import DataDir, DbUrl

evaluate_app = typer.Typer(help="Out-of-sample evaluations (reports/*.md).", no_args_is_help=True)

Quick = Annotated[
    bool, typer.Option("--quick", help="Small window and model (seconds; for CI smoke runs)")
]
OutDir = Annotated[Path, typer.Option("--out", help="Report directory")]


@evaluate_app.command("forecasts")
def forecasts_command(
    quick: Quick = False,
    out: OutDir = Path("reports"),
    ets_tokens: Annotated[
        int, typer.Option("--ets-tokens", min=0, help="Tokens for the AutoETS comparison")
    ] = 20,
    market: Annotated[
        bool, typer.Option("--market", help="Add BTC/ETH market-state features")
    ] = False,
    origins: Annotated[
        int | None, typer.Option("--origins", min=1, help="Only the first N retraining origins")
    ] = None,
    until: Annotated[
        dt.datetime | None,
        typer.Option(
            "--until", formats=["%Y-%m-%d"], help="Score only targets up to this day (dev mode)"
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Walk-forward evaluation of the quantile forecasts vs random walk and AutoETS."""
    from coinlens.analytics.forecast import ForecastConfig
    from coinlens.services.forecast_eval import EvalConfig, evaluate_forecasts

    cfg = EvalConfig(
        ets_tokens=ets_tokens,
        market_features=market,
        max_origins=origins,
        score_until=until.date() if until else None,
    )
    if quick:  # a small window and model; --until and --origins still apply
        cfg = EvalConfig(
            start=dt.date(2024, 9, 30),
            end=dt.date(2024, 9, 30),
            step_days=91,
            max_origins=origins,
            score_until=until.date() if until else None,
            ets_tokens=min(ets_tokens, 5),
            ets_window=365,
            market_features=market,
            model=ForecastConfig(n_trees=10, max_rows=15_000, refit=False),
        )
    with cli_context(load_settings(data_dir, database_url)) as ctx:
        result = evaluate_forecasts(ctx, cfg, out, progress=console.print)
    for h, m in result["horizons"].items():
        console.print(_horizon_line(h, m), soft_wrap=True)
    console.print(f"report: {result['report']}")
    if result["recorded"]:
        console.print("track record stored: /v1/models and the predictions now carry it")
    else:
        console.print("not stored as the track record (a quick, development or partial run)")


def _horizon_line(h: int, m: dict[str, float]) -> str:
    """One horizon's headline figures. The binomial test's p-value belongs to the direction
    accuracy of the non-overlapping origins it was computed on, not to the all-rows one."""
    n = int(m["direction_test_n"])
    test = (
        f"non-overlapping {m['direction_test_acc']:.3f} of {n:,}, p={m['direction_p_value']:.3g}"
        if n
        else "no non-overlapping origins to test"
    )
    return (
        f"{h:>3}d  skill {m['pinball_skill']:+.4f}  cov50/80/90 "
        f"{m['coverage_50_model']:.3f}/{m['coverage_80_model']:.3f}/"
        f"{m['coverage_90_model']:.3f}  direction {m['direction_accuracy']:.3f} ({test})"
    )


@evaluate_app.command("grades")
def grades_command(
    start: Annotated[
        dt.datetime | None, typer.Option("--start", formats=["%Y-%m-%d"], help="First day")
    ] = None,
    end: Annotated[
        dt.datetime | None, typer.Option("--end", formats=["%Y-%m-%d"], help="Last day")
    ] = None,
    out: OutDir = Path("reports"),
    tune: Annotated[
        bool, typer.Option("--tune", help="Also rerun the in-sample weight search (2018–2022)")
    ] = False,
    data_dir: DataDir = None,
    database_url: DbUrl = None,
) -> None:
    """Rank IC, quintile spreads and hit rates of the grades, in and out of sample."""
    from coinlens.services.evaluation import evaluate_and_record, tune_weights

    with cli_context(load_settings(data_dir, database_url)) as ctx:
        result, written, kept = evaluate_and_record(
            ctx, start.date() if start else None, end.date() if end else None, out
        )
        tuned = tune_weights(ctx) if tune else []
    for track in result.tracks.values():
        for p in track.periods:
            s = p.summary
            console.print(
                f"{track.grade:<8} {track.horizon:>2}d {p.name:<13} {p.start}…{p.end} "
                f"IC {s.ic.mean:+.4f} (NW t {s.ic.t:+.2f}, {s.ic.n} days) "
                f"Q5−Q1 {s.spread.mean:+.2%} (t {s.spread.t:+.2f})",
                soft_wrap=True,
            )
    for t in tuned:
        console.print(f"in-sample best {t.grade}: {t.weights} IC {t.mean_ic:+.4f} (t {t.t:+.2f})")
    for path in written:
        console.print(f"wrote {path}")
    if kept:
        console.print("track record stored: /v1/tokens/{symbol}/grades and the token page carry it")
    else:
        console.print("not stored as the track record (a window, not the whole history)")
