"""One run of :mod:`jaxsnn.train`: the task, the training state, steps, epochs, evaluation, ``fit``.

Everything a run needs is a :class:`Task`: four pure functions of ``(params, batch, key,
hparams)``. ``hparams`` is a pytree of *traced* scalars (learning rate, threshold, time
constant, dt, surrogate slope, ...), so that one compiled program trains any configuration,
and ``jax.vmap`` over a stacked ``hparams`` (and over seeds) trains many at once
(:func:`~jaxsnn.train.sweep`):

    task = train.Task(init=..., loss=..., optimizer=lambda hp: optax.adam(hp["lr"]), evaluate=...)
    run = train.fit(task, (x, y), {"lr": 1e-2}, seed=0, epochs=20, batch_size=50, eval_data=(xv, yv))

Randomness is derived from the seed only: ``key = PRNGKey(seed)``; parameters are initialized
with ``fold_in(key, 0)``, the loss of step ``s`` gets ``fold_in(fold_in(key, 1), s)`` and epoch
``e`` visits the data in the order ``permutation(fold_in(fold_in(key, 2), e), n)``. A run is
therefore a pure function of (task, data, hparams, seed): ``sweep`` row ``i`` equals
:func:`fit` of configuration ``i``, a resumed run equals an uninterrupted one, and a run
sharded over devices equals the single-device run (up to the order of floating-point sums)
when its loss draws no random numbers (with a mesh, device ``d`` draws from
``fold_in(key, d)``; see :mod:`jaxsnn.train.distributed`).

The evaluation metrics of ``eval_data`` are reported as ``<eval_name>_<metric>``
(``eval_name="eval"`` by default: ``eval_acc``, ...); pass ``eval_name="test"`` when the
evaluated data is the test set, ``"val"`` for a validation split.
"""

from __future__ import annotations

import functools
import json
import pathlib
import sys
import time
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxsnn._internal import fail
from jaxsnn._vma import vary_like
from jaxsnn.train.callbacks import Progress, progress_summary
from jaxsnn.train.checkpoint import checkpoint_path, resume_checkpoint, run_fingerprint, save_checkpoint, write_jsonl
from jaxsnn.train.distributed import data_parallel_grads, is_writer, mesh_axis, place, to_host

__all__ = ["Task", "TrainState", "FitResult", "init_state", "train_step", "epoch_permutation", "train_epoch",
           "evaluate", "fit", "clear_compiled"]


# ----------------------------------------------------------------------------------------------
# Task and state
# ----------------------------------------------------------------------------------------------


class Task(NamedTuple):
    """What to train, as pure functions (closures over static choices such as layer sizes).

    Attributes:
      init: ``init(key, hparams) -> params``.
      loss: ``loss(params, batch, key, hparams) -> (scalar loss, dict of scalar metrics)``;
        ``key`` is a fresh key for this step (dropout, noise); the metrics are averaged over
        the epoch and reported with the prefix ``train_``. Data-parallel training (a mesh)
        averages the loss, metrics and gradients of the devices' shares of the batch: exact for
        a mean over samples plus terms of the parameters alone.
      optimizer: ``optimizer(hparams) -> optax.GradientTransformation``; called inside the
        traced program, so a learning rate in ``hparams`` may be traced (vmapped).
      evaluate: optional ``evaluate(params, batch, hparams) -> dict of per-sample means``
        (accuracy, spikes per sample, ...), computed on ``eval_data`` after every epoch in
        chunks and reported with the prefix ``eval_`` (``<eval_name>_`` with the ``eval_name``
        argument of :func:`fit` and :func:`~jaxsnn.train.sweep`).
    """

    init: Callable
    loss: Callable
    optimizer: Callable
    evaluate: Optional[Callable] = None


class TrainState(NamedTuple):
    """Parameters, optimizer state, step counter and the run's key (a pytree)."""

    params: Any
    opt_state: Any
    step: jax.Array
    key: jax.Array


def as_hparams(hparams):
    """``hparams`` (a pytree of scalars, or ``None``) as JAX arrays, as the task's functions get them."""
    return jax.tree.map(jnp.asarray, {} if hparams is None else hparams)


def init_state(task: Task, hparams, seed) -> TrainState:
    """The initial state of the run with this ``seed`` (an int, possibly traced).

    ``hparams``: a pytree of scalars, e.g. a plain dict ``{"lr": 1e-2}`` (converted to JAX
    arrays, as :func:`fit` gives them to the task), or ``None``.
    """
    hparams = as_hparams(hparams)
    key = jax.random.PRNGKey(seed)
    params = task.init(jax.random.fold_in(key, 0), hparams)
    opt_state = task.optimizer(hparams).init(params)
    return TrainState(params, opt_state, jnp.zeros((), jnp.int32), key)


def _loss_and_grads(task: Task, params, batch, key, hparams):
    (loss, aux), grads = jax.value_and_grad(task.loss, has_aux=True)(params, batch, key, hparams)
    return loss, aux, grads


def train_step(task: Task, state: TrainState, batch, hparams, mesh: Optional[Mesh] = None):
    """One optimizer step: ``(state, metrics)`` with ``metrics = {"loss": ..., **aux}``.

    With a one-axis ``mesh`` the step is data-parallel (see :mod:`jaxsnn.train.distributed`):
    the batch (leading axis a multiple of the mesh size) is split over the devices.
    """
    key = jax.random.fold_in(jax.random.fold_in(state.key, 1), state.step)
    if mesh is None:
        loss, aux, grads = _loss_and_grads(task, state.params, batch, key, hparams)
    else:
        loss, aux, grads = data_parallel_grads(functools.partial(_loss_and_grads, task), mesh, state.params,
                                                batch, key, hparams)
    updates, opt_state = task.optimizer(hparams).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(params, opt_state, state.step + 1, state.key), dict(loss=loss, **aux)


def epoch_permutation(key, epoch, n: int):
    """The order in which epoch ``epoch`` of a run with key ``key`` visits ``n`` samples."""
    return jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, 2), epoch), n)


def num_samples(data) -> int:
    """The length of the leading (sample) axis of a data pytree."""
    return jax.tree.leaves(data)[0].shape[0]


def train_epoch(task: Task, state: TrainState, data, hparams, *, batch_size: int, mesh: Optional[Mesh] = None):
    """One epoch over ``data`` (a pytree of arrays with a leading sample axis) in one program.

    The epoch index is ``state.step // (n // batch_size)``; its permutation (see
    :func:`epoch_permutation`) is applied on the device and ``lax.scan`` runs the steps. The
    last incomplete batch is dropped. With a one-axis ``mesh`` every step is data-parallel over
    its devices (:func:`train_step`). Returns ``(state, mean metrics)``.
    """
    n = num_samples(data)
    nb = n // batch_size
    if nb == 0:
        raise ValueError(f"batch_size={batch_size} is larger than the dataset ({n} samples)")
    perm = epoch_permutation(state.key, state.step // nb, n)[: nb * batch_size]
    batches = jax.tree.map(lambda a: jnp.take(a, perm, axis=0).reshape((nb, batch_size) + a.shape[1:]), data)
    if mesh is not None:
        batches = jax.lax.with_sharding_constraint(batches, NamedSharding(mesh, P(None, mesh_axis(mesh))))
    state, metrics = jax.lax.scan(lambda s, b: train_step(task, s, b, hparams, mesh), state, batches)
    return state, jax.tree.map(jnp.mean, metrics)


def evaluate(task: Task, params, data, hparams, *, batch_size: int = 1000, mesh: Optional[Mesh] = None):
    """``task.evaluate`` over all of ``data`` in chunks of ``batch_size`` (jittable).

    ``task.evaluate`` returns per-sample means; chunks are weighted by their size, so the
    result is the mean over every sample (none dropped). With a one-axis ``mesh`` the samples
    are split evenly over its devices (each evaluates its share in chunks; the fewer than
    ``mesh.size`` samples left over are evaluated on every device).
    """
    n = num_samples(data)
    split = 0 if mesh is None else (n // mesh.size) * mesh.size  # samples shared out evenly
    if split == 0:
        return _evaluate_chunks(task, params, data, hparams, batch_size)
    axis = mesh_axis(mesh)

    def per_device(params, part, hparams):
        return jax.lax.pmean(_evaluate_chunks(task, vary_like(params, part), part, hparams, batch_size), axis)

    head = jax.tree.map(lambda a: a[:split], data)
    total = jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(axis), P()), out_specs=P())(params, head, hparams)
    if split < n:
        tail = _evaluate_chunks(task, params, jax.tree.map(lambda a: a[split:], data), hparams, batch_size)
        total = jax.tree.map(lambda h, t: (h * split + t * (n - split)) / n, total, tail)
    return total


def _evaluate_chunks(task: Task, params, data, hparams, batch_size: int):
    n = num_samples(data)
    bs = min(batch_size, n)
    nb, full = n // bs, (n // bs) * bs
    head = jax.tree.map(lambda a: a[:full].reshape((nb, bs) + a.shape[1:]), data)
    per_chunk = jax.lax.map(lambda b: task.evaluate(params, b, hparams), head)
    total = jax.tree.map(lambda v: jnp.sum(v, axis=0) * bs, per_chunk)
    if full < n:
        tail = task.evaluate(params, jax.tree.map(lambda a: a[full:], data), hparams)
        total = jax.tree.map(lambda s, v: s + v * (n - full), total, tail)
    return jax.tree.map(lambda s: s / n, total)


# ----------------------------------------------------------------------------------------------
# Compiled programs (cached) and checks, shared by fit and sweep
# ----------------------------------------------------------------------------------------------

_PROGRAM_CACHES = []


def cached_programs(build: Callable) -> Callable:
    """``functools.lru_cache(maxsize=32)`` of a builder of compiled programs, emptied by :func:`clear_compiled`."""
    build = functools.lru_cache(maxsize=32)(build)
    _PROGRAM_CACHES.append(build)
    return build


def clear_compiled() -> None:
    """Forget the compiled programs of :func:`fit` and :func:`~jaxsnn.train.sweep`.

    Both keep their programs per (task, batch sizes, mesh), so that runs in a loop compile
    once; afterwards the next run compiles again (e.g. to time compilation, or to free the
    memory of tasks no longer used).
    """
    for cache in _PROGRAM_CACHES:
        cache.cache_clear()


def check_eval_name(eval_name) -> None:
    """``eval_name`` must be a non-empty string other than ``"train"`` (metrics would collide)."""
    if not isinstance(eval_name, str) or not eval_name or eval_name == "train":
        raise fail("eval_name", "a non-empty name other than 'train' (the prefix of the evaluation metrics)",
                   repr(eval_name))


# ----------------------------------------------------------------------------------------------
# One run
# ----------------------------------------------------------------------------------------------


class FitResult(NamedTuple):
    """``state``: the final :class:`TrainState`; ``history``: one dict of metrics per epoch."""

    state: TrainState
    history: list


def _record(epoch, train_metrics, eval_metrics, seconds, eval_name: str):
    rec = {"epoch": epoch}
    rec.update({f"train_{k}": float(v) for k, v in train_metrics.items()})
    rec.update({f"{eval_name}_{k}": float(v) for k, v in eval_metrics.items()})
    rec["seconds"] = round(seconds, 3)
    return rec


@cached_programs
def _fit_programs(task: Task, batch_size: int, eval_batch_size: int, mesh: Optional[Mesh]) -> dict:
    """The compiled programs of :func:`fit`, cached so that runs in a loop compile once."""
    replicated = None if mesh is None else NamedSharding(mesh, P())
    return dict(
        init=jax.jit(lambda h, seed: init_state(task, h, seed), out_shardings=replicated),
        epoch=jax.jit(lambda s, d, h: train_epoch(task, s, d, h, batch_size=batch_size, mesh=mesh), donate_argnums=0),
        evaluate=jax.jit(lambda p, d, h: evaluate(task, p, d, h, batch_size=eval_batch_size, mesh=mesh)),
        step=jax.jit(lambda s, b, h: train_step(task, s, b, h, mesh), donate_argnums=0),
        permutation=jax.jit(epoch_permutation, static_argnums=2),
    )


def fit(task: Task, train_data, hparams=None, *, seed: int = 0, epochs: int, batch_size: int,
        eval_data=None, eval_batch_size: int = 1000, eval_name: str = "eval", epoch_in_jit: bool = True,
        mesh: Optional[Mesh] = None, out=None, resume: bool = True, progress: bool = True,
        checkpoint_format: str = "msgpack",
        callback: Optional[Callable] = None) -> FitResult:
    """Train one configuration for ``epochs`` epochs; resumable.

    Args:
      task: the :class:`Task`.
      train_data: pytree of host or device arrays with a leading sample axis, e.g. ``(x, y)``.
      hparams: pytree of scalars given (traced) to the task's functions.
      seed: the run's seed; the run is a deterministic function of it.
      epochs, batch_size: the last incomplete batch of an epoch is dropped.
      eval_data: evaluated with ``task.evaluate`` after every epoch (metrics ``<eval_name>_*``).
      eval_name: the prefix of the evaluation metrics: ``"eval"`` (``eval_acc``, ...) by
        default; ``"test"`` when ``eval_data`` is the test set, ``"val"`` for a validation split.
      epoch_in_jit: keep the data on the device and run each epoch as one program (fast for
        data that fits); ``False`` streams host batches to a jitted step (same batches, same
        result up to floating-point rounding).
      mesh: a one-axis :class:`~jax.sharding.Mesh` for data parallelism: every batch is split
        over its axis (``batch_size`` must be a multiple of its size), each device computing
        the loss and gradient of its share (see :mod:`jaxsnn.train.distributed`); parameters
        replicated; the evaluation is split too. On a CPU,
        :func:`~jaxsnn.train.use_cpu_devices` makes one device per core.
      out: folder for ``checkpoint.msgpack`` and ``metrics.jsonl``, both written atomically
        after every epoch; with ``resume`` a rerun continues after the last saved epoch (and
        refuses a checkpoint made with other hyperparameters, seed or batch size, or one that
        cannot be read).
      progress: print a progress bar / lines (to stderr).
      callback: ``callback(state, record)`` after every epoch (after the checkpoint).
      checkpoint_format: ``"msgpack"`` (default: ``checkpoint.msgpack``, gathered to and written
        by the first process) or ``"orbax"`` (``checkpoint.orbax/``, every process writes its
        shards: for large runs sharded over hosts; see :func:`~jaxsnn.train.save_checkpoint`).

    Returns:
      :class:`FitResult` ``(state, history)``; ``history`` holds ``train_loss``, the loss's
      metrics as ``train_*``, the evaluation metrics as ``<eval_name>_*`` and ``seconds``.
    """
    check_eval_name(eval_name)
    hp = as_hparams(hparams)
    n = num_samples(train_data)
    steps_per_epoch = n // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size={batch_size} is larger than the training set ({n} samples)")
    if eval_data is not None and task.evaluate is None:
        raise ValueError("eval_data given but the task has no evaluate function")
    axis = mesh_axis(mesh)
    if mesh is not None:
        if batch_size % mesh.size:
            raise ValueError(f"batch_size={batch_size} must be a multiple of the number of devices ({mesh.size})")
    replicated = None if mesh is None else NamedSharding(mesh, P())

    progs = _fit_programs(task, batch_size, eval_batch_size, mesh)
    state = progs["init"](hp, seed)
    history, start = [], 0
    out = None if out is None else pathlib.Path(out)
    fingerprint = run_fingerprint(hp, seed=int(seed), batch_size=batch_size, n=n)
    ckpt = None if out is None else checkpoint_path(out, "checkpoint", checkpoint_format)
    saved = resume_checkpoint(ckpt, {"state": state}, fingerprint) if (out is not None and resume) else None
    if saved is not None:
        state = jax.tree.map(lambda x: place(x, replicated), saved["state"])
        history, start = json.loads(saved["history"]), int(saved["epoch"])
        if progress:
            print(f"resuming {out} after epoch {start}", file=sys.stderr)

    evaluate_fn = progs["evaluate"] if eval_data is not None else None
    if eval_data is not None:
        eval_data = jax.tree.map(lambda a: place(a, replicated), eval_data)
    if epoch_in_jit:
        device_data = jax.tree.map(lambda a: place(a, replicated), train_data)
        run_epoch = progs["epoch"]
    else:
        host_data = jax.tree.map(np.asarray, train_data)
        step, perm_fn = progs["step"], progs["permutation"]
        batch_place = None if mesh is None else NamedSharding(mesh, P(axis))

    bar = Progress(epochs, "fit", enabled=progress, done=start)
    t0 = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    for epoch in range(start, epochs):
        if epoch_in_jit:
            state, m = run_epoch(state, device_data, hp)
        else:
            perm = np.asarray(perm_fn(state.key, epoch, n))
            ms = []
            for i in range(steps_per_epoch):
                idx = perm[i * batch_size: (i + 1) * batch_size]
                batch = jax.tree.map(lambda a: place(a[idx], batch_place), host_data)
                state, mi = step(state, batch, hp)
                ms.append(mi)
            m = jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *ms)
        ev = evaluate_fn(state.params, eval_data, hp) if evaluate_fn is not None else {}
        rec = _record(epoch + 1, to_host(m), to_host(ev), time.perf_counter() - t0, eval_name)
        history.append(rec)
        if out is not None and (is_writer() or checkpoint_format == "orbax"):  # orbax: every process writes
            save_checkpoint(ckpt, dict(
                state=serialization.to_state_dict(state), epoch=epoch + 1, history=json.dumps(history),
                fingerprint=fingerprint))
        if out is not None and is_writer():
            write_jsonl(out / "metrics.jsonl", history)
        bar(epoch + 1, **progress_summary(rec, eval_name))
        if callback is not None:
            callback(state, rec)
    return FitResult(state, history)
