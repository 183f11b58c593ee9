"""Pure, NaN-aware analytics on float64 panels shaped (tokens, time).

No I/O, no clock, no database: every function takes arrays and returns arrays, and each
names the reference it is tested against (TA-Lib, vectorbt, or a plain loop).
"""

from coinlens.analytics._jit import set_threads, threads

__all__ = ["set_threads", "threads"]
