"""Timing helper shared by the benchmarks."""

from __future__ import annotations

import os
import sys
import time

import jax
import numpy as np


def timings(f, args, repeat):
    """Wall-clock seconds of ``repeat`` calls of ``f(*args)`` (results blocked on), after one
    warm-up call (compilation)."""
    jax.block_until_ready(f(*args))
    return _calls(f, args, repeat)


def interleaved_timings(f, args, repeat, g, g_args, g_repeat, rounds=5):
    """:func:`timings` of ``f`` and of a reference ``g``, taken in ``rounds`` alternating rounds
    (``repeat / rounds`` calls of ``f``, then ``g_repeat / rounds`` of ``g``), so that both see the
    same state of a shared machine: a ratio of medians then does not hinge on when a
    millisecond-scale reference happened to be timed. Returns ``(f_seconds, g_seconds)``."""
    jax.block_until_ready(f(*args))
    jax.block_until_ready(g(*g_args))
    tf, tg = [], []
    for _ in range(rounds):
        tf.append(_calls(f, args, max(1, repeat // rounds)))
        tg.append(_calls(g, g_args, max(1, g_repeat // rounds)))
    return np.concatenate(tf), np.concatenate(tg)


def _calls(f, args, n):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t0)
    return np.asarray(ts)


def timeit(f, args, repeat):
    """Median of :func:`timings`."""
    return float(np.median(timings(f, args, repeat)))


KEEP_FREED_MEMORY = dict(MALLOC_MMAP_THRESHOLD_="1073741824", MALLOC_TRIM_THRESHOLD_="4294967296",
                         MALLOC_TOP_PAD_="536870912")
"""glibc ``malloc`` settings that keep freed memory in the process instead of returning it to the
OS: without them every step's large temporaries (tens of MB) come back as fresh pages, and each
page is faulted in again when first written (on this machine 16-23 ms of a 76-92 ms DLIF step)."""


def keep_freed_memory():
    """Re-execute this Python process with :data:`KEEP_FREED_MEMORY` in its environment, unless it
    is there already (glibc reads the settings at start-up, so they cannot be set later)."""
    if all(os.environ.get(k) == v for k, v in KEEP_FREED_MEMORY.items()):
        return
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **KEEP_FREED_MEMORY})
