"""Point-in-time features and targets for the global quantile forecaster (tokens × days).

Every feature at day t is computed from data at days <= t only (tested by perturbing the
future). Closes are compared in log space; a missing close is forward-filled for the
lookbacks but a day without its own close never becomes a forecast origin. Volatilities are
daily (not annualised) sample standard deviations of log returns, so `sigma * sqrt(h)` is the
random-walk scale of an h-day log return.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

RETURN_LAGS = (1, 3, 7, 14, 30, 90)
VOL_WINDOWS = (7, 30, 90)
SIGMA_FLOOR = 0.005  # a daily vol below 0.5 % (stable-like) would make standardised targets explode
LONG_VOL_DAYS = 365  # the slow vol that the 30-day vol reverts to (see `vol_ratio`)
TOKEN_FEATURES = (
    *(f"ret_{k}d" for k in RETURN_LAGS),
    *(f"vol_{w}d" for w in VOL_WINDOWS),
    "rsi_14",
    "dist_ema20",
    "dist_sma200",
    "drawdown_ath",
    "volume_z30",
    "log_age",
)
MARKET_FEATURES = ("btc_ret_7d", "btc_ret_30d", "btc_vol_30d", "btc_drawdown", "eth_ret_30d")


@dataclass(frozen=True)
class FeaturePanel:
    """Features, names, the log close and the RW scale sigma (tokens × days each).

    `values` is tokens × days × features, or, when `pairs` is set, pairs × features: the
    features of those (token, day) cells only (training reads a sample of cells; the whole
    panel of 10,000 tokens would be ~0.5 GB). Read features with `at`.
    """

    values: NDArray[np.float32]
    names: tuple[str, ...]
    log_close: F64  # log close, forward-filled after listing; NaN before
    observed: NDArray[np.bool_]  # the token has its own close that day
    sigma: F64  # trailing 30-day daily vol (floored; 90-day / 7-day fallbacks)
    vol_ratio: F64  # trailing 365-day vol / sigma, clipped to [0.25, 4]; 1 where unknown
    pairs: I64 | None = None  # ascending flat cells token * days + day that `values` holds

    def at(self, tok: I64, day: I64) -> NDArray[np.float32]:
        """Features of the cells (tok[i], day[i]): len(tok) × features."""
        if self.pairs is None:
            return self.values[tok, day]
        flat = flat_cells(tok, day, self.log_close.shape[1])
        pos = np.minimum(np.searchsorted(self.pairs, flat), max(len(self.pairs) - 1, 0))
        if len(flat) and (len(self.pairs) == 0 or not np.array_equal(self.pairs[pos], flat)):
            raise ValueError("features were not built for some of the requested cells")
        out: NDArray[np.float32] = self.values[pos]
        return out


def flat_cells(tok: I64, day: I64, days: int) -> I64:
    """Cells (tok[i], day[i]) of a tokens × `days` panel as flat indices token * days + day."""
    return np.asarray(tok, dtype=np.int64) * days + day


def split_cells(flat: I64, days: int) -> I64:
    """Flat cells back to (token, day) rows: the inverse of `flat_cells`."""
    out = np.empty((len(flat), 2), dtype=np.int64)
    np.divmod(flat, days, out=(out[:, 0], out[:, 1]))
    return out


def ffill_log_close(close: F64) -> tuple[F64, NDArray[np.bool_]]:
    """Log of the last valid close at or before each day, and where the close is observed."""
    observed = np.isfinite(close) & (close > 0)
    cols = np.where(observed, np.arange(close.shape[1]), -1)
    last = np.maximum.accumulate(cols, axis=1)
    lc = np.log(np.where(observed, close, 1.0))
    out = np.take_along_axis(lc, np.maximum(last, 0), axis=1)
    return np.where(last >= 0, out, np.nan), observed


def _lag(x: F64, k: int) -> F64:
    out = np.full_like(x, np.nan)
    out[:, k:] = x[:, :-k]
    return out


def rolling_std(x: F64, window: int, min_obs: int) -> F64:
    """Sample std (ddof=1) of the finite values among the last `window` (>= min_obs)."""
    ok = np.isfinite(x)
    v = np.where(ok, x, 0.0)

    def wsum(a: F64) -> F64:
        c = np.cumsum(a, axis=1)
        c[:, window:] = c[:, window:] - c[:, :-window].copy()
        return c

    n = wsum(ok.astype(np.float64))
    s1, s2 = wsum(v), wsum(v * v)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (s2 - s1 * s1 / n) / (n - 1)
    return np.where(n >= min_obs, np.sqrt(np.maximum(var, 0.0)), np.nan)


def trailing_sigma(log_ret: F64) -> F64:
    """Daily RW scale: 30-day realised vol, else 90-day, else 7-day; floored at SIGMA_FLOOR."""
    s30 = rolling_std(log_ret, 30, 20)
    s90 = rolling_std(log_ret, 90, 20)
    s7 = rolling_std(log_ret, 7, 5)
    sigma = np.where(np.isfinite(s30), s30, np.where(np.isfinite(s90), s90, s7))
    return np.maximum(sigma, SIGMA_FLOOR)


def long_vol_ratio(log_ret: F64, sigma: F64) -> F64:
    """σ₃₆₅ / σ: how far the slow (365-day, >= 60 % observed) vol is from the 30-day scale.

    Realised vol mean-reverts, so at long horizons the random-walk scale σ√h is improved by
    pulling σ towards the slow vol (GARCH-style mean reversion); 1 where the slow vol is unknown.
    """
    slow = rolling_std(log_ret, LONG_VOL_DAYS, int(LONG_VOL_DAYS * 0.6))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.maximum(slow, SIGMA_FLOOR) / sigma
    return np.clip(np.where(np.isfinite(ratio), ratio, 1.0), 0.25, 4.0)


def _ewm(x: F64, alpha: float, warmup: int) -> F64:
    """Recursive mean m_t = m_{t-1} + alpha (x_t - m_{t-1}) per token, NaN before `warmup` obs.

    Our own loop over days (vectorised across tokens) rather than the TA-Lib-exact kernels:
    features only need a stable point-in-time value, and a missing day just carries m over.
    """
    out = np.full_like(x, np.nan)
    m = np.full(x.shape[0], np.nan)
    count = np.zeros(x.shape[0])
    for j in range(x.shape[1]):
        v = x[:, j]
        ok = np.isfinite(v)
        m = np.where(ok & np.isnan(m), v, m)
        m = np.where(ok, m + alpha * (np.where(ok, v, 0.0) - m), m)
        count += ok
        out[:, j] = np.where(count >= warmup, m, np.nan)
    return out


def wilder_rsi(lc: F64, window: int = 14) -> F64:
    """Wilder's RSI from log closes (gains/losses of the close, smoothed with alpha = 1/n)."""
    price = np.exp(lc)
    diff = price - _lag(price, 1)
    up = _ewm(np.where(np.isfinite(diff), np.maximum(diff, 0.0), np.nan), 1.0 / window, window)
    down = _ewm(np.where(np.isfinite(diff), np.maximum(-diff, 0.0), np.nan), 1.0 / window, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(up + down > 0, 100.0 * up / (up + down), 50.0)


def _sma(x: F64, window: int) -> F64:
    ok = np.isfinite(x)
    c = np.cumsum(np.where(ok, x, 0.0), axis=1)
    n = np.cumsum(ok, axis=1).astype(np.float64)
    c[:, window:] -= c[:, :-window].copy()
    n[:, window:] -= n[:, :-window].copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= window, c / n, np.nan)


def _volume_z(volume: F64) -> F64:
    lv = np.log(np.where(np.isfinite(volume) & (volume > 0), volume, np.nan))
    filled = np.where(np.isfinite(lv), lv, 0.0)
    ok = np.isfinite(lv).astype(np.float64)
    cs, cn = np.cumsum(filled, axis=1), np.cumsum(ok, axis=1)
    cs[:, 30:] -= cs[:, :-30].copy()
    cn[:, 30:] -= cn[:, :-30].copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = cs / cn
        z = (lv - mean) / rolling_std(lv, 30, 10)
    return np.clip(z, -6.0, 6.0)


def _token_features(volume: F64, lc: F64, log_ret: F64) -> Iterator[F64]:
    """The TOKEN_FEATURES panels in order, one at a time."""
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in RETURN_LAGS:
            yield lc - _lag(lc, k)
        for w in VOL_WINDOWS:
            yield rolling_std(log_ret, w, max(5, int(w * 0.6)))
        price = np.exp(lc)
        yield np.where(np.isfinite(lc), wilder_rsi(lc) / 100.0 - 0.5, np.nan)
        yield lc - np.log(_ewm(price, 2.0 / 21.0, 20))
        yield lc - np.log(_sma(price, 200))
        del price
        yield lc - np.fmax.accumulate(np.where(np.isfinite(lc), lc, -np.inf), axis=1)
        yield _volume_z(volume)
        age = np.cumsum(np.isfinite(lc), axis=1).astype(np.float64)
        yield np.where(np.isfinite(lc), np.log1p(age), np.nan)


def _market_rows(close: F64, btc: int, eth: int | None) -> list[F64]:
    """The MARKET_FEATURES series (one value per day, shared by every token)."""
    rows_of = [btc] if eth is None else [btc, eth]
    lc, observed = ffill_log_close(close[rows_of])
    log_ret = _log_returns(lc, observed)
    b = lc[0]
    rows = [
        b - _lag(b[None, :], 7)[0],
        b - _lag(b[None, :], 30)[0],
        rolling_std(log_ret[:1], 30, 20)[0],
        b - np.fmax.accumulate(np.where(np.isfinite(b), b, -np.inf)),
    ]
    if eth is not None:
        e = lc[1]
        rows.append(e - _lag(e[None, :], 30)[0])
    else:
        rows.append(np.full_like(b, np.nan))
    return rows


FEATURE_CHUNK = 1024
"""Tokens whose features are computed at once: every feature is per token (or a shared
market series), so chunks change no value, only the memory (a few panels of one chunk)."""


def _put(dst: NDArray[np.float32], feature: F64) -> None:
    v = np.asarray(feature, dtype=np.float32)
    v[~np.isfinite(v)] = np.nan
    dst[...] = v


def build_features(
    close: F64,
    volume: F64,
    *,
    market_rows: tuple[int, int | None] | None = None,
    extra: Mapping[str, F64] | None = None,
    only: Callable[[FeaturePanel], I64] | None = None,
) -> FeaturePanel:
    """Features at every (token, day) from data <= that day.

    `market_rows` = (BTC row, ETH row or None) adds BTC/ETH market-state features;
    `extra` adds point-in-time panels (e.g. grades) under their names. `only` builds the
    features of some cells only: it is given the panel without features (log close,
    observed, sigma, vol ratio are whole) and returns (token, day) rows; the result holds
    those cells' features (`pairs`), the same values as the whole panel's.
    """
    close = np.asarray(close, dtype=np.float64)
    volume = np.asarray(volume, dtype=np.float64)
    market = [] if market_rows is None else _market_rows(close, *market_rows)
    names = (
        *TOKEN_FEATURES,
        *(MARKET_FEATURES if market_rows is not None else ()),
        *(extra or {}),
    )
    shape = close.shape
    log_close, sigma, vol_ratio = (np.empty(shape) for _ in range(3))
    observed = np.empty(shape, dtype=bool)
    for a in range(0, shape[0], FEATURE_CHUNK):
        rows = slice(a, a + FEATURE_CHUNK)
        log_close[rows], observed[rows] = ffill_log_close(close[rows])
        log_ret = _log_returns(log_close[rows], observed[rows])
        sigma[rows] = trailing_sigma(log_ret)
        vol_ratio[rows] = long_vol_ratio(log_ret, sigma[rows])
    pairs = None
    if only is None:
        values = np.empty((*shape, len(names)), dtype=np.float32)
    else:  # the panel without features, for `only` to pick its cells from
        no_values, no_cells = np.empty((0, len(names)), dtype=np.float32), np.empty(0, np.int64)
        index = FeaturePanel(no_values, names, log_close, observed, sigma, vol_ratio, no_cells)
        cells = np.asarray(only(index), dtype=np.int64).reshape(-1, 2)
        pairs = np.unique(flat_cells(cells[:, 0], cells[:, 1], shape[1]))
        values = np.empty((len(pairs), len(names)), dtype=np.float32)
    for a in range(0, shape[0], FEATURE_CHUNK):
        rows = slice(a, a + FEATURE_CHUNK)
        lc = log_close[rows]
        chunk = (
            values[rows] if pairs is None else np.empty((*lc.shape, len(names)), dtype=np.float32)
        )
        k = 0
        for k, feature in enumerate(
            _token_features(volume[rows], lc, _log_returns(lc, observed[rows]))
        ):
            _put(chunk[:, :, k], feature)
        for series in market:
            k += 1
            _put(chunk[:, :, k], np.broadcast_to(series, lc.shape))
        for panel in (extra or {}).values():
            k += 1
            _put(chunk[:, :, k], np.asarray(panel, dtype=np.float64)[rows])
        if pairs is not None:  # the chunk's cells among `pairs` (ascending: a contiguous run)
            lo, hi = np.searchsorted(pairs, [a * shape[1], (a + lc.shape[0]) * shape[1]])
            cells = split_cells(pairs[lo:hi] - a * shape[1], shape[1])
            values[lo:hi] = chunk[cells[:, 0], cells[:, 1]]
    return FeaturePanel(values, tuple(names), log_close, observed, sigma, vol_ratio, pairs)


def _log_returns(lc: F64, observed: NDArray[np.bool_]) -> F64:
    return np.where(observed, lc - _lag(lc, 1), np.nan)


def log_return_target(log_close: F64, observed: NDArray[np.bool_], horizon: int) -> F64:
    """y[t] = log c[t+h] - log c[t] where both closes are observed, else NaN (evaluation only)."""
    lc = np.where(observed, log_close, np.nan)
    out = np.full_like(lc, np.nan)
    out[:, :-horizon] = lc[:, horizon:] - lc[:, :-horizon]
    return out
