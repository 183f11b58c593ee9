"""Grade evaluation: walk-forward rank IC, quintile spreads and hit rates, in and out of sample.

Grades are point in time by construction (day t uses data known on day t), so walking
forward is evaluating each day's grades against the returns that followed. The weights in
`analytics.grades` were chosen on the in-sample period only (forward windows ending by
`SPLIT` - 1 day); every later day is out of sample.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from coinlens.analytics import evaluation as ev
from coinlens.analytics import grades as method
from coinlens.domain.errors import DataUnavailable, UserInputError
from coinlens.domain.grades import (
    GradeKind,
    GradePeriodRecord,
    GradeRecord,
    GradeTrackRecord,
    GradeYearRecord,
    PeriodName,
)
from coinlens.services import track_records
from coinlens.services.analytics_queries import to_date, to_day
from coinlens.services.context import Context
from coinlens.services.grades import EVALUATION_KIND, METHOD, GradeRun, compute_all
from coinlens.services.plots import pyplot, save_png
from coinlens.storage.tables import utcnow

F64 = NDArray[np.float64]

SPLIT = date(2023, 1, 1)  # first out-of-sample day
TUNE_START = date(2018, 1, 1)
HORIZONS: dict[GradeKind, int] = {"trader": 7, "investor": 90}
MIN_TOKENS = 10  # tokens with a grade and a forward return for a day to count


class Period(NamedTuple):
    """A named period of days and the grade's track record over it."""

    name: PeriodName
    start: date
    end: date
    summary: ev.Summary


@dataclass
class GradeTrack:
    """Track record of one grade: in/out of sample, per year, and per sub-grade."""

    grade: GradeKind
    horizon: int
    periods: list[Period] = field(default_factory=list)
    years: dict[int, ev.Summary] = field(default_factory=dict)
    sub_ic: dict[str, tuple[ev.MeanStat, ev.MeanStat]] = field(default_factory=dict)
    daily_ic: F64 = field(default_factory=lambda: np.empty(0))


@dataclass
class Evaluation:
    """Everything `coinlens evaluate grades` reports."""

    days: NDArray[np.int64]
    start: date
    end: date
    data_end: date  # newest day of data (forward returns end there)
    split: date
    tracks: dict[str, GradeTrack]
    weights: dict[str, dict[str, float]]


def _window(days: NDArray[np.int64], start: date | None, end: date | None) -> NDArray[np.bool_]:
    lo = to_day(start) if start else -(10**9)
    hi = to_day(end) if end else 10**9
    return (days >= lo) & (days <= hi)


def _in_sample(days: NDArray[np.int64], horizon: int, split: date) -> NDArray[np.bool_]:
    """Days whose whole forward window ends before the split day."""
    return days + horizon < to_day(split)


def _track(run: GradeRun, grade: GradeKind, window: NDArray[np.bool_], split: date) -> GradeTrack:
    h = HORIZONS[grade]
    days = run.panel.days
    score = run.grades.trader if grade == "trader" else run.grades.investor
    fwd = ev.forward_returns(run.panel.close, h)
    ic = ev.rank_ic(score, fwd, MIN_TOKENS)
    stats = ev.quintile_stats(score, fwd, MIN_TOKENS)
    counts = ev.pair_counts(score, fwd)
    track = GradeTrack(grade, h, daily_ic=ic[window])
    ins = window & _in_sample(days, h, split)
    oos = window & (days >= to_day(split))
    named: tuple[tuple[PeriodName, NDArray[np.bool_]], ...] = (
        ("in sample", ins),
        ("out of sample", oos),
        ("all", window),
    )
    for name, sel in named:
        idx = np.flatnonzero(sel & np.isfinite(ic))
        if idx.size:
            span = (to_date(days[idx[0]]), to_date(days[idx[-1]]))
            track.periods.append(Period(name, *span, ev.summarize(ic, stats, counts, sel, h)))
    years = ev.years_of(days)
    for year in np.unique(years[window & np.isfinite(ic)]):
        sel = window & (years == year)
        track.years[int(year)] = ev.summarize(ic, stats, counts, sel, h)
    subs = method.TRADER_SUBS if grade == "trader" else method.INVESTOR_SUBS
    for sub in subs:
        sub_ic = ev.rank_ic(run.grades.sub[sub], fwd, MIN_TOKENS)
        track.sub_ic[sub] = (ev.newey_west(sub_ic[ins], h), ev.newey_west(sub_ic[oos], h))
    return track


def evaluate_grades(
    ctx: Context, start: date | None = None, end: date | None = None, split: date = SPLIT
) -> Evaluation:
    """Walk forward over the stored history: each day's grades vs the returns that followed."""
    if start is not None and end is not None and start > end:
        raise UserInputError("start must not be after end")
    run = compute_all(ctx)
    window = _window(run.panel.days, start, end)
    if not window.any():
        raise DataUnavailable("no candles in the requested evaluation window")
    days = run.panel.days[window]
    cfg = method.GradeConfig()
    return Evaluation(
        days=days,
        start=to_date(days[0]),
        end=to_date(days[-1]),
        data_end=to_date(run.panel.days[-1]),
        split=split,
        tracks={g: _track(run, g, window, split) for g in HORIZONS},
        weights={"trader": cfg.trader_weights, "investor": cfg.investor_weights},
    )


# --- track record ---------------------------------------------------------------------------


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def track_record(ev_: Evaluation, evaluated_at: datetime, report: str) -> GradeTrackRecord:
    """The headline figures of an evaluation, as served next to the grades."""
    records = []
    for t in ev_.tracks.values():
        periods = [
            GradePeriodRecord(
                period=p.name,
                start=p.start,
                end=p.end,
                days=p.summary.ic.n,
                rank_ic=_finite(p.summary.ic.mean),
                rank_ic_t=_finite(p.summary.ic.t),
                spread=_finite(p.summary.spread.mean),
                spread_t=_finite(p.summary.spread.t),
                ic_hit_rate=_finite(p.summary.ic_hit_rate),
                top_hit_rate=_finite(p.summary.top_hit_rate),
                tokens=_finite(p.summary.mean_tokens),
            )
            for p in t.periods
        ]
        years = [
            GradeYearRecord(
                year=y, days=s.ic.n, rank_ic=_finite(s.ic.mean), rank_ic_t=_finite(s.ic.t)
            )
            for y, s in t.years.items()
        ]
        records.append(GradeRecord(grade=t.grade, horizon=t.horizon, periods=periods, years=years))
    return GradeTrackRecord(
        evaluated_at=evaluated_at,
        data_end=ev_.data_end,
        first_day=ev_.start,
        last_day=ev_.end,
        out_of_sample_from=ev_.split,
        grades=records,
        report=report,
        method=METHOD,
    )


def evaluate_and_record(
    ctx: Context, start: date | None = None, end: date | None = None, out: Path = Path("reports")
) -> tuple[Evaluation, list[Path], bool]:
    """Evaluate the grades and write reports/grades.md + PNGs; a run over the whole history
    (no start, no end) is also kept as the track record `/v1/tokens/{symbol}/grades` serves.
    Returns the evaluation, the files written and whether it was kept."""
    result = evaluate_grades(ctx, start, end)
    written = write_report(result, out)
    whole = start is None and end is None
    if whole:
        track_records.save(ctx, EVALUATION_KIND, track_record(result, utcnow(), str(written[0])))
    return result, written, whole


# --- weight choice (in sample only) ---------------------------------------------------------


def weight_grid(names: tuple[str, ...], step: float = 0.1) -> list[dict[str, float]]:
    """Every weighting of `names` on a `step` grid with each weight >= step, summing to 1."""
    units = round(1 / step)
    grid = []
    for combo in itertools.product(range(1, units), repeat=len(names) - 1):
        rest = units - sum(combo)
        if rest >= 1:
            grid.append(
                {n: round(u * step, 10) for n, u in zip(names, (*combo, rest), strict=True)}
            )
    return grid


class TunedWeights(NamedTuple):
    """The best in-sample weighting of one grade and its in-sample mean IC."""

    grade: str
    weights: dict[str, float]
    mean_ic: float
    t: float
    candidates: int


def tune_weights(ctx: Context, start: date = TUNE_START, split: date = SPLIT) -> list[TunedWeights]:
    """Grid-search the sub-grade weights on [start, split) only (how the constants were chosen)."""
    run = compute_all(ctx)
    days = run.panel.days
    out = []
    subsets = {"trader": method.TRADER_SUBS, "investor": method.INVESTOR_SUBS}
    for grade, h in HORIZONS.items():
        subs = subsets[grade]
        fwd = ev.forward_returns(run.panel.close, h)
        sel = (days >= to_day(start)) & _in_sample(days, h, split)
        best = TunedWeights(grade, {}, -math.inf, math.nan, 0)
        grid = weight_grid(subs)
        for weights in grid:
            score = method.weighted({k: run.grades.sub[k] for k in subs}, weights)
            stat = ev.newey_west(ev.rank_ic(score, fwd, MIN_TOKENS)[sel], h)
            if stat.mean > best.mean_ic:
                best = TunedWeights(grade, weights, stat.mean, stat.t, len(grid))
        out.append(best)
    return out


# --- report --------------------------------------------------------------------------------


def _fmt(x: float, spec: str = ".4f") -> str:
    return "n/a" if not math.isfinite(x) else format(x, spec)


def _period_table(ev_: Evaluation) -> list[str]:
    lines = [
        "| grade | horizon | period | days | mean rank IC | NW t | IC > 0 | top−bottom quintile "
        "| NW t | top-quintile hit | tokens/day |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for track in ev_.tracks.values():
        for p in track.periods:
            s = p.summary
            lines.append(
                f"| {track.grade} | {track.horizon}d | {p.name} ({p.start} … {p.end}) | {s.ic.n} "
                f"| {_fmt(s.ic.mean)} | {_fmt(s.ic.t, '.2f')} | {_fmt(s.ic_hit_rate, '.1%')} "
                f"| {_fmt(s.spread.mean, '.2%')} | {_fmt(s.spread.t, '.2f')} "
                f"| {_fmt(s.top_hit_rate, '.1%')} | {_fmt(s.mean_tokens, '.0f')} |"
            )
    return lines


def _year_table(track: GradeTrack) -> list[str]:
    lines = [
        f"### {track.grade.capitalize()} Grade vs {track.horizon}d forward returns, per year",
        "",
        "| year | days | mean rank IC | NW t | top−bottom quintile | tokens/day |",
        "|---|---|---|---|---|---|",
    ]
    for year, s in track.years.items():
        lines.append(
            f"| {year} | {s.ic.n} | {_fmt(s.ic.mean)} | {_fmt(s.ic.t, '.2f')} "
            f"| {_fmt(s.spread.mean, '.2%')} | {_fmt(s.mean_tokens, '.0f')} |"
        )
    lines += ["", "| sub-grade | in-sample IC (t) | out-of-sample IC (t) |", "|---|---|---|"]
    for sub, (ins, oos) in track.sub_ic.items():
        lines.append(
            f"| {sub} | {_fmt(ins.mean)} ({_fmt(ins.t, '.2f')}) "
            f"| {_fmt(oos.mean)} ({_fmt(oos.t, '.2f')}) |"
        )
    return [*lines, ""]


def render_markdown(ev_: Evaluation, plots: list[str]) -> str:
    """The evaluation as Markdown (reports/grades.md)."""
    w = ev_.weights
    lines = [
        "# Grade evaluation (generated by `coinlens evaluate grades`)",
        "",
        f"History evaluated: {ev_.start} … {ev_.end}. Weights chosen on days before "
        f"{ev_.split} only (forward windows ending before it); from {ev_.split} on is out of "
        "sample. Days count when at least "
        f"{MIN_TOKENS} tokens have a grade and a forward return. t-statistics are Newey-West "
        "(Bartlett, lags = horizon) on the daily series.",
        "",
        f"Weights: Trader {w['trader']}; Investor {w['investor']}.",
        "",
        *_period_table(ev_),
        "",
    ]
    for track in ev_.tracks.values():
        lines += _year_table(track)
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _plot(ev_: Evaluation, out: Path) -> list[str]:
    """Cumulative daily IC per grade (PNG)."""
    plt = pyplot()
    names = []
    dates = ev_.days.astype("datetime64[D]")
    for track in ev_.tracks.values():
        fig, ax = plt.subplots(figsize=(8, 3.2))
        ax.plot(dates, np.cumsum(np.nan_to_num(track.daily_ic)), lw=1.2)
        ax.axvline(np.datetime64(ev_.split), color="grey", ls="--", lw=0.8)
        ax.set_title(f"{track.grade} grade: cumulative daily rank IC vs {track.horizon}d returns")
        ax.set_ylabel("Σ IC")
        fig.tight_layout()
        name = f"grades_{track.grade}_cumulative_ic.png"
        save_png(fig, out / name)
        names.append(name)
    return names


def write_report(ev_: Evaluation, out: Path) -> list[Path]:
    """Write grades.md and its PNG plots into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    plots = _plot(ev_, out)
    md = out / "grades.md"
    md.write_text(render_markdown(ev_, plots), encoding="utf-8")
    return [md, *(out / p for p in plots)]
