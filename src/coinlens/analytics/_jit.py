"""Typed wrappers around numba's decorators, and the thread dispatcher for row kernels.

numba ships no type stubs; decorating with it directly makes every kernel `Any`. These
wrappers return the function's own type, which is what the compiled dispatcher accepts.

Hot panels use plain `nogil` row kernels (`kernel(*args, r0, r1)` computes rows r0..r1)
run by `run_rows` on a thread pool created per call: they compile several times faster
than `parallel=True` kernels, and a per-call pool is safe across `fork`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])

_threads = os.cpu_count() or 1  # set_threads changes it
MIN_ROWS_PER_THREAD = 64  # below this a thread costs more than it saves
CHUNKS_PER_THREAD = 4  # small chunks even out busy cores and gappy tokens


def njit(func: F) -> F:
    """Compile a serial kernel (cached next to the source)."""
    return cast(F, numba.njit(cache=True, nogil=True)(func))


def njit_ieee(func: F) -> F:
    """Compile a serial kernel whose float division follows IEEE 754 like NumPy.

    x / 0 gives ±inf or NaN instead of raising ZeroDivisionError, which also drops the
    zero check numba's default error model puts before every division.
    """
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy")(func))


def njit_parallel(func: F) -> F:
    """Compile a kernel whose outer `prange` loop over tokens runs on all cores."""
    return cast(F, numba.njit(cache=True, nogil=True, parallel=True)(func))


prange: Callable[..., range] = numba.prange


def set_threads(n: int | None) -> None:
    """Threads `run_rows` kernels use in this process (None: every core).

    numba's own `prange` kernels follow NUMBA_NUM_THREADS instead (set it in the
    environment): touching numba's threading layer here would start it in a process that
    Celery's prefork pool then forks, and OpenMP does not survive a fork.
    """
    global _threads
    _threads = max(1, n) if n else os.cpu_count() or 1


def threads() -> int:
    """The thread count set by `set_threads`."""
    return _threads


def run_rows(kernel: Callable[..., None], n_rows: int, *args: object) -> None:
    """Call `kernel(*args, r0, r1)` over row chunks covering 0..n_rows, on all cores."""
    n_threads = min(_threads, n_rows // MIN_ROWS_PER_THREAD)
    if n_threads <= 1:
        kernel(*args, 0, n_rows)
        return
    n_chunks = n_threads * CHUNKS_PER_THREAD
    bounds = [n_rows * k // n_chunks for k in range(n_chunks + 1)]
    with ThreadPoolExecutor(n_threads) as pool:
        futures = [pool.submit(kernel, *args, bounds[k], bounds[k + 1]) for k in range(n_chunks)]
        for fut in futures:
            fut.result()
