r"""The fast formulations of :mod:`jaxsnn.srm` for the ReLU response (no cutoff): without and with delays.

For the ramp kernel without cutoff (:math:`\varepsilon(s) = \max(s, 0)`) and without delays, the
potential of neuron ``v`` for one sample is

.. math::

    P_v(t) = \sum_u w_{uv} \max(t - t_u, 0) = S_v(t)\, t - \sum_{u : t_u < t} w_{uv} t_u,
    \qquad S_v(t) = \sum_{u : t_u < t} w_{uv},

piecewise linear with knots at the input times, which are shared by all neurons of a sample. The
first crossing :math:`t_v = \inf\{t : P_v(t) \ge \theta_v\}` is found in three steps, each written
in the shape a processor runs fast (measured in ``benchmarks/bench_layers.py``):

1. **Screen by matrix products.** With :math:`w^+ = \max(w, 0)` the bound
   :math:`U_v(t) = \sum_u w^+_{uv} \max(t - t_u, 0) \ge P_v(t)` is non-decreasing, so
   :math:`U_v(t_\text{last}) < \theta_v` at the sample's last arrival proves that the neuron cannot
   fire before it. After the last arrival every input is active and the crossing is the closed form
   :math:`t_v = (\theta_v + \sum_u w_{uv} t_u) / \sum_u w_{uv}` (if the slope is positive). The
   sums over all arrivals are two ``[B, n_in] @ [n_in, n_out]`` products.
2. **Search** (only for the neurons the screen leaves): walk the sorted knots ``_BLOCK`` at a time in
   a ``lax.while_loop`` that carries the slope, the intercept and the index ``k*`` of the first
   segment whose right end reaches the threshold, tested knot by knot; the slope and intercept
   are kept once per block (at the start of the block where ``k*`` was found), not selected at
   every knot; the loop stops when every neuron has found its segment.
3. **Solve**: replay the at most ``_BLOCK`` knots from the start of that block up to ``k*`` (the
   same additions in the same order as the search) and take the line's crossing, clipped to the
   segment.

The gradients are those of :mod:`jaxsnn.srm` (implicit function theorem on the crossing line):
:math:`\partial t_v/\partial \theta_v = 1/S`, :math:`\partial t_v/\partial w_{uv} = (t_u - t_v)/S\,[t_u < t_v]`,
:math:`\partial t_v/\partial t_u = w_{uv}/S\,[t_u < t_v]`. For a neuron that fires after its
sample's last arrival the indicator is "arrived", so the sums over samples and neurons are matrix
products too; only the remaining neurons need the masked per-sample slabs (skipped when there are
none).

With delays (arrivals :math:`a_{uv} = t_u + d_{uv}`, a different order for every neuron) the screen
still works with matrix products (:func:`cannot_fire_early`, bounding the last arrival by
:math:`\max_u t_u + \max_u d_{uv}`), and :func:`after_last_arrival` is the closed form with its
gradients; :mod:`jaxsnn.srm` takes it when no neuron of the batch can fire earlier and walks the
per-neuron arrival order otherwise.

References: Singh, Fono & Kutyniok, *Expressivity of Spiking Neural Networks*, arXiv 2308.08218
(the model); Göltz et al., *Fast and energy-efficient neuromorphic deep learning with first-spike
times*, Nat. Mach. Intell. 2021 (exact spike-time gradients).

Both functions take ``t [B, n_in]`` (``inf``: no spike), ``w [n_in, n_out]``, ``theta [n_out]``;
:mod:`jaxsnn.srm` checks the inputs and wires them into its ``custom_vjp``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsnn import _vma
from jaxsnn._internal import argsort
from jaxsnn._vma import vary_like

__all__ = ["first_crossing", "line_grads", "cannot_fire_early", "after_last_arrival"]

_BLOCK = 8  # sorted knots per iteration of the search


def _sorted_knots(t, block):
    """Arrival times of each sample sorted (``inf`` last), padded to whole blocks plus one look-ahead
    knot: ``(time [B, M + 1], src [B, M + 1], n_knots)``."""
    order = argsort(t, axis=1)
    time = jnp.take_along_axis(t, order, axis=1)
    pad = (-t.shape[1]) % block + 1
    time = jnp.pad(time, ((0, 0), (0, pad)), constant_values=jnp.inf)
    order = jnp.pad(order, ((0, 0), (0, pad)))
    return time, order, jnp.max(jnp.sum(jnp.isfinite(time), axis=1))


def _search(time, src, n_knots, w, theta, k_star):
    """Index ``k*`` of the first knot whose segment ends at or above the threshold, for every neuron
    with ``k_star < 0`` (the others keep theirs), and the slope and intercept at the start of the
    block that holds it (``[B, n_out]`` each)."""
    L = _BLOCK
    base = jnp.where(jnp.isfinite(time), time, 0.0)

    def body(carry):
        k, slope, wa, k_star, s_at, wa_at = carry
        tc = jax.lax.dynamic_slice_in_dim(time, k, L + 1, axis=1)
        sc = jax.lax.dynamic_slice_in_dim(src, k, L, axis=1)
        bc = jax.lax.dynamic_slice_in_dim(base, k, L, axis=1)
        live = jnp.isfinite(tc[:, :L])
        waiting = k_star < 0
        slope0, wa0 = slope, wa
        for j in range(L):
            row = jnp.where(live[:, j:j + 1], w[sc[:, j]], 0.0)
            slope = slope + row
            wa = wa + row * bc[:, j:j + 1]
            tk, tn = tc[:, j:j + 1], tc[:, j + 1:j + 2]
            fin = jnp.isfinite(tn)
            # the end of the segment reaches theta, or the line after the last knot rises; tested
            # once per distinct knot time (the last event of a tie group)
            reach = jnp.where(fin, slope * jnp.where(fin, tn, 0.0) - wa >= theta, slope > 0)
            reach = reach & (live[:, j:j + 1] & (tk < tn)) & (k_star < 0)
            k_star = jnp.where(reach, k + j, k_star)
        # keep the block's starting point for the neurons that found their segment in it: the
        # solve replays at most L knots from there (one select per block, not per knot)
        now = waiting & (k_star >= 0)
        return k + L, slope, wa, k_star, jnp.where(now, slope0, s_at), jnp.where(now, wa0, wa_at)

    def cond(carry):
        return (carry[0] < n_knots) & jnp.any(carry[3] < 0)

    zeros = jnp.zeros(k_star.shape, w.dtype)
    init = (jnp.array(0, jnp.int32), zeros, zeros, k_star, zeros, zeros)
    return jax.lax.while_loop(cond, body, vary_like(init, time, w))[3:]


def _replay(time, src, w, k_star, s, wa):
    """Add the knots from the start of ``k_star``'s block up to ``k_star`` to the slope and the
    intercept (at most ``_BLOCK`` elementwise gathers of ``w``)."""
    first = k_star - k_star % _BLOCK
    cols = jnp.arange(w.shape[1])[None, :]
    for j in range(_BLOCK):
        k = first + j
        tk = jnp.take_along_axis(time, k, axis=1)
        on = (k <= k_star) & jnp.isfinite(tk)
        row = jnp.where(on, w[jnp.take_along_axis(src, k, axis=1), cols], 0.0)
        s, wa = s + row, wa + row * jnp.where(on, tk, 0.0)
    return s, wa


def first_crossing(t: jax.Array, w: jax.Array, theta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """First threshold crossings of the ReLU-response potential (module docstring, steps 1-3).

    Args:
      t: input times ``[B, n_in]`` (``inf``: no spike); w: ``[n_in, n_out]``; theta: ``[n_out]`` (> 0).
    Returns:
      ``(t_out, slope)``, each ``[B, n_out]``: the first spike times (``inf`` if silent) and the
      slope of the potential at the crossing (0 if silent).

    >>> import jax.numpy as jnp
    >>> from jaxsnn import srm_ramp
    >>> srm_ramp.first_crossing(jnp.array([[0.0, 1.0]]), jnp.ones((2, 2)), jnp.array([1.0, 2.0]))[0]
    Array([[1. , 1.5]], dtype=float32)
    """
    arrived = jnp.isfinite(t)
    t0 = jnp.where(arrived, t, 0.0)
    t_last = jnp.max(jnp.where(arrived, t, -jnp.inf), axis=1, keepdims=True)
    t_last = jnp.where(jnp.isfinite(t_last), t_last, 0.0)  # no arrival: P = 0, never fires
    n_out = w.shape[1]
    # step 1: all sums over arrivals, for w and for w+ in one product
    sums = jnp.concatenate([arrived.astype(w.dtype), t0]) @ jnp.concatenate([w, jnp.maximum(w, 0.0)], axis=1)
    B = t.shape[0]
    s_all, wa_all = sums[:B, :n_out], sums[B:, :n_out]
    late = t_last * sums[:B, n_out:] - sums[B:, n_out:] < theta  # cannot fire before the last arrival

    def searched(*_):
        time, src, n_knots = _sorted_knots(t, _BLOCK)
        k_star, s, wa = _search(time, src, n_knots, w, theta, jnp.where(late, 0, -1).astype(jnp.int32))
        found = ~late & (k_star >= 0)
        k_star = jnp.maximum(k_star, 0)
        lo = jnp.take_along_axis(time, k_star, axis=1)
        hi = jnp.take_along_axis(time, k_star + 1, axis=1)
        s, wa = _replay(time, src, w, k_star, s, wa)
        return found, lo, hi, s, wa

    def none(*_):
        z = jnp.zeros_like(s_all)
        return jnp.zeros(late.shape, bool), z, z, z, z

    found, lo, hi, s, wa = _vma.cond(jnp.all(late), none, searched, t, w)
    s = jnp.where(late, s_all, s)
    wa = jnp.where(late, wa_all, wa)
    lo = jnp.where(late, t_last, lo)
    hi = jnp.where(late, jnp.inf, hi)
    pos = s > 0
    t_line = jnp.clip((theta + wa) / jnp.where(pos, s, 1.0), lo, hi)
    fires = (late & pos) | found
    t_out = jnp.where(fires, jnp.where(pos, t_line, hi), jnp.inf)
    return t_out, jnp.where(fires, s, 0.0)


def line_grads(t_in: jax.Array, w: jax.Array, t: jax.Array, gs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Weight and input gradients of spikes on a rising line (module docstring).

    Args:
      t_in: input times ``[B, n_in]``; w: ``[n_in, n_out]``; t: output times ``[B, n_out]``;
      gs: the output cotangent divided by the slope, ``g / S`` (0 where the spike is silent).
    Returns:
      ``(dw [n_in, n_out], dt_in [B, n_in])``.
    """
    arrived = jnp.isfinite(t_in)
    a0 = jnp.where(arrived, t_in, 0.0)
    arr = arrived.astype(w.dtype)
    t_last = jnp.max(jnp.where(arrived, t_in, -jnp.inf), axis=1, keepdims=True)
    t0 = jnp.where(gs != 0, t, 0.0)
    after = t0 > t_last  # every arrived input is active
    g_all = jnp.where(after, gs, 0.0)
    dw = a0.T @ g_all - arr.T @ (g_all * t0)
    da = arr * (g_all @ w.T)
    g_part = jnp.where(after, 0.0, gs)

    def masked(*_):
        def body(b, carry):
            dw, da = carry
            active = arrived[b][:, None] & (a0[b][:, None] < t0[b][None, :])
            coef = jnp.where(active, g_part[b][None, :], 0.0)  # [n_in, n_out]
            dw = dw + coef * (a0[b][:, None] - t0[b][None, :])
            return dw, da.at[b].set(jnp.where(active, w, 0.0) @ g_part[b])

        return jax.lax.fori_loop(0, t_in.shape[0], body, vary_like((jnp.zeros_like(w), jnp.zeros_like(t_in)), t_in, w))

    def skip(*_):
        return jnp.zeros_like(w), jnp.zeros_like(t_in)

    dw_p, da_p = _vma.cond(jnp.any(g_part != 0), masked, skip, t_in, w)
    return dw + dw_p, da + da_p


# ----------------------------------------------------------------------------------------------
# With delays: the screen and the closed form after the last arrival (matrix products only)
# ----------------------------------------------------------------------------------------------


def _delayed_sums(t, w, d):
    """``(arrived, t0, S, sum_u w (t_u + d_u))`` over the arrived inputs, ``[B, n_out]`` sums."""
    arrived = jnp.isfinite(t)
    arr, t0 = arrived.astype(w.dtype), jnp.where(arrived, t, 0.0)
    return arrived, t0, arr @ w, t0 @ w + arr @ (w * d)


def cannot_fire_early(t: jax.Array, w: jax.Array, theta: jax.Array, d: jax.Array) -> jax.Array:
    r"""``[B, n_out]`` booleans: the neuron provably does not reach ``theta`` before its last arrival.

    With delays the arrivals are :math:`a_{uv} = t_u + d_{uv}` and the last one is at most
    :math:`T'_v = \max_u t_u + \max_u d_{uv}`. The bound :math:`U_v(t) = \sum_u w^+_{uv} \max(t - a_{uv}, 0)`
    is non-decreasing and at least the potential, and at :math:`T'_v` every arrived input is active, so
    :math:`U_v(T'_v) = T'_v \sum_u w^+_{uv} - \sum_u w^+_{uv} a_{uv}` (matrix products) below
    ``theta`` proves it.

    Args:
      t: ``[B, n_in]`` input times (``inf``: no spike); w, d: ``[n_in, n_out]``; theta: ``[n_out]``.
    """
    wp = jnp.maximum(w, 0.0)
    arrived, t0, sp, wap = _delayed_sums(t, wp, d)
    t_last = jnp.max(jnp.where(arrived, t, -jnp.inf), axis=1, keepdims=True)
    t_last = jnp.where(jnp.isfinite(t_last), t_last, 0.0)
    bound = (t_last + jnp.max(d, axis=0)) * sp - wap
    return bound < theta


@jax.custom_vjp
def after_last_arrival(t: jax.Array, w: jax.Array, theta: jax.Array, d: jax.Array) -> jax.Array:
    r"""First spike times of neurons that cannot fire before their last arrival (:func:`cannot_fire_early`).

    Then every arrived input is active at the crossing, and
    :math:`t_v = (\theta_v + \sum_u w_{uv}(t_u + d_{uv})) / \sum_u w_{uv}` if the slope
    :math:`S_v = \sum_u w_{uv}` is positive, else ``inf``. The gradients (:math:`g_s = g / S`):
    :math:`\partial/\partial\theta = \sum_b g_s`, :math:`\partial/\partial w_{uv} = \sum_b g_s (t_u + d_{uv} - t_v)`,
    :math:`\partial/\partial d_{uv} = w_{uv} \sum_b g_s [u \text{ arrived}]`,
    :math:`\partial/\partial t_u = \sum_v g_s w_{uv}`: matrix products, no ``[B, n_in, n_out]`` array.

    Args:
      t: ``[B, n_in]``; w, d: ``[n_in, n_out]``; theta: ``[n_out]``.
    Returns:
      ``[B, n_out]`` spike times. Only valid where :func:`cannot_fire_early` holds.
    """
    return _after_last(t, w, theta, d)[0]


def _after_last(t, w, theta, d):
    arrived, t0, s, wa = _delayed_sums(t, w, d)
    pos = s > 0
    return jnp.where(pos, (theta + wa) / jnp.where(pos, s, 1.0), jnp.inf), s


def _after_last_fwd(t, w, theta, d):
    t_out, s = _after_last(t, w, theta, d)
    return t_out, (t, w, d, t_out, s)


def _after_last_bwd(res, g):
    t, w, d, t_out, s = res
    fired = jnp.isfinite(t_out)
    gs = jnp.where(fired, g / jnp.where(fired, s, 1.0), 0.0)
    arrived = jnp.isfinite(t)
    arr, t0 = arrived.astype(w.dtype), jnp.where(arrived, t, 0.0)
    arr_gs = arr.T @ gs
    dw = t0.T @ gs + d * arr_gs - arr.T @ (gs * jnp.where(fired, t_out, 0.0))
    return arr * (gs @ w.T), dw, jnp.sum(gs, axis=0), w * arr_gs


after_last_arrival.defvjp(_after_last_fwd, _after_last_bwd)
