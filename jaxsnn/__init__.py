"""jaxsnn: spiking neural networks in JAX with exact, differentiable spike times.

Functional core (pure functions of arrays; JAX only, no Flax/optax):
:mod:`jaxsnn.srm` (SRM neurons, closed-form first-spike times), :mod:`jaxsnn.lif` (current-based LIF,
exact spike times), :mod:`jaxsnn.dlif` (discretized LIF, surrogate gradients), :mod:`jaxsnn.surrogate`,
:mod:`jaxsnn.discretize`, :mod:`jaxsnn.coding`, :mod:`jaxsnn.losses`, :mod:`jaxsnn.metrics`,
:mod:`jaxsnn.lambertw`, :mod:`jaxsnn.conv` (convolution and pooling of spike times), :mod:`jaxsnn.checks`
(value checks inside ``jit``, opt-in).
Around it: :mod:`jaxsnn.nn` (Flax linen modules; :mod:`jaxsnn.nn_conv` their convolutional ones),
:mod:`jaxsnn.nnx` (their Flax NNX twins),
:mod:`jaxsnn.nir` (NIR export and import),
:mod:`jaxsnn.train` (training, sweeps, checkpoints), :mod:`jaxsnn.data` (datasets), :mod:`jaxsnn.theory`
(constructions, firing maps, bounds), :mod:`jaxsnn.energy` (energy per inference, SNN against ANN).

Submodules are imported when first used, so ``import jaxsnn.srm`` loads neither Flax nor optax.

>>> import jax.numpy as jnp
>>> import jaxsnn
>>> jaxsnn.first_spike_times(jnp.array([0.0, 1.0]), jnp.array([[1.0], [1.0]]), threshold=1.0)
Array([1.], dtype=float32)
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_SUBMODULES = ("checks", "coding", "conv", "data", "discretize", "dlif", "energy", "lambertw", "lif", "losses",
               "metrics", "nir", "nn", "nn_conv", "nnx", "srm", "surrogate", "theory", "train")

# name -> (submodule, attribute): the main functions, re-exported flat
_REEXPORTS = {
    "first_spike_times": ("srm", "first_spike_times"),
    "spike_times": ("lif", "spike_times"),
    "simulate": ("dlif", "simulate"),
    "quantize": ("discretize", "quantize"),
    "ttfs_encode": ("coding", "ttfs_encode"),
    "ttfs_decode": ("coding", "ttfs_decode"),
    "first_spike_class": ("coding", "first_spike_class"),
    "ttfs_cross_entropy": ("losses", "ttfs_cross_entropy"),
}

__all__ = list(_SUBMODULES) + list(_REEXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"jaxsnn.{name}")
    if name in _REEXPORTS:
        module, attr = _REEXPORTS[name]
        return getattr(importlib.import_module(f"jaxsnn.{module}"), attr)
    raise AttributeError(f"module 'jaxsnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
