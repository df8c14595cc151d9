r"""Activity and decision metrics of spiking networks: spikes per sample, silent neurons, and
prediction latency (when the network's decision stops changing).

A multi-spike output ``t [..., n_out, K]`` defines a decision at every time ``tau`` from the
spikes emitted up to ``tau``: the neuron with the most spikes so far (``decoder="count"``, ties
to the earliest first spike) or the earliest spike (``decoder="first"``). The decision only
changes at output spikes, so these metrics are exact: no time grid.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxsnn.coding import count_class, first_spike_class

__all__ = ["spikes_per_sample", "silent_fraction", "decisions_over_time", "prediction_latency", "accuracy_over_time",
           "confidence_over_time", "pareto_frontier"]


def spikes_per_sample(t: jax.Array) -> jax.Array:
    """Mean number of spikes per sample of a layer's output ``[B, n, K]`` (or ``[B, n]``)."""
    t = t if t.ndim >= 3 else t[..., None]
    return jnp.mean(jnp.sum(jnp.isfinite(t), axis=(-2, -1)))


def silent_fraction(t: jax.Array) -> jax.Array:
    """Fraction of neurons that never spike, over all samples: ``[B, n, K]`` -> scalar; per
    neuron (silent for every sample) with :func:`jnp.all` over the batch if needed."""
    t = t if t.ndim >= 3 else t[..., None]
    return jnp.mean(~jnp.any(jnp.isfinite(t), axis=-1))


def _decide(t, decoder):
    if decoder == "count":
        return count_class(t)
    if decoder == "first":
        return first_spike_class(jnp.min(t, axis=-1))
    raise ValueError(f"decoder must be 'count' or 'first', got {decoder!r}")


def _decision_at(t, tau, decoder):
    """Decision from the spikes at times ``<= tau`` (``tau`` broadcast against ``[B, 1, 1]``);
    ``-1`` where no output neuron has spiked yet."""
    seen = jnp.where(t <= tau, t, jnp.inf)
    any_spike = jnp.any(jnp.isfinite(seen), axis=(-2, -1))
    return jnp.where(any_spike, _decide(seen, decoder), -1)


def decisions_over_time(t: jax.Array, times: ArrayLike, decoder: str = "count") -> jax.Array:
    """Decision at each time in ``times [T]`` from the spikes up to then: ``[T, B]``; ``-1``
    where no output neuron has spiked yet."""
    return jax.lax.map(lambda tau: _decision_at(t, tau, decoder), jnp.asarray(times, t.dtype))


def prediction_latency(t: jax.Array, decoder: str = "count") -> jax.Array:
    """Earliest time after which the decision no longer changes, per sample ``[B]``.

    Candidate times are the sample's own output spikes (the decision changes nowhere else):
    the latency is the output spike after which every later decision equals the final one;
    ``inf`` for a sample without output spikes.
    """
    B = t.shape[0]
    flat = t.reshape(B, -1)
    cand = jnp.sort(flat, axis=-1)  # [B, M]
    final = _decide(t, decoder)

    decs = jax.lax.map(lambda i: _decision_at(t, cand[:, i][:, None, None], decoder),
                       jnp.arange(cand.shape[1])).T  # [B, M]
    valid = jnp.isfinite(cand)
    wrong = valid & (decs != final[:, None])
    M = cand.shape[1]
    idx = jnp.arange(M)
    last_wrong = jnp.max(jnp.where(wrong, idx, -1), axis=-1)  # final from the next spike on
    settle = jnp.take_along_axis(cand, jnp.clip(last_wrong + 1, 0, M - 1)[:, None], axis=-1)[:, 0]
    return jnp.where(jnp.any(valid, axis=-1), settle, jnp.inf)


def accuracy_over_time(t: jax.Array, labels: jax.Array, times: ArrayLike, decoder: str = "count") -> jax.Array:
    """Fraction of samples whose decision at each time is correct: ``[T]`` (for latency curves)."""
    d = decisions_over_time(t, times, decoder)
    return jnp.mean(d == labels[None, :], axis=-1)


def confidence_over_time(t: jax.Array, labels: ArrayLike, times: ArrayLike, decoder: str = "count") -> jax.Array:
    """Fraction of samples already *correctly decided* at each time ``[T]``: the decision at
    ``tau`` is correct and no later output spike changes it (``tau >=``
    :func:`prediction_latency` and the final decision is right). Unlike
    :func:`accuracy_over_time` this never counts a sample that is right by chance for a while.
    """
    times = jnp.asarray(times, t.dtype)
    settled = prediction_latency(t, decoder)
    right = _decide(t, decoder) == labels
    done = right[None, :] & (times[:, None] >= settled[None, :])
    return jnp.mean(done, axis=-1)


def pareto_frontier(accuracy: ArrayLike, cost: ArrayLike) -> list[int]:
    """Indices of the points no other point beats on both counts (higher ``accuracy`` and
    lower ``cost``, e.g. spikes per inference), ordered by increasing cost.

    A point is dominated when another has accuracy ``>=`` and cost ``<=`` with one of them
    strict. Host-side (numpy) post-processing of a sweep's results; NaN points are ignored.
    """
    import numpy as np

    a, c = np.asarray(accuracy, float).ravel(), np.asarray(cost, float).ravel()
    if a.shape != c.shape:
        raise ValueError(f"accuracy and cost must have the same size, got {a.shape} and {c.shape}")
    ok = np.isfinite(a) & np.isfinite(c)
    keep = []
    for i in np.nonzero(ok)[0]:
        dominated = ok & (a >= a[i]) & (c <= c[i]) & ((a > a[i]) | (c < c[i]))
        if not dominated.any():
            keep.append(i)
    return sorted(keep, key=lambda i: (c[i], -a[i]))
