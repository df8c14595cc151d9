r"""Encoders and decoders between values and spike times.

Time-to-first-spike (latency) coding: a value :math:`x \in [0, 1]` becomes one spike at

.. math::

    t(x) = t_{\min} + (1 - x)\,(t_{\max} - t_{\min}),

so that larger values spike earlier (Göltz et al. 2021; Fono et al., arXiv 2503.02013).
Values at or below ``silent_below`` can be mapped to "no spike" (``inf``), which the
event-driven layers skip at no cost.

Rate coding (for the discrete-time layers of :mod:`jaxsnn.dlif`): a value :math:`x \in [0, 1]`
becomes a binary spike train of ``num_steps`` steps, time-major ``[T, ...]``, each step spiking with
probability :math:`p = \mathrm{clip}(g x, 0, 1)` (Bernoulli) or :math:`p = 1 - e^{-r x\,\Delta t}`
(the probability that a Poisson process of rate :math:`r x` fires within a step); or a constant
current. Spike trains decode to counts, rates and the most active class.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

__all__ = [
    "ttfs_encode", "ttfs_decode", "perturb_spike_times", "first_spike_class", "spike_counts", "count_class",
    "bernoulli_encode", "poisson_encode", "constant_current", "rate_counts", "firing_rate", "rate_class",
]


def ttfs_encode(x: ArrayLike, *, t_min: ArrayLike = 0.0, t_max: ArrayLike = 1.0,
                silent_below: Optional[ArrayLike] = None) -> jax.Array:
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


def ttfs_decode(t: ArrayLike, *, t_min: ArrayLike = 0.0, t_max: ArrayLike = 1.0) -> jax.Array:
    """Inverse of :func:`ttfs_encode`: a time in ``[t_min, t_max]`` back to a value; ``inf`` -> 0."""
    x = 1.0 - (t - t_min) / (t_max - t_min)
    return jnp.where(jnp.isfinite(t), jnp.clip(x, 0.0, 1.0), 0.0)


def perturb_spike_times(key: ArrayLike, t: ArrayLike, *, jitter: ArrayLike = 0.0, drop: ArrayLike = 0.0,
                        t_min: ArrayLike = 0.0) -> jax.Array:
    r"""Spike times with Gaussian jitter and random deletions (noise tests, data augmentation).

    Each spike moves to :math:`\max(t + \sigma\,\xi,\ t_{\min})`, :math:`\xi \sim N(0, 1)`, and is
    deleted (``inf``) with probability ``drop``, independently. Missing spikes (``inf``) stay
    missing. ``jitter = drop = 0`` returns ``t`` unchanged. The derivative with respect to ``t`` is 1
    for a kept, unclipped spike and 0 otherwise; ``jitter`` and ``drop`` may be traced (swept).

    Args:
      key: PRNG key.
      t: spike times ``[...]`` (``inf`` = no spike).
      jitter: standard deviation :math:`\sigma` of the time shift (same unit as ``t``), ``>= 0``.
      drop: probability of deleting each spike, in ``[0, 1]``.
      t_min: earliest allowed time (spikes are clipped to it).
    Returns:
      Perturbed spike times, the shape and dtype of ``t``.
    Raises:
      ValueError: a concrete ``jitter < 0`` or ``drop`` outside ``[0, 1]``.
    """
    t = jnp.asarray(t)
    if not isinstance(jitter, jax.core.Tracer) and jnp.ndim(jitter) == 0 and float(jitter) < 0:
        raise ValueError(f"jitter: expected >= 0, got {jitter}")
    if not isinstance(drop, jax.core.Tracer) and jnp.ndim(drop) == 0 and not 0.0 <= float(drop) <= 1.0:
        raise ValueError(f"drop: expected a probability in [0, 1], got {drop}")
    k_jit, k_drop = jax.random.split(key)
    moved = jnp.maximum(t + jitter * jax.random.normal(k_jit, t.shape, t.dtype), t_min)
    kept = jax.random.uniform(k_drop, t.shape) >= drop
    return jnp.where(jnp.isfinite(t) & kept, moved, jnp.inf).astype(t.dtype)


def first_spike_class(t: ArrayLike) -> jax.Array:
    """Decision of a TTFS output layer: index of the earliest spike along the last axis.

    Ties go to the lowest index; an all-silent row returns 0.
    """
    return jnp.argmin(t, axis=-1)


def spike_counts(t: ArrayLike) -> jax.Array:
    """Number of spikes per neuron: finite entries along the last axis of ``[..., n, K]``."""
    return jnp.sum(jnp.isfinite(t), axis=-1)


def count_class(t: ArrayLike) -> jax.Array:
    """Decision of a rate (spike count) output layer ``[..., n_out, K]``: the neuron with the most
    spikes; ties go to the neuron whose first spike is earliest (then the lowest index)."""
    counts = spike_counts(t)
    first = jnp.min(t, axis=-1)
    best = counts == jnp.max(counts, axis=-1, keepdims=True)
    return jnp.argmin(jnp.where(best, first, jnp.inf), axis=-1)


# ----------------------------------------------------------------------------------------------
# Rate coding: time-major spike trains [T, ...]
# ----------------------------------------------------------------------------------------------


def _check_steps(num_steps):
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps: expected a positive int, got {num_steps!r}")


def bernoulli_encode(key: ArrayLike, x: ArrayLike, num_steps: int, *, gain: ArrayLike = 1.0,
                     dtype: Optional[DTypeLike] = None) -> jax.Array:
    """Bernoulli spike trains: each step spikes independently with probability ``clip(gain x, 0, 1)``.

    Args:
      key: ``jax.random`` key.
      x: intensities ``[...]`` (e.g. pixels in ``[0, 1]``).
      num_steps: ``T``, a static int.
      gain: scales the probability (may be traced).
      dtype: of the spikes (default: the default float).
    Returns:
      Spikes ``[T, ...]`` of 0s and 1s.
    """
    _check_steps(num_steps)
    x = jnp.asarray(x)
    p = jnp.clip(gain * x, 0.0, 1.0)
    dtype = jnp.result_type(float) if dtype is None else dtype
    return jax.random.bernoulli(key, p, (num_steps,) + x.shape).astype(dtype)


def poisson_encode(key: ArrayLike, x: ArrayLike, num_steps: int, *, max_rate: ArrayLike, dt: ArrayLike,
                   dtype: Optional[DTypeLike] = None) -> jax.Array:
    r"""Binary spike trains of a Poisson process of rate ``max_rate * x`` observed in steps of ``dt``.

    A step holds a spike when the process fires at least once in it:
    :math:`p = 1 - \exp(-r\,x\,\Delta t)` (exact for the binned process; close to :math:`r x \Delta t`
    when that is small). Units: ``max_rate`` in 1 / (the unit of ``dt``).

    Args:
      key: ``jax.random`` key.
      x: intensities ``[...]``, clipped below at 0.
      num_steps: ``T``, a static int.
      max_rate: rate of the value 1 (per unit of ``dt``).
      dt: time step of the spike train.
      dtype: of the spikes (default: the default float).
    Returns:
      Spikes ``[T, ...]`` of 0s and 1s.
    """
    x = jnp.clip(jnp.asarray(x), 0.0, None)
    p = -jnp.expm1(-max_rate * x * dt)
    return bernoulli_encode(key, p, num_steps, dtype=dtype)


def constant_current(x: ArrayLike, num_steps: int, *, gain: ArrayLike = 1.0) -> jax.Array:
    """The same input ``gain * x`` at every step: ``[...] -> [T, ...]`` (direct/analog encoding)."""
    _check_steps(num_steps)
    x = jnp.asarray(x)
    return jnp.broadcast_to(gain * x, (num_steps,) + x.shape)


def rate_counts(spikes: ArrayLike) -> jax.Array:
    """Spike counts of spike trains ``[T, ..., n] -> [..., n]`` (sum over the time axis)."""
    return jnp.sum(spikes, axis=0)


def firing_rate(spikes: ArrayLike, dt: ArrayLike = 1.0) -> jax.Array:
    """Mean firing rate ``[T, ..., n] -> [..., n]``: spikes per step, divided by ``dt`` (per time unit).

    Args:
      spikes: spike trains ``[T, ..., n]``.
      dt: time step of the spike trains.
    """
    return jnp.mean(spikes, axis=0) / dt


def rate_class(spikes: ArrayLike) -> jax.Array:
    """Decision of a rate-coded output ``[T, ..., n_out]``: the most active neuron (ties to the lowest index)."""
    return jnp.argmax(rate_counts(spikes), axis=-1)
