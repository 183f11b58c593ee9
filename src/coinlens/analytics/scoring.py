"""Scores for quantile forecasts: pinball loss, CRPS from quantiles, coverage, binomial test.

References: pinball (quantile) loss of Koenker & Bassett; CRPS approximated by twice the
mean pinball loss over the predicted levels (Gneiting & Raftery 2007, eq. 21 discretised);
the exact two-sided binomial test equals `scipy.stats.binomtest(k, n, p).pvalue`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

F64 = NDArray[np.float64]


def pinball(y: ArrayLike, q: ArrayLike, levels: Sequence[float]) -> F64:
    """Mean pinball loss per level; y shape (n,), q shape (n, len(levels))."""
    yy = np.asarray(y, dtype=np.float64)[:, None]
    qq = np.asarray(q, dtype=np.float64)
    tau = np.asarray(levels, dtype=np.float64)[None, :]
    diff = yy - qq
    loss = np.maximum(tau * diff, (tau - 1.0) * diff)
    return np.asarray(loss.mean(axis=0), dtype=np.float64)


def crps_from_quantiles(y: ArrayLike, q: ArrayLike, levels: Sequence[float]) -> float:
    """CRPS approximated as 2 × the mean pinball loss over the given levels."""
    return float(2.0 * pinball(y, q, levels).mean())


def skill(score: float, reference: float) -> float:
    """Skill score 1 - score/reference (> 0 means better than the reference)."""
    return 1.0 - score / reference if reference > 0 else float("nan")


def inside(y: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> NDArray[np.bool_]:
    """Which outcomes lie inside [lo, hi]."""
    yy = np.asarray(y, dtype=np.float64)
    return (yy >= np.asarray(lo)) & (yy <= np.asarray(hi))


def coverage(y: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> float:
    """Share of outcomes inside [lo, hi]."""
    hits = inside(y, lo, hi)
    return float(hits.mean()) if hits.size else float("nan")


def binomial_test(k: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial p-value (sum of outcomes no more likely than k)."""
    if n <= 0:
        return float("nan")
    i = np.arange(n + 1, dtype=np.float64)
    logpmf = (
        math.lgamma(n + 1)
        - np.array([math.lgamma(v + 1) for v in i])
        - np.array([math.lgamma(n - v + 1) for v in i])
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
    )
    pmf = np.exp(logpmf)
    return float(min(1.0, pmf[pmf <= pmf[k] * (1 + 1e-7)].sum()))


def directional_accuracy(y: ArrayLike, median: ArrayLike) -> tuple[float, int, int]:
    """Share of non-zero outcomes whose sign the median got right, hits and count."""
    yy, mm = np.asarray(y, dtype=np.float64), np.asarray(median, dtype=np.float64)
    keep = (yy != 0) & (mm != 0)
    hits = int((np.sign(yy[keep]) == np.sign(mm[keep])).sum())
    n = int(keep.sum())
    return (hits / n if n else float("nan")), hits, n


def pit_histogram(y: ArrayLike, q: ArrayLike, levels: Sequence[float]) -> F64:
    """Share of outcomes in each bin between consecutive quantiles (len(levels) + 1 bins)."""
    yy = np.asarray(y, dtype=np.float64)[:, None]
    below = (yy <= np.asarray(q)).sum(axis=1) if len(yy) else np.empty(0, dtype=np.int64)
    counts = np.bincount(len(levels) - below, minlength=len(levels) + 1)
    total = max(1, int(counts.sum()))
    return np.asarray(counts / total, dtype=np.float64)
