r"""Discretized leaky integrate-and-fire (DLIF) neurons, simulated with ``lax.scan``.

The discrete-time LIF neuron of Fono et al. (arXiv 2503.02013) and of the surrogate-gradient
libraries (snnTorch ``Leaky``, Norse ``LIFBoxCell``, Spyx ``LIF``). With input spikes (or currents)
``x[t]`` and weights ``W``, for ``t = 0 .. T-1``:

.. math::

    I[t] &= x[t]\,W + b \;(+\; s[t-1]\,V \text{ if recurrent}) \\
    v[t] &= \beta\,v[t-1] + I[t] - \vartheta\,s[t-1]          &&\text{(reset = "subtract")} \\
    v[t] &= \beta\,v[t-1]\,(1 - s[t-1]) + I[t]                 &&\text{(reset = "zero")} \\
    s[t] &= \Theta(v[t] - \vartheta), \qquad v[-1] = s[-1] = 0,

with :math:`\Theta(x) = 1[x \ge 0]`. Training is backpropagation through time: the backward pass
replaces :math:`\Theta'` by a surrogate derivative (:mod:`jaxsnn.surrogate`).

The feed-forward projection :math:`x[t]\,W` does not depend on the state, so it is computed for all
steps at once, one ``[T * batch, n_in] @ [n_in, n_out]`` matmul outside the scan; the scan itself is
elementwise. ``beta`` and ``threshold`` are scalars or per-neuron ``[n_out]`` arrays and may be traced,
so they can be trained or swept with ``vmap``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsnn import surrogate as _surrogate

__all__ = ["DLIFState", "step", "simulate", "RESETS"]

RESETS = ("subtract", "zero")


class DLIFState(NamedTuple):
    """The state carried from step ``t-1`` to ``t``: membrane ``v`` and spikes ``s``, both ``[..., n]``."""

    v: jax.Array
    s: jax.Array


def _check_reset(reset):
    if reset not in RESETS:
        raise ValueError(f"reset: expected one of {RESETS}, got {reset!r}")


def step(state: DLIFState, current, *, beta, threshold, reset="subtract", surrogate=None, detach_reset=False):
    """One time step of the DLIF neuron (the body :func:`simulate` scans).

    Args:
      state: :class:`DLIFState` of the previous step (``v[t-1]``, ``s[t-1]``).
      current: input current ``I[t]`` ``[..., n]``.
      beta: membrane decay factor per step, scalar or ``[n]``.
      threshold: firing threshold, scalar or ``[n]``.
      reset: ``"subtract"`` (``v -= threshold`` after a spike) or ``"zero"`` (``v -> 0``).
      surrogate: spike function (see :func:`jaxsnn.surrogate.resolve`).
      detach_reset: stop the gradient through the reset term ``s[t-1]`` (as snnTorch does).
    Returns:
      ``(new_state, (s[t], v[t]))``.
    """
    _check_reset(reset)
    spike_fn = _surrogate.resolve(surrogate)
    return _step(state, current, beta, threshold, reset, spike_fn, detach_reset)


def _step(state, current, beta, threshold, reset, spike_fn, detach_reset):
    v_prev, s_prev = state
    if detach_reset:
        s_prev = jax.lax.stop_gradient(s_prev)
    if reset == "subtract":
        v = beta * v_prev + current - threshold * s_prev
    else:
        v = beta * v_prev * (1.0 - s_prev) + current
    s = spike_fn(v - threshold)
    return DLIFState(v, s), (s, v)


def _check_per_neuron(name, x, n_out):
    shape = jnp.shape(x)
    if shape not in ((), (n_out,), (1,)):
        raise ValueError(f"{name}: expected a scalar or shape ({n_out},), got shape {shape}")


def simulate(inputs, weights, *, beta, threshold, bias=None, reset="subtract", surrogate=None,
             recurrent_weights=None, detach_reset=False, remat=False, unroll=1):
    """Simulate a layer of DLIF neurons over all time steps.

    Args:
      inputs: input spikes or currents, time-major ``[T, ..., n_in]`` (``T >= 1``).
      weights: ``[n_in, n_out]``.
      beta: decay per step, scalar or ``[n_out]`` (e.g. ``exp(-dt / tau_mem)``); may be traced.
      threshold: scalar or ``[n_out]``; may be traced.
      bias: ``None`` or ``[n_out]``, added to the current every step.
      reset: ``"subtract"`` or ``"zero"`` (see the module equations).
      surrogate: ``None`` (fast sigmoid, slope 25), a name in :data:`jaxsnn.surrogate.SURROGATES`, or a
        callable ``x -> spikes``.
      recurrent_weights: ``None`` or ``[n_out, n_out]``: adds ``s[t-1] @ V`` to the current.
      detach_reset: no gradient through the reset term.
      remat: recompute each step in the backward pass (``jax.checkpoint``) instead of storing its
        intermediates; trades compute for memory on long sequences.
      unroll: steps per scan iteration (``lax.scan``'s ``unroll``).
    Returns:
      ``(spikes, membrane)``, both ``[T, ..., n_out]``.
    Raises:
      ValueError: no time axis, mismatched shapes, unknown ``reset`` or ``surrogate``.
    """
    inputs = jnp.asarray(inputs)
    weights = jnp.asarray(weights)
    if inputs.ndim < 2:
        raise ValueError(f"inputs: expected a time-major array [T, ..., n_in], got shape {inputs.shape}")
    if weights.ndim != 2:
        raise ValueError(f"weights: expected [n_in, n_out], got shape {weights.shape}")
    n_in, n_out = weights.shape
    if inputs.shape[-1] != n_in:
        raise ValueError(f"inputs: last axis {inputs.shape[-1]} does not match weights [n_in={n_in}, n_out]")
    _check_reset(reset)
    spike_fn = _surrogate.resolve(surrogate)
    _check_per_neuron("beta", beta, n_out)
    _check_per_neuron("threshold", threshold, n_out)
    if bias is not None:
        _check_per_neuron("bias", bias, n_out)
    if recurrent_weights is not None and jnp.shape(recurrent_weights) != (n_out, n_out):
        raise ValueError(f"recurrent_weights: expected shape ({n_out}, {n_out}), got {jnp.shape(recurrent_weights)}")

    dtype = jnp.result_type(inputs.dtype, weights.dtype, float)
    current = jnp.dot(inputs.astype(dtype), weights.astype(dtype))  # hoisted: one matmul for all steps
    if bias is not None:
        current = current + bias

    def body(state, i_t):
        if recurrent_weights is not None:
            i_t = i_t + state.s @ recurrent_weights
        return _step(state, i_t, beta, threshold, reset, spike_fn, detach_reset)

    if remat:
        body = jax.checkpoint(body)
    zeros = jnp.zeros(current.shape[1:], current.dtype)
    _, (spikes, membrane) = jax.lax.scan(body, DLIFState(zeros, zeros), current, unroll=unroll)
    return spikes, membrane
