"""jaxsnn: spiking neural networks in JAX with exact, differentiable spike times.

Functional core (no Flax/optax): :mod:`jaxsnn.srm`, :mod:`jaxsnn.lif`, :mod:`jaxsnn.dlif`,
:mod:`jaxsnn.surrogate`, :mod:`jaxsnn.discretize`, :mod:`jaxsnn.coding`, :mod:`jaxsnn.losses`, :mod:`jaxsnn.metrics`.
Around it: :mod:`jaxsnn.nn` (Flax modules), :mod:`jaxsnn.train` (training helpers),
:mod:`jaxsnn.data` (datasets), :mod:`jaxsnn.expressivity` (constructions and bounds),
:mod:`jaxsnn.energy` (energy per inference, SNN against ANN).
"""

from jaxsnn import (coding, data, discretize, dlif, energy, expressivity, lif, losses, metrics, nn, srm, surrogate,
                    train)
from jaxsnn.coding import first_spike_class, ttfs_decode, ttfs_encode
from jaxsnn.losses import ttfs_cross_entropy
from jaxsnn.srm import first_spike_times

__version__ = "0.1.0"

__all__ = [
    "coding", "data", "discretize", "dlif", "energy", "expressivity", "lif", "losses", "metrics", "nn", "srm", "surrogate", "train",
    "first_spike_times", "ttfs_encode", "ttfs_decode", "first_spike_class", "ttfs_cross_entropy",
]
