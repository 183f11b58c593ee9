"""The stored/served backtest payload: its equity curve is rounded, its metrics are not."""

from __future__ import annotations

import numpy as np
import orjson

from coinlens.analytics.backtest import BacktestSummary, backtest_with_state, equity_curve
from coinlens.analytics.signals import compute_signals
from coinlens.services.analytics import DEFAULT_BACKTEST, EQUITY_DECIMALS, backtest_payload


def _walk(n_tokens: int, n_days: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(5)
    close = 50 * np.exp(np.cumsum(rng.normal(0.0005, 0.04, (n_tokens, n_days)), axis=1))
    open_ = np.roll(close, 1, axis=1)
    open_[:, 0] = close[:, 0]
    high, low = np.maximum(open_, close) * 1.01, np.minimum(open_, close) * 0.99
    return open_, high, low, close, rng.lognormal(10, 1, close.shape)


def test_equity_curve_is_rounded_to_its_decimals_and_metrics_are_not() -> None:
    open_, high, low, close, volume = _walk(3, 700)
    days = np.arange(19_000, 19_700, dtype=np.int64)
    sp, _ = compute_signals(high, low, close, volume)
    result, state = backtest_with_state(sp.signal, open_, close)
    summary = BacktestSummary(result.strategy, result.trades, result.buy_hold)
    for i in range(3):
        payload = backtest_payload(days, summary, state, i, DEFAULT_BACKTEST)
        idx, eq, bh = equity_curve(state, i)
        curve = payload["equity"]
        assert curve["days"] == days[idx].tolist()
        for served, exact in ((curve["strategy"], eq), (curve["buy_hold"], bh)):
            np.testing.assert_allclose(served, exact, rtol=0, atol=0.5 * 10.0**-EQUITY_DECIMALS)
            # written as short decimals: no value needs more than EQUITY_DECIMALS decimals
            for text in orjson.dumps(served).decode().strip("[]").split(","):
                assert len(text.partition(".")[2]) <= EQUITY_DECIMALS, text
        assert payload["strategy"]["total_return"] == float(result.strategy.total_return[i])
