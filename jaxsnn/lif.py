r"""Current-based LIF neurons with exact, event-driven spike times and exact gradients.

Model (Göltz et al., *Fast and energy-efficient neuromorphic deep learning with first-spike
times*, Nat. Mach. Intell. 2021, "Fast & Deep"; Bacho & Chu, *Exploring Tradeoffs in Spiking
Neural Networks*, Neural Computation 35(10), 2023, arXiv 2212.09500):

.. math::

    \frac{du}{dt} = -\frac{u}{\tau_m} + i, \qquad \frac{di}{dt} = -\frac{i}{\tau_s},
    \qquad \tau_m = r\,\tau_s,\; r \in \{1, 2\},

with ``u(0) = i(0) = 0``. An input spike through weight ``w`` adds ``w`` to ``i``. When ``u``
reaches the threshold ``theta`` the neuron spikes and ``u -> u - theta`` (soft reset). With
``max_spikes = 1`` this is the time-to-first-spike neuron of Fast & Deep; with more it is the
multi-spike relaxation of Bacho & Chu.

Between two events the state evolves in closed form. Anchored at time ``t0`` with state
``(u0, i0)`` and ``s = t - t0``:

* ``r = 2`` (``tau_m = 2 tau_s``): with :math:`x = e^{-s/\tau_m}` and :math:`b = \tau_m i_0`,
  :math:`u = (u_0 + b)\,x - b\,x^2`, a quadratic in ``x``. The first crossing of ``theta`` is
  the larger root :math:`x^* = (a + \sqrt{a^2 - 4 b \theta}) / (2b)`, ``a = u0 + b``, so
  :math:`t^* = t_0 - \tau_m \ln x^*`.
* ``r = 1`` (``tau_m = tau_s = tau``): with :math:`y = s/\tau`, :math:`B = \tau i_0`,
  :math:`u = (u_0 + B y)\,e^{-y}`, and the first crossing is
  :math:`y^* = -W_0\!\left(-\tfrac{\theta}{B} e^{-u_0/B}\right) - u_0/B` with the principal
  branch of the Lambert W function (:func:`lambertw`).

Event-driven algorithm. The input spikes of a sample are merged in time order (one sort), and
all output neurons of all samples walk the events in lock step in a ``lax.while_loop``: at each
event the state is advanced in closed form, the event's weight row is added to ``i`` (for inputs
with one spike per neuron, all events of a sample at one time are one step: pixel-coded images
have a few dozen distinct times for a few hundred events), and every
neuron that crosses the threshold before the next event records a spike and restarts from
``u = 0`` at its spike time (an inner loop, so a neuron may fire several times between two
events; in a wide layer this loop runs only on the blocks of neurons that cross, gathered into a
small array). After the last event each neuron runs on to ``t_max``. There is no time grid: spike
times are exact up to floating point. Only the test for a crossing runs on every event; square
roots and logarithms are evaluated when some neuron fires. With ``max_spikes = 1`` a neuron's
first crossing ends its part, so that loop has no inner loop at all: each neuron's state is
frozen at the event after which it crosses, and the crossings are solved once, after the loop.
That loop also stops as soon as every neuron of every sample has fired (the later events cannot
change a first spike), and its backward walk stops at the last spike of each sample.
Narrow layers (a few neurons, many input events: an output layer) walk the events in chunks
instead: a round runs each sample's next events, unrolled, up to the first one after which some
neuron crosses, and the backward pass takes a chunk of events at once (a binary search finds
each neuron's first spike after each event), so a step of the loop is no longer one event.
Sparse inputs are sorted by a partial sort on the largest number of spikes in the batch.

Exact gradients (implicit function theorem). Spike ``m`` of a neuron satisfies
:math:`F_m = u(t_m) - \theta = 0` with

.. math::

    u(t) = \sum_j w_j\,\kappa(t - t_j) - \theta \sum_{k<m} e^{-(t - t_k)/\tau_m},

:math:`\kappa(s) = \tau_m (e^{-s/\tau_m} - e^{-s/\tau_s})` (``r = 2``) or
:math:`\kappa(s) = s\,e^{-s/\tau}` (``r = 1``) for ``s > 0``. So
:math:`\mathrm{d}t_m = -(\partial F_m)/\dot u(t_m^-)`, and an earlier spike ``t_k`` moves
``t_m`` through its reset (:math:`\partial F_m/\partial t_k = -\tfrac{\theta}{\tau_m}
e^{-(t_m - t_k)/\tau_m}`). The backward pass runs this adjoint recursion over the spikes of each
neuron (latest first) and then walks the events once, accumulating the weight and input-time
gradients with suffix sums of exponentials. The gradients with respect to ``threshold`` and
``tau_syn`` follow exactly from two scale invariances of the model (weights and threshold
scaled together; all times, ``tau_syn`` and ``1/w`` scaled together). The slope
:math:`\dot u(t_m^-)` vanishes at a tangent crossing; it is floored at
``sqrt(eps) * theta / tau_m`` so gradients stay finite. Silent neurons, unused spike slots
and inputs that never arrive get zero gradients. ``t_max`` gets zero gradient.

Clocked layers (``dt``; Cojocaru, TU Delft, *The effects of the time step size on the
accuracy, sparsity and latency of the SNN*). On a chip with a clock of step ``dt`` a neuron
whose membrane reaches the threshold at ``t*`` in the bin :math:`[k\,dt, (k+1)\,dt)` emits
its spike at the bin end :math:`t_q = (k+1)\,dt`, and the soft reset happens there. The
dynamics between clock edges stay exact, so the same event loop serves: the crossing is
found in closed form, delayed to ``t_q``, and the state is advanced to ``t_q`` before the
reset. A neuron still at or above threshold after its reset fires again at the end of the
next bin ("immediate" spike). The causality checks use clocked times: a spike is kept only if
``t_q`` is not after the next input event (inputs are on the grid, so this only removes
rounding artefacts) and not after ``t_max``. Backward: each crossing solves
:math:`F_m(t^*_m) = 0` with inputs and earlier resets at their clocked times, so the implicit
function theorem applies as above (kernels evaluated at ``t*``, resets anchored at ``t_q``),
and each delay :math:`t^*\to t_q` contributes the estimator's slope (1 for straight-through,
see :mod:`jaxsnn.discretize`); an immediate spike passes its adjoint to the previous spike.
The ``tau_syn`` gradient follows from the scale invariance of every crossing equation
separately: :math:`\tau\,\partial L/\partial\tau = \sum_m \lambda^*_m t^*_m
- \sum_k t_{q,k} R_k - \sum_j t_j\,\partial L/\partial t_j + \sum w\,\partial L/\partial w`
with :math:`R_k` the reset sensitivities.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsnn.discretize import ESTIMATORS, bin_end, estimator_slope
from jaxsnn._vma import vary_like
from jaxsnn.srm import _argsort, _check_weights_threshold, _is_concrete

__all__ = ["spike_times", "lambertw", "TAU_RATIOS"]

TAU_RATIOS = (1, 2)


# ----------------------------------------------------------------------------------------------
# Lambert W, principal branch
# ----------------------------------------------------------------------------------------------

_INV_E = math.exp(-1.0)


@jax.custom_jvp
def lambertw(x):
    r"""Principal branch :math:`W_0(x)` of the Lambert W function, ``w e^w = x``, ``w >= -1``.

    Defined for ``x >= -1/e``; returns NaN below (no warning), ``inf`` at ``inf``. Initial
    guess from the branch-point series :math:`-1 + p - p^2/3 + 11 p^3/72`,
    :math:`p = \sqrt{2(e x + 1)}` near ``-1/e``, ``log1p(x)`` in the middle and
    :math:`L_1 - L_2 + L_2/L_1` for large ``x``; then five Halley steps (converged to the last
    bit in float64 across the domain, see the tests). The derivative
    :math:`W'(x) = e^{-W} / (1 + W)` is infinite at the branch point, as it should be.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    branch = 2.0 * (math.e * x + 1.0)
    p = jnp.sqrt(jnp.maximum(branch, 0.0))
    w_branch = -1.0 + p * (1.0 + p * (-1.0 / 3.0 + p * (11.0 / 72.0)))
    xs = jnp.maximum(x, 3.0)
    l1 = jnp.log(xs)
    l2 = jnp.log(l1)
    w_large = l1 - l2 + l2 / l1
    w = jnp.where(x < -0.25, w_branch, jnp.where(x < 3.0, jnp.log1p(jnp.maximum(x, -0.25)), w_large))
    finite = jnp.isfinite(x) & (x >= -_INV_E)
    w = jnp.where(finite, w, 0.0)
    xf = jnp.where(finite, x, 0.0)
    for _ in range(5):
        ew = jnp.exp(w)
        f = w * ew - xf
        wp1 = w + 1.0
        safe = jnp.abs(wp1) > 1e-7
        wp1s = jnp.where(safe, wp1, 1.0)
        denom = ew * wp1s - (w + 2.0) * f / (2.0 * wp1s)
        step = jnp.where(safe & (denom != 0), f / jnp.where(denom != 0, denom, 1.0), 0.0)
        w = w - step
    w = jnp.where(x == -_INV_E, -1.0, w)
    w = jnp.where(finite, w, jnp.where(x == jnp.inf, jnp.inf, jnp.nan))
    return w


@lambertw.defjvp
def _lambertw_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    w = lambertw(x)
    return w, dx * jnp.exp(-w) / (1.0 + w)


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


def _validate(t_in, weights, tau_syn, threshold, tau_ratio, max_spikes, t_max):
    if tau_ratio not in TAU_RATIOS:
        raise ValueError(
            f"tau_ratio must be 2 (tau_mem = 2 tau_syn, quadratic closed form) or 1 "
            f"(tau_mem = tau_syn, Lambert W closed form), got {tau_ratio!r}"
        )
    if not isinstance(max_spikes, (int, np.integer)) or isinstance(max_spikes, bool) or max_spikes < 1:
        raise ValueError(f"max_spikes must be a positive int (static), got {max_spikes!r}")
    n_in, n_out = _check_weights_threshold(weights, threshold)
    if jnp.ndim(t_in) < 2 or jnp.shape(t_in)[-2] != n_in:
        raise ValueError(
            f"t_in must have shape [..., n_in, k_in] with n_in = {n_in} (rows of weights); "
            f"got shape {jnp.shape(t_in)} (pass t[..., None] for one spike per input)"
        )
    for name, v in (("tau_syn", tau_syn), ("t_max", t_max)):
        if jnp.ndim(v) != 0:
            raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(v)}")
    if _is_concrete(tau_syn) and not (float(tau_syn) > 0 and math.isfinite(float(tau_syn))):
        raise ValueError(f"tau_syn must be positive and finite, got {float(tau_syn)}")
    if _is_concrete(t_max) and not float(t_max) >= 0:
        raise ValueError(f"t_max must be non-negative (jnp.inf for no limit), got {float(t_max)}")
    if _is_concrete(t_in):
        t = np.asarray(t_in)
        if np.any(np.isnan(t)):
            raise ValueError("t_in contains NaN (use jnp.inf for inputs that do not spike)")
        with np.errstate(invalid="ignore"):  # inf - inf between padding slots
            unsorted = t.ndim >= 2 and t.shape[-1] > 1 and np.any(np.diff(t, axis=-1) < 0)
        if unsorted:
            raise ValueError("t_in must be sorted ascending along its last axis (k_in), inf-padded")


# ----------------------------------------------------------------------------------------------
# Forward: events in lock step, spikes in an inner loop
# ----------------------------------------------------------------------------------------------


class _Params(NamedTuple):
    tau_syn: jax.Array
    tau_m: jax.Array
    theta: jax.Array  # [n_out]
    t_max: jax.Array
    dt: jax.Array = None  # clock step (discrete mode only)


_COMPACT_MIN = 1024  # inputs with more spike slots than this are compacted before sorting


def _sort_capped(t_flat, t_max, counts, k_in, cap):
    """Argsort of the spikes ``<= t_max`` of each row, assuming at most ``cap`` per row.

    ``t_flat [B, n_in * k_in]`` holds each input neuron's ``k_in`` slots with the spikes first
    (sorted, ``inf``-padded), so the ``counts [B, n_in]`` spikes that count are each neuron's
    first slots. They are gathered to the front first (position ``p`` belongs to the input
    neuron whose running count passes ``p``: a search in the cumulative counts), so the sort
    works on ``[B, cap]`` instead of ``[B, m]``, and nothing of size ``[B, m]`` is written but
    the result. Returns ``(times, order)`` padded to ``[B, m + 1]`` with ``inf`` and index 0.
    """
    B, m = t_flat.shape
    if cap >= m:
        t = jnp.where(t_flat <= t_max, t_flat, jnp.inf)
        order = _argsort(t, axis=1).astype(jnp.int32)
        return _pad_events(jnp.take_along_axis(t, order, axis=1), order, m)
    ends = jnp.cumsum(counts, axis=1)
    p = vary_like(jnp.arange(cap, dtype=jnp.int32), counts)  # jax.shard_map: a search key like the data
    j = jax.vmap(lambda e: jnp.searchsorted(e, p, side="right"))(ends).astype(jnp.int32)
    j = jnp.minimum(j, m // k_in - 1)
    start = jnp.take_along_axis(ends - counts, j, axis=1)
    src = j * k_in + jnp.clip(p[None, :] - start, 0, k_in - 1)
    valid = p[None, :] < ends[:, -1:]
    comp_t = jnp.where(valid, jnp.take_along_axis(t_flat, src, axis=1), jnp.inf)
    o = _argsort(comp_t, axis=1)
    times = jnp.take_along_axis(comp_t, o, axis=1)
    order = jnp.where(jnp.isfinite(times), jnp.take_along_axis(src, o, axis=1), 0)
    return _pad_events(times, order, m)


def _pad_events(times, order, m):
    """Sorted events ``[B, cap]`` padded to ``[B, m + 1]`` (``inf``, index 0): every event then has a
    successor. One write of the padded arrays (for a sparse layer input ``m`` is large)."""
    pad = ((0, 0), (0, m + 1 - times.shape[1]))
    return jnp.pad(times, pad, constant_values=jnp.inf), jnp.pad(order, pad)


_TOPK_MAX = 4096  # up to this many slots, the sort of a sparse input is a partial sort (top_k)


def _sort_topk(t_flat, t_max, counts, k_in, cap):
    """:func:`_sort_capped` by a partial sort: the ``cap`` earliest times with their slots
    (``lax.top_k`` is stable: equal times keep the order of their slots)."""
    m = t_flat.shape[1]
    neg, order = jax.lax.top_k(-jnp.where(t_flat <= t_max, t_flat, jnp.inf), cap)
    times = -neg
    order = jnp.where(jnp.isfinite(times), order, 0).astype(jnp.int32)
    return _pad_events(times, order, m)


def _events(t_flat, t_max, k_in):
    """Input spikes of each sample in time order: ``(time [B, E+1], order [B, E+1])``, ``order``
    being the flat input slot of each sorted event (its input neuron is ``order // k_in``, see
    :func:`_src`), ``E = n_in * k_in``.

    Spikes after ``t_max`` are dropped (``inf``). The events are padded with ``inf`` (slot 0)
    to ``E + 1``, so that every event has a successor. Nothing downstream passes over all
    ``E + 1`` columns but the padding. Sparse inputs (e.g. TTFS-coded images with silent
    pixels, or a multi-spike hidden layer, ``n_in x k_in`` slots, mostly empty) are sorted on the
    largest number of spikes in the batch, rounded up to the next size of a ladder: up to
    :data:`_TOPK_MAX` slots a partial sort (``top_k``) at sizes 128, 192, 256, 384, ...; wider
    inputs are compacted to 1024, 1536, 2048, 3072, ... slots first (``lax.switch`` over the sizes;
    under ``vmap`` with a batched ``t_max`` every size is evaluated).
    """
    B, m = t_flat.shape
    if m <= _TOPK_MAX:
        ladder = [c for b in (128, 256, 512, 1024, 2048) for c in (b, b + b // 2)]
        sorts = [functools.partial(_sort_topk, k_in=k_in, cap=c) for c in ladder if c < m]
        caps = [c for c in ladder if c < m]
    else:
        caps, c = [], _COMPACT_MIN
        while c < m:
            caps += [c, c + c // 2]
            c *= 2
        caps = [cp for cp in caps if cp < m]
        sorts = [functools.partial(_sort_capped, k_in=k_in, cap=cp) for cp in caps]
    caps.append(m)
    sorts.append(functools.partial(_sort_capped, k_in=k_in, cap=m))
    # spikes that count, per input neuron (one fused pass over the input)
    counts = jnp.sum((jnp.isfinite(t_flat) & (t_flat <= t_max)).reshape(B, m // k_in, k_in), axis=-1, dtype=jnp.int32)
    if len(caps) == 1:
        return sorts[0](t_flat, t_max, counts)
    branch = jnp.sum(jnp.asarray(caps[:-1]) < jnp.max(jnp.sum(counts, axis=1)))
    sorts = [lambda *a, sort=sort: vary_like(sort(*a), *a) for sort in sorts]  # jax.shard_map: same types
    return jax.lax.switch(branch, sorts, t_flat, t_max, counts)


def _src(order, k_in):
    """Input neuron of each event slot."""
    return order // k_in if k_in > 1 else order


def _crossing(ratio, u, c, span, theta, active):
    """Does ``u`` reach ``theta`` within ``span`` of the anchor? (cheap: no sqrt, no log)

    ``ratio = 2``: ``c = tau_m i``, ``span = exp(-(t_end - t_anchor)/tau_m)`` (1 = empty).
    ``ratio = 1``: ``c = tau i``, ``span = (t_end - t_anchor)/tau`` (0 = empty, inf = no end).
    """
    if ratio == 2:
        a = u + c
        x = span
        f_end = (c * x - a) * x + theta  # theta - u at the end of the span
        vertex_in = (a >= 2.0 * c * x) & (a <= 2.0 * c)  # a/(2c) in [x, 1] for c > 0
        return active & (c > 0) & (a > 0) & ((f_end <= 0) | (vertex_in & (a * a >= 4.0 * c * theta)))
    # ratio 1: g(y) = (u + c y) e^{-y}; peak at y_p = 1 - u/c (c > 0) with value c e^{-y_p}.
    y_end = span
    e_end = jnp.exp(-jnp.where(jnp.isfinite(y_end), y_end, 0.0))
    g_end = jnp.where(jnp.isfinite(y_end), (u + c * y_end) * e_end, 0.0)
    y_p = 1.0 - u / jnp.where(c > 0, c, 1.0)
    peak_in = (y_p >= 0) & (y_p <= y_end)
    peak_hits = jnp.log(jnp.where(c > 0, c, 1.0) / theta) >= y_p
    return active & (c > 0) & ((g_end >= theta) | (peak_in & peak_hits))


def _crossing_point(ratio, u, c, span, theta, tau_m):
    """Where the first crossing is, for neurons that cross: ``(ds, c_at, slope, rest)``.

    ``ds``: time from the anchor; ``c_at``: the current variable at the spike; ``slope``:
    ``du/dt`` just before the spike, ``(tau_m i* - theta) / tau_m``; ``rest``: the span from
    the spike to the end of the interval.
    """
    if ratio == 2:
        a = u + c
        disc = jnp.maximum(a * a - 4.0 * c * theta, 0.0)
        cs = jnp.where(c > 0, c, 1.0)
        x = jnp.clip((a + jnp.sqrt(disc)) / (2.0 * cs), span, 1.0)
        x = jnp.where(x > 0, x, 1.0)
        c_at = c * x * x
        return -tau_m * jnp.log(x), c_at, (c_at - theta) / tau_m, span / x
    cs = jnp.where(c > 0, c, 1.0)
    r = u / cs
    arg = jnp.maximum(-(theta / cs) * jnp.exp(-jnp.minimum(r, 1.0)), -_INV_E)
    y = jnp.clip(-lambertw(arg) - r, 0.0, span)
    c_at = c * jnp.exp(-y)
    return tau_m * y, c_at, (c_at - theta) / tau_m, span - y


def _advance(ratio, u, c, span):
    """State at the end of the span (no crossing inside it)."""
    if ratio == 2:
        x = span
        return (u + c) * x - c * x * x, c * x * x
    y = jnp.where(jnp.isfinite(span), span, 0.0)
    e = jnp.exp(-y)
    return (u + c * y) * e, c * e


def _span(ratio, t_end, t_anchor, tau_m):
    d = t_end - t_anchor
    if ratio == 2:
        return jnp.exp(-d / tau_m)
    return d / tau_m


def _span_to_next(ratio, t_e, t_next, tau_m):
    """The span of the interval from the event ``t_e`` to the next one ``t_next`` (``inf``: none,
    the interval is left empty until the tail)."""
    empty = 1.0 if ratio == 2 else 0.0
    fin = jnp.isfinite(t_next)
    return jnp.where(fin, _span(ratio, jnp.where(fin, t_next, 0.0), t_e, tau_m), empty)


class _State(NamedTuple):
    u: jax.Array  # [B, n] membrane at the anchor
    c: jax.Array  # [B, n] tau_m * current at the anchor
    anchor: jax.Array  # [B, n] anchor time
    span: jax.Array  # [B, n] span from the anchor to the end of the current interval
    count: jax.Array  # [B, n] spikes recorded
    # [B, n, K, R] per spike slot: emitted time, slope before the spike; in discrete mode also
    # the threshold crossing time (before the delay to the bin end) and 1.0 for an "immediate"
    # spike (above threshold right after a reset). One array, so a spike is one row scatter.
    rec: jax.Array
    # discrete mode only (None otherwise)
    end: jax.Array = None  # [B, n] time of the end of the current interval
    blocked: jax.Array = None  # [B, n] bool: no more spikes in the current interval


def _detect(ratio, s: _State, theta, K):
    active = s.count < K
    cross = _crossing(ratio, s.u, s.c, s.span, theta, active)
    if s.end is None:
        return cross
    # on a clock, a neuron still above threshold after its reset fires again at once (in an
    # interval of non-zero length: the last event's interval waits for the tail)
    open_ = s.span < 1.0 if ratio == 2 else s.span > 0.0
    return (cross | (active & open_ & (s.u >= theta))) & ~s.blocked


def _record(buf, pos, count, mask, *values):
    """``buf[pos, count] = values`` where ``mask``: one row scatter per neuron instead of a select
    over all ``K`` slots. ``buf`` is ``[B, n, K, R]``; ``pos`` holds each neuron's flat index
    ``b * n + j`` (distinct; an index ``>= B n`` is a padding neuron, never written)."""
    B, n, K, R = buf.shape
    idx = jnp.where(mask, pos * K + count, B * n * K + pos)  # masked-off: distinct, out of bounds, dropped
    rows = jnp.stack(values, axis=-1).reshape(-1, R)
    return buf.reshape(B * n * K, R).at[idx.reshape(-1)].set(rows, mode="drop", unique_indices=True).reshape(B, n, K, R)


def _fire_loop(ratio, p: _State, cross, pos, theta, tau_m, K, dt):
    """The spike loop of :func:`_fire` on neurons of any shape (``theta`` and ``pos`` alike)."""

    def cond(carry):
        return jnp.any(carry[1])

    def body(carry):
        s, cross = carry
        ds, c_at, slope, rest = _crossing_point(ratio, s.u, s.c, s.span, theta, tau_m)
        if dt is None:
            t_spike = s.anchor + ds
            s = _State(
                u=jnp.where(cross, 0.0, s.u),
                c=jnp.where(cross, c_at, s.c),
                anchor=jnp.where(cross, t_spike, s.anchor),
                span=jnp.where(cross, rest, s.span),
                count=s.count + cross,
                rec=_record(s.rec, pos, s.count, cross, t_spike, slope),
            )
            return s, _detect(ratio, s, theta, K)
        imm = s.u >= theta
        t_star = s.anchor + jnp.where(imm, 0.0, ds)
        t_q = bin_end(t_star, dt)
        ok = cross & (t_q <= s.end)
        # state at t_q (no reset yet), then the soft reset
        to_q = _span(ratio, t_q, s.anchor, tau_m)
        u_q, c_q = _advance(ratio, s.u, s.c, to_q)
        rest = s.span / to_q if ratio == 2 else s.span - to_q
        s = _State(
            u=jnp.where(ok, u_q - theta, s.u),
            c=jnp.where(ok, c_q, s.c),
            anchor=jnp.where(ok, t_q, s.anchor),
            span=jnp.where(ok, rest, s.span),
            count=s.count + ok,
            rec=_record(s.rec, pos, s.count, ok, t_q, slope, t_star, imm.astype(s.rec.dtype)),
            end=s.end,
            blocked=s.blocked | (cross & ~ok),
        )
        return s, _detect(ratio, s, theta, K)

    return jax.lax.while_loop(cond, body, vary_like((p, cross)))[0]


# The spike loop runs on the blocks of neighbouring neurons that hold a crossing, gathered into a
# small array, when there are at least this many neurons (batch x layer width); at most
# 1/_FIRE_COMPACT_SHARE of the blocks per round.
_FIRE_COMPACT_MIN = 4096
_FIRE_COMPACT_SHARE = 16
_FIRE_BLOCKS = (16, 8, 4)  # the block size: the first that divides the layer width


def _fire(ratio, p: _State, theta, tau_m, K, dt=None):
    """Record every spike until no neuron crosses within its current interval.

    Continuous mode (``dt is None``): the spike is at the crossing and the membrane restarts
    from 0 there. Discrete mode: a crossing at ``t*`` is emitted at the end of its bin
    ``t_q``; the reset (``u -> u - theta``) happens at ``t_q``, and the spike is only accepted
    if ``t_q`` is not after the end of the interval (the next input, or ``t_max``).

    Only a neuron that crosses now can cross again in the same interval (the others' state does
    not change), and between two events few neurons of a wide layer cross. So the loop runs on
    the blocks of neighbouring neurons that hold a crossing: up to a fixed number of blocks are
    gathered into a small array, run until none of them crosses, and scattered back; more rounds
    follow while blocks with a crossing remain. The same arithmetic on fewer elements: bit for
    bit the result of the loop on all neurons.
    """
    B, n = p.u.shape
    cross = _detect(ratio, p, theta, K)
    S = next((b for b in _FIRE_BLOCKS if n % b == 0), 0)
    if B * n < _FIRE_COMPACT_MIN or not S:
        pos = jnp.arange(B * n, dtype=jnp.int32).reshape(B, n)
        return _fire_loop(ratio, p, cross, pos, theta, tau_m, K, dt)
    nb = B * n // S
    cap = max(1, nb // _FIRE_COMPACT_SHARE)
    blocks = lambda a: a.reshape(nb, S)  # noqa: E731
    hit = jnp.max(blocks(cross.astype(jnp.int8)), axis=1)  # [nb] int8: blocks still to run
    theta_b = jnp.broadcast_to(theta, (B, n))
    slot = jnp.arange(cap, dtype=jnp.int32)
    lane = jnp.arange(S, dtype=jnp.int32)
    names = [k for k, v in p._asdict().items() if v is not None and k != "rec"]
    fill = dict(count=K, blocked=True)  # padding neurons: a full spike buffer (never active)

    def cond(carry):
        return jnp.max(carry[1]) > 0

    def body(carry):
        p, hit = carry
        n_hit = jnp.sum(hit, dtype=jnp.int32)
        (idx,) = jnp.nonzero(hit, size=cap, fill_value=0)
        real = slot < n_hit
        idx = jnp.where(real, idx.astype(jnp.int32), nb + slot)  # padding blocks: distinct, out of bounds
        take = lambda a, f: jnp.take(blocks(a), idx, axis=0, mode="fill", fill_value=f)  # noqa: E731
        q = _State(rec=p.rec, **{k: take(getattr(p, k), fill.get(k, 0)) for k in names})
        theta_c = take(theta_b, 1)
        pos_c = jnp.where(real[:, None], idx[:, None] * S + lane, B * n + slot[:, None] * S + lane)
        q = _fire_loop(ratio, q, _detect(ratio, q, theta_c, K), pos_c, theta_c, tau_m, K, dt)
        put = lambda a, v: blocks(a).at[idx].set(v, mode="drop", unique_indices=True).reshape(B, n)  # noqa: E731
        p = p._replace(rec=q.rec, **{k: put(getattr(p, k), getattr(q, k)) for k in names})
        return p, hit.at[idx].set(0, mode="drop", unique_indices=True)

    return jax.lax.while_loop(cond, body, vary_like((p, hit)))[0]


def _forward_first(t_flat, w, prm: _Params, ratio, k_in):
    """:func:`_forward` for ``max_spikes = 1`` in continuous time.

    A neuron's first spike ends its part in the layer, so no inner loop is needed: the event loop
    only advances the state, adds the event's weights and runs the (cheap) crossing test; the
    state at the start of the interval where a neuron first crosses is recorded, and the crossing
    points (square root and logarithm, or Lambert W) are solved once, after the loop.
    """
    B, n = t_flat.shape[0], w.shape[1]
    times_e, order = _events(t_flat, prm.t_max, k_in)
    E = times_e.shape[1] - 1
    te, se = times_e, _src(order, k_in)  # short names for the loop
    theta, tau_m = prm.theta, prm.tau_m
    zeros = jnp.zeros((B, n), w.dtype)
    empty = 1.0 if ratio == 2 else 0.0
    t_max = prm.t_max

    def interval(t_e, t_next):
        """Span of the interval after an event: to the next event, or for the last one to t_max."""
        end = jnp.minimum(t_next, t_max)
        if ratio == 2:
            return jnp.where(jnp.isfinite(end), jnp.exp(-(jnp.where(jnp.isfinite(end), end, t_e) - t_e) / tau_m), 0.0)
        return jnp.where(jnp.isfinite(end), (jnp.where(jnp.isfinite(end), end, t_e) - t_e) / tau_m, jnp.inf)

    def sub_step(j, carry):
        # a neuron's (u, c) freeze at the event after which it first crosses (e_at >= 0 from
        # then on): only the event index depends on the crossing test, so XLA does not copy the
        # test into the fusion of every carried array
        u, c, span, e_at = carry
        t_e, t_next = te[:, j][:, None], te[:, j + 1][:, None]
        here = jnp.isfinite(t_e)
        u1, c1 = _advance(ratio, u, c, span)
        c1 = c1 + tau_m * w[se[:, j]]
        span1 = jnp.where(here, interval(t_e, t_next), empty)
        live = here & (e_at < 0)
        cross = _crossing(ratio, u1, c1, span1, theta, live)
        return jnp.where(live, u1, u), jnp.where(live, c1, c), span1, jnp.where(cross, j, e_at)

    def cond(carry):
        # stop at the end of the events, or as soon as every neuron of every sample that still
        # has events has fired: later events cannot change a first spike
        e, (_, _, _, e_at) = carry
        waiting = jnp.any(e_at < 0, axis=1)
        return (e < E) & jnp.any(jnp.isfinite(te[:, e]) & waiting)

    def body(carry):
        e, state = carry
        return e + 1, sub_step(e, state)

    init = (zeros, zeros, jnp.full((B, 1), empty, w.dtype), jnp.full((B, n), -1, jnp.int32))
    _, (u_at, c_at, _, e_at) = jax.lax.while_loop(cond, body, vary_like((jnp.int32(0), init), t_flat, w))
    fired = e_at >= 0
    e_at = jnp.maximum(e_at, 0)
    anchor = jnp.take_along_axis(te, e_at, axis=1)
    nxt = jnp.take_along_axis(te, e_at + 1, axis=1)
    span = interval(anchor, nxt)
    ds, _, slope, _ = _crossing_point(ratio, u_at, c_at, span, theta, tau_m)
    times = jnp.where(fired, anchor + ds, jnp.inf)[..., None]
    slopes = jnp.where(fired, slope, 0.0)[..., None]
    return times, slopes, times_e, order, None, None


def _event_cursor(times_e, order, k_in, ties):
    """A pointer into the sorted events ``[B, E+1]`` of every sample: ``(p0, read, move)``.

    ``read(p)`` gives each sample's event at the pointer (``time [B]``, ``source [B]``);
    ``move(p, m)`` moves past it the samples in ``m`` (those with an event there). With ``ties``
    each sample has its own pointer (``p [B]``): the samples' events at one time are one step,
    and the steps of different samples fall at different event indices. Without, one index for
    all (a scalar; a sample past its last event reads the ``inf`` padding), and the events are
    read from column-major copies: one contiguous row per step instead of a gather.
    """
    if ties:
        rows = jnp.arange(times_e.shape[0])
        return (jnp.zeros(times_e.shape[:1], jnp.int32), lambda p: (times_e[rows, p], _src(order[rows, p], k_in)),
                lambda p, m: p + m)
    times_t, order_t = times_e.T, order.T
    return jnp.int32(0), lambda p: (times_t[p], _src(order_t[p], k_in)), lambda p, m: p + 1


def _add_rows(read, move, jump, p, here, t_e, c, ties=True):
    """Add the rows ``jump[src]`` of every event of each sample at time ``t_e`` to ``c``.

    ``p`` points at each sample's first event at ``t_e`` (``here``: the sample has one; see
    :func:`_event_cursor`); returns the pointer moved past those events, and ``c``. The first
    row is added directly; with ``ties`` a loop adds further rows while some sample has another
    event at the same time (without, each event is its own step: equal times then give
    intervals of zero length).
    """
    c = c + jump[read(p)[1]]
    p = move(p, here)
    if not ties:
        return p, c

    def same(p):
        return here & (read(p)[0] == t_e)

    def body(carry):  # one more event per sample and step (rows of several at once were slower)
        p, c = carry
        m = same(p)
        return move(p, m), c + jnp.where(m[:, None], jump[read(p)[1]], 0.0)

    return jax.lax.while_loop(lambda carry: jnp.any(same(carry[0])), body, vary_like((p, c)))


def _forward(t_flat, w, prm: _Params, ratio, k_in, K):
    """Spike times ``[B, n, K]``, slopes before each spike, and the sorted events."""
    if K == 1 and prm.dt is None:
        return _forward_first(t_flat, w, prm, ratio, k_in)
    B = t_flat.shape[0]
    n = w.shape[1]
    dtype = w.dtype
    times_e, order = _events(t_flat, prm.t_max, k_in)
    theta, tau_m = prm.theta, prm.tau_m
    empty = 1.0 if ratio == 2 else 0.0
    zeros = jnp.zeros((B, n), dtype)
    dt = prm.dt
    s0 = _State(
        u=zeros, c=zeros, anchor=zeros, span=jnp.full((B, n), empty, dtype),
        count=jnp.zeros((B, n), jnp.int32),
        rec=jnp.broadcast_to(jnp.asarray([jnp.inf, 0.0] if dt is None else [jnp.inf, 0.0, jnp.inf, 0.0], dtype),
                             (B, n, K, 2 if dt is None else 4)),
    )
    if dt is not None:
        s0 = s0._replace(end=jnp.full((B, n), jnp.inf, dtype), blocked=jnp.zeros((B, n), bool))

    jump = tau_m * w  # an input spike's jump of c = tau_m i, scaled once outside the loop
    # inputs with one spike per neuron are often encoded data whose times tie (pixels of equal
    # value): their events at one time are one step. Spiking layers' times rarely tie, and the
    # check would cost a little on every event.
    ties = k_in == 1
    if dt is None and not ties and B * n <= _CHUNK_MAX_NEURONS:
        s = _walk_chunked(ratio, s0, times_e, order, k_in, jump, theta, tau_m, K)
        return _finish(ratio, s, prm, times_e, order, K)
    p0, read, move = _event_cursor(times_e, order, k_in, ties)

    def cond(carry):
        p, s = carry
        return jnp.any(jnp.isfinite(read(p)[0])) & jnp.any(s.count < K)

    def body(carry):
        # each sample's pointer p moves past all its events at the next time t_e (equal times,
        # e.g. pixels of equal value, are one step: their weight rows are summed)
        p, s = carry
        t_e = read(p)[0][:, None]  # [B, 1]
        here = jnp.isfinite(t_e)
        # advance to the event (the span of every neuron ends at t_e by construction)
        u, c = _advance(ratio, s.u, s.c, s.span)
        p, c = _add_rows(read, move, jump, p, here[:, 0], t_e[:, 0], c, ties)
        t_next = read(p)[0][:, None]
        # the next interval ends at the next event; the last one waits for the tail
        span = _span_to_next(ratio, t_e, t_next, tau_m)
        s = s._replace(
            u=jnp.where(here, u, s.u), c=jnp.where(here, c, s.c),
            anchor=jnp.where(here, jnp.broadcast_to(t_e, (B, n)), s.anchor),
            span=jnp.where(here, jnp.broadcast_to(span, (B, n)), s.span),
        )
        if dt is not None:
            end = jnp.where(jnp.isfinite(t_next), t_next, prm.t_max)
            s = s._replace(end=jnp.where(here, jnp.broadcast_to(end, (B, n)), s.end),
                           blocked=jnp.where(here, False, s.blocked))
        return p, _fire(ratio, s, theta, tau_m, K, dt)

    _, s = jax.lax.while_loop(cond, body, vary_like((p0, s0), t_flat, w))
    return _finish(ratio, s, prm, times_e, order, K)


def _finish(ratio, s: _State, prm: _Params, times_e, order, K):
    """After the last event: each neuron runs on from its anchor (last event or last spike) to
    ``t_max``; returns :func:`_forward`'s outputs."""
    B, n = s.u.shape
    empty = 1.0 if ratio == 2 else 0.0
    tail = jnp.where(jnp.isfinite(prm.t_max), _span(ratio, prm.t_max, s.anchor, prm.tau_m),
                     0.0 if ratio == 2 else jnp.inf)
    has_events = jnp.isfinite(times_e[:, :1])
    s = s._replace(span=jnp.where(has_events, tail, empty))
    if prm.dt is not None:
        s = s._replace(end=jnp.full((B, n), prm.t_max, s.u.dtype), blocked=~jnp.broadcast_to(has_events, (B, n)))
    s = _fire(ratio, s, prm.theta, prm.tau_m, K, prm.dt)
    star, imm = (None, None) if prm.dt is None else (s.rec[..., 2], s.rec[..., 3] > 0)
    return s.rec[..., 0], s.rec[..., 1], times_e, order, star, imm


# Narrow layers (batch x width at most this many neurons) walk their events in chunks of
# _CHUNK_EVENTS forward and _CHUNK_EVENTS_BWD backward: in a layer of a few neurons the cost of
# an event step is the loop's overhead, not its arithmetic, and most of its inter-event
# intervals hold no spike. (Two limits, so that tests can run either path on its own.)
_CHUNK_MAX_NEURONS = 2048
_CHUNK_MAX_NEURONS_BWD = 2048
_CHUNK_EVENTS = 16
_CHUNK_EVENTS_BWD = 64


def _walk_chunked(ratio, s: _State, times_e, order, k_in, jump, theta, tau_m, K):
    """The event loop of :func:`_forward` (continuous time, one event per step) by chunks.

    Each sample has a pointer to its next event. A round takes the next ``C`` events of every
    sample and runs the state through them as if no neuron fired (unrolled; the same arithmetic
    as one event per step), finds the first event after which some neuron of the sample crosses
    before the next, and applies the events up to it (all ``C`` if none crosses); then the spike
    loop fires. A sample without a crossing moves ``C`` events per round, one with a crossing up
    to the crossing: the rounds are about the spiking intervals plus the events over ``C``.
    """
    B, n = s.u.shape
    C = _CHUNK_EVENTS
    E = times_e.shape[1] - 1  # the last column is padding (inf): reads past the end land there
    steps = jnp.arange(C + 1, dtype=jnp.int32)
    rows = jnp.arange(B)

    def cond(carry):
        p, s = carry
        return jnp.any(jnp.isfinite(times_e[rows, p])) & jnp.any(s.count < K)

    def run(s, tc, jc, last):
        """Apply the events ``j <= last`` (``[B]``) of the chunk; the crossings after each."""
        u, c, anchor, span = s.u, s.c, s.anchor, s.span
        active = s.count < K
        crossed = []
        for j in range(C):
            t_e, t_next = tc[:, j:j + 1], tc[:, j + 1:j + 2]
            here = jnp.isfinite(t_e) & (j <= last)[:, None]
            u1, c1 = _advance(ratio, u, c, span)
            span1 = _span_to_next(ratio, t_e, t_next, tau_m)
            u, c = jnp.where(here, u1, u), jnp.where(here, c1 + jc[:, j], c)
            anchor = jnp.where(here, t_e, anchor)
            span = jnp.where(here, span1, span)
            crossed.append(jnp.any(_crossing(ratio, u, c, span, theta, active & here), axis=1))
        return s._replace(u=u, c=c, anchor=anchor, span=span), jnp.stack(crossed, axis=1)  # [B, C]

    def body(carry):
        p, s = carry
        idx = jnp.minimum(p[:, None] + steps, E)
        tc = jnp.take_along_axis(times_e, idx, axis=1)  # [B, C + 1]: the chunk and the event after it
        jc = jump[_src(jnp.take_along_axis(order, idx[:, :C], axis=1), k_in)]  # [B, C, n]
        n_fin = jnp.sum(jnp.isfinite(tc[:, :C]), axis=1, dtype=jnp.int32)
        _, crossed = run(s, tc, jc, jnp.full((B,), C, jnp.int32))
        first = jnp.where(jnp.any(crossed, axis=1), jnp.argmax(crossed, axis=1), C - 1).astype(jnp.int32)
        last = jnp.minimum(first, n_fin - 1)  # -1: no event left
        s, _ = run(s, tc, jc, last)
        return p + last + 1, _fire(ratio, s, theta, tau_m, K)

    return jax.lax.while_loop(cond, body, vary_like((jnp.zeros((B,), jnp.int32), s), times_e, jump, theta))[1]


# ----------------------------------------------------------------------------------------------
# Backward: adjoint over each neuron's spikes, then one pass over the events
# ----------------------------------------------------------------------------------------------


def _spike_adjoints(ratio, t_out, slopes, g, prm: _Params):
    """Per spike: ``nu_m = -lambda_m / du/dt`` and the suffix sums the event pass needs.

    The suffix sums are, for ``r = 2``, ``psi1_k = sum_{m>=k} nu_m e^{-(t_m-t_k)/tau_m}`` and
    ``psi2_k`` the same with ``tau_s``; for ``r = 1`` ``psi2_k = sum nu_m (t_m - t_k) e^{..}``.
    Returns them as the event walk's spike table (:func:`_spike_table`), written slot by slot.
    """
    tau_m, theta = prm.tau_m, prm.theta
    floor = math.sqrt(float(jnp.finfo(t_out.dtype).eps)) * theta / tau_m
    # a neuron's spikes fill its first slots; the walk goes back from the last slot any neuron
    # of the batch used (few of the K slots are used: [B, n, K] passes would dominate)
    used = jnp.max(jnp.sum(jnp.isfinite(t_out), axis=-1, dtype=jnp.int32))
    # slot-major copies: a slot is then a contiguous [B, n] slice (a strided one is several
    # times slower, and XLA may read it once per fusion that uses it)
    tk, sk, gk = (jnp.moveaxis(a, -1, 0) for a in (t_out, slopes, g))

    def step(i, carry):
        h1, h2, tn, vn, table = carry  # sums over m > k+1 seen from t_{k+1}; spike k+1
        k = used - 1 - i
        t_k = tk[k]
        v = jnp.isfinite(t_k)
        t = jnp.where(v, t_k, 0.0)
        gap = jnp.where(vn & v, tn - t, 0.0)
        dec = jnp.where(vn & v, jnp.exp(-gap / tau_m), 0.0)
        if ratio == 2:
            H1, H2 = dec * h1, dec * dec * h2  # sums over m > k seen from t_k
        else:
            H1, H2 = dec * h1, dec * (h2 + gap * h1)
        du = jnp.maximum(sk[k], floor)
        nu = jnp.where(v, -(gk[k] - theta / tau_m * H1) / du, 0.0)
        p1, p2 = nu + H1, (nu + H2 if ratio == 2 else H2)
        return p1, p2, t, v, jax.lax.dynamic_update_index_in_dim(table, _table_rows(t_k, p1, p2), k, 0)

    zero = jnp.zeros(tk.shape[1:], t_out.dtype)
    # the slots past the last used one stay empty rows (time inf)
    empty = jnp.asarray([jnp.inf, 0.0, 0.0, 0.0], t_out.dtype)
    table = jnp.broadcast_to(empty, (tk.shape[0] + 1,) + tk.shape[1:] + (4,))
    init = vary_like((zero, zero, zero, jnp.zeros(zero.shape, bool), table), t_out, g, prm)
    return jax.lax.fori_loop(0, used, step, init)[4]


def _table_rows(t, p1, p2):
    """Rows (time, psi1, psi2, padding) of the spike table; ``inf`` time where there is no spike."""
    return jnp.stack([jnp.where(jnp.isfinite(t), t, jnp.inf), p1, p2, jnp.zeros_like(p1)], axis=-1)


def _spike_table(t_eval, psi1, psi2):
    """The event walk's spike table ``[K+1, B, n, 4]`` (slot-major) from ``[K, B, n]`` arrays: per
    slot a row (time, psi1, psi2, padding), ``inf`` time where there is no spike, and after the
    last slot an empty one (``inf``, zeros). A pointer fetch is then one row gather (several times
    cheaper on CPU than three element gathers); slot-major, neighbouring neurons' pointers (mostly
    at similar slots) read neighbouring rows."""
    pad = lambda a, v: jnp.pad(a, ((0, 1), (0, 0), (0, 0)), constant_values=v)  # noqa: E731
    return _table_rows(pad(t_eval, jnp.inf), pad(psi1, 0.0), pad(psi2, 0.0))


def _spike_adjoints_discrete(ratio, t_q, star, imm, slopes, g, prm: _Params, estimator):
    """:func:`_spike_adjoints` for a clocked layer; also returns each spike's term of the
    ``tau_syn`` gradient.

    Spike ``m`` is emitted at ``t_q,m = q(t*_m)`` (backward: ``dt_q/dt* =`` the estimator's
    slope ``s_m``); its crossing ``t*_m`` solves ``F_m(t) = sum_j w_j kappa(t - t_j)
    - theta sum_{k<m} e^{-(t - t_q,k)/tau_m} = theta``: inputs and resets at their clocked
    times. An immediate spike (above threshold right after the reset ``t_q,m-1``) has
    ``t*_m = t_q,m-1``: its adjoint passes to the previous spike. The suffix sums are re-based
    at the crossing times ``t*``, where the event pass evaluates the kernels.
    """
    tau_m, theta = prm.tau_m, prm.theta
    valid = jnp.isfinite(t_q)
    floor = math.sqrt(float(jnp.finfo(t_q.dtype).eps)) * theta[:, None] / tau_m
    du = jnp.maximum(slopes, floor)
    sl = estimator_slope(star, prm.dt, estimator)
    g = jnp.where(valid, g, 0.0)
    ts0 = jnp.where(valid, star, 0.0)
    tq0 = jnp.where(valid, t_q, 0.0)
    mv = lambda a: jnp.moveaxis(a, -1, 0)
    tk, qk, vk, gk, duk, ik, sk = map(mv, (ts0, tq0, valid, g, du, imm & valid, sl))
    t_next = jnp.concatenate([tk[1:], tk[-1:]], axis=0)
    v_next = jnp.concatenate([vk[1:], jnp.zeros_like(vk[-1:])], axis=0)

    def step(carry, xs):
        h1, h2, passed = carry  # suffix sums at t*_{k+1}; adjoint passed by an immediate spike k+1
        t, tq, v, gg, d, im, sv, tn, vn = xs
        gap = jnp.where(vn & v, tn - t, 0.0)
        dec = jnp.where(vn & v, jnp.exp(-gap / tau_m), 0.0)
        if ratio == 2:
            H1, H2 = dec * h1, dec * dec * h2
        else:
            H1, H2 = dec * h1, dec * (h2 + gap * h1)
        # d/dt_q,k of the later F_m: the reset kernel seen from the reset time t_q,k
        rf = jnp.where(v, jnp.exp((tq - t) / tau_m), 0.0)
        reset = -theta / tau_m * rf * H1
        lam = sv * (gg + reset + passed)  # adjoint of t*_k
        normal = v & ~im
        nu = jnp.where(normal, -lam / d, 0.0)
        tau_term = jnp.where(normal, lam * t, 0.0) - jnp.where(v, tq * reset, 0.0)
        p1 = nu + H1
        p2 = nu + H2 if ratio == 2 else H2
        return (p1, p2, jnp.where(v & im, lam, 0.0)), (p1, p2, tau_term)

    zero = jnp.zeros_like(tk[0])
    _, (psi1, psi2, tau_terms) = jax.lax.scan(step, vary_like((zero, zero, zero), tk, gk, prm),
                                              (tk, qk, vk, gk, duk, ik, sk, t_next, v_next), reverse=True)
    return psi1, psi2, jnp.sum(tau_terms)  # slot-major [K, B, n]


def _event_grads_first(ratio, w, prm, times_e, order, k_in, t_out, nu, with_dt=True):
    """:func:`_event_grads` for one spike per neuron (suffix sums ``psi1 = nu``, ``psi2 = nu``
    for ``r = 2`` and 0 for ``r = 1``): every event before a neuron's spike contributes, and
    the loop body needs no inner loop. ``t_out`` and ``nu`` are ``[B, n]``."""
    B, n = t_out.shape
    E = times_e.shape[1] - 1
    tau_m = prm.tau_m
    te, se = times_e, _src(order, k_in)
    tk, q = t_out, nu

    def sub_step(j, dw, dt):
        t_e, src = te[:, j][:, None], se[:, j]
        live = (tk > t_e) & jnp.isfinite(tk)  # spikes at t_e were caused before the event
        gap = jnp.where(live, tk - t_e, 0.0)
        d = jnp.where(live, jnp.exp(-gap / tau_m), 0.0)
        p_m = d * q
        if ratio == 2:  # kappa(s) = tau_m (e^{-s/tau_m} - e^{-s/tau_s}), e^{-s/tau_s} = d^2
            g_w, g_t = tau_m * (p_m - d * p_m), p_m - 2.0 * d * p_m
        else:  # kappa(s) = s e^{-s/tau}
            g_w, g_t = gap * p_m, gap * p_m / tau_m - p_m
        dw = dw.at[src].add(g_w)
        if with_dt:
            dt = dt.at[:, j].set(jnp.sum(w[src] * g_t, axis=1))
        return dw, dt

    # an event at or after a sample's last spike contributes nothing: stop when no sample has
    # an event before its last spike (inputs are sorted, so the rest of the events are later)
    last = jnp.max(jnp.where(jnp.isfinite(tk), tk, -jnp.inf), axis=1)

    def cond(carry):
        e = carry[0]
        return (e < E) & jnp.any(te[:, e] < last)

    def body(carry):
        e, dw, dt = carry
        return (e + 1,) + sub_step(e, dw, dt)

    init = (jnp.int32(0), jnp.zeros_like(w), jnp.zeros((B, E), w.dtype))
    _, dw, dt = jax.lax.while_loop(cond, body, vary_like(init, w, prm, times_e))
    return dw, _unsort(dt, times_e, order) if with_dt else None


def _unsort(dt_sorted, times_e, order):
    """Input-time gradients from event order ``[B, E]`` back to the input slots ``[B, E]``: each
    input spike (finite, ``<= t_max``) is one event, so a scatter to distinct slots, the padding
    events dropped (twice as fast as a scatter-add of every padded event)."""
    B, E = dt_sorted.shape
    slots = jnp.where(jnp.isfinite(times_e[:, :-1]), order[:, :-1], E)
    return jnp.zeros_like(dt_sorted).at[jnp.arange(B)[:, None], slots].set(dt_sorted, mode="drop", unique_indices=True)


def _event_grads(ratio, w, prm, times_e, order, k_in, table, with_dt=True, ties=False):
    """Walk the events once; at each, the suffix sums over the spikes after it give
    ``dF/dw`` (summed into ``dw``) and ``dF/dt_in`` for that event.

    A pointer to each sample's next event (:func:`_event_cursor`), and one per neuron to its
    first spike after that event, with that spike's time and suffix sums carried along, so the
    ``[K, B, n]`` arrays are only read (a gather) when some pointer moves. With ``ties``, a
    sample's events at one time are one step: they share the kernel values, and only their
    rows are added one by one. Without ``with_dt`` the input-time gradients are skipped (zeros).
    ``table``: the spikes' times and suffix sums, ``[K+1, B, n, 4]`` (:func:`_spike_table`).
    """
    K1, B, n, _ = table.shape
    E = times_e.shape[1] - 1
    tau_m = prm.tau_m
    first = table[0]
    table = table.reshape(K1 * B * n, 4)  # the empty slot needs no bounds check
    base = jnp.arange(B * n, dtype=jnp.int32).reshape(B, n)
    dims = jax.lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0,))
    p0, read, move = _event_cursor(times_e, order, k_in, ties)
    rows = jnp.arange(B)

    def fetch(k):  # k <= K: a pointer only moves past finite times
        idx = (k * (B * n) + base).reshape(-1, 1)
        return jax.lax.gather(table, idx, dims, (1, 4), mode="promise_in_bounds").reshape(B, n, 4)

    def cond(carry):
        return jnp.any(jnp.isfinite(read(carry[0])[0]))

    def add(p, here, g_w, g_t, dw, dt):  # the terms of each sample's event at its pointer p
        src = read(p)[1]
        dw = dw.at[src].add(jnp.where(here[:, None], g_w, 0.0))
        if with_dt:  # a sample without an event there writes out of bounds: dropped
            dt = dt.at[rows, jnp.where(here, p, E)].set(jnp.sum(w[src] * g_t, axis=1), mode="drop")
        return dw, dt

    def body(carry):
        p, k, cur, dw, dt = carry
        t_e = read(p)[0][:, None]

        # first spike strictly after the event (spikes at t_e were caused before it); a
        # sample without this event keeps its pointers (-inf), the empty slot (inf) stops them
        t_cmp = jnp.where(jnp.isfinite(t_e), t_e, -jnp.inf)

        def behind(c):
            return c[1][..., 0] <= t_cmp

        def adv_body(c):
            k = c[0] + behind(c)
            return k, fetch(k)

        k, cur = jax.lax.while_loop(lambda c: jnp.any(behind(c)), adv_body, vary_like((k, cur)))
        tk, q1, q2 = cur[..., 0], cur[..., 1], cur[..., 2]
        live = jnp.isfinite(tk) & jnp.isfinite(t_e)
        gap = jnp.where(live, tk - t_e, 0.0)
        d = jnp.where(live, jnp.exp(-gap / tau_m), 0.0)
        g_w, g_t = _kernel_terms(ratio, d, gap, q1, q2, tau_m)
        here = jnp.isfinite(t_e[:, 0])
        dw, dt = add(p, here, g_w, g_t, dw, dt)
        p = move(p, here)
        if ties:
            def same(p):
                return here & (read(p)[0] == t_e[:, 0])

            def tie_body(c):
                p, dw, dt = c
                m = same(p)
                return (move(p, m),) + add(p, m, g_w, g_t, dw, dt)

            p, dw, dt = jax.lax.while_loop(lambda c: jnp.any(same(c[0])), tie_body, vary_like((p, dw, dt)))
        return p, k, cur, dw, dt

    k0 = jnp.zeros((B, n), jnp.int32)
    init = (p0, k0, first, jnp.zeros_like(w), jnp.zeros((B, E), w.dtype))
    _, _, _, dw, dt_sorted = jax.lax.while_loop(cond, body, vary_like(init, w, prm, times_e))
    return dw, _unsort(dt_sorted, times_e, order) if with_dt else None


def _event_grads_chunked(ratio, w, prm, times_e, order, k_in, table, with_dt=True):
    """:func:`_event_grads` for narrow layers: the events in chunks of ``C``, each chunk at once.

    For every event of the chunk and every neuron, the first spike after the event is found by
    a binary search over the neuron's spike slots (the table's times are ascending, ``inf``
    after the last spike), and its suffix sums give the event's terms exactly as in the walk;
    the weight rows of the whole chunk are one scatter-add, and the input-time gradients go
    straight to the input slots. No pointers carried from event to event, so no inner loop.
    """
    K1, B, n, _ = table.shape
    E = times_e.shape[1] - 1  # the last column is padding (inf): reads past the end land there
    C = _CHUNK_EVENTS_BWD
    tau_m = prm.tau_m
    t_col = table[..., 0].reshape(-1)
    rows_tab = table.reshape(K1 * B * n, 4)
    base = (jnp.arange(B, dtype=jnp.int32)[:, None, None] * n + jnp.arange(n, dtype=jnp.int32))  # [B, 1, n]
    steps = jnp.arange(C, dtype=jnp.int32)
    rows = jnp.arange(B)[:, None]
    halves = [1 << i for i in reversed(range(K1.bit_length()))]

    def cond(carry):
        s = carry[0]
        return (s < E) & jnp.any(jnp.isfinite(times_e[:, jnp.minimum(s, E)]))

    def body(carry):
        s, dw, dt = carry
        idx = jnp.minimum(s + steps, E)
        t_e, o_e = times_e[:, idx], order[:, idx]  # [B, C]
        src = _src(o_e, k_in)
        here = jnp.isfinite(t_e)
        # number of spikes at or before the event (spikes at t_e were caused before it): the
        # slot of the first spike after it; padding events look at slot 0 and count nothing
        x = jnp.where(here, t_e, -jnp.inf)[:, :, None]
        k = jnp.zeros((B, C, n), jnp.int32)
        for h in halves:
            cand = jnp.minimum(k + h, K1)
            k = jnp.where(t_col[(cand - 1) * (B * n) + base] <= x, cand, k)
        cur = rows_tab[k * (B * n) + base]  # [B, C, n, 4]
        tk, q1, q2 = cur[..., 0], cur[..., 1], cur[..., 2]
        live = jnp.isfinite(tk) & here[:, :, None]
        gap = jnp.where(live, tk - x, 0.0)
        d = jnp.where(live, jnp.exp(-gap / tau_m), 0.0)
        g_w, g_t = _kernel_terms(ratio, d, gap, q1, q2, tau_m)
        dw = dw.at[src.reshape(-1)].add(g_w.reshape(B * C, n))  # padding events add zeros
        if with_dt:
            slots = jnp.where(here, o_e, E)  # padding: out of bounds, dropped
            dt = dt.at[rows, slots].set(jnp.sum(w[src] * g_t, axis=-1), mode="drop", unique_indices=True)
        return s + C, dw, dt

    init = (jnp.int32(0), jnp.zeros_like(w), jnp.zeros((B, E) if with_dt else (0, 0), w.dtype))
    _, dw, dt = jax.lax.while_loop(cond, body, vary_like(init, w, prm, times_e))
    return dw, dt if with_dt else None


def _kernel_terms(ratio, d, gap, q1, q2, tau_m):
    """An event's terms from the suffix sums ``(q1, q2)`` of the first spike after it, at ``gap``
    before that spike (``d = exp(-gap/tau_m)``): ``(dF/dw, dF/dt_in / w)`` summed over the
    neuron's later spikes."""
    if ratio == 2:
        p_m, p_s = d * q1, d * d * q2  # e^{-s/tau_s} = (e^{-s/tau_m})^2
        g_w = tau_m * (p_m - p_s)  # kappa(s) = tau_m (e^{-s/tau_m} - e^{-s/tau_s})
        return g_w, p_m - 2.0 * p_s  # -kappa'(s) / w
    p_, q = d * q1, d * (q2 + gap * q1)
    return q, q / tau_m - p_  # kappa(s) = s e^{-s/tau}; -kappa'(s) / w = -(1 - s/tau) e^{-s/tau}


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7, 8, 9))
def _spike_times(t_flat, w, tau_syn, theta, t_max, dt, ratio, k_in, K, estimator):
    prm = _Params(tau_syn, ratio * tau_syn, theta, t_max, None if estimator is None else dt)
    return _forward(t_flat, w, prm, ratio, k_in, K)[0]


def _spike_times_fwd(t_flat, w, tau_syn, theta, t_max, dt, ratio, k_in, K, estimator):
    # symbolic zeros: when neither the input times nor tau_syn are differentiated (a network's
    # first layer, with data as input), the backward pass skips the input-time gradients
    with_dt = t_flat.perturbed or tau_syn.perturbed
    t_flat, w, tau_syn, theta, t_max, dt = (a.value for a in (t_flat, w, tau_syn, theta, t_max, dt))
    prm = _Params(tau_syn, ratio * tau_syn, theta, t_max, None if estimator is None else dt)
    t_out, slopes, times_e, order, star, imm = _forward(t_flat, w, prm, ratio, k_in, K)
    # the flag travels in the residuals' structure (None: skip), so the backward pass sees it statically
    marker = jnp.zeros(()) if with_dt else None
    return t_out, (t_flat, w, prm, t_out, slopes, times_e, order, star, imm, dt, marker)


def _spike_times_bwd(ratio, k_in, K, estimator, res, g):
    t_flat, w, prm, t_out, slopes, times_e, order, star, imm, dt_step, marker = res
    with_dt = marker is not None
    if isinstance(g, jax.custom_derivatives.SymbolicZero):  # the output is not used
        g = jnp.zeros(g.shape, g.dtype)
    if estimator is None:
        table = _spike_adjoints(ratio, t_out, slopes, g, prm)
        gt = jnp.sum(jnp.where(jnp.isfinite(t_out), g * t_out, 0.0))
    else:
        psi1, psi2, gt = _spike_adjoints_discrete(ratio, t_out, star, imm, slopes, g, prm, estimator)
        table = _spike_table(jnp.moveaxis(star, -1, 0), psi1, psi2)  # kernels evaluated at the crossings
    B, n = t_out.shape[:2]
    if K == 1 and estimator is None:
        dw, dt = _event_grads_first(ratio, w, prm, times_e, order, k_in, table[0, ..., 0], table[0, ..., 1], with_dt)
    elif B * n <= _CHUNK_MAX_NEURONS_BWD:
        dw, dt = _event_grads_chunked(ratio, w, prm, times_e, order, k_in, table, with_dt)
    else:
        dw, dt = _event_grads(ratio, w, prm, times_e, order, k_in, table, with_dt, ties=k_in == 1)
    if dt is None:
        dt = jnp.zeros_like(t_flat)
    # Scale invariances (exact for these formulas, see the module docstring):
    #   (w, theta) -> c (w, theta) leaves spikes unchanged: theta_n dT/dtheta_n = -sum_j w_jn dT/dw_jn
    #   (t, tau_syn, t_max, w) -> (c t, c tau_syn, c t_max, w / c) scales spikes by c.
    wdw = jnp.sum(w * dw, axis=0)  # [n]
    dtheta = -wdw / prm.theta
    #   Clocked layers: the same relation holds for every crossing equation F_m (inputs and
    #   resets at their clocked times), which turns gt into sum_m lambda*_m t*_m - t_q,m R_m
    #   (see _spike_adjoints_discrete). (Without with_dt, tau_syn is not differentiated.)
    t_in0 = jnp.where(jnp.isfinite(t_flat), t_flat, 0.0)
    dtau = (gt - jnp.sum(t_in0 * dt) + jnp.sum(wdw)) / prm.tau_syn
    return dt, dw, dtau, dtheta, jnp.zeros_like(prm.t_max), jnp.zeros_like(dt_step)


_spike_times.defvjp(_spike_times_fwd, _spike_times_bwd, symbolic_zeros=True)


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


def spike_times(t_in, weights, *, tau_syn, threshold, tau_ratio=2, max_spikes=1, t_max=jnp.inf, dt=None,
                estimator="straight_through"):
    r"""Exact output spike times of a layer of current-based LIF neurons with soft reset.

    See the module docstring for the model, the closed forms and the gradients.

    Args:
      t_in: input spike times ``[..., n_in, k_in]``: ``k_in`` spikes per input neuron, sorted
        ascending and padded with ``inf`` (pass ``t[..., None]`` for one spike each). ``inf``
        means no spike. Spikes after ``t_max`` are ignored.
      weights: ``[n_in, n_out]``; an input spike adds ``w`` to the synaptic current.
      tau_syn: synaptic time constant (scalar, positive; may be traced).
      threshold: scalar or ``[n_out]``, positive (may be traced).
      tau_ratio: static ``tau_mem / tau_syn``, 2 or 1; anything else raises ``ValueError``.
      max_spikes: static number of output spikes kept per neuron (``1``: first spike only).
      t_max: only spikes at times ``<= t_max`` count (scalar, may be traced).
      dt: ``None`` (default): continuous time. A non-negative scalar (may be traced, so a
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

    Returns:
      ``[..., n_out, max_spikes]`` output spike times, ascending, ``inf``-padded; this is the
      next layer's ``t_in``.

    Raises:
      ValueError: unsupported ``tau_ratio``, mismatched shapes, non-positive ``tau_syn`` or
        ``threshold`` (when concrete), NaN input times, negative ``dt`` or unknown
        ``estimator``.
    """
    _validate(t_in, weights, tau_syn, threshold, tau_ratio, max_spikes, t_max)
    if dt is not None:
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        if jnp.ndim(dt) != 0:
            raise ValueError(f"dt must be a scalar, got shape {jnp.shape(dt)}")
        if _is_concrete(dt) and not float(dt) >= 0:
            raise ValueError(f"dt must be non-negative, got {float(dt)}")
    dtype = jnp.result_type(t_in, weights, float)
    t_in = jnp.asarray(t_in, dtype)
    w = jnp.asarray(weights, dtype)
    n_in, n_out = w.shape
    batch = t_in.shape[:-2]
    k_in = t_in.shape[-1]
    t_flat = t_in.reshape((-1, n_in * k_in))
    theta = jnp.broadcast_to(jnp.asarray(threshold, dtype), (n_out,))
    # under jax.shard_map: every operand varies along the axes along which any does (see _vma)
    t_flat, w, tau_syn, theta, t_max, dt_ = vary_like(tuple(jnp.asarray(a, dtype) for a in (
        t_flat, w, tau_syn, theta, t_max, 0.0 if dt is None else dt)))
    out = _spike_times(t_flat, w, tau_syn, theta, t_max, dt_, int(tau_ratio), int(k_in), int(max_spikes),
                       None if dt is None else estimator)
    return out.reshape(batch + (n_out, max_spikes))
