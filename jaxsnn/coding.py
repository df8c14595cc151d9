r"""Encoders and decoders between values and spike times.

Time-to-first-spike (latency) coding: a value :math:`x \in [0, 1]` becomes one spike at

.. math::

    t(x) = t_{\min} + (1 - x)\,(t_{\max} - t_{\min}),

so that larger values spike earlier (Göltz et al. 2021; Fono et al., arXiv 2503.02013).
Values at or below ``silent_below`` can be mapped to "no spike" (``inf``), which the
event-driven layers skip at no cost.
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["ttfs_encode", "ttfs_decode", "first_spike_class", "spike_counts", "count_class"]


def ttfs_encode(x, *, t_min=0.0, t_max=1.0, silent_below=None):
    """Encode values in ``[0, 1]`` as first-spike times (larger value = earlier spike).

    Args:
      x: values ``[...]``, expected in ``[0, 1]`` (clipped).
      t_min: spike time of the value 1.
      t_max: spike time of the value 0.
      silent_below: if given, values ``<= silent_below`` produce no spike (``jnp.inf``).
    Returns:
      Spike times with the shape of ``x`` (float).
    """
    x = jnp.clip(jnp.asarray(x, jnp.result_type(x, float)), 0.0, 1.0)
    t = t_min + (1.0 - x) * (t_max - t_min)
    if silent_below is not None:
        t = jnp.where(x <= silent_below, jnp.inf, t)
    return t


def ttfs_decode(t, *, t_min=0.0, t_max=1.0):
    """Inverse of :func:`ttfs_encode`: a time in ``[t_min, t_max]`` back to a value; ``inf`` -> 0."""
    x = 1.0 - (t - t_min) / (t_max - t_min)
    return jnp.where(jnp.isfinite(t), jnp.clip(x, 0.0, 1.0), 0.0)


def first_spike_class(t):
    """Decision of a TTFS output layer: index of the earliest spike along the last axis.

    Ties go to the lowest index; an all-silent row returns 0.
    """
    return jnp.argmin(t, axis=-1)


def spike_counts(t):
    """Number of spikes per neuron: finite entries along the last axis of ``[..., n, K]``."""
    return jnp.sum(jnp.isfinite(t), axis=-1)


def count_class(t):
    """Decision of a rate (spike count) output layer ``[..., n_out, K]``: the neuron with the most
    spikes; ties go to the neuron whose first spike is earliest (then the lowest index)."""
    counts = spike_counts(t)
    first = jnp.min(t, axis=-1)
    best = counts == jnp.max(counts, axis=-1, keepdims=True)
    return jnp.argmin(jnp.where(best, first, jnp.inf), axis=-1)
