"""Typed wrappers around numba's decorators, so strict mypy keeps the kernels' signatures.

numba ships no type stubs; decorating with it directly makes every kernel `Any`. These
wrappers return the function's own type, which is what the compiled dispatcher accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def njit(func: F) -> F:
    """Compile a serial kernel (cached next to the source)."""
    return cast(F, numba.njit(cache=True, nogil=True)(func))


def njit_parallel(func: F) -> F:
    """Compile a kernel whose outer `prange` loop over tokens runs on all cores."""
    return cast(F, numba.njit(cache=True, nogil=True, parallel=True)(func))


prange: Callable[..., range] = numba.prange
