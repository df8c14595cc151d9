"""Training, vmapped hyperparameter sweeps, data/sweep parallelism and resumable checkpoints.

Everything a run needs is a :class:`Task`: four pure functions of ``(params, batch, key,
hparams)``. ``hparams`` is a pytree of *traced* scalars (learning rate, threshold, time
constant, dt, surrogate slope, ...), so that one compiled program trains any configuration,
and ``jax.vmap`` over a stacked ``hparams`` (and over seeds) trains many at once:

    task = train.Task(init=..., loss=..., optimizer=lambda hp: optax.adam(hp["lr"]), evaluate=...)
    run = train.fit(task, (x, y), {"lr": 1e-2}, seed=0, epochs=20, batch_size=50, eval_data=(xt, yt))
    res = train.sweep(task, (x, y), train.grid(seed=[0, 1], lr=[1e-2, 3e-3]), epochs=20, batch_size=50)

Randomness is derived from the seed only: ``key = PRNGKey(seed)``; parameters are initialized
with ``fold_in(key, 0)``, the loss of step ``s`` gets ``fold_in(fold_in(key, 1), s)`` and epoch
``e`` visits the data in the order ``permutation(fold_in(fold_in(key, 2), e), n)``. A run is
therefore a pure function of (task, data, hparams, seed): :func:`sweep` row ``i`` equals
:func:`fit` of configuration ``i``, a resumed run equals an uninterrupted one, and a run
sharded over devices equals the single-device run (up to the order of floating-point sums)
when its loss draws no random numbers (with a mesh, device ``d`` draws from
``fold_in(key, d)``).

Parallelism (``jax.sharding``): ``fit(..., mesh=...)`` is data-parallel: each batch is split over
the mesh axis and every device runs the loss and its gradient on its share as its own program
(``jax.shard_map``), then losses, metrics and gradients are averaged (one all-reduce per step).
Per-device programs matter for event-driven layers: their loops run until the last event of
the device's own samples, with no communication per iteration (letting the compiler partition
the batch instead made a 784-800-10 LIF step about 3x slower than one device). The loss must
be a mean over samples (plus terms of the parameters alone), as every loss in
:mod:`jaxsnn.losses` is. ``sweep(..., mesh=...)`` is sweep-parallel (configurations split over
the mesh axis with ``jax.shard_map``; no communication). Several hosts join through :func:`initialize_distributed`
(``jax.distributed.initialize``) and then use a mesh over ``jax.devices()``.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import pathlib
import sys
import tempfile
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxsnn._vma import vary_like

__all__ = [
    "Task", "TrainState", "FitResult", "SweepResult",
    "init_state", "train_step", "train_epoch", "evaluate", "epoch_permutation",
    "fit", "sweep", "grid", "unstack",
    "make_mesh", "use_cpu_devices", "initialize_distributed",
    "Progress", "KeepBest", "atomic_write_bytes", "atomic_write_text", "save_checkpoint", "restore_checkpoint",
    "write_jsonl", "write_csv",
]


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
        chunks and reported with the prefix ``test_``.
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


def _hparams(hparams):
    return jax.tree.map(jnp.asarray, {} if hparams is None else hparams)


def init_state(task: Task, hparams, seed) -> TrainState:
    """The initial state of the run with this ``seed`` (an int, possibly traced)."""
    key = jax.random.PRNGKey(seed)
    params = task.init(jax.random.fold_in(key, 0), hparams)
    opt_state = task.optimizer(hparams).init(params)
    return TrainState(params, opt_state, jnp.zeros((), jnp.int32), key)


def _loss_and_grads(task: Task, params, batch, key, hparams):
    (loss, aux), grads = jax.value_and_grad(task.loss, has_aux=True)(params, batch, key, hparams)
    return loss, aux, grads


def _data_parallel_grads(task: Task, mesh: Mesh, params, batch, key, hparams):
    """Loss, metrics and gradients of ``task.loss`` with ``batch`` split over ``mesh``'s axis.

    Every device runs the loss on its share of the batch (its own program: no communication
    inside the loss, so event-driven loops advance independently) with the key
    ``fold_in(key, device index)``; losses, metrics and gradients are then averaged over the
    devices (one all-reduce). For a loss that is a mean over samples, plus terms of the
    parameters alone, this equals the single-device step up to the order of the sums.
    """
    axis = _mesh_axis(mesh)

    def per_device(params, batch, key, hparams):
        key = jax.random.fold_in(key, jax.lax.axis_index(axis))
        params = vary_like(params, batch)  # per-device gradients, averaged below
        return jax.lax.pmean(_loss_and_grads(task, params, batch, key, hparams), axis)

    return jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(axis), P(), P()), out_specs=P())(
        params, batch, key, hparams)


def train_step(task: Task, state: TrainState, batch, hparams, mesh: Optional[Mesh] = None):
    """One optimizer step: ``(state, metrics)`` with ``metrics = {"loss": ..., **aux}``.

    With a one-axis ``mesh`` the step is data-parallel (see :func:`_data_parallel_grads`): the
    batch (leading axis a multiple of the mesh size) is split over the devices.
    """
    key = jax.random.fold_in(jax.random.fold_in(state.key, 1), state.step)
    if mesh is None:
        loss, aux, grads = _loss_and_grads(task, state.params, batch, key, hparams)
    else:
        loss, aux, grads = _data_parallel_grads(task, mesh, state.params, batch, key, hparams)
    updates, opt_state = task.optimizer(hparams).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(params, opt_state, state.step + 1, state.key), dict(loss=loss, **aux)


def epoch_permutation(key, epoch, n: int):
    """The order in which epoch ``epoch`` of a run with key ``key`` visits ``n`` samples."""
    return jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, 2), epoch), n)


def _num_samples(data) -> int:
    return jax.tree.leaves(data)[0].shape[0]


def train_epoch(task: Task, state: TrainState, data, hparams, *, batch_size: int, mesh: Optional[Mesh] = None):
    """One epoch over ``data`` (a pytree of arrays with a leading sample axis) in one program.

    The epoch index is ``state.step // (n // batch_size)``; its permutation (see
    :func:`epoch_permutation`) is applied on the device and ``lax.scan`` runs the steps. The
    last incomplete batch is dropped. With a one-axis ``mesh`` every step is data-parallel over
    its devices (:func:`train_step`). Returns ``(state, mean metrics)``.
    """
    n = _num_samples(data)
    nb = n // batch_size
    if nb == 0:
        raise ValueError(f"batch_size={batch_size} is larger than the dataset ({n} samples)")
    perm = epoch_permutation(state.key, state.step // nb, n)[: nb * batch_size]
    batches = jax.tree.map(lambda a: jnp.take(a, perm, axis=0).reshape((nb, batch_size) + a.shape[1:]), data)
    if mesh is not None:
        batches = jax.lax.with_sharding_constraint(batches, NamedSharding(mesh, P(None, _mesh_axis(mesh))))
    state, metrics = jax.lax.scan(lambda s, b: train_step(task, s, b, hparams, mesh), state, batches)
    return state, jax.tree.map(jnp.mean, metrics)


def evaluate(task: Task, params, data, hparams, *, batch_size: int = 1000, mesh: Optional[Mesh] = None):
    """``task.evaluate`` over all of ``data`` in chunks of ``batch_size`` (jittable).

    ``task.evaluate`` returns per-sample means; chunks are weighted by their size, so the
    result is the mean over every sample (none dropped). With a one-axis ``mesh`` the samples
    are split evenly over its devices (each evaluates its share in chunks; the fewer than
    ``mesh.size`` samples left over are evaluated on every device).
    """
    n = _num_samples(data)
    split = 0 if mesh is None else (n // mesh.size) * mesh.size  # samples shared out evenly
    if split == 0:
        return _evaluate_chunks(task, params, data, hparams, batch_size)
    axis = _mesh_axis(mesh)

    def per_device(params, part, hparams):
        return jax.lax.pmean(_evaluate_chunks(task, vary_like(params, part), part, hparams, batch_size), axis)

    head = jax.tree.map(lambda a: a[:split], data)
    total = jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(axis), P()), out_specs=P())(params, head, hparams)
    if split < n:
        tail = _evaluate_chunks(task, params, jax.tree.map(lambda a: a[split:], data), hparams, batch_size)
        total = jax.tree.map(lambda h, t: (h * split + t * (n - split)) / n, total, tail)
    return total


def _evaluate_chunks(task: Task, params, data, hparams, batch_size: int):
    n = _num_samples(data)
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
# Devices: meshes, placement, several hosts
# ----------------------------------------------------------------------------------------------


def use_cpu_devices(n: Optional[int] = None) -> bool:
    """Split the CPU into ``n`` JAX devices (default: one per core) so that sweeps run in parallel.

    XLA:CPU runs one device's program mostly on one core when its operations are small (as in
    event-driven spiking layers at moderate batch sizes); with one device per core,
    ``sweep(..., mesh=make_mesh())`` runs a share of the configurations on every core (about
    2x on 2 cores, see ``benchmarks/bench_sweep.py``). Must be called before the first JAX
    computation; returns ``False`` (and changes nothing) when that has already happened.
    """
    n = (os.cpu_count() or 1) if n is None else n
    try:
        jax.config.update("jax_num_cpu_devices", int(n))
    except RuntimeError:
        return False
    return True


def make_mesh(axis_name: str = "devices", devices: Optional[Sequence] = None) -> Mesh:
    """A one-axis :class:`jax.sharding.Mesh` over ``devices`` (default: all, on every host)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (axis_name,))


def initialize_distributed(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
                           process_id: Optional[int] = None, **kwargs) -> None:
    """Join a multi-host (multi-process) job: a thin wrapper of ``jax.distributed.initialize``.

    Call it first, in every process, before any other JAX call. On clusters that JAX detects
    (SLURM, Cloud TPU, ...) no argument is needed; otherwise give the coordinator's
    ``host:port``, the number of processes and this process's index. Afterwards
    ``jax.devices()`` lists the devices of all processes: build the mesh over them with
    :func:`make_mesh`, and give every process the same host data (same files, same seed);
    :func:`fit` and :func:`sweep` place it and gather results on every process.
    """
    jax.distributed.initialize(coordinator_address, num_processes, process_id, **kwargs)


def _mesh_axis(mesh: Optional[Mesh]):
    """The name of the one axis of ``mesh`` (``None`` without a mesh)."""
    if mesh is None:
        return None
    if len(mesh.axis_names) != 1:
        raise ValueError(f"mesh must have one axis, got {mesh.axis_names}")
    return mesh.axis_names[0]


def _place(x, sharding):
    """Put a host array (the same on every process) onto ``sharding`` (works on several hosts)."""
    x = np.asarray(x)
    if sharding is None:
        return jnp.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def _to_host(tree):
    """Fetch the JAX arrays of a pytree (possibly sharded over hosts) as numpy arrays."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        fetch = lambda x: np.asarray(multihost_utils.process_allgather(x, tiled=True))
    else:
        fetch = np.asarray
    return jax.tree.map(lambda x: fetch(x) if isinstance(x, jax.Array) else x, tree)


def _is_writer() -> bool:
    return jax.process_index() == 0


# ----------------------------------------------------------------------------------------------
# Files: atomic writes, checkpoints, results
# ----------------------------------------------------------------------------------------------


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync, rename.

    A reader (or a run killed at any moment) sees either the old file or the new one, never
    a half-written one.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
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


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_checkpoint(path, tree) -> None:
    """Save a pytree of arrays (and ints, floats, strings) atomically as msgpack (flax.serialization)."""
    state = serialization.to_state_dict(_to_host(tree))
    atomic_write_bytes(path, serialization.msgpack_serialize(state))


def restore_checkpoint(path, target=None):
    """Load a checkpoint written by :func:`save_checkpoint`; ``None`` when there is none.

    With ``target`` (a pytree of the saved structure, e.g. a fresh :class:`TrainState`) the
    result has that structure (NamedTuples, optax states); without it, nested dicts.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return None
    raw = serialization.msgpack_restore(path.read_bytes())
    return raw if target is None else serialization.from_state_dict(target, raw)


def _jsonable(v):
    if isinstance(v, (np.ndarray, jax.Array)) or np.isscalar(v):
        v = np.asarray(v)
        return v.item() if v.ndim == 0 else v.tolist()
    return v


def write_jsonl(path, records: Sequence[dict]) -> None:
    """Write records as JSON lines, atomically (the whole file is replaced)."""
    atomic_write_text(path, "".join(json.dumps({k: _jsonable(v) for k, v in r.items()}) + "\n" for r in records))


def write_csv(path, records: Sequence[dict]) -> None:
    """Write records (dicts with the same keys) as CSV, atomically."""
    keys = list(dict.fromkeys(k for r in records for k in r))
    lines = [",".join(keys)] + [",".join(str(_jsonable(r.get(k, ""))) for k in keys) for r in records]
    atomic_write_text(path, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------
# Progress
# ----------------------------------------------------------------------------------------------


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


class KeepBest:
    """A :func:`fit` callback that keeps the parameters of the best epoch by one metric.

    ``best = KeepBest("val_acc"); fit(..., callback=best)``, then ``best.params`` and
    ``best.epoch``. Use a metric of held-out data that is not the test set (select on the
    test set and the test accuracy is no longer an estimate). With ``path`` the best
    parameters are written there (atomically) whenever they improve and read back when a
    ``KeepBest`` is made with the same path, so a resumed run keeps its best epoch.

    Args:
      metric: key of the per-epoch record, e.g. ``"test_acc"`` or ``"train_loss"``.
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
            self.params, self.epoch, self.value = _to_host(state.params), int(record["epoch"]), v
            if self.path is not None and _is_writer():
                save_checkpoint(self.path, dict(params=self.params, epoch=self.epoch, value=self.value))


# ----------------------------------------------------------------------------------------------
# One run
# ----------------------------------------------------------------------------------------------


class FitResult(NamedTuple):
    """``state``: the final :class:`TrainState`; ``history``: one dict of metrics per epoch."""

    state: TrainState
    history: list


def _record(epoch, train_metrics, eval_metrics, seconds):
    rec = {"epoch": epoch}
    rec.update({f"train_{k}": float(v) for k, v in train_metrics.items()})
    rec.update({f"test_{k}": float(v) for k, v in eval_metrics.items()})
    rec["seconds"] = round(seconds, 3)
    return rec


def _fingerprint(hparams, **static) -> str:
    """A string that identifies a run's settings (to refuse resuming someone else's checkpoint)."""
    leaves = jax.tree_util.tree_flatten_with_path(hparams)[0]
    hp = [[jax.tree_util.keystr(path), _jsonable(v)] for path, v in leaves]
    return json.dumps(dict(hparams=hp, **static), sort_keys=True)


def _summary(rec) -> dict:
    return {k.replace("train_", "").replace("test_", "test "): v for k, v in rec.items()
            if k in ("train_loss", "train_acc", "test_acc")}


@functools.lru_cache(maxsize=32)
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
        eval_data=None, eval_batch_size: int = 1000, epoch_in_jit: bool = True, mesh: Optional[Mesh] = None,
        out=None, resume: bool = True, progress: bool = True, callback: Optional[Callable] = None) -> FitResult:
    """Train one configuration for ``epochs`` epochs; resumable.

    Args:
      task: the :class:`Task`.
      train_data: pytree of host or device arrays with a leading sample axis, e.g. ``(x, y)``.
      hparams: pytree of scalars given (traced) to the task's functions.
      seed: the run's seed; the run is a deterministic function of it.
      epochs, batch_size: the last incomplete batch of an epoch is dropped.
      eval_data: evaluated with ``task.evaluate`` after every epoch (metrics ``test_*``).
      epoch_in_jit: keep the data on the device and run each epoch as one program (fast for
        data that fits); ``False`` streams host batches to a jitted step (same batches, same
        result up to floating-point rounding).
      mesh: a one-axis :class:`~jax.sharding.Mesh` for data parallelism: every batch is split
        over its axis (``batch_size`` must be a multiple of its size), each device computing
        the loss and gradient of its share (see the module docstring); parameters replicated;
        the evaluation is split too. On a CPU, :func:`use_cpu_devices` makes one device per core.
      out: folder for ``checkpoint.msgpack`` and ``metrics.jsonl``, both written atomically
        after every epoch; with ``resume`` a rerun continues after the last saved epoch (and
        refuses a checkpoint made with other hyperparameters, seed or batch size).
      progress: print a progress bar / lines (to stderr).
      callback: ``callback(state, record)`` after every epoch (after the checkpoint).

    Returns:
      :class:`FitResult` ``(state, history)``; ``history`` holds ``train_loss``, the loss's
      metrics as ``train_*``, the evaluation metrics as ``test_*`` and ``seconds``.
    """
    hp = _hparams(hparams)
    n = _num_samples(train_data)
    steps_per_epoch = n // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size={batch_size} is larger than the training set ({n} samples)")
    if eval_data is not None and task.evaluate is None:
        raise ValueError("eval_data given but the task has no evaluate function")
    axis = _mesh_axis(mesh)
    if mesh is not None:
        if batch_size % mesh.size:
            raise ValueError(f"batch_size={batch_size} must be a multiple of the number of devices ({mesh.size})")
    replicated = None if mesh is None else NamedSharding(mesh, P())

    progs = _fit_programs(task, batch_size, eval_batch_size, mesh)
    state = progs["init"](hp, seed)
    history, start = [], 0
    out = None if out is None else pathlib.Path(out)
    fingerprint = _fingerprint(hp, seed=int(seed), batch_size=batch_size, n=n)
    if out is not None and resume:
        saved = restore_checkpoint(out / "checkpoint.msgpack")
        if saved is not None:
            if saved["fingerprint"] != fingerprint:
                raise ValueError(f"{out / 'checkpoint.msgpack'} was made with other hyperparameters, seed, batch "
                                 "size or data; use another output folder or resume=False")
            state = serialization.from_state_dict(state, saved["state"])
            state = jax.tree.map(lambda x: _place(x, replicated), state)
            history, start = json.loads(saved["history"]), int(saved["epoch"])
            if progress:
                print(f"resuming {out} after epoch {start}", file=sys.stderr)

    evaluate_fn = progs["evaluate"] if eval_data is not None else None
    if eval_data is not None:
        eval_data = jax.tree.map(lambda a: _place(a, replicated), eval_data)
    if epoch_in_jit:
        device_data = jax.tree.map(lambda a: _place(a, replicated), train_data)
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
                batch = jax.tree.map(lambda a: _place(a[idx], batch_place), host_data)
                state, mi = step(state, batch, hp)
                ms.append(mi)
            m = jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *ms)
        ev = evaluate_fn(state.params, eval_data, hp) if evaluate_fn is not None else {}
        rec = _record(epoch + 1, _to_host(m), _to_host(ev), time.perf_counter() - t0)
        history.append(rec)
        if out is not None and _is_writer():
            save_checkpoint(out / "checkpoint.msgpack", dict(
                state=serialization.to_state_dict(state), epoch=epoch + 1, history=json.dumps(history),
                fingerprint=fingerprint))
            write_jsonl(out / "metrics.jsonl", history)
        bar(epoch + 1, **_summary(rec))
        if callback is not None:
            callback(state, rec)
    return FitResult(state, history)


# ----------------------------------------------------------------------------------------------
# Many runs: grids and vmapped sweeps
# ----------------------------------------------------------------------------------------------


def grid(**axes) -> dict:
    """The Cartesian product of the given values: ``{name: array [N]}`` (last name varies fastest).

    ``grid(seed=[0, 1], lr=[1e-2, 1e-3])`` gives 4 configurations. Combine grids by
    concatenating their arrays. Only values that can be traced belong here; settings that
    change shapes (layer sizes, ``max_spikes``) need separate sweeps.
    """
    if not axes:
        raise ValueError("grid needs at least one axis")
    names = list(axes)
    rows = list(itertools.product(*(list(np.atleast_1d(axes[k])) for k in names)))
    return {k: np.asarray([r[i] for r in rows]) for i, k in enumerate(names)}


def unstack(configs: dict) -> list:
    """The configurations of a grid one by one: a list of ``{name: scalar}`` dicts."""
    n = _num_configs(configs)
    return [{k: v[i].item() for k, v in configs.items()} for i in range(n)]


def _num_configs(configs) -> int:
    sizes = {k: np.shape(v)[0] if np.ndim(v) else None for k, v in configs.items()}
    if not sizes or None in sizes.values() or len(set(sizes.values())) != 1:
        raise ValueError(f"configs must map names to 1-D arrays of one length, got shapes {sizes}")
    return next(iter(sizes.values()))


class SweepResult(NamedTuple):
    """Per-configuration results of :func:`sweep`.

    Attributes:
      configs: ``{name: array [N]}`` as given (``seed`` included).
      history: ``{metric: array [N, epochs]}`` (``train_loss``, ``train_*``, ``test_*``).
      params: final parameters stacked on a leading axis ``[N, ...]`` (numpy), or ``None``.
      seconds: wall time of the sweep (this call, compilation included).
    """

    configs: dict
    history: dict
    params: Any
    seconds: float

    def final(self) -> dict:
        """``{metric: array [N]}`` after the last epoch."""
        return {k: v[:, -1] for k, v in self.history.items()}

    def records(self) -> list:
        """One dict per configuration: its values and its final metrics (for JSON/CSV)."""
        fin = self.final()
        return [{**{k: v[i].item() for k, v in self.configs.items()}, **{k: float(v[i]) for k, v in fin.items()}}
                for i in range(len(next(iter(fin.values()))))]


def _pad_rows(x, total):
    x = np.asarray(x)
    return np.concatenate([x, np.repeat(x[-1:], total - len(x), axis=0)]) if total > len(x) else x


@functools.lru_cache(maxsize=32)
def _sweep_programs(task: Task, batch_size: int, eval_batch_size: int, mesh: Optional[Mesh]):
    """The compiled (vmapped, possibly shard_mapped) programs of :func:`sweep`, cached."""

    def one_init(seed, hp):
        return init_state(task, _hparams(hp), seed)

    def one_epoch(state, hp, tr, ev):
        hp = _hparams(hp)
        state, m = train_epoch(task, state, tr, hp, batch_size=batch_size)
        e = evaluate(task, state.params, ev, hp, batch_size=eval_batch_size) if ev is not None else {}
        return state, m, e

    init_fn, epoch_fn = jax.vmap(one_init), jax.vmap(one_epoch, in_axes=(0, 0, None, None))
    if mesh is not None:
        axis = mesh.axis_names[0]
        init_fn = jax.shard_map(init_fn, mesh=mesh, in_specs=(P(axis), P(axis)), out_specs=P(axis), check_vma=False)
        epoch_fn = jax.shard_map(epoch_fn, mesh=mesh, in_specs=(P(axis), P(axis), P(), P()), out_specs=P(axis),
                                 check_vma=False)
    return jax.jit(init_fn), jax.jit(epoch_fn, donate_argnums=0)


def sweep(task: Task, train_data, configs: dict, *, epochs: int, batch_size: int, eval_data=None,
          eval_batch_size: int = 1000, chunk_size: Optional[int] = None, mesh: Optional[Mesh] = None,
          out=None, resume: bool = True, progress: bool = True, keep_params: bool = True,
          callback: Optional[Callable] = None) -> SweepResult:
    """Train every configuration of ``configs`` at once: ``vmap`` over seeds and hyperparameters.

    Row ``i`` of the result equals ``fit(task, train_data, hparams_i, seed=seed_i, ...)``: the
    same program, vmapped. Configurations run in chunks of ``chunk_size`` (default: all at
    once) to bound memory; every chunk reuses the same compiled program (the last one is
    padded by repeating its last configuration).

    Args:
      configs: ``{name: array [N]}``, e.g. from :func:`grid`; the entry ``seed`` (default 0)
        seeds each run, the others are the ``hparams`` given to the task.
      mesh: a one-axis mesh for sweep parallelism: each chunk's configurations are split over
        the devices with ``jax.shard_map`` (the chunk size is rounded up to a multiple of the
        mesh size); the data is replicated.
      out: folder for ``sweep_checkpoint.msgpack`` (after every epoch of every chunk, atomic);
        with ``resume`` an interrupted sweep continues at the last finished epoch of the chunk
        it was in, keeping the chunks already done.
      keep_params: return the final parameters of every configuration.
      callback: ``callback(chunk, epoch, metrics)`` after every epoch of every chunk (after the
        checkpoint; ``chunk`` counts from 0, ``epoch`` from 1; ``metrics`` holds this chunk's rows).
      Other arguments as in :func:`fit`.

    Returns:
      :class:`SweepResult`.
    """
    t_start = time.perf_counter()
    n_cfg = _num_configs(configs)
    if eval_data is not None and task.evaluate is None:
        raise ValueError("eval_data given but the task has no evaluate function")
    configs = {k: np.asarray(v) for k, v in configs.items()}
    seeds = configs.get("seed", np.zeros(n_cfg, np.int32)).astype(np.int32)
    hp_all = {k: v for k, v in configs.items() if k != "seed"}
    chunk = min(chunk_size or n_cfg, n_cfg)
    axis, n_dev = _mesh_axis(mesh), 1
    if mesh is not None:
        n_dev = mesh.size
        chunk = math.ceil(chunk / n_dev) * n_dev
    n_chunks = math.ceil(n_cfg / chunk)
    total = n_chunks * chunk
    seeds, hp_all = _pad_rows(seeds, total), {k: _pad_rows(v, total) for k, v in hp_all.items()}

    init_fn, epoch_fn = _sweep_programs(task, batch_size, eval_batch_size, mesh)
    split = rep = None
    if mesh is not None:
        split, rep = NamedSharding(mesh, P(axis)), NamedSharding(mesh, P())
    tr = jax.tree.map(lambda a: _place(a, rep), train_data)
    ev = None if eval_data is None else jax.tree.map(lambda a: _place(a, rep), eval_data)

    history, params_out = {}, []
    start_chunk, start_epoch, state = 0, 0, None
    out = None if out is None else pathlib.Path(out)
    ckpt = None if out is None else out / "sweep_checkpoint.msgpack"
    fingerprint = _fingerprint(configs, chunk=chunk, batch_size=batch_size, n=_num_samples(train_data))
    saved = restore_checkpoint(ckpt) if (ckpt is not None and resume) else None
    if saved is not None:
        if saved["fingerprint"] != fingerprint:
            raise ValueError(f"{ckpt} was made for another sweep; use another output folder or resume=False")
        history = {k: np.array(v) for k, v in saved["history"].items()}
        template = jax.eval_shape(init_fn, seeds[:chunk], {k: v[:chunk] for k, v in hp_all.items()}).params
        params_out = [serialization.from_state_dict(template, saved["params"][str(i)])
                      for i in range(len(saved["params"]))]
        start_chunk, start_epoch = int(saved["chunk"]), int(saved["epoch"])
        if progress:
            print(f"resuming {ckpt} at chunk {start_chunk + 1}/{n_chunks}, epoch {start_epoch}", file=sys.stderr)

    bar = Progress(n_chunks * epochs, f"sweep ({n_cfg} configs)", enabled=progress,
                   done=start_chunk * epochs + start_epoch)
    for c in range(start_chunk, n_chunks):
        rows = slice(c * chunk, (c + 1) * chunk)
        hp_c = {k: _place(v[rows], split) for k, v in hp_all.items()}
        state = init_fn(_place(seeds[rows], split), hp_c)
        first = 0
        if c == start_chunk and start_epoch > 0:
            state = serialization.from_state_dict(state, saved["state"])
            state = jax.tree.map(lambda x: _place(x, split), state)
            first = start_epoch
        for epoch in range(first, epochs):
            state, m, e = epoch_fn(state, hp_c, tr, ev)
            metrics = _to_host({**{f"train_{k}": v for k, v in m.items()}, **{f"test_{k}": v for k, v in e.items()}})
            for k, v in metrics.items():
                history.setdefault(k, np.full((total, epochs), np.nan))[rows, epoch] = v
            done_chunk = epoch + 1 == epochs
            if done_chunk and keep_params:
                params_out.append(_to_host(state.params))
            if ckpt is not None and _is_writer():
                save_checkpoint(ckpt, dict(
                    fingerprint=fingerprint, history=history,
                    params={str(i): p for i, p in enumerate(params_out)},
                    chunk=c + 1 if done_chunk else c, epoch=0 if done_chunk else epoch + 1,
                    state=serialization.to_state_dict(state)))
            if callback is not None:
                callback(c, epoch + 1, metrics)
            bar(c * epochs + epoch + 1, **{k.replace("train_", ""): float(np.mean(v)) for k, v in metrics.items()
                                           if k in ("train_loss", "test_acc")})
    history = {k: v[:n_cfg] for k, v in history.items()}
    params = None
    if keep_params and params_out:
        params = jax.tree.map(lambda *p: np.concatenate(p)[:n_cfg], *params_out)
    return SweepResult(configs, history, params, time.perf_counter() - t_start)
