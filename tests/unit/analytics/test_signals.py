"""Signals: documented rule, incremental update equal to full recomputation, change events."""

from __future__ import annotations

import numpy as np
import pytest

from coinlens.analytics import signals
from coinlens.domain.errors import UserInputError

from ._data import Ohlcv, random_walk


def test_signal_values_and_warmup(synth: Ohlcv) -> None:
    panel, _ = signals.compute_signals(synth.high, synth.low, synth.close, synth.volume)

    assert set(np.unique(panel.signal)) <= {-1, 0, 1}
    for i in range(synth.close.shape[0]):
        first = int(np.argmax(np.isfinite(synth.close[i])))
        assert (panel.signal[i, : first + signals.WARMUP_BARS - 1] == 0).all()
        assert np.isnan(panel.score[i, : first + signals.WARMUP_BARS - 1]).all()
    assert np.nanmax(np.abs(panel.score)) <= 1.0


def test_signal_follows_the_rule(real: Ohlcv) -> None:
    panel, _ = signals.compute_signals(real.high, real.low, real.close, real.volume)
    ef, es, rsi, hist, adx, obv, obv_ema, _ = panel.values
    c = real.close

    with np.errstate(invalid="ignore"):
        trend = np.where((c > es) & (ef > es), 1, np.where((c < es) & (ef < es), -1, 0))
        votes = np.sign(hist) + np.sign(rsi - 50) + np.sign(obv - obv_ema)
        agree = sum((np.sign(x) == trend) & (trend != 0) for x in (hist, rsi - 50, obv - obv_ema))
        expected = np.where((adx > 20) & (agree >= 2), trend, 0)
    warm = np.isfinite(panel.score)
    np.testing.assert_array_equal(panel.signal[warm], expected[warm])
    assert np.abs(votes[warm]).max() <= 3
    assert (panel.signal[warm] != 0).any()


def test_incremental_update_equals_full_recomputation() -> None:
    walk = random_walk(40, 260, seed=11)
    hlcv = (walk.high, walk.low, walk.close, walk.volume)
    full, full_state = signals.compute_signals(*hlcv)
    split = 150

    _, state = signals.compute_signals(*(x[:, :split] for x in hlcv))
    for j in range(split, walk.close.shape[1]):
        state, bar = signals.update_signals(state, *(x[:, j] for x in hlcv))
        np.testing.assert_array_equal(bar.signal, full.signal[:, j])
        np.testing.assert_array_equal(bar.values, full.values[:, :, j])

    np.testing.assert_array_equal(state.indicators, full_state.indicators)


def test_update_does_not_mutate_the_previous_state() -> None:
    state = signals.SignalState.empty(3)
    col = np.array([1.0, 2.0, np.nan])

    new, _ = signals.update_signals(state, col, col, col, col)

    assert not state.indicators.any()
    assert new.indicators.any()


def test_update_rejects_wrong_column_length() -> None:
    with pytest.raises(UserInputError):
        signals.update_signals(signals.SignalState.empty(3), *([np.ones(2)] * 4))


def test_signal_changes_lists_each_transition() -> None:
    sig = np.array([[0, 1, 1, 0, -1], [1, 1, 1, 1, 1]], dtype=np.int8)
    close = np.arange(10.0).reshape(2, 5)

    ch = signals.signal_changes(sig, close)

    assert ch.token.tolist() == [0, 0, 0, 1]
    assert ch.t.tolist() == [1, 3, 4, 0]
    assert ch.from_signal.tolist() == [0, 1, 0, 0]
    assert ch.to_signal.tolist() == [1, 0, -1, 1]
    assert ch.price.tolist() == [1.0, 3.0, 4.0, 5.0]
