"""Watching a run of :mod:`jaxsnn.train`: a progress bar and a callback that keeps the best epoch.

:class:`Progress` is the bar / progress lines that :func:`~jaxsnn.train.fit` and
:func:`~jaxsnn.train.sweep` print (to stderr); :class:`KeepBest` is a ``fit`` callback that
keeps (and optionally saves) the parameters of the best epoch by one metric of the per-epoch
record (``train_*``, ``<eval_name>_*``, or metrics a callback of its own adds, e.g. ``val_*``).
"""

from __future__ import annotations

import math
import pathlib
import sys
import time

import numpy as np

from jaxsnn.train.checkpoint import restore_checkpoint, save_checkpoint
from jaxsnn.train.distributed import is_writer, to_host

__all__ = ["Progress", "KeepBest"]


class Progress:
    """A progress bar on a terminal, a line per ~10 % (and at least every 30 s) otherwise.

    ``Progress(total, desc)(done, **metrics)`` after each unit of work; ``enabled=False`` is silent.
    """

    def __init__(self, total: int, desc: str = "", *, enabled: bool = True, stream=None, done: int = 0):
        self.total, self.desc, self.enabled = max(total, 1), desc, enabled
        self.stream = sys.stderr if stream is None else stream
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.t0, self.start, self.last_print, self.last_frac = time.perf_counter(), done, -1.0, -1.0

    def __call__(self, done: int, **metrics) -> None:
        if not self.enabled:
            return
        now, frac = time.perf_counter(), done / self.total
        elapsed = now - self.t0
        rate = (done - self.start) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        info = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        bar = "#" * int(24 * frac) + "." * (24 - int(24 * frac))
        line = f"{self.desc} [{bar}] {done}/{self.total}  {info}  {elapsed:.0f}s, eta {eta:.0f}s"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done >= self.total else ""))
        elif done >= self.total or frac - self.last_frac >= 0.1 or now - self.last_print >= 30:
            self.stream.write(line + "\n")
            self.last_print, self.last_frac = now, frac
        self.stream.flush()


def progress_summary(metrics: dict, eval_name: str) -> dict:
    """What the progress line of ``fit`` and ``sweep`` shows of an epoch's metrics: ``loss`` and
    ``acc`` (training) and ``<eval_name> acc``, those present; arrays (one value per
    configuration of a sweep) averaged."""
    shown = {"train_loss": "loss", "train_acc": "acc", f"{eval_name}_acc": f"{eval_name} acc"}
    return {short: float(np.mean(metrics[k])) for k, short in shown.items() if k in metrics}


class KeepBest:
    """A :func:`~jaxsnn.train.fit` callback that keeps the parameters of the best epoch by one metric.

    ``best = KeepBest("val_acc"); fit(..., callback=best)``, then ``best.params`` and
    ``best.epoch``. Use a metric of held-out data that is not the test set (select on the
    test set and the test accuracy is no longer an estimate). With ``path`` the best
    parameters are written there (atomically) whenever they improve and read back when a
    ``KeepBest`` is made with the same path, so a resumed run keeps its best epoch.

    Args:
      metric: key of the per-epoch record, e.g. ``"eval_acc"`` (the evaluation of ``fit``'s
        ``eval_data``; ``f"{eval_name}_acc"`` with another ``eval_name``) or ``"train_loss"``.
      mode: ``"max"`` or ``"min"``.
      path: optional file for the best parameters.
    """

    def __init__(self, metric: str, mode: str = "max", path=None):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.metric, self.mode = metric, mode
        self.path = None if path is None else pathlib.Path(path)
        self.params, self.epoch, self.value = None, None, None
        saved = restore_checkpoint(self.path) if self.path is not None else None
        if saved is not None:
            self.params, self.epoch, self.value = saved["params"], int(saved["epoch"]), float(saved["value"])

    def _better(self, v) -> bool:
        if self.value is None:
            return True
        return v > self.value if self.mode == "max" else v < self.value

    def __call__(self, state, record) -> None:
        if self.metric not in record:
            raise ValueError(f"metric {self.metric!r} is not among the epoch's metrics {sorted(record)}")
        v = float(record[self.metric])
        if math.isfinite(v) and self._better(v):
            self.params, self.epoch, self.value = to_host(state.params), int(record["epoch"]), v
            if self.path is not None and is_writer():
                save_checkpoint(self.path, dict(params=self.params, epoch=self.epoch, value=self.value))
