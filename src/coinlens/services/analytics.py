"""The analytics pipeline step: signals, indicators, ROI/risk, levels and backtests per token.

`run_analytics(ctx)` reads the daily panel, computes everything the pages and the API need
for the whole universe, and writes `token_analytics`, `signal_events` and `backtests` in ONE
transaction (events are replaced per token, so readers never see half a run).

The incremental rule and the saved state live in `services.analytics_state`.

ROI, 90-day risk and key levels only look back a bounded window from each token's last
close (`roi_at`, `trailing_closes`, `latest_levels`), so no step of an incremental run
reads more than a year of history per token. Both modes run the same one-bar step
functions, so they store identical rows (tested).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from coinlens.analytics import indicators as ind
from coinlens.analytics.backtest import (
    BacktestConfig,
    BacktestState,
    BacktestSummary,
    backtest_with_state,
    equity_curve,
    update_backtest,
)
from coinlens.analytics.indicator_state import (
    NAMES as INDICATOR_NAMES,
)
from coinlens.analytics.indicator_state import (
    latest_indicators,
    update_indicators,
)
from coinlens.analytics.levels import LatestLevels, latest_levels
from coinlens.analytics.returns import (
    drawdown_state,
    roi_at,
    rolling_beta_corr,
    rolling_risk,
    trailing_closes,
    update_drawdown_state,
)
from coinlens.analytics.signals import (
    N_VALUES,
    VALUE_NAMES,
    compute_signals,
    signal_changes,
    update_signals,
)
from coinlens.domain.analytics_models import SIGNAL_LABELS
from coinlens.services.analytics_state import (
    Mode,
    SavedState,
    day_checksums,
    load_state,
    plan,
    save_state,
    state_path,
)
from coinlens.services.context import Context
from coinlens.storage import analytics_repo
from coinlens.storage.panel import Panel, read_daily_panel

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
I8 = NDArray[np.int8]
Progress = Callable[[str, int, int], None]
Rows = tuple[list[dict[str, Any]], list[dict[str, Any]]]

SOURCE = "coinlens analytics pipeline (daily panel, primary market per token)"
DEFAULT_BACKTEST = BacktestConfig()
RISK_WINDOW = 90
LEVELS_SHOWN = 5
ROI_NAMES = {"1d": "1d", "7d": "7d", "30d": "30d", "90d": "90d", "365d": "1y", "ytd": "ytd"}


def params_key(cfg: BacktestConfig) -> str:
    """The stable key of a backtest's parameters (fees, slippage, cash, fill convention)."""
    return f"fees={cfg.fees:g};slippage={cfg.slippage:g};cash={cfg.init_cash:g};fill=next_open"


@dataclass
class AnalyticsReport:
    """What one pipeline run did, and how long each step took (seconds)."""

    mode: Mode
    reason: str
    tokens: int = 0
    days: int = 0
    as_of_day: int | None = None
    events_written: int = 0
    flips_published: int = 0  # `signal_flip` stream events of the days this run added
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        """Wall time of all timed steps."""
        return sum(self.timings.values())


@contextmanager
def _timed(report: AnalyticsReport, step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        report.timings[step] = report.timings.get(step, 0.0) + time.perf_counter() - start


def num(x: float | np.floating[Any]) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    value = float(x)
    return value if math.isfinite(value) else None


def nums(x: F64) -> list[float | None]:
    """`num` over an array, at list speed."""
    return [v if math.isfinite(v) else None for v in x.tolist()]


# --- indicators ------------------------------------------------------------------------------


def indicator_panels(o: F64, h: F64, lo: F64, c: F64, v: F64) -> dict[str, F64]:
    """Every published indicator as a panel, named like `IndicatorRow` fields."""
    macd = ind.macd(c)
    bands = ind.bbands(c)
    adx = ind.adx(h, lo, c)
    stoch = ind.stoch(h, lo, c)
    return {
        "rsi_14": ind.rsi(c),
        "macd": macd.macd,
        "macd_signal": macd.signal,
        "macd_hist": macd.hist,
        "ema_20": ind.ema(c, 20),
        "ema_50": ind.ema(c, 50),
        "ema_200": ind.ema(c, 200),
        "bb_upper": bands.upper,
        "bb_middle": bands.middle,
        "bb_lower": bands.lower,
        "atr_14": ind.atr(h, lo, c),
        "adx_14": adx.adx,
        "plus_di_14": adx.plus_di,
        "minus_di_14": adx.minus_di,
        "obv": ind.obv(c, v),
        "stoch_k": stoch.slowk,
        "stoch_d": stoch.slowd,
        "mfi_14": ind.mfi(h, lo, c, v),
        "volatility_30d": ind.rolling_volatility(c, 30),
        "vwap_20": ind.vwap(h, lo, c, v),
    }


def last_valid(mask: NDArray[np.bool_]) -> I64:
    """Per row, the index of the last True cell (-1 when none)."""
    t = mask.shape[1]
    has = mask.any(axis=1)
    idx = t - 1 - np.argmax(mask[:, ::-1], axis=1)
    return np.where(has, idx, -1).astype(np.int64)


def _at(panel: F64, cols: I64) -> F64:
    rows = np.arange(panel.shape[0])
    return np.where(cols >= 0, panel[rows, np.maximum(cols, 0)], np.nan)


# --- signals -----------------------------------------------------------------------------------


def _valid4(h: F64, lo: F64, c: F64, v: F64) -> NDArray[np.bool_]:
    """Bars the signal steps on: high, low, close and volume all finite (panels or columns)."""
    return np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & np.isfinite(v)


def _event_rows(
    p: Panel, token: I64, t: I64, changes: tuple[I8, I8, F64, F64]
) -> list[dict[str, Any]]:
    frm, to, price, score = changes
    ids, days = p.token_ids, p.days
    return [
        {
            "token_id": int(ids[i]),
            "day": int(days[j]),
            "from_signal": int(a),
            "to_signal": int(b),
            "price": float(px),
            "score": num(s),
        }
        for i, j, a, b, px, s in zip(token, t, frm, to, price, score, strict=True)
    ]


def _full(
    p: Panel, sums: NDArray[np.uint64], report: AnalyticsReport
) -> tuple[SavedState, BacktestSummary, list[dict[str, Any]]]:
    """Every state from the whole history; the signal change events of all days."""
    with _timed(report, "signals"):
        sp, state = compute_signals(p.high, p.low, p.close, p.volume)
        ch = signal_changes(sp.signal, p.close)
        score = sp.score[ch.token, ch.t]
        events = _event_rows(p, ch.token, ch.t, (ch.from_signal, ch.to_signal, ch.price, score))
        valid_last = last_valid(_valid4(p.high, p.low, p.close, p.volume))
        values = np.stack([_at(sp.values[k], valid_last) for k in range(N_VALUES)])
        prev = np.zeros_like(sp.signal)
        prev[:, 1:] = sp.signal[:, :-1]
    with _timed(report, "indicators"):
        latest, ind_state = latest_indicators(p.high, p.low, p.close, p.volume)
        ath, mdd = drawdown_state(p.close)
    with _timed(report, "backtest"):
        result, bt_state = backtest_with_state(sp.signal, p.open, p.close, DEFAULT_BACKTEST)
    saved = SavedState(
        p.token_ids,
        int(p.days[0]),
        sums,
        state,
        values,
        valid_last,
        last_valid(sp.signal != prev),
        ind_state,
        latest,
        last_valid(np.isfinite(p.close)),
        ath,
        mdd,
        bt_state,
    )
    return saved, BacktestSummary(result.strategy, result.trades, result.buy_hold), events


def _incremental(
    p: Panel, sums: NDArray[np.uint64], old: SavedState, report: AnalyticsReport
) -> tuple[SavedState, BacktestSummary, list[dict[str, Any]]]:
    """Every state advanced by the panel's last day; that day's signal change events."""
    j = len(p.days) - 1
    h, lo, c, v, o = (x[:, j] for x in (p.high, p.low, p.close, p.volume, p.open))
    with _timed(report, "signals"):
        state, bar = update_signals(old.signals, h, lo, c, v)
        valid = _valid4(h, lo, c, v)
        flipped = bar.signal != old.signals.signal
        token = np.nonzero(flipped)[0].astype(np.int64)
        changes = (old.signals.signal[token], bar.signal[token], c[token], bar.score[token])
        events = _event_rows(p, token, np.full(token.shape, j, dtype=np.int64), changes)
    with _timed(report, "indicators"):
        ind_bar, ind_state = update_indicators(old.indicators, h, lo, c, v)
        has_close = np.isfinite(c)
        ath, mdd = update_drawdown_state(old.ath, old.mdd, c)
    with _timed(report, "backtest"):
        bt_state, summary = update_backtest(old.backtest, bar.signal, o, c, DEFAULT_BACKTEST)
    saved = SavedState(
        p.token_ids,
        int(p.days[0]),
        sums,
        state,
        np.where(valid[None, :], bar.values, old.values),
        np.where(valid, j, old.valid_last).astype(np.int64),
        np.where(flipped, j, old.since).astype(np.int64),
        ind_state,
        np.where(has_close[None, :], ind_bar, old.latest),
        np.where(has_close, j, old.close_end).astype(np.int64),
        ath,
        mdd,
        bt_state,
    )
    return saved, summary, events


# --- latest values -----------------------------------------------------------------------------


def _risk(p: Panel, saved: SavedState) -> dict[str, F64]:
    """90-day volatility/Sharpe/Sortino and beta/correlation to BTC and ETH, plus drawdowns."""
    ends = saved.close_end
    tail = trailing_closes(p.close, ends, RISK_WINDOW)
    rr = rolling_risk(tail, window=RISK_WINDOW)
    with np.errstate(invalid="ignore"):
        from_ath = _at(p.close, ends) / saved.ath - 1
    out = {
        "volatility_90d": rr.volatility[:, -1],
        "sharpe_90d": rr.sharpe[:, -1],
        "sortino_90d": rr.sortino[:, -1],
        "max_drawdown": saved.mdd.copy(),
        "drawdown_from_ath": from_ath,
    }
    for bench in ("BTC", "ETH"):
        beta = np.full(len(ends), np.nan)
        corr = np.full(len(ends), np.nan)
        if bench in p.symbols:
            row = p.close[p.row(bench)][None, :]
            for end in np.unique(ends):
                sel = ends == end
                b_tail = trailing_closes(row, np.array([end], dtype=np.int64), RISK_WINDOW)
                b, c = rolling_beta_corr(tail[sel], b_tail, window=RISK_WINDOW)
                beta[sel], corr[sel] = b[:, -1], c[:, -1]
        out[f"beta_{bench.lower()}_90d"], out[f"corr_{bench.lower()}_90d"] = beta, corr
    return out


def _roi(p: Panel, ends: I64) -> dict[str, F64]:
    table = roi_at(p.close, p.days, ends)
    out = {name: table[key] for key, name in ROI_NAMES.items()}
    out["since_listing"] = table["since_listing"]
    return out


def _level_dict(p: Panel, entry: F64, close: float) -> dict[str, Any] | None:
    price, strength, touches, last = (float(x) for x in entry)
    if not math.isfinite(price):
        return None
    return {
        "price": price,
        "kind": "support" if price < close else "resistance",
        "strength": strength,
        "touches": int(touches),
        "last_touch_day": int(p.days[int(last)]),
    }


def _token_levels(p: Panel, lv: LatestLevels, i: int, close: float) -> dict[str, Any]:
    """Nearest support/resistance at a token's last close, and its strongest levels."""
    strongest = [_level_dict(p, lv.strongest[i, q], close) for q in range(int(lv.n_strongest[i]))]
    return {
        "support": _level_dict(p, lv.support[i], close),
        "resistance": _level_dict(p, lv.resistance[i], close),
        "strongest": [x for x in strongest if x is not None],
    }


def _latest(
    p: Panel, saved: SavedState, report: AnalyticsReport, progress: Progress | None
) -> list[dict[str, Any]]:
    """The payload of every token: indicators, signal inputs, ROI, risk and levels."""
    ends = saved.close_end
    closes = _at(p.close, ends)
    with _timed(report, "roi_risk"):
        roi, risk = _roi(p, ends), _risk(p, saved)
    with _timed(report, "levels"):
        atr = saved.latest[INDICATOR_NAMES.index("atr_14")]
        levels = latest_levels(p.high, p.low, p.close, p.volume, ends, atr)
    with _timed(report, "payloads"):
        columns = {
            "indicators": {k: nums(saved.latest[n]) for n, k in enumerate(INDICATOR_NAMES)},
            "signal_values": {k: nums(saved.values[n]) for n, k in enumerate(VALUE_NAMES)},
            "roi": {k: nums(v) for k, v in roi.items()},
            "risk": {k: nums(v) for k, v in risk.items()},
        }
        close_list = nums(closes)
        payloads = []
        for i in range(len(p.token_ids)):
            payload: dict[str, Any] = {"close": close_list[i]}
            for group, cols in columns.items():
                payload[group] = {k: col[i] for k, col in cols.items()}
            payload["levels"] = _token_levels(p, levels, i, float(closes[i]))
            payloads.append(payload)
            if progress and (i % 250 == 0 or i == len(p.token_ids) - 1):
                progress("payloads", i + 1, len(p.token_ids))
    return payloads


# --- backtests ---------------------------------------------------------------------------------


def _metrics(perf: Any, i: int) -> dict[str, float | None]:
    return {name: num(getattr(perf, name)[i]) for name in perf._fields}


EQUITY_DECIMALS = 6
"""Decimals of the stored/served equity curve (in units of the initial cash: 1e-6 of it is
far below a chart's pixel). Full doubles tripled the payload: 2,000 tokens' backtests were
15 MB, 0.5 s of the live update's database write. The metrics keep full precision."""


def backtest_payload(
    days: I64, summary: BacktestSummary, state: BacktestState, i: int, cfg: BacktestConfig
) -> dict[str, Any]:
    """One token's backtest as stored/served: params, metrics, sampled equity curves."""
    idx, eq, bh = equity_curve(state, i)
    eq, bh = np.round(eq, EQUITY_DECIMALS), np.round(bh, EQUITY_DECIMALS)
    tr = summary.trades
    return {
        "params": {
            "fees": cfg.fees,
            "slippage": cfg.slippage,
            "init_cash": cfg.init_cash,
            "periods_per_year": cfg.periods_per_year,
            "params_key": params_key(cfg),
        },
        "start_day": int(days[idx[0]]) if len(idx) else None,
        "end_day": int(days[idx[-1]]) if len(idx) else None,
        "strategy": _metrics(summary.strategy, i),
        "trades": {
            "trades": int(tr.trades[i]),
            "win_rate": num(tr.win_rate[i]),
            "avg_trade_return": num(tr.avg_trade_return[i]),
            "exposure": num(tr.exposure[i]),
        },
        "buy_hold": _metrics(summary.buy_hold, i),
        "equity": {"days": days[idx].tolist(), "strategy": nums(eq), "buy_hold": nums(bh)},
    }


# --- the step ------------------------------------------------------------------------------------


def _rows(
    p: Panel, saved: SavedState, payloads: list[dict[str, Any]], summary: BacktestSummary
) -> Rows:
    now = datetime.now(UTC)
    key = params_key(DEFAULT_BACKTEST)
    analytics, tests = [], []
    for i, token_id in enumerate(p.token_ids):
        end = int(saved.valid_last[i])
        as_of = int(p.days[end]) if end >= 0 else int(p.days[0])
        since = int(saved.since[i])
        analytics.append(
            {
                "token_id": int(token_id),
                "as_of_day": as_of,
                "panel_version": p.version,
                "signal": int(saved.signals.signal[i]),
                "score": num(saved.values[N_VALUES - 1, i]),
                "signal_since_day": int(p.days[since]) if since >= 0 else None,
                "payload": payloads[i],
                "computed_at": now,
            }
        )
        payload = backtest_payload(p.days, summary, saved.backtest, i, DEFAULT_BACKTEST)
        tests.append(
            {
                "token_id": int(token_id),
                "params_key": key,
                "as_of_day": as_of,
                "payload": payload,
                "computed_at": now,
            }
        )
    return analytics, tests


def compute(
    p: Panel,
    sums: NDArray[np.uint64],
    report: AnalyticsReport,
    old: SavedState | None = None,
    *,
    progress: Progress | None = None,
) -> tuple[SavedState, Rows, list[dict[str, Any]]]:
    """The rows to store: from the whole panel, or by one day from `old` when given.

    Returns the new state, (token_analytics rows, backtest rows) and the signal events
    (all of them when full, the new day's when incremental).
    """
    if old is not None:
        saved, summary, events = _incremental(p, sums, old, report)
    else:
        saved, summary, events = _full(p, sums, report)
    payloads = _latest(p, saved, report, progress)
    with _timed(report, "payloads"):
        rows = _rows(p, saved, payloads, summary)
    return saved, rows, events


def _write(
    ctx: Context,
    mode: Mode,
    p: Panel,
    rows: Rows,
    events: list[dict[str, Any]],
) -> None:
    analytics, tests = rows
    ids = [int(i) for i in p.token_ids]
    with ctx.engine.begin() as conn:
        analytics_repo.write_token_analytics(conn, analytics)
        analytics_repo.write_backtests(conn, tests)
        if mode == "full":
            analytics_repo.delete_token_analytics_except(conn, ids)
            analytics_repo.replace_signal_events(conn, ids, events)
        else:
            analytics_repo.upsert_signal_events(conn, events)


def run_analytics(
    ctx: Context, *, full: bool = False, progress: Progress | None = None
) -> AnalyticsReport:
    """Compute and store every token's analytics; incremental when the rule allows it."""
    report = AnalyticsReport(mode="full", reason="")
    with _timed(report, "read_panel"):
        p = read_daily_panel(ctx.engine, ctx.cache_dir)
    with _timed(report, "checksums"):
        sums = day_checksums(p)
        path = state_path(ctx)
        old = None if full else load_state(path)
        mode, reason = plan(p, sums, old) if not full else ("full", "full recompute requested")
        with ctx.engine.connect() as conn:
            stored, _ = analytics_repo.analytics_summary(conn)
        if mode != "full" and stored != len(p.token_ids):
            mode, reason = "full", "stored analytics rows do not match the panel's tokens"
    report.mode, report.reason = mode, reason
    report.tokens, report.days, report.as_of_day = len(p.token_ids), len(p.days), int(p.days[-1])
    if mode == "unchanged":
        return report
    saved, rows, events = compute(
        p, sums, report, old if mode == "incremental" else None, progress=progress
    )
    with _timed(report, "write"):
        _write(ctx, mode, p, rows, events)
        report.events_written = len(events)
    with _timed(report, "save_state"):
        save_state(path, saved)
    if old is not None:  # not a first load: the days after the previous run are news
        since = int(old.first_day) + len(old.checksums) - 1
        report.flips_published = publish_flips(ctx, p, [e for e in events if e["day"] > since])
    return report


def publish_flips(ctx: Context, p: Panel, events: list[dict[str, Any]]) -> int:
    """A `signal_flip` stream event per stored signal change (docs/streaming.md); how many."""
    if not events:
        return 0
    from coinlens.services.events import publish_signal_flip

    symbols = dict(zip(p.token_ids.tolist(), p.symbols, strict=True))
    for e in sorted(events, key=lambda e: (e["day"], e["token_id"])):
        publish_signal_flip(
            ctx,
            symbols[e["token_id"]],
            SIGNAL_LABELS.get(e["from_signal"]),
            SIGNAL_LABELS[e["to_signal"]],
            score=e["score"],
        )
    return len(events)
