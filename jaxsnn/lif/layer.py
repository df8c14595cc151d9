"""The LIF layer function :func:`spike_times`: argument checks, and the ``custom_vjp`` that joins the
forward walk (:mod:`jaxsnn.lif.forward`) and its adjoint (:mod:`jaxsnn.lif.backward`)."""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxsnn._internal import (
    as_arrays,
    check_non_negative,
    check_positive,
    check_scalar,
    check_times,
    check_weights_threshold,
    fail,
    is_concrete,
)
from jaxsnn._vma import vary_like
from jaxsnn.discretize import ESTIMATORS
from jaxsnn.lif.backward import (
    event_grads,
    event_grads_chunked,
    event_grads_first,
    spike_adjoints,
    spike_adjoints_discrete,
    spike_table,
)
from jaxsnn.lif.config import DEFAULT, Config
from jaxsnn.lif.forward import Params, forward

TAU_RATIOS = (1, 2)


def _validate(t_in, weights, tau_syn, threshold, tau_ratio, max_spikes, t_max):
    if tau_ratio not in TAU_RATIOS:
        raise fail("tau_ratio", "2 (tau_mem = 2 tau_syn, quadratic closed form) or 1 (tau_mem = tau_syn, "
                   "Lambert W closed form)", repr(tau_ratio))
    if not isinstance(max_spikes, (int, np.integer)) or isinstance(max_spikes, bool) or max_spikes < 1:
        raise fail("max_spikes", "a positive int (static)", repr(max_spikes))
    n_in, n_out = check_weights_threshold(weights, threshold)
    if jnp.ndim(t_in) < 2 or jnp.shape(t_in)[-2] != n_in:
        raise fail("t_in", f"shape [..., n_in, k_in] with n_in = {n_in} (rows of weights; pass t[..., None] "
                   "for one spike per input)", f"shape {jnp.shape(t_in)}")
    check_scalar("tau_syn", tau_syn)
    check_scalar("t_max", t_max)
    check_positive("tau_syn", tau_syn, finite=True)
    check_non_negative("t_max", t_max, hint=" (jnp.inf for no limit)")
    check_times("t_in", t_in)
    if is_concrete(t_in):
        t = np.asarray(t_in, dtype=float)
        with np.errstate(invalid="ignore"):  # inf - inf between padding slots
            unsorted = t.ndim >= 2 and t.shape[-1] > 1 and np.any(np.diff(t, axis=-1) < 0)
        if unsorted:
            raise fail("t_in", "spikes sorted ascending along the last axis (k_in), inf-padded", "unsorted times")


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7, 8, 9, 10))
def _spike_times(t_flat, w, tau_syn, theta, t_max, dt, ratio, k_in, K, estimator, config):
    prm = Params(tau_syn, ratio * tau_syn, theta, t_max, None if estimator is None else dt)
    return forward(t_flat, w, prm, ratio, k_in, K, config)[0]


def _spike_times_fwd(t_flat, w, tau_syn, theta, t_max, dt, ratio, k_in, K, estimator, config):
    # symbolic zeros: when neither the input times nor tau_syn are differentiated (a network's
    # first layer, with data as input), the backward pass skips the input-time gradients
    with_t_in = t_flat.perturbed or tau_syn.perturbed
    t_flat, w, tau_syn, theta, t_max, dt = (a.value for a in (t_flat, w, tau_syn, theta, t_max, dt))
    prm = Params(tau_syn, ratio * tau_syn, theta, t_max, None if estimator is None else dt)
    t_out, slopes, times_e, order, star, imm = forward(t_flat, w, prm, ratio, k_in, K, config)
    # the flag travels in the residuals' structure (None: skip), so the backward pass sees it statically
    marker = jnp.zeros(()) if with_t_in else None
    return t_out, (t_flat, w, prm, t_out, slopes, times_e, order, star, imm, dt, marker)


def _spike_times_bwd(ratio, k_in, K, estimator, config, res, g):
    t_flat, w, prm, t_out, slopes, times_e, order, star, imm, dt_step, marker = res
    with_t_in = marker is not None
    if isinstance(g, jax.custom_derivatives.SymbolicZero):  # the output is not used
        g = jnp.zeros(g.shape, g.dtype)
    if estimator is None:
        table = spike_adjoints(ratio, t_out, slopes, g, prm)
        gt = jnp.sum(jnp.where(jnp.isfinite(t_out), g * t_out, 0.0))
    else:
        psi1, psi2, gt = spike_adjoints_discrete(ratio, t_out, star, imm, slopes, g, prm, estimator)
        table = spike_table(jnp.moveaxis(star, -1, 0), psi1, psi2)  # kernels evaluated at the crossings
    B, n = t_out.shape[:2]
    if K == 1 and estimator is None:
        dw, d_tin = event_grads_first(ratio, w, prm, times_e, order, k_in, table[0, ..., 0], table[0, ..., 1],
                                      with_t_in)
    elif B * n <= config.chunk_max_neurons_bwd:
        dw, d_tin = event_grads_chunked(ratio, w, prm, times_e, order, k_in, table, with_t_in,
                                     config.chunk_events_bwd)
    else:
        dw, d_tin = event_grads(ratio, w, prm, times_e, order, k_in, table, with_t_in, ties=k_in == 1)
    if d_tin is None:
        d_tin = jnp.zeros_like(t_flat)
    # Scale invariances (exact for these formulas, see the module docstring):
    #   (w, theta) -> c (w, theta) leaves spikes unchanged: theta_n dT/dtheta_n = -sum_j w_jn dT/dw_jn
    #   (t, tau_syn, t_max, w) -> (c t, c tau_syn, c t_max, w / c) scales spikes by c.
    wdw = jnp.sum(w * dw, axis=0)  # [n]
    dtheta = -wdw / prm.theta
    #   Clocked layers: the same relation holds for every crossing equation F_m (inputs and
    #   resets at their clocked times), which turns gt into sum_m lambda*_m t*_m - t_q,m R_m
    #   (see spike_adjoints_discrete). (Without with_t_in, tau_syn is not differentiated.)
    t_in0 = jnp.where(jnp.isfinite(t_flat), t_flat, 0.0)
    dtau = (gt - jnp.sum(t_in0 * d_tin) + jnp.sum(wdw)) / prm.tau_syn
    return d_tin, dw, dtau, dtheta, jnp.zeros_like(prm.t_max), jnp.zeros_like(dt_step)


_spike_times.defvjp(_spike_times_fwd, _spike_times_bwd, symbolic_zeros=True)


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------



def spike_times(t_in: ArrayLike, weights: ArrayLike, *, tau_syn: ArrayLike, threshold: ArrayLike,
                tau_ratio: int = 2, max_spikes: int = 1, t_max: ArrayLike = jnp.inf, dt: Optional[ArrayLike] = None,
                estimator: str = "straight_through", config: Optional[Config] = None) -> jax.Array:
    r"""Exact output spike times of a layer of current-based LIF neurons with soft reset.

    :math:`\dot u = -u/\tau_m + i`, :math:`\dot i = -i/\tau_s`, :math:`\tau_m = r\,\tau_s`; an input
    spike adds its weight to ``i``; at ``u = threshold`` a spike, and ``u -> u - threshold``.
    See :mod:`jaxsnn.lif` for the closed forms and the gradients (Göltz et al., Nat. Mach. Intell.
    2021; Bacho & Chu, Neural Computation 2023).

    Args:
      t_in: input spike times ``[..., n_in, k_in]``: ``k_in`` spikes per input neuron, sorted
        ascending and padded with ``inf`` (pass ``t[..., None]`` for one spike each). ``inf``
        means no spike. Spikes after ``t_max`` are ignored.
      weights: ``[n_in, n_out]``; an input spike adds ``w`` to the synaptic current.
      tau_syn: synaptic time constant (scalar, positive; may be traced).
      threshold: scalar or ``[n_out]``, positive (may be traced).
      tau_ratio: static ``tau_mem / tau_syn``, 2 or 1; anything else raises ``ValueError``.
      max_spikes: static number of output spikes kept per neuron (``1``: first spike only).
      t_max: the end of the simulated time: only spikes at times ``<= t_max`` count (scalar, may be
        traced).
      dt: the clock step. ``None`` (default): continuous time. A non-negative scalar (may be traced, so a
        vmapped sweep over ``dt`` compiles once): the layer runs on a clock of step ``dt``. A
        threshold crossing at ``t*`` in the bin ``[k dt, (k+1) dt)`` is emitted at the bin end
        ``(k+1) dt`` (:func:`jaxsnn.discretize.quantize`), where the soft reset happens; a
        neuron still above threshold after its reset fires at the end of the next bin; a spike
        is only kept if its clocked time is not after the next input event nor ``t_max`` (the
        causality checks of a clocked chip, on clocked times). The inputs are integrated at
        the times given: quantize the network input once with
        :func:`jaxsnn.discretize.quantize` (clocked outputs are already on the grid; quantizing
        them again would delay them by one more step). ``dt = 0`` gives the continuous times.
        Gradients: exact for the crossings given the clocked inputs and resets, with
        ``estimator``'s derivative for each delay to the bin end; ``dt`` gets no gradient.
      estimator: backward pass of the delay to the bin end, ``"straight_through"`` (derivative
        1) or ``"sine"`` (see :mod:`jaxsnn.discretize`); only used with ``dt``.
      config: which of the equivalent event-path formulations runs (:class:`jaxsnn.lif.Config`;
        static). ``None``: the defaults, chosen by shape.

    Returns:
      ``[..., n_out, max_spikes]`` output spike times, ascending, ``inf``-padded; this is the
      next layer's ``t_in``.

    Raises:
      ValueError: unsupported ``tau_ratio``, mismatched shapes, non-positive ``tau_syn`` or
        ``threshold``, non-finite weights, NaN or ``-inf`` input times (values are checked when
        concrete, i.e. outside ``jit``), negative ``dt`` or unknown ``estimator``.

    Example: one input spike at ``t = 0`` through ``w = 3`` (``tau_syn = 1``, ``tau_mem = 2``): the
    membrane is :math:`u = 6(x - x^2)`, :math:`x = e^{-t/2}`, which reaches 1 at
    :math:`x = (3 + \sqrt 3)/6`, :math:`t = -2 \ln x \approx 0.4748`:

    >>> import jax.numpy as jnp
    >>> from jaxsnn import lif
    >>> t_out = lif.spike_times(jnp.array([[0.0]]), jnp.array([[3.0]]), tau_syn=1.0, threshold=1.0)
    >>> t_out.shape  # [n_out, max_spikes]
    (1, 1)
    >>> round(float(t_out[0, 0]), 4)
    0.4748
    """
    t_in, weights, threshold = as_arrays(t_in, weights, threshold)
    _validate(t_in, weights, tau_syn, threshold, tau_ratio, max_spikes, t_max)
    if dt is not None:
        if estimator not in ESTIMATORS:
            raise fail("estimator", f"one of {ESTIMATORS}", repr(estimator))
        check_scalar("dt", dt)
        check_non_negative("dt", dt)
    if config is None:
        config = DEFAULT
    elif not isinstance(config, Config):
        raise fail("config", "a jaxsnn.lif.Config or None", type(config).__name__)
    dtype = jnp.result_type(t_in, weights, float)
    t_in = jnp.asarray(t_in, dtype)
    w = jnp.asarray(weights, dtype)
    n_in, n_out = w.shape
    batch = t_in.shape[:-2]
    k_in = t_in.shape[-1]
    if t_in.size == 0:  # no sample, or no input spike slot: no neuron fires
        return jnp.full(batch + (n_out, max_spikes), jnp.inf, dtype)
    t_flat = t_in.reshape((-1, n_in * k_in))
    theta = jnp.broadcast_to(jnp.asarray(threshold, dtype), (n_out,))
    # under jax.shard_map: every operand varies along the axes along which any does (see jaxsnn._vma)
    t_flat, w, tau_syn, theta, t_max, dt_ = vary_like(tuple(jnp.asarray(a, dtype) for a in (
        t_flat, w, tau_syn, theta, t_max, 0.0 if dt is None else dt)))
    out = _spike_times(t_flat, w, tau_syn, theta, t_max, dt_, int(tau_ratio), int(k_in), int(max_spikes),
                       None if dt is None else estimator, config)
    return out.reshape(batch + (n_out, max_spikes))
