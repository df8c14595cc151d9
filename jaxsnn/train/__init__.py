"""Training, vmapped hyperparameter sweeps, data/sweep parallelism and resumable checkpoints.

    task = train.Task(init=..., loss=..., optimizer=lambda hp: optax.adam(hp["lr"]), evaluate=...)
    run = train.fit(task, (x, y), {"lr": 1e-2}, seed=0, epochs=20, batch_size=50, eval_data=(xv, yv))
    res = train.sweep(task, (x, y), train.grid(seed=[0, 1], lr=[1e-2, 3e-3]), epochs=20, batch_size=50)

The public names below are re-exported from the modules of this package:

- :mod:`jaxsnn.train.core`: one run: :class:`Task`, :class:`TrainState`, the step, epoch and
  evaluation programs, :func:`fit` (how runs derive their randomness from the seed, and how
  evaluation metrics are named: ``eval_*``, or ``<eval_name>_*``).
- :mod:`jaxsnn.train.sweeps`: many runs: :func:`grid`, :func:`unstack`, the vmapped :func:`sweep`.
- :mod:`jaxsnn.train.checkpoint`: atomic writes, checkpoints, the one resume routine of
  ``fit`` and ``sweep`` (``resume_checkpoint``), results as JSON lines / CSV.
- :mod:`jaxsnn.train.distributed`: CPU devices, meshes, data parallelism, several hosts.
- :mod:`jaxsnn.train.callbacks`: :class:`Progress` and :class:`KeepBest`.
"""

from jaxsnn.train.callbacks import KeepBest, Progress
from jaxsnn.train.checkpoint import (
    atomic_write_bytes,
    atomic_write_text,
    restore_checkpoint,
    save_checkpoint,
    write_csv,
    write_jsonl,
)
from jaxsnn.train.core import (
    FitResult,
    Task,
    TrainState,
    clear_compiled,
    epoch_permutation,
    evaluate,
    fit,
    init_state,
    train_epoch,
    train_step,
)
from jaxsnn.train.distributed import initialize_distributed, make_mesh, use_cpu_devices
from jaxsnn.train.sweeps import SweepResult, grid, sweep, unstack

__all__ = [
    "Task", "TrainState", "FitResult", "SweepResult",
    "init_state", "train_step", "train_epoch", "evaluate", "epoch_permutation",
    "fit", "sweep", "grid", "unstack", "clear_compiled",
    "make_mesh", "use_cpu_devices", "initialize_distributed",
    "Progress", "KeepBest", "atomic_write_bytes", "atomic_write_text", "save_checkpoint", "restore_checkpoint",
    "write_jsonl", "write_csv",
]
