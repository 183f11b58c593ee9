"""The vectorised alert evaluator: every active rule against a new market state, no rule loop.

Rules compile to flat arrays ("metric of token ⋄ threshold"). Threshold rules are grouped by
(metric, op) and sorted by (token, threshold) within a group, so one `np.searchsorted` per
token finds the boundary between thresholds the new value satisfies and those it does not:
a rule holds iff its position lies on the satisfied side of its token's boundary. Moves
(|v − ref| ≥ N), flips (v ≠ ref) and per-rule values (probabilities) are plain gathers.

Pure: NumPy only, no clock (the caller passes `now`), no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
I8 = NDArray[np.int8]
B = NDArray[np.bool_]

# Metrics: columns of MarketState.values (tokens × metrics). PRICE is the live price on a
# tick and the last daily close otherwise (CLOSE); RES/SUP are the stored key levels' prices.
PRICE, CHG_1H, CHG_24H, CHG_7D, TRADER, INVESTOR, SIGNAL, RES, SUP, CLOSE = range(10)
N_METRICS = 10
RULE_VALUE = -1  # the value is per rule (a probability for that rule's target, a level gap)
METRIC_NAMES = (
    "price", "change_1h", "change_24h", "change_7d", "trader", "investor",
    "signal", "resistance", "support", "close",
)  # fmt: skip
# Ops.
ABOVE, BELOW, ABS_ABOVE, MOVE, FLIP = range(5)
_THRESHOLD_OPS = (ABOVE, BELOW, ABS_ABOVE)
# Armed states: -1 not primed yet (first evaluation only records whether the condition holds).
UNPRIMED, DISARMED, ARMED = -1, 0, 1


@dataclass(frozen=True)
class MarketState:
    """The latest value of every metric per token; NaN where unknown. `token_ids` sorted."""

    token_ids: I64
    values: F64  # (tokens, N_METRICS)

    def lookup(self, token_ids: I64) -> tuple[I64, B]:
        """Row of each token id in this state, and whether it is present."""
        pos = np.searchsorted(self.token_ids, token_ids)
        pos = np.minimum(pos, max(len(self.token_ids) - 1, 0))
        found = (
            self.token_ids[pos] == token_ids
            if len(self.token_ids)
            else np.zeros(len(token_ids), bool)
        )
        return pos.astype(np.int64), found


@dataclass
class RuleArrays:
    """Compiled rules, one entry per rule; the mutable state columns are updated in place."""

    rule_id: I64
    token_id: I64
    metric: I8
    op: I8
    threshold: F64
    target: F64  # FLIP: +1 bullish, −1 bearish, 0 any; unused otherwise
    cooldown: F64  # seconds
    expires: F64  # epoch seconds, +inf for none
    armed: I8
    ref: F64  # MOVE: value at (re)arming; FLIP: last seen signal
    last_fired: F64  # epoch seconds, NaN never
    index: dict[tuple[int, int], Group] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rule_id)


@dataclass(frozen=True)
class Group:
    """Threshold rules of one (metric, op), sorted by (token, threshold), with search keys."""

    rows: I64  # positions into RuleArrays, in sorted order
    token_id: I64
    uniq: F64  # sorted unique thresholds of the group
    keys: I64  # token_id · (len(uniq) + 1) + rank(threshold), ascending


@dataclass(frozen=True)
class Evaluation:
    """What an evaluation decided: the rules that fire and the rules whose state changed."""

    fired: I64  # positions into RuleArrays
    changed: I64  # positions whose armed/ref changed (includes fired)
    value: F64  # the value each rule saw (NaN unknown), aligned with RuleArrays


def build_rules(columns: dict[str, Any]) -> RuleArrays:
    """Compile column arrays (rule_id, token_id, metric, op, threshold, target, cooldown,
    expires, armed, ref, last_fired) into RuleArrays with the sorted threshold index."""
    n = len(columns["rule_id"])

    def col(name: str, dtype: Any, default: float = 0.0) -> Any:
        if name not in columns:
            return np.full(n, default, dtype=dtype)
        return np.asarray(columns[name], dtype=dtype)

    rules = RuleArrays(
        rule_id=col("rule_id", np.int64),
        token_id=col("token_id", np.int64),
        metric=col("metric", np.int8),
        op=col("op", np.int8),
        threshold=col("threshold", np.float64),
        target=col("target", np.float64),
        cooldown=col("cooldown", np.float64),
        expires=col("expires", np.float64, np.inf),
        armed=col("armed", np.int8, UNPRIMED),
        ref=col("ref", np.float64, np.nan),
        last_fired=col("last_fired", np.float64, np.nan),
    )
    rules.index = _index(rules)
    return rules


def _index(rules: RuleArrays) -> dict[tuple[int, int], Group]:
    groups: dict[tuple[int, int], Group] = {}
    threshold_rows = np.flatnonzero(np.isin(rules.op, _THRESHOLD_OPS) & (rules.metric >= 0))
    if not len(threshold_rows):
        return groups
    pair = rules.metric[threshold_rows].astype(np.int64) * 8 + rules.op[threshold_rows]
    for code in np.unique(pair):
        rows = threshold_rows[pair == code]
        order = np.lexsort((rules.threshold[rows], rules.token_id[rows]))
        rows = rows[order]
        thr = rules.threshold[rows]
        uniq = np.unique(thr)
        rank = np.searchsorted(uniq, thr)
        keys = rules.token_id[rows] * (len(uniq) + 1) + rank
        groups[(int(code // 8), int(code % 8))] = Group(rows, rules.token_id[rows], uniq, keys)
    return groups


def _group_condition(g: Group, op: int, state: MarketState, metric: int) -> B:
    """The condition of each rule of a group, via one searchsorted per state token."""
    values = state.values[:, metric]
    if op == ABS_ABOVE:
        values = np.abs(values)
    width = len(g.uniq) + 1
    known = np.isfinite(values)
    if op == BELOW:  # v ≤ thr ⇔ rank(thr) ≥ #(uniq < v)
        rank = np.where(known, np.searchsorted(g.uniq, values, "left"), width)
    else:  # v ≥ thr ⇔ rank(thr) < #(uniq ≤ v)
        rank = np.where(known, np.searchsorted(g.uniq, values, "right"), 0)
    boundary = np.searchsorted(g.keys, state.token_ids * width + rank, "left")
    pos, found = state.lookup(g.token_id)
    at = np.arange(len(g.rows))
    inside = at >= boundary[pos] if op == BELOW else at < boundary[pos]
    return inside & found


def rule_values(rules: RuleArrays, state: MarketState, per_rule: F64 | None = None) -> F64:
    """The value each rule's metric has in `state` (NaN if unknown)."""
    pos, found = state.lookup(rules.token_id)
    metric = np.maximum(rules.metric, 0).astype(np.int64)
    out = np.where(found, state.values[pos, metric], np.nan)
    if per_rule is not None:
        out = np.where(rules.metric == RULE_VALUE, per_rule, out)
    else:
        out[rules.metric == RULE_VALUE] = np.nan
    return np.asarray(out, dtype=np.float64)


def conditions(rules: RuleArrays, state: MarketState, value: F64) -> B:
    """Whether each rule's condition holds now (False where its value is unknown)."""
    cond = np.zeros(len(rules), dtype=bool)
    for (metric, op), g in rules.index.items():
        cond[g.rows] = _group_condition(g, op, state, metric)
    per_rule = rules.metric == RULE_VALUE
    with np.errstate(invalid="ignore"):
        cond |= per_rule & (rules.op == ABOVE) & (value >= rules.threshold)
        cond |= per_rule & (rules.op == BELOW) & (value <= rules.threshold)
        moved = np.abs(value - rules.ref) >= rules.threshold
        cond |= (rules.op == MOVE) & moved
        flipped = (value != rules.ref) & ((rules.target == 0) | (value == rules.target))
        cond |= (rules.op == FLIP) & np.isfinite(rules.ref) & flipped
    return cond & np.isfinite(value)


def evaluate(
    rules: RuleArrays, state: MarketState, now: float, per_rule: F64 | None = None
) -> Evaluation:
    """Decide which rules fire at `now` (epoch s) and update armed/ref/last_fired in place."""
    value = rule_values(rules, state, per_rule)
    known = np.isfinite(value)
    cond = conditions(rules, state, value)
    with np.errstate(invalid="ignore"):
        cooling = (now - rules.last_fired) < rules.cooldown
    eligible = known & (rules.expires > now) & ~cooling
    crossing = np.isin(rules.op, _THRESHOLD_OPS) | (rules.metric == RULE_VALUE)
    edge = (rules.op == MOVE) | (rules.op == FLIP)
    fire = eligible & cond & ((crossing & (rules.armed == ARMED)) | (edge & ~crossing))
    fire &= ~((rules.op == MOVE) & ~np.isfinite(rules.ref))

    new_armed = rules.armed.copy()
    new_armed[crossing & known & ~cond] = ARMED
    new_armed[crossing & known & cond & (rules.armed == UNPRIMED)] = DISARMED
    new_armed[fire & crossing] = DISARMED
    new_armed[edge & known] = ARMED
    new_ref = rules.ref.copy()
    # A flip re-bases on every evaluation except one the cooldown holds back: the reference
    # stays at the signal before the flip, so the flip fires once the cooldown ends if the
    # signal has not flipped back (as a held-back crossing or move does) instead of being lost.
    held = cond & cooling & (rules.expires > now)
    take_ref = ((rules.op == MOVE) & known & (fire | ~np.isfinite(rules.ref))) | (
        (rules.op == FLIP) & known & ~held
    )
    new_ref[take_ref] = value[take_ref]

    ref_changed = take_ref & (new_ref != rules.ref)
    changed = (new_armed != rules.armed) | ref_changed | fire
    rules.armed, rules.ref = new_armed, new_ref
    rules.last_fired = np.where(fire, now, rules.last_fired)
    return Evaluation(
        fired=np.flatnonzero(fire).astype(np.int64),
        changed=np.flatnonzero(changed).astype(np.int64),
        value=value,
    )


def evaluate_naive(rules: RuleArrays, state: MarketState, now: float) -> list[int]:
    """Reference: the same decision with a Python loop over rules (for tests and the bench)."""
    rows = {int(t): i for i, t in enumerate(state.token_ids)}
    fired = []
    for j in range(len(rules)):
        row = rows.get(int(rules.token_id[j]))
        metric, op = int(rules.metric[j]), int(rules.op[j])
        v = float(state.values[row, metric]) if row is not None and metric >= 0 else np.nan
        if v != v or rules.expires[j] <= now or (now - rules.last_fired[j]) < rules.cooldown[j]:
            continue
        thr, ref = float(rules.threshold[j]), float(rules.ref[j])
        if op == ABOVE:
            cond = v >= thr
        elif op == BELOW:
            cond = v <= thr
        elif op == ABS_ABOVE:
            cond = abs(v) >= thr
        elif op == MOVE:
            cond = ref == ref and abs(v - ref) >= thr
        else:
            cond = ref == ref and v != ref and (rules.target[j] in (0.0, v))
        armed_ok = op in (MOVE, FLIP) or rules.armed[j] == ARMED
        if cond and armed_ok:
            fired.append(j)
    return fired
