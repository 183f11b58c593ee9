"""Write the forecast walk-forward result as Markdown with one PNG calibration chart per
horizon (matplotlib, `services.plots`)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from coinlens.analytics.forecast import INTERVALS, QUANTILES
from coinlens.services.plots import pyplot, save_png

TOLERANCE = 0.03  # the target: each coverage within ±3 pp of nominal


def calibration_png(path: Path, horizon: int, m: dict[str, Any]) -> None:
    """Two panels for one horizon: the reliability diagram (nominal quantile level vs the
    observed share of outcomes below it, model and random walk) and each central interval's
    coverage with its block-bootstrap 90 % interval against the nominal ± 3 pp band."""
    plt = pyplot()
    fig, (rel, cov) = plt.subplots(1, 2, figsize=(8.4, 3.8))
    rel.plot([0, 1], [0, 1], color="#999", ls="--", lw=0.8, label="perfect")
    for name, key, color in (
        ("model", "freq_model", "#1f77b4"),
        ("random walk", "freq_rw", "#d62728"),
    ):
        rel.plot(QUANTILES, m[key], marker="o", ms=3.5, lw=1.6, color=color, label=name)
    rel.set(
        xlim=(0, 1), ylim=(0, 1), xlabel="nominal quantile level", ylabel="observed share below"
    )
    rel.set_title(f"{horizon}-day horizon: reliability ({m['rows']:,} rows)", fontsize=10)
    rel.grid(alpha=0.3)
    rel.legend(loc="upper left", fontsize=8)
    x = range(len(INTERVALS))
    for i, lv in enumerate(INTERVALS):
        label = "nominal ± 3 pp" if i == 0 else None
        cov.fill_between(
            [i - 0.4, i + 0.4],
            lv / 100 - TOLERANCE,
            lv / 100 + TOLERANCE,
            color="#ccc",
            label=label,
        )
        cov.hlines(lv / 100, i - 0.4, i + 0.4, color="#666", lw=0.8)
    model = [m[f"coverage_{lv}_model"] for lv in INTERVALS]
    err = [
        [v - m[f"coverage_{lv}_lo"] for v, lv in zip(model, INTERVALS, strict=True)],
        [m[f"coverage_{lv}_hi"] - v for v, lv in zip(model, INTERVALS, strict=True)],
    ]
    cov.errorbar(
        [i - 0.1 for i in x],
        model,
        yerr=err,
        fmt="o",
        color="#1f77b4",
        capsize=3,
        label="model (block-bootstrap 90 %)",
    )
    rw = [m[f"coverage_{lv}_rw"] for lv in INTERVALS]
    cov.plot(
        [i + 0.1 for i in x],
        rw,
        "s",
        color="#d62728",
        ms=4,
        label="random walk",
    )
    cov.set_xticks(list(x), [f"{lv} % interval" for lv in INTERVALS])
    shown = [v for v in (*(m[f"coverage_{lv}_lo"] for lv in INTERVALS), *rw) if math.isfinite(v)]
    low = min([0.3, *(v - 0.05 for v in shown)])  # lower only when a short run needs it
    cov.set(ylim=(low, 1.0), ylabel="share of outcomes inside")
    cov.set_title("central-interval coverage", fontsize=10)
    cov.grid(axis="y", alpha=0.3)
    cov.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %" if math.isfinite(v) else "—"  # nan: nothing to measure


def _p(v: float) -> str:
    return f"{v:.3g}" if math.isfinite(v) else "—"


def _horizon_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| horizon | rows | pinball skill vs RW | 90 % interval (blocks worse) "
        "| CRPS skill vs RW | cov 50 (model / RW) "
        "| cov 80 (model / RW) | cov 90 (model / RW) | direction acc. (p50, all calls) "
        "| test acc. | test n | p-value |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for h, m in result["horizons"].items():
        cov = [
            f"{_pct(m[f'coverage_{lv}_model'])} / {_pct(m[f'coverage_{lv}_rw'])}"
            for lv in INTERVALS
        ]
        lines.append(
            f"| {h}d | {m['rows']:,} | {m['pinball_skill']:+.4f} | "
            f"{m['skill_lo']:+.4f} … {m['skill_hi']:+.4f} ({m['blocks_worse']}/{m['blocks']}) "
            f"| {m['crps_skill']:+.4f} | "
            + " | ".join(cov)
            + f" | {_pct(m['direction_accuracy'])} | {_pct(m['direction_test_acc'])} "
            f"| {int(m['direction_test_n']):,} "
            f"| {_p(m['direction_p_value'])} |"
        )
    return lines


def _coverage_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "Model coverage with its 90 % interval, resampling whole retraining blocks as for the "
        "skill (as narrow, for the same reasons): how far other quarters of history could "
        "move each figure.",
        "",
        "| horizon | cov 50 | cov 80 | cov 90 |",
        "|---|---|---|---|",
    ]
    for h, m in result["horizons"].items():
        cells = [
            f"{_pct(m[f'coverage_{lv}_model'])} ({_pct(m[f'coverage_{lv}_lo'])} … "
            f"{_pct(m[f'coverage_{lv}_hi'])})"
            for lv in INTERVALS
        ]
        lines.append(f"| {h}d | " + " | ".join(cells) + " |")
    return lines


def _split_table(result: dict[str, Any]) -> list[str]:
    cfg = result["config"]
    lines = [
        f"Same rows split by target day: development (< {cfg.holdout_from}, where the design "
        f"was chosen) and held out (≥ {cfg.holdout_from}, used for no choice).",
        "",
        "| horizon | part | rows | pinball skill vs RW | cov 50 | cov 80 | cov 90 |",
        "|---|---|---|---|---|---|---|",
    ]
    for h, m in result["horizons"].items():
        for name in ("development", "held_out"):
            p = m.get(name)
            if not p or not p["rows"]:
                continue
            lines.append(
                f"| {h}d | {name.replace('_', ' ')} | {int(p['rows']):,} | "
                f"{p['pinball_skill']:+.4f} | {_pct(p['coverage_50_model'])} | "
                f"{_pct(p['coverage_80_model'])} | {_pct(p['coverage_90_model'])} |"
            )
    return lines


def _ets_table(result: dict[str, Any]) -> list[str]:
    if not result["ets"]:
        return ["AutoETS comparison skipped (--ets-tokens 0)."]
    lines = [
        "| horizon | rows | pinball ETS | pinball model | pinball RW | ETS skill vs RW "
        "| model skill vs RW | cov 80 ETS | cov 80 model |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for h, m in result["ets"].items():
        lines.append(
            f"| {h}d | {int(m['rows'])} | {m['pinball_ets']:.4f} | {m['pinball_model']:.4f} | "
            f"{m['pinball_rw']:.4f} | {m['skill_ets_vs_rw']:+.4f} | {m['skill_model_vs_rw']:+.4f} "
            f"| {_pct(m['coverage_80_ets'])} | {_pct(m['coverage_80_model'])} |"
        )
    return lines


def write_report(result: dict[str, Any], out_dir: Path) -> Path:
    """reports/forecasts.md plus one calibration PNG per horizon; returns the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = result["config"]
    lines = [
        "# Forecast evaluation (walk-forward, out of sample)",
        "",
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `coinlens evaluate forecasts`"
        f" on data up to {result['data_end']}. Retrained at {len(result['origins'])} origins "
        f"{result['origins'][0]} … {result['origins'][-1]} (every {cfg.step_days} days, data ≤ "
        f"origin only); scored on every daily origin of the following {cfg.step_days} days, "
        f"tokens with ≥ 200 days of history. Run time {result['seconds']:.0f} s "
        f"(AutoETS {result['ets_seconds']:.0f} s). Features: {', '.join(result['features'])}.",
        "",
        "Skill = 1 − score/score(random walk); > 0 is better than the random walk. Coverage is "
        "the share of outcomes inside the central interval (nominal 50/80/90 %). Direction: "
        "share of non-zero moves whose sign the median got right, among the rows where the "
        "median moved from the last close (all such rows); the binomial test (H0: 50 %) uses "
        "only non-overlapping origins (day ≡ 0 mod h; their share right is the test acc.) and "
        "still ignores the "
        "cross-sectional correlation of tokens, so it is optimistic. The 90 % interval of the "
        "skill resamples whole retraining quarters (block bootstrap); in brackets, how many "
        "quarters alone score worse than the random walk. Quarters share market moves and at "
        "30/90 days overlap their neighbours' target periods, so the interval is, if anything, "
        "too narrow.",
        "",
        *_horizon_table(result),
        "",
        *_coverage_table(result),
        "",
        *_split_table(result),
        "",
        f"## AutoETS comparison (statsforecast, season_length=1, log close, last "
        f"{cfg.ets_window} days, {cfg.ets_tokens} longest-listed tokens, quarterly origins only)",
        "",
        *_ets_table(result),
        "",
        "## Calibration plots",
        "",
    ]
    for h, m in result["horizons"].items():
        name = f"forecasts_calibration_{h}d.png"
        calibration_png(out_dir / name, h, m)
        lines.append(f"![{h}-day calibration]({name})")
    path = out_dir / "forecasts.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
