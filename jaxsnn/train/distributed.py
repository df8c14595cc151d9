"""Devices of :mod:`jaxsnn.train`: CPU devices, meshes, placement, data parallelism, several hosts.

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

Below the public functions (``__all__``, re-exported by :mod:`jaxsnn.train`) are the helpers
that the other modules of the package share: :func:`mesh_axis`, :func:`data_parallel_grads`,
:func:`place` (host arrays onto a sharding), :func:`to_host` (results back) and
:func:`is_writer` (the process that writes files).
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from jaxsnn._vma import vary_like

__all__ = ["use_cpu_devices", "make_mesh", "initialize_distributed"]


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
    :func:`~jaxsnn.train.fit` and :func:`~jaxsnn.train.sweep` place it and gather results on
    every process.
    """
    jax.distributed.initialize(coordinator_address, num_processes, process_id, **kwargs)


def mesh_axis(mesh: Optional[Mesh]):
    """The name of the one axis of ``mesh`` (``None`` without a mesh)."""
    if mesh is None:
        return None
    if len(mesh.axis_names) != 1:
        raise ValueError(f"mesh must have one axis, got {mesh.axis_names}")
    return mesh.axis_names[0]


def data_parallel_grads(loss_and_grads: Callable, mesh: Mesh, params, batch, key, hparams):
    """``loss_and_grads(params, batch, key, hparams) -> (loss, metrics, grads)``, ``batch`` split over ``mesh``.

    Every device runs the loss on its share of the batch (its own program: no communication
    inside the loss, so event-driven loops advance independently) with the key
    ``fold_in(key, device index)``; losses, metrics and gradients are then averaged over the
    devices (one all-reduce). For a loss that is a mean over samples, plus terms of the
    parameters alone, this equals the single-device step up to the order of the sums.
    """
    axis = mesh_axis(mesh)

    def per_device(params, batch, key, hparams):
        key = jax.random.fold_in(key, jax.lax.axis_index(axis))
        params = vary_like(params, batch)  # per-device gradients, averaged below
        return jax.lax.pmean(loss_and_grads(params, batch, key, hparams), axis)

    return jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(axis), P(), P()), out_specs=P())(
        params, batch, key, hparams)


def place(x, sharding):
    """Put a host array (the same on every process) onto ``sharding`` (works on several hosts)."""
    x = np.asarray(x)
    if sharding is None:
        return jnp.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def to_host(tree):
    """Fetch the JAX arrays of a pytree (possibly sharded over hosts) as numpy arrays."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        fetch = lambda x: np.asarray(multihost_utils.process_allgather(x, tiled=True))
    else:
        fetch = np.asarray
    return jax.tree.map(lambda x: fetch(x) if isinstance(x, jax.Array) else x, tree)


def is_writer() -> bool:
    """Whether this process writes the files (the first one; every process computes the same)."""
    return jax.process_index() == 0
