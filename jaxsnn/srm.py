r"""Spike response model (SRM) neurons with a piecewise-linear response: closed-form first-spike times.

A neuron ``v`` receives input spikes at times ``t_u`` through weights ``w_uv`` and
(optionally) delays ``d_uv``. Its potential is

.. math::

    P_v(t) = \sum_u w_{uv}\, \varepsilon(t - t_u - d_{uv}),

and it fires once, at the first time the potential reaches the threshold,

.. math::

    t_v = \inf\{t : P_v(t) \ge \theta_v\}.

Two response kernels with support ``(0, delta]`` (Singh, Fono & Kutyniok, *Expressivity of
Spiking Neural Networks*, arXiv 2308.08218; Fono et al., arXiv 2503.02013):

* ``"ramp"`` (linear response): :math:`\varepsilon(s) = s` for :math:`0 < s \le \delta`, else 0.
  With ``delta = inf`` this is the ReLU response :math:`\varepsilon(s) = \max(s, 0)`.
* ``"step"``: :math:`\varepsilon(s) = 1` for :math:`0 < s \le \delta`, else 0.

The potential is linear between *knots* (arrivals ``a_u = t_u + d_uv`` and cutoffs
``a_u + delta``). On a segment with active set ``A`` (inputs with ``a_u < t <= a_u + delta``)
the ramp potential is :math:`P(t) = S\,t - \sum_{u\in A} w_u a_u` with slope
:math:`S = \sum_{u \in A} w_u`, so the crossing time is

.. math::

    t_v = \frac{\theta_v + \sum_{u \in A} w_{uv} a_{u}}{\sum_{u \in A} w_{uv}}.

The closed form sorts the knots, accumulates slopes and intercepts, and takes the first
segment whose right end reaches the threshold. No time grid is involved.

Exact gradients (almost everywhere), with :math:`S` the slope at the crossing:

.. math::

    \frac{\partial t_v}{\partial \theta_v} = \frac{1}{S},\qquad
    \frac{\partial t_v}{\partial w_{uv}} = \frac{a_u - t_v}{S}\,[u \in A],\qquad
    \frac{\partial t_v}{\partial a_{u}} = \frac{w_{uv}}{S}\,[u \in A].

A spike can also sit exactly on a knot: every spike of the step kernel, and a ramp spike
released when an *inhibitory* input's response ends (the potential jumps up by
:math:`|w_u|\,\delta` at the cutoff). Then :math:`t_v = a_u` or :math:`a_u + \delta`, so
:math:`\partial t_v / \partial a_u = 1` (and :math:`\partial t_v / \partial \delta = 1` for a cutoff).

They are implemented with :func:`jax.custom_vjp`, which avoids differentiating through the
sort. A silent neuron (``t_v = inf``) and an input that never arrives (``t_u = inf``) get
zero gradients, never NaN.

Cost. The ReLU response without delays (``kernel="ramp"``, ``delta=inf``, no ``delays``) runs
:mod:`jaxsnn.srm_ramp`: two matrix products find the neurons that cannot fire before their last
input (their spike is then a closed form, forward and backward by matrix products); only the others
walk the sorted inputs, 8 per loop iteration, carrying three ``[batch, n_out]`` arrays. Every other
case walks the sorted knots (arrivals and cutoffs) once in a ``lax.while_loop`` that carries
``[batch, n_out]`` accumulators and stops after the last finite knot of the batch or when every
neuron has fired, so inputs that never arrive cost nothing; its backward pass loops over the batch
on ``[n_in, n_out]`` slabs. With delays the arrival order differs per output neuron and the sort is
over ``[batch, n_in, n_out]``, which is much more expensive; for the ReLU response, two matrix
products first check whether any neuron could fire before its last arrival, and if none can, the
closed form after it replaces the walk (:func:`jaxsnn.srm_ramp.after_last_arrival`). Both
formulations give the same spike times and gradients (``tests/test_srm.py``); timings in ``benchmarks/bench_layers.py``.
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxsnn import _vma, srm_ramp
from jaxsnn._internal import (
    argsort,
    as_arrays,
    check_positive,
    check_scalar,
    check_times,
    check_weights_threshold,
    fail,
    is_concrete,
    require,
)
from jaxsnn._vma import vary_like

__all__ = ["first_spike_times", "potential", "KERNELS"]

KERNELS = ("ramp", "step")


# ----------------------------------------------------------------------------------------------
# Input validation
# ----------------------------------------------------------------------------------------------


def _validate(t_in, weights, threshold, delays, kernel, delta):
    if kernel not in KERNELS:
        raise fail("kernel", f"one of {KERNELS}", repr(kernel))
    n_in, n_out = check_weights_threshold(weights, threshold)
    if jnp.ndim(t_in) < 1 or jnp.shape(t_in)[-1] != n_in:
        raise fail("t_in", f"shape [..., n_in] with n_in = {n_in} (rows of weights)", f"shape {jnp.shape(t_in)}")
    if delays is not None and jnp.shape(delays) != (n_in, n_out):
        raise fail("delays", f"shape [n_in, n_out] = [{n_in}, {n_out}]", f"shape {jnp.shape(delays)}")
    check_scalar("delta", delta)
    # Value checks where values are known (outside jit; inside it with jaxsnn.checks.checked).
    check_positive("delta", delta)
    if delays is not None:
        require("delays", delays, lambda d, xp: xp.isfinite(d) & (d >= 0), "finite, non-negative values",
                "negative or non-finite values")
    check_times("t_in", t_in)


# ----------------------------------------------------------------------------------------------
# Forward: an event-driven pass over the sorted knots
# ----------------------------------------------------------------------------------------------

_UNROLL = 8  # knots processed per while-loop iteration


def _events(a, delta, finite_delta):
    """Knots sorted in time along axis 1, with the input and the sign of each event.

    Args:
      a: arrival times ``[B, n, D]``; ``D = 1`` when all outputs share them (no delays).
    Returns:
      ``(time, src, sign, base)``, each ``[B, M, D]`` with ``M = n`` or ``2 n``: knot time
      (sorted, ``inf`` last), index of the input, +1 for an arrival and -1 for a cutoff,
      and the arrival time of that input (0 where it never arrives).
    """
    n = a.shape[1]
    if finite_delta:
        knots = jnp.concatenate([a, a + delta], axis=1)
    else:
        knots = a
    order = argsort(knots, axis=1)
    time = jnp.take_along_axis(knots, order, axis=1)
    src = order % n
    sign = jnp.where(order < n, 1.0, -1.0).astype(a.dtype)
    base = jnp.take_along_axis(jnp.where(jnp.isfinite(a), a, 0.0), src, axis=1)
    return time, src, sign, base


def _first_crossing(a, w, theta, delta, kernel, finite_delta):
    """Event-driven first crossing of ``P(t) = S t - sum(w a)`` with ``theta``.

    Walks the sorted knots of all samples in lock step (``_UNROLL`` knots per iteration),
    carrying the slope ``S`` and ``sum w a`` per ``[B, n_out]``, and stops after the last
    finite knot of the batch or when every neuron has fired. Nothing of size
    ``B x n_in x n_out`` is materialized when there are no delays.

    Returns:
      ``t`` (first spike times, ``inf`` if silent), ``slope`` (at the crossing), ``src``
      (the knot that starts the firing segment: input ``u`` for its arrival, ``n + u`` for
      its cutoff) and ``at_knot`` (the spike is that knot: a jump of the potential), each
      ``[B, n_out]``.
    """
    B, n, D = a.shape
    n_out = w.shape[1]
    time, src, sign, base = _events(a, delta, finite_delta)
    M = time.shape[1]
    pad = (-M) % _UNROLL + 1  # room for the look-ahead knot
    time = jnp.pad(time, ((0, 0), (0, pad), (0, 0)), constant_values=jnp.inf)
    src = jnp.pad(src, ((0, 0), (0, pad), (0, 0)))
    sign = jnp.pad(sign, ((0, 0), (0, pad), (0, 0)))
    base = jnp.pad(base, ((0, 0), (0, pad), (0, 0)))
    n_knots = jnp.max(jnp.sum(jnp.isfinite(time), axis=1))
    cols = jnp.arange(n_out)
    inf = jnp.array(jnp.inf, a.dtype)

    def at(x, p):
        return jax.lax.dynamic_index_in_dim(x, p, axis=1, keepdims=False)  # [B, D]

    def body(carry):
        k, slope, wa, done, s_sel, wa_sel, lo, hi, src_sel, jump_sel = carry
        for j in range(_UNROLL):
            p = k + j
            tk, tn, ik, sg = at(time, p), at(time, p + 1), at(src, p), at(sign, p)
            live = jnp.isfinite(tk)
            row = w[ik[:, 0]] if D == 1 else w[ik, cols]  # [B, n_out]
            row = row * jnp.where(live, sg, 0.0)
            slope = slope + row
            wa = wa + row * at(base, p)
            if kernel == "ramp":
                tn_fin = jnp.isfinite(tn)
                p_end = slope * jnp.where(tn_fin, tn, 0.0) - wa
                # After the last knot the neuron fires iff S > 0 when delta = inf; when delta
                # is finite no input is active there (the slope left is rounding residue).
                last = (slope > 0) & jnp.isinf(delta) if finite_delta else slope > 0
                reach = jnp.where(tn_fin, p_end >= theta, last)
                if finite_delta:
                    # The ramp potential drops by w delta at a cutoff: an inhibitory input
                    # leaving makes it jump *up*, and the spike is then the knot itself.
                    jump = (sg < 0) & (slope * jnp.where(live, tk, 0.0) - wa >= theta)
                    reach = reach | jump
            else:
                reach = slope >= theta
            # Evaluate once per distinct knot time (after the last event of a tie group):
            # a partly applied group of cutoffs is not a potential the neuron ever has.
            reach = reach & (live & (tk < tn)) & ~done
            done = done | reach
            s_sel = jnp.where(reach, slope, s_sel)
            wa_sel = jnp.where(reach, wa, wa_sel)
            lo = jnp.where(reach, tk, lo)
            hi = jnp.where(reach, tn, hi)
            if kernel == "step" or finite_delta:
                knot_id = (ik + jnp.where(sg < 0, n, 0)).astype(jnp.int32)
                src_sel = jnp.where(reach, knot_id, src_sel)
            if kernel == "ramp" and finite_delta:
                jump_sel = jnp.where(reach, jump, jump_sel)
        return k + _UNROLL, slope, wa, done, s_sel, wa_sel, lo, hi, src_sel, jump_sel

    def cond(carry):
        return (carry[0] < n_knots) & ~jnp.all(carry[3])

    zeros = jnp.zeros((B, n_out), a.dtype)
    init = (jnp.array(0, jnp.int32), zeros, zeros, jnp.zeros((B, n_out), bool), zeros, zeros,
            zeros, zeros, jnp.zeros((B, n_out), jnp.int32), jnp.zeros((B, n_out), bool))
    _, _, _, done, s, wa, lo, hi, src_out, jump_out = jax.lax.while_loop(cond, body, vary_like(init, a, w))
    # Solve on the firing segment (lo, hi]: the line S t - sum(w a) = theta, or the knot lo.
    if kernel == "ramp":
        jump_out = jump_out & done
        pos = s > 0
        t_line = jnp.clip((theta + wa) / jnp.where(pos, s, 1.0), lo, hi)
        t = jnp.where(jump_out, lo, jnp.where(pos, t_line, hi))
    else:
        jump_out = done
        t = lo
    t = jnp.where(done, t, inf)
    s = jnp.where(done, s, 0.0)
    return t, s, src_out, jump_out


# ----------------------------------------------------------------------------------------------
# Exact gradients (custom VJP)
# ----------------------------------------------------------------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _spike_times(t, d, w, theta, delta, kernel, finite_delta):
    """Arrivals ``a = t + d``: input times ``t [B, n]`` and delays ``d [n, n_out]`` (``[n, 1]`` zeros
    without delays), kept apart so that the residuals hold no ``[B, n, n_out]`` array."""
    return _crossing(_arrivals(t, d), w, theta, delta, kernel, finite_delta)[0]


def _arrivals(t, d):
    return t[:, :, None] + d[None]


def _fast_path(kernel, finite_delta, a):
    return kernel == "ramp" and not finite_delta and a.shape[2] == 1


def _crossing(a, w, theta, delta, kernel, finite_delta):
    """The forward formulation for the case: :mod:`jaxsnn.srm_ramp` for the ReLU response without
    delays (the common case), the general event walk otherwise. Same outputs."""
    if _fast_path(kernel, finite_delta, a):
        t, s = srm_ramp.first_crossing(a[:, :, 0], w, theta)
        return t, s, jnp.zeros(t.shape, jnp.int32), jnp.zeros(t.shape, bool)
    return _first_crossing(a, w, theta, delta, kernel, finite_delta)


def _spike_times_fwd(t_in, d, w, theta, delta, kernel, finite_delta):
    t, s, src, at_knot = _crossing(_arrivals(t_in, d), w, theta, delta, kernel, finite_delta)
    return t, (t_in, d, w, delta, t, s, src, at_knot)


def _line_grads(a, w, delta, t, gs, finite_delta):
    """Gradients of spikes on a rising line, ``t = (theta + sum_A w a) / S``.

    ``dt/dtheta = 1/S``, ``dt/dw_u = (a_u - t)/S`` and ``dt/da_u = w_u/S`` over the active set
    ``A = {u : a_u < t <= a_u + delta}``; ``gs = g / S`` (zero where not applicable). Loops
    over the batch so that each iteration works on one ``[n_in, n_out]`` slab.
    """
    t0 = jnp.where(gs != 0, t, 0.0)
    arrived = jnp.isfinite(a)
    a0 = jnp.where(arrived, a, 0.0)
    D = a.shape[2]

    def body(b, carry):
        dw, da = carry
        ab, tb = a0[b], t0[b][None, :]  # [n, D], [1, n_out]
        active = arrived[b] & (ab < tb)
        if finite_delta:
            active = active & (tb <= ab + delta)
        coef = jnp.where(active, gs[b][None, :], 0.0)  # [n, n_out]
        dw = dw + coef * (ab - tb)
        dab = coef * w
        if D == 1:
            dab = jnp.sum(dab, axis=1, keepdims=True)
        return dw, jax.lax.dynamic_update_index_in_dim(da, dab, b, axis=0)

    return jax.lax.fori_loop(0, a.shape[0], body, vary_like((jnp.zeros_like(w), jnp.zeros_like(a))))


def _spike_times_bwd(kernel, finite_delta, res, g):
    t_in, d, w, delta, t, s, src, at_knot = res
    da, dw, dtheta, ddelta = _grads(kernel, finite_delta, _arrivals(t_in, d), w, delta, t, s, src, at_knot, g)
    return jnp.sum(da, axis=2), jnp.sum(da, axis=0), dw, dtheta, ddelta


def _grads(kernel, finite_delta, a, w, delta, t, s, src, at_knot, g):
    B, n, D = a.shape
    fired = jnp.isfinite(t)
    on_line = fired & ~at_knot & (s > 0)
    if kernel == "ramp":
        gs = jnp.where(on_line, g / jnp.where(on_line, s, 1.0), 0.0)
        if _fast_path(kernel, finite_delta, a):
            dw, da = srm_ramp.line_grads(a[:, :, 0], w, t, gs)
            da = da[:, :, None]
        else:
            dw, da = _line_grads(a, w, delta, t, gs, finite_delta)
        dtheta = jnp.sum(gs, axis=0)
    else:
        dw, da, dtheta = jnp.zeros_like(w), jnp.zeros_like(a), jnp.zeros(t.shape[1:], t.dtype)
    if kernel == "ramp" and not finite_delta:  # no knot spikes without cutoffs
        return da, dw, dtheta, jnp.zeros_like(delta)
    # Spikes at a knot (every step-kernel spike; ramp spikes released by an inhibitory
    # cutoff): t = a_u or a_u + delta, so dt/da_u = 1 and dt/ddelta = [cutoff].
    gk = jnp.where(fired & at_knot, g, 0.0)
    n_out = t.shape[1]
    bidx = jnp.broadcast_to(jnp.arange(B)[:, None], (B, n_out))
    vidx = (jnp.broadcast_to(jnp.arange(n_out)[None, :], (B, n_out)) if D > 1
            else jnp.zeros((B, n_out), jnp.int32))
    da = da.at[bidx, src % n, vidx].add(gk)
    ddelta = jnp.sum(jnp.where(src >= n, gk, 0.0)) if finite_delta else 0.0
    return da, dw, dtheta, jnp.zeros_like(delta) + ddelta


_spike_times.defvjp(_spike_times_fwd, _spike_times_bwd)
# Compiled once per (shapes, kernel, cutoff path); inlined when called under an outer jit.
_spike_times_jit = jax.jit(_spike_times, static_argnums=(5, 6))


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


def first_spike_times(
    t_in: ArrayLike,
    weights: ArrayLike,
    threshold: ArrayLike,
    *,
    delays: Optional[ArrayLike] = None,
    kernel: str = "ramp",
    delta: ArrayLike = jnp.inf,
) -> jax.Array:
    r"""First spike times of a layer of SRM neurons with a piecewise-linear response.

    .. math::

        t_v = \inf\Big\{t : \sum_u w_{uv}\,\varepsilon(t - t_u - d_{uv}) \ge \theta_v\Big\}

    with the ramp kernel :math:`\varepsilon(s) = s\,[0 < s \le \delta]` or the step kernel
    :math:`\varepsilon(s) = [0 < s \le \delta]` (Singh, Fono & Kutyniok, arXiv 2308.08218).

    Args:
      t_in: input spike times ``[..., n_in]``; ``jnp.inf`` means the input does not spike.
      weights: synaptic weights ``[n_in, n_out]`` (any sign).
      threshold: firing threshold, a positive scalar or ``[n_out]``.
      delays: optional non-negative synaptic delays ``[n_in, n_out]``.
      kernel: ``"ramp"`` (linear response) or ``"step"``.
      delta: length of the response (``jnp.inf``: no cutoff). A Python ``inf`` selects the
        cheaper path without cutoff knots; a finite or traced value adds one knot per input.

    Returns:
      First spike times ``[..., n_out]``; ``jnp.inf`` for neurons that never reach the threshold.

    Gradients with respect to ``t_in``, ``weights``, ``threshold`` and ``delays`` are exact
    (almost everywhere) and finite; see the module docstring for the formulas.

    Example: inputs at 0 and 1 through unit weights. The potential is ``t`` until the second
    input arrives and ``2t - 1`` after, so threshold 1 is reached at ``t = 1`` and threshold 2 at
    ``t = 1.5``:

    >>> import jax.numpy as jnp
    >>> from jaxsnn import srm
    >>> srm.first_spike_times(jnp.array([0.0, 1.0]), jnp.ones((2, 2)), jnp.array([1.0, 2.0]))
    Array([1. , 1.5], dtype=float32)
    """
    t_in, weights, threshold, delays = as_arrays(t_in, weights, threshold, delays)
    _validate(t_in, weights, threshold, delays, kernel, delta)
    dtype = jnp.result_type(t_in, weights, float)
    t_in = jnp.asarray(t_in, dtype)
    weights = jnp.asarray(weights, dtype)
    n_in, n_out = weights.shape
    theta = jnp.broadcast_to(jnp.asarray(threshold, dtype), (n_out,))
    finite_delta = not (is_concrete(delta) and math.isinf(float(delta)))
    delta_arr = jnp.asarray(delta, dtype)

    batch_shape = t_in.shape[:-1]
    if t_in.size == 0:  # no sample, or no input: the potential stays 0 and no neuron fires
        return jnp.full(batch_shape + (n_out,), jnp.inf, dtype)
    t_flat = t_in.reshape((-1, n_in))
    d = jnp.zeros((n_in, 1), dtype) if delays is None else jnp.asarray(delays, dtype)
    t_flat, d, weights, theta, delta_arr = vary_like((t_flat, d, weights, theta, delta_arr))  # shard_map: jaxsnn._vma
    if delays is not None and kernel == "ramp" and not finite_delta:
        t = _ramp_with_delays(t_flat, weights, theta, d)
    else:
        t = _spike_times_jit(t_flat, d, weights, theta, delta_arr, kernel, finite_delta)
    return t.reshape(batch_shape + (n_out,))


@jax.jit
def _ramp_with_delays(t, w, theta, d):
    """ReLU response with delays: when no neuron can fire before its last arrival (two matrix
    products tell, :func:`jaxsnn.srm_ramp.cannot_fire_early`), the closed form after it
    (:func:`jaxsnn.srm_ramp.after_last_arrival`); otherwise the event walk over the per-neuron
    arrival order. Under ``vmap`` both branches run."""
    def walk(t, w, theta, d):
        return _spike_times(t, d, w, theta, jnp.asarray(jnp.inf, t.dtype), "ramp", False)

    late = srm_ramp.cannot_fire_early(t, w, theta, d)
    return _vma.cond(jnp.all(late), srm_ramp.after_last_arrival, walk, t, w, theta, d)


def potential(t: jax.Array, t_in: jax.Array, weights: ArrayLike, *, delays: Optional[ArrayLike] = None,
              kernel: str = "ramp", delta: ArrayLike = jnp.inf) -> jax.Array:
    r"""Membrane potential :math:`P_v(t)` at query times ``t``, by direct summation.

    A direct evaluation of the model (no sorting), useful to inspect a neuron or to check
    :func:`first_spike_times`.

    Args:
      t: query times ``[..., T]``.
      t_in: input spike times ``[..., n_in]`` (same leading shape as ``t``).
      weights: ``[n_in, n_out]``.
      delays, kernel, delta: as in :func:`first_spike_times`.
    Returns:
      ``[..., T, n_out]``.

    Example (inputs at 0 and 1, unit weights: ``P(0.5) = 0.5``, ``P(2) = 2 + 1``):

    >>> import jax.numpy as jnp
    >>> from jaxsnn import srm
    >>> srm.potential(jnp.array([0.5, 2.0]), jnp.array([0.0, 1.0]), jnp.ones((2, 1)))
    Array([[0.5],
           [3. ]], dtype=float32)
    """
    if kernel not in KERNELS:
        raise fail("kernel", f"one of {KERNELS}", repr(kernel))
    a = t_in[..., None, :, None]  # [..., 1, n_in, 1]
    if delays is not None:
        a = a + delays
    s = t[..., :, None, None] - a  # [..., T, n_in, n_out]
    on = (s > 0) & (s <= delta)
    if kernel == "ramp":
        eps = jnp.where(on, s, 0.0)
    else:
        eps = on.astype(s.dtype)
    return jnp.sum(eps * weights, axis=-2)
