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

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsnn import surrogate as _surrogate

__all__ = ["DLIFState", "step", "simulate", "integrate", "RESETS"]

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
      remat: ``jax.checkpoint`` the layer: keep only ``inputs`` and the parameters between the
        forward and the backward pass, and recompute the projection and the dynamics there (one more
        matmul) instead of keeping the current and the membrane ``[T, ..., n_out]`` alive; trades
        compute for memory on long sequences and deep stacks.
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

    def layer(inputs, weights, bias, beta, threshold, recurrent_weights):
        current = jnp.dot(inputs.astype(dtype), weights.astype(dtype))  # hoisted: one matmul for all steps
        if bias is not None:
            current = current + bias
        return integrate(current, beta=beta, threshold=threshold, reset=reset, surrogate=spike_fn,
                         recurrent_weights=recurrent_weights, detach_reset=detach_reset, unroll=unroll)

    if remat:
        layer = jax.checkpoint(layer)
    return layer(inputs, weights, bias, beta, threshold, recurrent_weights)


def integrate(current, *, beta, threshold, reset="subtract", surrogate=None, recurrent_weights=None,
              detach_reset=False, unroll=1):
    """The neuron dynamics of :func:`simulate` driven by a given current ``I[t]`` ``[T, ..., n]``.

    Backpropagation through time is written by hand (a ``custom_vjp`` around the two scans): the
    reverse scan carries only the membrane adjoint, and the gradients of ``beta``, ``threshold``
    and the recurrent weights are accumulated outside it, vectorized over time. The residuals are
    the returned spikes and membrane: no per-step intermediates are stored.

    Returns:
      ``(spikes, membrane)``, both ``[T, ..., n]``.
    """
    current = jnp.asarray(current)
    if current.ndim < 2:
        raise ValueError(f"current: expected a time-major array [T, ..., n], got shape {current.shape}")
    _check_reset(reset)
    n = current.shape[-1]
    _check_per_neuron("beta", beta, n)
    _check_per_neuron("threshold", threshold, n)
    spike_fn = _surrogate.resolve(surrogate)
    dtype = jnp.result_type(current.dtype, float)
    current = current.astype(dtype)
    # closed-over tracers of the spike function (e.g. a vmapped slope) become explicit arguments
    fn, consts = jax.closure_convert(spike_fn, jnp.zeros(current.shape[1:], dtype))
    beta = jnp.asarray(beta, dtype)
    threshold = jnp.asarray(threshold, dtype)
    rec = None if recurrent_weights is None else jnp.asarray(recurrent_weights, dtype)
    return _integrate(fn, reset, detach_reset, unroll, current, beta, threshold, rec, consts)


def _forward_scan(fn, reset, unroll, current, beta, threshold, rec, consts):
    def body(state, i_t):
        if rec is not None:
            i_t = i_t + state.s @ rec
        return _step(state, i_t, beta, threshold, reset, lambda x: fn(x, *consts), False)

    zeros = jnp.zeros(current.shape[1:], current.dtype)
    _, (spikes, membrane) = jax.lax.scan(body, DLIFState(zeros, zeros), current, unroll=unroll)
    return spikes, membrane


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _integrate(fn, reset, detach_reset, unroll, current, beta, threshold, rec, consts):
    return _forward_scan(fn, reset, unroll, current, beta, threshold, rec, consts)


def _integrate_fwd(fn, reset, detach_reset, unroll, current, beta, threshold, rec, consts):
    spikes, membrane = _forward_scan(fn, reset, unroll, current, beta, threshold, rec, consts)
    return (spikes, membrane), (spikes, membrane, beta, threshold, rec, consts)


def _sum_to(x, shape):
    """Sum a ``[T, ..., n]`` array down to a parameter's shape ``()``, ``(1,)`` or ``(n,)``."""
    if shape == () or shape == (1,):
        return jnp.sum(x).reshape(shape)
    return jnp.sum(x.reshape(-1, x.shape[-1]), axis=0)


def _integrate_bwd(fn, reset, detach_reset, unroll, res, cotangents):
    r"""Reverse-mode BPTT. With :math:`g_v[t] = dL/dv[t]` (total) and :math:`g_s[t] = dL/ds[t]`:

    .. math::

        g_s[t] &= \bar s[t] + \frac{\partial v[t+1]}{\partial s[t]}\, g_v[t+1] + g_v[t+1] V^\top, \qquad
        g_v[t] = \bar v[t] + \frac{\partial v[t+1]}{\partial v[t]}\, g_v[t+1]
                 + g_s[t]\,\sigma'(v[t] - \vartheta),

    with :math:`\partial v[t+1]/\partial v[t] = \beta` and :math:`\partial v[t+1]/\partial s[t] =
    -\vartheta` (subtract reset) or :math:`\beta (1 - s[t])` and :math:`-\beta v[t]` (zero reset); the
    reset term is dropped with ``detach_reset``. Then :math:`dL/dI[t] = g_v[t]`.
    """
    spikes, membrane, beta, threshold, rec, consts = res
    s_bar, v_bar = cotangents
    zeros = jnp.zeros(spikes.shape[1:], spikes.dtype)

    def body(gv_next, xs):
        s_t, v_t, sb_t, vb_t = xs
        if reset == "subtract":
            dv_dv, dv_ds = beta, -threshold
        else:
            dv_dv, dv_ds = beta * (1.0 - s_t), -beta * v_t
        gs = sb_t if detach_reset else sb_t + dv_ds * gv_next
        if rec is not None:
            gs = gs + gv_next @ rec.T
        _, vjp = jax.vjp(lambda x: fn(x, *consts), v_t - threshold)
        (gsig,) = vjp(gs)
        gv = vb_t + dv_dv * gv_next + gsig
        return gv, (gv, gsig)

    _, (gv, gsig) = jax.lax.scan(body, zeros, (spikes, membrane, s_bar, v_bar), reverse=True, unroll=unroll)
    s_prev = jnp.concatenate([zeros[None], spikes[:-1]])
    v_prev = jnp.concatenate([zeros[None], membrane[:-1]])
    if reset == "subtract":
        d_beta = _sum_to(gv * v_prev, beta.shape)
        d_threshold = _sum_to(-gsig - gv * s_prev, threshold.shape)
    else:
        d_beta = _sum_to(gv * v_prev * (1.0 - s_prev), beta.shape)
        d_threshold = _sum_to(-gsig, threshold.shape)
    d_rec = None
    if rec is not None:
        n = spikes.shape[-1]
        d_rec = s_prev.reshape(-1, n).T @ gv.reshape(-1, n)
    d_consts = [jnp.zeros_like(c) for c in consts]
    return gv, d_beta, d_threshold, d_rec, d_consts


_integrate.defvjp(_integrate_fwd, _integrate_bwd)
