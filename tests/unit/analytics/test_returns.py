"""Returns and risk metrics against plain numpy references."""

from __future__ import annotations

import numpy as np

from coinlens.analytics import returns

from ._data import Ohlcv, random_walk


def test_roi_windows_on_gap_free_series() -> None:
    walk = random_walk(3, 400, seed=5, gaps=False)
    c = walk.close

    table = returns.roi_table(c, walk.days)

    np.testing.assert_allclose(table["7d"][:, 7:], c[:, 7:] / c[:, :-7] - 1)
    assert np.isnan(table["7d"][:, :7]).all()
    np.testing.assert_allclose(table["since_listing"], c / c[:, :1] - 1)


def test_ytd_uses_previous_year_end(real: Ohlcv) -> None:
    table = returns.roi_table(real.close, real.days)
    years = real.days.astype("datetime64[D]").astype("datetime64[Y]")
    btc = real.symbols.index("BTC")
    j = len(real.days) - 1
    base_col = int(np.nonzero(years < years[j])[0][-1])

    expected = real.close[btc, j] / real.close[btc, base_col] - 1
    assert np.isclose(table["ytd"][btc, j], expected)


def test_ytd_of_a_token_listed_this_year_starts_at_listing(real: Ohlcv) -> None:
    pepe = real.symbols.index("PEPE")
    table = returns.roi_table(real.close, real.days)
    first = int(np.argmax(np.isfinite(real.close[pepe])))
    j = first + 3
    years = real.days.astype("datetime64[D]").astype("datetime64[Y]")
    if years[j] == years[first]:
        assert np.isclose(table["ytd"][pepe, j], real.close[pepe, j] / real.close[pepe, first] - 1)


def test_drawdowns() -> None:
    c = np.array([[1.0, 2.0, 1.0, np.nan, 3.0, 1.5]])

    dd = returns.drawdown_from_ath(c)
    mdd = returns.max_drawdown(c)

    np.testing.assert_allclose(dd, [[0, 0, -0.5, np.nan, 0, -0.5]])
    np.testing.assert_allclose(mdd, [[0, 0, -0.5, -0.5, -0.5, -0.5]])


def test_rolling_risk_matches_numpy(synth: Ohlcv) -> None:
    risk = returns.rolling_risk(synth.close, window=60, min_obs=30)
    r = returns.simple_returns(synth.close)
    i, j = 1, 300
    w = r[i, j - 59 : j + 1]
    w = w[np.isfinite(w)]

    assert np.isclose(risk.volatility[i, j], w.std(ddof=1) * np.sqrt(365))
    assert np.isclose(risk.sharpe[i, j], w.mean() / w.std(ddof=1) * np.sqrt(365))
    down = np.sqrt(np.mean(np.minimum(w, 0) ** 2))
    assert np.isclose(risk.sortino[i, j], w.mean() / down * np.sqrt(365))


def test_rolling_beta_and_correlation(real: Ohlcv) -> None:
    btc, eth = real.symbols.index("BTC"), real.symbols.index("ETH")
    beta, corr = returns.rolling_beta_corr(real.close, real.close[btc], window=90)
    r = returns.simple_returns(real.close)
    j = 400
    x, y = r[eth, j - 89 : j + 1], r[btc, j - 89 : j + 1]

    assert np.isclose(beta[btc, j], 1.0)
    assert np.isclose(corr[btc, j], 1.0)
    assert np.isclose(corr[eth, j], np.corrcoef(x, y)[0, 1])
    assert np.isclose(beta[eth, j], np.cov(x, y)[0, 1] / np.var(y, ddof=1))


def test_performance_summary() -> None:
    v = np.array([[np.nan, 100.0, 110.0, 99.0, 121.0]])

    perf = returns.performance(v, periods_per_year=365)

    assert np.isclose(perf.total_return[0], 0.21)
    assert np.isclose(perf.cagr[0], 1.21 ** (365 / 3) - 1)
    assert np.isclose(perf.max_drawdown[0], 99 / 110 - 1)
