"""Training helpers: a train state, jitted steps and whole-epoch programs (optax).

Minimal by design: a step is ``(state, batch) -> (state, metrics)``, pure and jittable, so
it can be scanned over an epoch kept on the device or vmapped over configurations.
"""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import tempfile
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["TrainState", "create_state", "make_train_step", "make_eval_fn", "scan_epoch",
           "atomic_write_bytes", "save_checkpoint", "load_checkpoint", "append_jsonl"]


class TrainState(NamedTuple):
    """Parameters, optimizer state and step counter (a pytree)."""

    params: Any
    opt_state: Any
    step: jax.Array


def create_state(params, tx: optax.GradientTransformation) -> TrainState:
    return TrainState(params, tx.init(params), jnp.zeros((), jnp.int32))


def make_train_step(loss_fn: Callable, tx: optax.GradientTransformation):
    """Build ``step(state, batch) -> (state, metrics)``.

    Args:
      loss_fn: ``loss_fn(params, batch, step) -> (loss, aux_metrics_dict)``; ``step`` (the
        step counter) lets the loss draw per-step randomness with ``jax.random.fold_in``.
      tx: an optax transformation.
    """

    def step(state: TrainState, batch):
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, state.step)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state, state.step + 1), dict(loss=loss, **aux)

    return step


def scan_epoch(step, state: TrainState, batches):
    """Run ``step`` over batches stacked on a leading axis (one compiled program per epoch).

    Returns ``(state, metrics)`` with metrics averaged over the batches.
    """
    state, metrics = jax.lax.scan(step, state, batches)
    return state, jax.tree.map(jnp.mean, metrics)


def make_eval_fn(predict: Callable, batch_size: int = 1000):
    """``evaluate(params, x, y) -> accuracy`` in chunks of ``batch_size`` (host loop, jitted chunks)."""
    chunk = jax.jit(lambda p, x, y: jnp.sum(predict(p, x) == y))

    def evaluate(params, x, y):
        correct = 0
        for i in range(0, len(x), batch_size):
            correct += int(chunk(params, x[i: i + batch_size], y[i: i + batch_size]))
        return correct / len(x)

    return evaluate


# ----------------------------------------------------------------------------------------------
# Files: atomic writes, checkpoints, JSON lines
# ----------------------------------------------------------------------------------------------


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path, tree) -> None:
    """Save a pytree of arrays (converted to numpy) atomically."""
    atomic_write_bytes(path, pickle.dumps(jax.tree.map(lambda x: jax.device_get(x), tree)))


def load_checkpoint(path):
    """Load a pytree saved by :func:`save_checkpoint`, or ``None`` if there is none."""
    path = pathlib.Path(path)
    if not path.exists():
        return None
    with open(path, "rb") as f:
        return pickle.load(f)


def append_jsonl(path, record: dict) -> None:
    """Append one JSON record as a line (one ``write`` call of a complete line)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
