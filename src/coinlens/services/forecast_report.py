"""Write the forecast walk-forward result as Markdown with hand-made SVG calibration charts
(matplotlib is not a dependency: a reliability diagram is a few lines of SVG)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from coinlens.analytics.forecast import QUANTILES

_W, _H, _PAD = 320, 320, 40


def _xy(p: float, f: float) -> tuple[float, float]:
    return _PAD + p * (_W - 2 * _PAD), _H - _PAD - f * (_H - 2 * _PAD)


def calibration_svg(title: str, series: dict[str, list[float]]) -> str:
    """Reliability diagram: nominal quantile level (x) vs observed frequency below it (y)."""
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    x0, y0 = _xy(0, 0)
    x1, y1 = _xy(1, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" font-size="11">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<text x="{_W / 2}" y="16" text-anchor="middle">{title}</text>',
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#999" stroke-dasharray="4"/>',
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/>',
        f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>',
        f'<text x="{_W / 2}" y="{_H - 8}" text-anchor="middle">nominal level</text>',
        f'<text x="10" y="{_H / 2}" transform="rotate(-90 10 {_H / 2})" '
        'text-anchor="middle">observed share below</text>',
    ]
    for i, (name, freq) in enumerate(series.items()):
        pts = " ".join(
            f"{x:.1f},{y:.1f}" for x, y in (_xy(p, f) for p, f in zip(QUANTILES, freq, strict=True))
        )
        c = colors[i % len(colors)]
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        parts.append(f'<text x="{x0 + 8}" y="{y1 + 14 * (i + 1)}" fill="{c}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


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
            for lv in (50, 80, 90)
        ]
        lines.append(
            f"| {h}d | {m['rows']:,} | {m['pinball_skill']:+.4f} | "
            f"{m['skill_lo']:+.4f} … {m['skill_hi']:+.4f} ({m['blocks_worse']}/{m['blocks']}) "
            f"| {m['crps_skill']:+.4f} | "
            + " | ".join(cov)
            + f" | {_pct(m['direction_accuracy'])} | {_pct(m['direction_test_acc'])} "
            f"| {int(m['direction_test_n']):,} "
            f"| {m['direction_p_value']:.3g} |"
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
            for lv in (50, 80, 90)
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
    """reports/forecasts.md plus one calibration SVG per horizon; returns the Markdown path."""
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
        name = f"forecasts_calibration_{h}d.svg"
        svg = calibration_svg(
            f"{h}-day horizon", {"model": m["freq_model"], "random walk": m["freq_rw"]}
        )
        (out_dir / name).write_text(svg, encoding="utf-8")
        lines.append(f"![{h}-day calibration]({name})")
    path = out_dir / "forecasts.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
