"""Cross-sectional ranking: per-day (column) percentile ranks of a tokens × days panel.

Ranks average ties, as `scipy.stats.rankdata(method="average")`, and run in three passes:

1. each finite (and, with a mask, selected) cell becomes a 64-bit key that sorts like its
   value (IEEE 754 bits with the sign flipped into order) whose lowest bits are replaced by
   the token's row, written day-major (days × tokens);
2. NumPy sorts the keys of every day (its vectorised integer sort is ~10× faster than an
   argsort of the floats);
3. each day's sorted run is read back as (row, value); cells whose keys share the high
   bits but differ in the dropped low bits are put in value order by an insertion sort over
   that (tiny) run, so the order is exact; then ties are averaged.

Non-finite cells rank as missing (NaN out). Keys of missing cells are all ones and sort last.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from coinlens.analytics._jit import njit, run_rows
from coinlens.analytics.indicators import as_panel

F64 = NDArray[np.float64]
B1 = NDArray[np.bool_]
U64 = NDArray[np.uint64]

_MISSING = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


@njit
def _pack_days(a: F64, mask: B1, use_mask: bool, bits: int, keys: U64, c0: int, c1: int) -> None:
    """keys[j, i] for days j in c0..c1: the order key of a[i, j] with row i in its low bits."""
    m = a.shape[0]
    sign = np.uint64(1) << np.uint64(63)
    low = (np.uint64(1) << np.uint64(bits)) - np.uint64(1)
    block = 64
    for i0 in range(0, m, block):  # tiles keep both the row- and the day-major side in cache
        for j in range(c0, c1):
            row = keys[j]
            for i in range(i0, min(i0 + block, m)):
                v = a[i, j]
                if math.isfinite(v) and (not use_mask or mask[i, j]):
                    b = np.float64(v).view(np.uint64)
                    k = (b ^ _MISSING) if (b & sign) else (b | sign)
                    row[i] = (k & ~low) | np.uint64(i)
                else:
                    row[i] = _MISSING


@njit
def _sorted_day(a: F64, keys: U64, j: int, bits: int, rows: NDArray[np.int64], vals: F64) -> int:
    """Rows and values of day j in ascending value order (from its sorted keys); their count."""
    m = keys.shape[1]
    low = (np.uint64(1) << np.uint64(bits)) - np.uint64(1)
    krow = keys[j]
    n = 0
    while n < m and krow[n] != _MISSING:
        rows[n] = np.int64(krow[n] & low)
        vals[n] = a[rows[n], j]
        n += 1
    s = 0
    while s < n:  # runs of equal high bits: order them by the full value
        e = s
        high = krow[s] & ~low
        while e + 1 < n and (krow[e + 1] & ~low) == high:
            e += 1
        for q in range(s + 1, e + 1):
            v, r = vals[q], rows[q]
            p = q - 1
            while p >= s and vals[p] > v:
                vals[p + 1], rows[p + 1] = vals[p], rows[p]
                p -= 1
            vals[p + 1], rows[p + 1] = v, r
        s = e + 1
    return n


@njit
def _rank_days(
    a: F64,
    keys: U64,
    bits: int,
    min_n: int,
    out: F64,
    accumulate: bool,
    counts: F64,
    c0: int,
    c1: int,
) -> None:
    """Percentiles of days c0..c1 into `out` (NaN elsewhere), or added to `out` and `counts`."""
    m = a.shape[0]
    rows = np.empty(m, np.int64)
    vals = np.empty(m)
    for j in range(c0, c1):
        n = _sorted_day(a, keys, j, bits, rows, vals)
        if not accumulate:
            for i in range(m):
                out[i, j] = np.nan
        if n < min_n:
            continue
        k = 0
        while k < n:
            e = k
            while e + 1 < n and vals[e + 1] == vals[k]:
                e += 1
            pct = 50.0 * (k + e) / (n - 1)
            for q in range(k, e + 1):
                if accumulate:
                    out[rows[q], j] += pct
                    counts[rows[q], j] += 1.0
                else:
                    out[rows[q], j] = pct
            k = e + 1


def _sorted_keys(a: F64, mask: B1 | None) -> tuple[U64, int]:
    m, t = a.shape
    bits = max(1, (m - 1).bit_length())
    keys = np.empty((t, m), dtype=np.uint64)
    use = mask is not None
    mk = np.asarray(mask, dtype=bool) if use else np.ones((1, 1), dtype=bool)
    if use and mk.shape != a.shape:
        raise ValueError(f"mask shape {mk.shape} differs from the panel's {a.shape}")
    run_rows(_pack_days, t, a, mk, use, bits, keys)
    keys.sort(axis=1)
    return keys, bits


def _as_input(x: ArrayLike) -> F64:
    """A 2-D float64 view; unlike `as_panel`, a sliced (non-contiguous) panel is not copied:
    the kernels index it as it is, and the grades rank day-range slices of full panels."""
    arr = np.asarray(x, dtype=np.float64)
    return arr if arr.ndim == 2 else as_panel(arr)


def percentile_rank(x: ArrayLike, min_count: int = 2, mask: B1 | None = None) -> F64:
    """Per column (day), the average-rank percentile 0–100 among finite values.

    Equals `100 * (scipy.stats.rankdata(col[finite]) - 1) / (n - 1)` per column; NaN for
    non-finite cells, cells outside `mask` (when given), and columns with fewer than
    `max(min_count, 2)` ranked values.
    """
    a = _as_input(x)
    keys, bits = _sorted_keys(a, mask)
    out = np.empty(a.shape)
    run_rows(_rank_days, a.shape[1], a, keys, bits, max(min_count, 2), out, False, out)
    return out


def add_percentiles(x: F64, total: F64, count: F64, min_count: int, mask: B1 | None) -> None:
    """Add `percentile_rank(x, min_count, mask)` to `total` and 1 to `count` where it is finite.

    The same sums as adding the percentile panels cell by cell, without building them.
    """
    a = _as_input(x)
    keys, bits = _sorted_keys(a, mask)
    run_rows(_rank_days, a.shape[1], a, keys, bits, max(min_count, 2), total, True, count)
