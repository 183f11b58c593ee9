"""The analytics pipeline step: signals, indicators, ROI/risk, levels and backtests per token.

`run_analytics(ctx)` reads the daily panel, computes everything the pages and the API need
for the whole universe, and writes `token_analytics`, `signal_events` and `backtests` in ONE
transaction (events are replaced per token, so readers never see half a run).

Incremental rule (documented in docs/signals.md). The signal state is saved next to the
panel snapshot with a checksum per panel day (a wrapping uint64 sum of every token's OHLCV
bit patterns times odd per-token/per-field multipliers — exact, order-free, and any single
changed candle changes its day's sum). The next run is

* ``unchanged``   same tokens, same days, every day's checksum equal and rows stored: no-op;
* ``incremental`` same tokens in the same order, the same first day, exactly ONE new day
  appended and every earlier day's checksum equal: the signals advance one bar with
  `update_signals` (no signal history is recomputed; events are appended for that day);
* ``full``        anything else (a new token, a corrected old candle, several new days,
  no or unreadable state, or ``full=True``).

Latest indicator values, ROI, drawdowns and the default backtest are recomputed from the
panel in both modes with the same vectorised kernels, so both modes store identical rows.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from coinlens.analytics import indicators as ind
from coinlens.analytics.backtest import BacktestConfig, BacktestResult, backtest
from coinlens.analytics.levels import levels_at
from coinlens.analytics.returns import (
    drawdown_from_ath,
    max_drawdown,
    roi_table,
    rolling_beta_corr,
    rolling_risk,
)
from coinlens.analytics.signals import (
    N_VALUES,
    VALUE_NAMES,
    SignalState,
    compute_signals,
    signal_changes,
    update_signals,
)
from coinlens.services.context import Context
from coinlens.storage import analytics_repo
from coinlens.storage.panel import Panel, read_daily_panel

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
I8 = NDArray[np.int8]
Mode = Literal["full", "incremental", "unchanged"]
Progress = Callable[[str, int, int], None]

SOURCE = "coinlens analytics pipeline (daily panel, primary market per token)"
DEFAULT_BACKTEST = BacktestConfig()
STATE_FORMAT = 1
RISK_WINDOW = 90
LEVELS_SHOWN = 5
EQUITY_POINTS = 200
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


# --- incremental state -----------------------------------------------------------------------


def day_checksums(p: Panel) -> NDArray[np.uint64]:
    """Per panel day, a wrapping uint64 checksum of every token's OHLCV bit patterns."""
    m = len(p.token_ids)
    rows = (np.arange(m, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)
    total = np.zeros(len(p.days), dtype=np.uint64)
    for k, arr in enumerate((p.open, p.high, p.low, p.close, p.volume)):
        mult = rows * np.uint64(2 * k + 3)
        bits = np.ascontiguousarray(arr).view(np.uint64)
        total += (bits * mult[:, None]).sum(axis=0, dtype=np.uint64)
    return total


@dataclass(frozen=True)
class _Saved:
    token_ids: I64
    first_day: int
    checksums: NDArray[np.uint64]
    history: I8
    state: SignalState
    values: F64  # (N_VALUES, tokens) at each token's last valid bar
    valid_last: I64


def _state_path(ctx: Context) -> Path:
    ident = hashlib.sha1(str(ctx.engine.url).encode(), usedforsecurity=False).hexdigest()[:10]
    return ctx.cache_dir / f"signal-state-{ident}.npz"


def _load_state(path: Path) -> _Saved | None:
    try:
        with np.load(path) as z:
            if int(z["format"]) != STATE_FORMAT:
                return None
            return _Saved(
                z["token_ids"],
                int(z["first_day"]),
                z["checksums"],
                z["history"],
                SignalState(z["indicators"], z["signal"]),
                z["values"],
                z["valid_last"],
            )
    except (OSError, KeyError, ValueError):
        return None


def _save_state(path: Path, p: Panel, saved: _Saved) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        format=STATE_FORMAT,
        token_ids=p.token_ids,
        first_day=int(p.days[0]),
        checksums=saved.checksums,
        history=saved.history,
        indicators=saved.state.indicators,
        signal=saved.state.signal,
        values=saved.values,
        valid_last=saved.valid_last,
    )
    tmp.replace(path)  # atomic: a crash never leaves half a state


def _plan(p: Panel, sums: NDArray[np.uint64], saved: _Saved | None) -> tuple[Mode, str]:
    """Which mode the rule in the module docstring selects, and why."""
    if saved is None:
        return "full", "no saved signal state"
    if not np.array_equal(saved.token_ids, p.token_ids):
        return "full", "the token list changed"
    if saved.first_day != int(p.days[0]):
        return "full", "the panel's first day changed"
    n_old, n_new = len(saved.checksums), len(sums)
    if n_new not in (n_old, n_old + 1):
        return "full", f"{n_new - n_old} days appended (incremental handles exactly one)"
    changed = np.nonzero(saved.checksums != sums[:n_old])[0]
    if changed.size:
        day = datetime.fromtimestamp(int(p.days[changed[0]]) * 86_400, tz=UTC).date()
        return "full", f"candles of {changed.size} earlier day(s) changed, first {day}"
    if n_new == n_old:
        return "unchanged", "no candle changed since the last run"
    return "incremental", "exactly one new day appended"


# --- signals -----------------------------------------------------------------------------------


def _valid4(p: Panel) -> NDArray[np.bool_]:
    return np.isfinite(p.high) & np.isfinite(p.low) & np.isfinite(p.close) & np.isfinite(p.volume)


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


def _signals_full(p: Panel, sums: NDArray[np.uint64]) -> tuple[_Saved, list[dict[str, Any]]]:
    sp, state = compute_signals(p.high, p.low, p.close, p.volume)
    ch = signal_changes(sp.signal, p.close)
    events = _event_rows(
        p, ch.token, ch.t, (ch.from_signal, ch.to_signal, ch.price, sp.score[ch.token, ch.t])
    )
    valid_last = last_valid(_valid4(p))
    values = np.stack([_at(sp.values[k], valid_last) for k in range(N_VALUES)])
    saved = _Saved(p.token_ids, int(p.days[0]), sums, sp.signal, state, values, valid_last)
    return saved, events


def _signals_incremental(
    p: Panel, sums: NDArray[np.uint64], old: _Saved
) -> tuple[_Saved, list[dict[str, Any]]]:
    state, bar = update_signals(
        old.state, p.high[:, -1], p.low[:, -1], p.close[:, -1], p.volume[:, -1]
    )
    history = np.concatenate([old.history, bar.signal[:, None]], axis=1)
    valid = _valid4(p)[:, -1]
    values = np.where(valid[None, :], bar.values, old.values)
    valid_last = np.where(valid, len(p.days) - 1, old.valid_last).astype(np.int64)
    token = np.nonzero(bar.signal != old.state.signal)[0].astype(np.int64)
    t = np.full(token.shape, len(p.days) - 1, dtype=np.int64)
    changes = (old.state.signal[token], bar.signal[token], p.close[token, -1], bar.score[token])
    saved = _Saved(p.token_ids, int(p.days[0]), sums, history, state, values, valid_last)
    return saved, _event_rows(p, token, t, changes)


def since_days(p: Panel, history: I8) -> list[int | None]:
    """Per token, the day of its last signal change (None if the signal never left 0)."""
    prev = np.zeros_like(history)
    prev[:, 1:] = history[:, :-1]
    last = last_valid(history != prev)
    return [None if j < 0 else int(p.days[j]) for j in last]


# --- latest values -----------------------------------------------------------------------------


def _tails(close: F64, ends: I64, width: int) -> F64:
    """Per token the `width`+1 closes ending at `ends`, the first one forward-filled.

    The forward fill makes the first return inside the window equal the full-history one,
    so rolling statistics on the tail equal those on the whole panel at `ends`.
    """
    m, t = close.shape
    rows = np.arange(m)
    cols = ends[:, None] - width + np.arange(width + 1)[None, :]
    tail = np.where(cols >= 0, close[rows[:, None], np.maximum(cols, 0)], np.nan)
    ff = np.maximum.accumulate(np.where(np.isfinite(close), np.arange(t), -1), axis=1)
    start = cols[:, 0]
    first = np.where(start >= 0, ff[rows, np.maximum(start, 0)], -1)
    tail[:, 0] = np.where(first >= 0, close[rows, np.maximum(first, 0)], np.nan)
    return tail


def _risk(p: Panel, ends: I64) -> dict[str, F64]:
    """90-day volatility/Sharpe/Sortino and beta/correlation to BTC and ETH, plus drawdowns."""
    tail = _tails(p.close, ends, RISK_WINDOW)
    rr = rolling_risk(tail, window=RISK_WINDOW)
    out = {
        "volatility_90d": rr.volatility[:, -1],
        "sharpe_90d": rr.sharpe[:, -1],
        "sortino_90d": rr.sortino[:, -1],
        "max_drawdown": _at(max_drawdown(p.close), ends),
        "drawdown_from_ath": _at(drawdown_from_ath(p.close), ends),
    }
    for bench in ("BTC", "ETH"):
        beta = np.full(len(ends), np.nan)
        corr = np.full(len(ends), np.nan)
        if bench in p.symbols:
            row = p.close[p.row(bench)][None, :]
            for end in np.unique(ends):
                sel = ends == end
                b_tail = _tails(row, np.array([end], dtype=np.int64), RISK_WINDOW)
                b, c = rolling_beta_corr(tail[sel], b_tail, window=RISK_WINDOW)
                beta[sel], corr[sel] = b[:, -1], c[:, -1]
        out[f"beta_{bench.lower()}_90d"], out[f"corr_{bench.lower()}_90d"] = beta, corr
    return out


def _roi(p: Panel, ends: I64) -> dict[str, F64]:
    table = roi_table(p.close, p.days)
    out = {name: _at(table[key], ends) for key, name in ROI_NAMES.items()}
    out["since_listing"] = _at(table["since_listing"], ends)
    return out


def _level_dict(p: Panel, lv: Any) -> dict[str, Any]:
    return {
        "price": float(lv.price),
        "kind": lv.kind,
        "strength": float(lv.strength),
        "touches": int(lv.touches),
        "last_touch_day": int(p.days[lv.last_touch]),
    }


def token_levels(p: Panel, i: int, t: int) -> dict[str, Any]:
    """Nearest support/resistance at bar t of token row i, and the strongest levels."""
    found = levels_at(p.high[i], p.low[i], p.close[i], p.volume[i], t) if t >= 0 else []
    supports = [lv for lv in found if lv.kind == "support"]
    resistances = [lv for lv in found if lv.kind == "resistance"]
    support = max(supports, key=lambda lv: lv.price, default=None)
    resistance = min(resistances, key=lambda lv: lv.price, default=None)
    return {
        "support": None if support is None else _level_dict(p, support),
        "resistance": None if resistance is None else _level_dict(p, resistance),
        "strongest": [_level_dict(p, lv) for lv in found[:LEVELS_SHOWN]],
    }


def _latest(
    p: Panel, saved: _Saved, report: AnalyticsReport, progress: Progress | None
) -> list[dict[str, Any]]:
    """The payload of every token: indicators, signal inputs, ROI, risk and levels."""
    ends = last_valid(np.isfinite(p.close))
    with _timed(report, "indicators"):
        panels = indicator_panels(p.open, p.high, p.low, p.close, p.volume)
        latest = {name: _at(arr, ends) for name, arr in panels.items()}
        closes = _at(p.close, ends)
    with _timed(report, "roi_risk"):
        roi, risk = _roi(p, ends), _risk(p, ends)
    payloads = []
    with _timed(report, "levels"):
        for i in range(len(p.token_ids)):
            payloads.append(
                {
                    "close": num(closes[i]),
                    "indicators": {k: num(v[i]) for k, v in latest.items()},
                    "signal_values": {
                        k: num(saved.values[n, i]) for n, k in enumerate(VALUE_NAMES)
                    },
                    "roi": {k: num(v[i]) for k, v in roi.items()},
                    "risk": {k: num(v[i]) for k, v in risk.items()},
                    "levels": token_levels(p, i, int(ends[i])),
                }
            )
            if progress and (i % 25 == 0 or i == len(p.token_ids) - 1):
                progress("levels", i + 1, len(p.token_ids))
    return payloads


# --- backtests ---------------------------------------------------------------------------------


def _metrics(perf: Any, i: int) -> dict[str, float | None]:
    return {name: num(getattr(perf, name)[i]) for name in perf._fields}


def backtest_payload(
    days: I64, result: BacktestResult, i: int, cfg: BacktestConfig
) -> dict[str, Any]:
    """One token's backtest as stored/served: params, metrics, downsampled equity curves."""
    eq, bh = result.equity[i], result.buy_hold_equity[i]
    valid = np.nonzero(np.isfinite(eq) | np.isfinite(bh))[0]
    pick = (
        valid[
            np.unique(
                np.linspace(0, len(valid) - 1, min(EQUITY_POINTS, len(valid)))
                .round()
                .astype(np.int64)
            )
        ]
        if len(valid)
        else valid
    )
    tr = result.trades
    return {
        "params": {
            "fees": cfg.fees,
            "slippage": cfg.slippage,
            "init_cash": cfg.init_cash,
            "periods_per_year": cfg.periods_per_year,
            "params_key": params_key(cfg),
        },
        "start_day": int(days[valid[0]]) if len(valid) else None,
        "end_day": int(days[valid[-1]]) if len(valid) else None,
        "strategy": _metrics(result.strategy, i),
        "trades": {
            "trades": int(tr.trades[i]),
            "win_rate": num(tr.win_rate[i]),
            "avg_trade_return": num(tr.avg_trade_return[i]),
            "exposure": num(tr.exposure[i]),
        },
        "buy_hold": _metrics(result.buy_hold, i),
        "equity": {
            "days": [int(days[j]) for j in pick],
            "strategy": [num(eq[j]) for j in pick],
            "buy_hold": [num(bh[j]) for j in pick],
        },
    }


# --- the step ------------------------------------------------------------------------------------


def _rows(
    p: Panel, saved: _Saved, payloads: list[dict[str, Any]], result: BacktestResult
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    now = datetime.now(UTC)
    since = since_days(p, saved.history)
    key = params_key(DEFAULT_BACKTEST)
    analytics, tests = [], []
    for i, token_id in enumerate(p.token_ids):
        end = int(saved.valid_last[i])
        as_of = int(p.days[end]) if end >= 0 else int(p.days[0])
        analytics.append(
            {
                "token_id": int(token_id),
                "as_of_day": as_of,
                "panel_version": p.version,
                "signal": int(saved.history[i, -1]),
                "score": num(saved.values[N_VALUES - 1, i]),
                "signal_since_day": since[i],
                "payload": payloads[i],
                "computed_at": now,
            }
        )
        payload = backtest_payload(p.days, result, i, DEFAULT_BACKTEST)
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


def _write(
    ctx: Context,
    mode: Mode,
    p: Panel,
    rows: tuple[list[dict[str, Any]], list[dict[str, Any]]],
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
        path = _state_path(ctx)
        old = None if full else _load_state(path)
        mode, reason = _plan(p, sums, old) if not full else ("full", "full recompute requested")
        with ctx.engine.connect() as conn:
            stored, _ = analytics_repo.analytics_summary(conn)
        if mode != "full" and stored != len(p.token_ids):
            mode, reason = "full", "stored analytics rows do not match the panel's tokens"
    report.mode, report.reason = mode, reason
    report.tokens, report.days, report.as_of_day = len(p.token_ids), len(p.days), int(p.days[-1])
    if mode == "unchanged":
        return report
    with _timed(report, "signals"):
        if mode == "incremental" and old is not None:
            saved, events = _signals_incremental(p, sums, old)
        else:
            saved, events = _signals_full(p, sums)
    payloads = _latest(p, saved, report, progress)
    with _timed(report, "backtest"):
        result = backtest(saved.history, p.open, p.close, DEFAULT_BACKTEST)
        rows = _rows(p, saved, payloads, result)
    with _timed(report, "write"):
        _write(ctx, mode, p, rows, events)
        report.events_written = len(events)
    with _timed(report, "save_state"):
        _save_state(path, p, saved)
    return report
