"""Many runs of :mod:`jaxsnn.train`: grids of configurations and vmapped, resumable sweeps.

``sweep`` trains every configuration of a grid at once (``jax.vmap`` over seeds and traced
hyperparameters; with a mesh, the configurations are split over the devices); row ``i`` of
its result equals :func:`~jaxsnn.train.fit` of configuration ``i``:

    res = train.sweep(task, (x, y), train.grid(seed=[0, 1], lr=[1e-2, 3e-3]), epochs=20, batch_size=50)

(The module is named ``sweeps`` so that ``jaxsnn.train.sweep`` stays the function.)
"""

from __future__ import annotations

import itertools
import math
import pathlib
import sys
import time
from typing import Any, Callable, NamedTuple, Optional

import jax
import numpy as np
from flax import serialization
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxsnn.train.callbacks import Progress, progress_summary
from jaxsnn.train.checkpoint import checkpoint_path, resume_checkpoint, run_fingerprint, save_checkpoint
from jaxsnn.train.core import (
    Task,
    as_hparams,
    cached_programs,
    check_eval_name,
    evaluate,
    init_state,
    num_samples,
    train_epoch,
)
from jaxsnn.train.distributed import is_writer, mesh_axis, place, to_host

__all__ = ["grid", "unstack", "sweep", "SweepResult"]


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
      history: ``{metric: array [N, epochs]}`` (``train_loss``, ``train_*``, ``<eval_name>_*``,
        by default ``eval_*``).
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


@cached_programs
def _sweep_programs(task: Task, batch_size: int, eval_batch_size: int, mesh: Optional[Mesh]):
    """The compiled (vmapped, possibly shard_mapped) programs of :func:`sweep`, cached."""

    def one_init(seed, hp):
        return init_state(task, hp, seed)

    def one_epoch(state, hp, tr, ev):
        hp = as_hparams(hp)
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
          eval_batch_size: int = 1000, eval_name: str = "eval", chunk_size: Optional[int] = None,
          mesh: Optional[Mesh] = None, out=None, resume: bool = True, progress: bool = True,
          checkpoint_format: str = "msgpack",
          keep_params: bool = True, callback: Optional[Callable] = None) -> SweepResult:
    """Train every configuration of ``configs`` at once: ``vmap`` over seeds and hyperparameters.

    Row ``i`` of the result equals ``fit(task, train_data, hparams_i, seed=seed_i, ...)``: the
    same program, vmapped. Configurations run in chunks of ``chunk_size`` (default: all at
    once) to bound memory; every chunk reuses the same compiled program (the last one is
    padded by repeating its last configuration).

    Args:
      configs: ``{name: array [N]}``, e.g. from :func:`grid`; the entry ``seed`` (default 0)
        seeds each run, the others are the ``hparams`` given to the task.
      eval_name: the prefix of the evaluation metrics (``"eval"``: ``eval_acc``, ...), as in
        :func:`~jaxsnn.train.fit`.
      mesh: a one-axis mesh for sweep parallelism: each chunk's configurations are split over
        the devices with ``jax.shard_map`` (the chunk size is rounded up to a multiple of the
        mesh size); the data is replicated.
      out: folder for ``sweep_checkpoint.msgpack`` (``.orbax`` with ``checkpoint_format="orbax"``; after
        every epoch of every chunk, atomic);
        with ``resume`` an interrupted sweep continues at the last finished epoch of the chunk
        it was in, keeping the chunks already done.
      keep_params: return the final parameters of every configuration.
      callback: ``callback(chunk, epoch, metrics)`` after every epoch of every chunk (after the
        checkpoint; ``chunk`` counts from 0, ``epoch`` from 1; ``metrics`` holds this chunk's rows).
      Other arguments as in :func:`~jaxsnn.train.fit`.

    Returns:
      :class:`SweepResult`.
    """
    t_start = time.perf_counter()
    check_eval_name(eval_name)
    n_cfg = _num_configs(configs)
    if eval_data is not None and task.evaluate is None:
        raise ValueError("eval_data given but the task has no evaluate function")
    configs = {k: np.asarray(v) for k, v in configs.items()}
    seeds = configs.get("seed", np.zeros(n_cfg, np.int32)).astype(np.int32)
    hp_all = {k: v for k, v in configs.items() if k != "seed"}
    chunk = min(chunk_size or n_cfg, n_cfg)
    axis, n_dev = mesh_axis(mesh), 1
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
    tr = jax.tree.map(lambda a: place(a, rep), train_data)
    ev = None if eval_data is None else jax.tree.map(lambda a: place(a, rep), eval_data)

    history, params_out = {}, []
    start_chunk, start_epoch, state = 0, 0, None
    out = None if out is None else pathlib.Path(out)
    ckpt = None if out is None else checkpoint_path(out, "sweep_checkpoint", checkpoint_format)
    fingerprint = run_fingerprint(configs, chunk=chunk, batch_size=batch_size, n=num_samples(train_data))

    def target(saved):  # the state of a chunk and the final parameters of every finished chunk
        template = jax.eval_shape(init_fn, seeds[:chunk], {k: v[:chunk] for k, v in hp_all.items()})
        return dict(state=template, params={i: template.params for i in saved["params"]})

    saved = resume_checkpoint(ckpt, target, fingerprint, mismatch="for another sweep") \
        if (ckpt is not None and resume) else None
    if saved is not None:
        history = {k: np.array(v) for k, v in saved["history"].items()}
        params_out = [saved["params"][str(i)] for i in range(len(saved["params"]))]
        start_chunk, start_epoch = int(saved["chunk"]), int(saved["epoch"])
        if progress:
            print(f"resuming {ckpt} at chunk {start_chunk + 1}/{n_chunks}, epoch {start_epoch}", file=sys.stderr)

    bar = Progress(n_chunks * epochs, f"sweep ({n_cfg} configs)", enabled=progress,
                   done=start_chunk * epochs + start_epoch)
    for c in range(start_chunk, n_chunks):
        rows = slice(c * chunk, (c + 1) * chunk)
        hp_c = {k: place(v[rows], split) for k, v in hp_all.items()}
        state = init_fn(place(seeds[rows], split), hp_c)
        first = 0
        if c == start_chunk and start_epoch > 0:
            state = jax.tree.map(lambda x: place(x, split), saved["state"])
            first = start_epoch
        for epoch in range(first, epochs):
            state, m, e = epoch_fn(state, hp_c, tr, ev)
            metrics = to_host({**{f"train_{k}": v for k, v in m.items()},
                                **{f"{eval_name}_{k}": v for k, v in e.items()}})
            for k, v in metrics.items():
                history.setdefault(k, np.full((total, epochs), np.nan))[rows, epoch] = v
            done_chunk = epoch + 1 == epochs
            if done_chunk and keep_params:
                params_out.append(to_host(state.params))
            if ckpt is not None and (is_writer() or checkpoint_format == "orbax"):  # orbax: every process
                save_checkpoint(ckpt, dict(
                    fingerprint=fingerprint, history=history,
                    params={str(i): p for i, p in enumerate(params_out)},
                    chunk=c + 1 if done_chunk else c, epoch=0 if done_chunk else epoch + 1,
                    state=serialization.to_state_dict(state)))
            if callback is not None:
                callback(c, epoch + 1, metrics)
            bar(c * epochs + epoch + 1, **progress_summary(metrics, eval_name))
    history = {k: v[:n_cfg] for k, v in history.items()}
    params = None
    if keep_params and params_out:
        params = jax.tree.map(lambda *p: np.concatenate(p)[:n_cfg], *params_out)
    return SweepResult(configs, history, params, time.perf_counter() - t_start)
