"""Timing helper shared by the benchmarks."""

from __future__ import annotations

import time

import jax
import numpy as np


def timeit(f, args, repeat):
    """Median wall-clock seconds of ``f(*args)`` (results blocked on) over ``repeat`` calls, after one
    warm-up call (compilation)."""
    jax.block_until_ready(f(*args))
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))
