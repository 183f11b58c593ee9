"""The vectorised evaluator decides exactly what the per-rule reference loop decides."""

from __future__ import annotations

import numpy as np
import pytest

from coinlens.alerts import evaluate as ev


def _state(prices: dict[int, float], signal: dict[int, float] | None = None) -> ev.MarketState:
    ids = np.array(sorted(prices), dtype=np.int64)
    values = np.full((len(ids), ev.N_METRICS), np.nan)
    values[:, ev.PRICE] = [prices[i] for i in ids]
    if signal:
        values[:, ev.SIGNAL] = [signal.get(int(i), np.nan) for i in ids]
    return ev.MarketState(ids, values)


def _random_case(seed: int, n_rules: int = 3000, n_tokens: int = 50):
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n_tokens + 1, dtype=np.int64) * 7
    values = rng.normal(0, 1, (n_tokens, ev.N_METRICS))
    values[rng.random(values.shape) < 0.05] = np.nan
    values[:, ev.SIGNAL] = rng.integers(-1, 2, n_tokens)
    op = rng.integers(0, 5, n_rules)
    metric = np.where(op == ev.FLIP, ev.SIGNAL, rng.integers(0, ev.N_METRICS, n_rules))
    cols = {
        "rule_id": np.arange(n_rules),
        "token_id": rng.choice(np.append(ids, 999_999), n_rules),  # some unknown tokens
        "metric": metric,
        "op": op,
        "threshold": np.round(rng.normal(0, 1, n_rules), 1),  # many equal thresholds
        "target": rng.integers(-1, 2, n_rules),
        "cooldown": rng.choice([0.0, 100.0], n_rules),
        "expires": rng.choice([np.inf, 50.0], n_rules),
        "armed": rng.choice([ev.ARMED, ev.DISARMED], n_rules),
        "ref": np.where(rng.random(n_rules) < 0.8, rng.integers(-1, 2, n_rules), np.nan),
        "last_fired": rng.choice([np.nan, 0.0, 90.0], n_rules),
    }
    return ev.build_rules(cols), ev.MarketState(ids, values)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vectorised_matches_the_per_rule_loop(seed: int) -> None:
    rules, state = _random_case(seed)
    expected = ev.evaluate_naive(rules, state, now=120.0)
    got = ev.evaluate(rules, state, now=120.0)
    assert len(expected) > 100
    assert got.fired.tolist() == expected


def test_fires_once_per_crossing_and_rearms_after_reset() -> None:
    rules = ev.build_rules(
        {"rule_id": [1], "token_id": [5], "metric": [ev.PRICE], "op": [ev.ABOVE],
         "threshold": [100.0]}
    )  # fmt: skip
    seen = []
    for t, price in enumerate([90, 101, 105, 99, 102, 103]):
        seen.append(len(ev.evaluate(rules, _state({5: price}), now=float(t)).fired))
    # primed below, crosses (fires), stays above (silent), resets, crosses again (fires)
    assert seen == [0, 1, 0, 0, 1, 0]


def test_already_true_at_first_sight_does_not_fire() -> None:
    rules = ev.build_rules(
        {"rule_id": [1], "token_id": [5], "metric": [ev.PRICE], "op": [ev.BELOW],
         "threshold": [100.0]}
    )  # fmt: skip
    assert len(ev.evaluate(rules, _state({5: 50}), now=0.0).fired) == 0
    assert rules.armed[0] == ev.DISARMED


def test_cooldown_holds_a_second_crossing_back() -> None:
    rules = ev.build_rules(
        {"rule_id": [1], "token_id": [5], "metric": [ev.PRICE], "op": [ev.ABOVE],
         "threshold": [100.0], "cooldown": [60.0], "armed": [ev.ARMED]}
    )  # fmt: skip
    fired = [len(ev.evaluate(rules, _state({5: p}), now=t).fired)
             for t, p in [(0, 101), (10, 99), (20, 101), (61, 101)]]  # fmt: skip
    assert fired == [1, 0, 0, 1]


def test_move_and_flip_are_edges_from_the_reference() -> None:
    rules = ev.build_rules(
        {"rule_id": [1, 2], "token_id": [5, 5], "metric": [ev.PRICE, ev.SIGNAL],
         "op": [ev.MOVE, ev.FLIP], "threshold": [10.0, 0.0], "target": [0.0, 1.0]}
    )  # fmt: skip
    steps = [(50, -1), (55, 1), (61, 1), (52, -1), (50, 1)]
    fired = [ev.evaluate(rules, _state({5: p}, {5: s}), now=float(t)).fired.tolist()
             for t, (p, s) in enumerate(steps)]  # fmt: skip
    assert fired == [[], [1], [0], [], [0, 1]]


def test_expired_and_unknown_token_rules_never_fire() -> None:
    rules = ev.build_rules(
        {"rule_id": [1, 2], "token_id": [5, 6], "metric": [ev.PRICE, ev.PRICE],
         "op": [ev.ABOVE, ev.ABOVE], "threshold": [1.0, 1.0], "expires": [10.0, np.inf],
         "armed": [ev.ARMED, ev.ARMED]}
    )  # fmt: skip
    assert ev.evaluate(rules, _state({5: 2.0}), now=20.0).fired.tolist() == []


def test_a_flip_during_the_cooldown_is_held_back_not_lost() -> None:
    rules = ev.build_rules(
        {"rule_id": [1], "token_id": [5], "metric": [ev.SIGNAL], "op": [ev.FLIP],
         "threshold": [0.0], "target": [0.0], "cooldown": [60.0]}
    )  # fmt: skip
    steps = [(0, 0), (1, 1), (10, 0), (30, 0), (61, 0), (62, 0), (70, 1), (80, 0), (200, 0)]
    fired = [len(ev.evaluate(rules, _state({5: 1.0}, {5: s}), now=float(t)).fired)
             for t, s in steps]  # fmt: skip
    # flat→long fires; long→flat inside the cooldown waits and fires at its end (once, from
    # long); flat→long→flat inside the next cooldown nets to no change: nothing more fires
    assert fired == [0, 1, 0, 0, 1, 0, 0, 0, 0]
    assert rules.ref[0] == 0.0
