r"""The closed forms of the CUBA LIF neuron between two events (no module state, no loops).

Anchored at ``t0`` with state ``(u0, c0 = tau_m i0)`` and ``s = t - t0`` (see :mod:`jaxsnn.lif`):

* ``ratio = 2`` (``tau_m = 2 tau_s``): with ``x = exp(-s / tau_m)``, ``u = (u0 + c0) x - c0 x^2``;
  an interval's *span* is ``x`` at its end (1 = empty).
* ``ratio = 1`` (``tau_m = tau_s = tau``): with ``y = s / tau``, ``u = (u0 + c0 y) e^{-y}``; the span
  is ``y`` at the end (0 = empty, ``inf`` = no end).

Every function takes the static ``ratio`` first and works elementwise on arrays of any shape.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from jaxsnn.lambertw import lambertw

INV_E = math.exp(-1.0)

def crossing(ratio, u, c, span, theta, active):
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


def crossing_point(ratio, u, c, span, theta, tau_m):
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
    arg = jnp.maximum(-(theta / cs) * jnp.exp(-jnp.minimum(r, 1.0)), -INV_E)
    y = jnp.clip(-lambertw(arg) - r, 0.0, span)
    c_at = c * jnp.exp(-y)
    return tau_m * y, c_at, (c_at - theta) / tau_m, span - y


def advance(ratio, u, c, span):
    """State at the end of the span (no crossing inside it)."""
    if ratio == 2:
        x = span
        return (u + c) * x - c * x * x, c * x * x
    y = jnp.where(jnp.isfinite(span), span, 0.0)
    e = jnp.exp(-y)
    return (u + c * y) * e, c * e


def span_between(ratio, t_end, t_anchor, tau_m):
    d = t_end - t_anchor
    if ratio == 2:
        return jnp.exp(-d / tau_m)
    return d / tau_m


def interval_span(ratio, t_e, t_next, t_max, tau_m):
    """The span of the interval from the event ``t_e`` to ``min(t_next, t_max)`` (``inf``: the interval
    never ends; its span is then 0 for ``ratio = 2`` and ``inf`` for ``ratio = 1``)."""
    end = jnp.minimum(t_next, t_max)
    fin = jnp.isfinite(end)
    d = jnp.where(fin, end, t_e) - t_e
    if ratio == 2:
        return jnp.where(fin, jnp.exp(-d / tau_m), 0.0)
    return jnp.where(fin, d / tau_m, jnp.inf)


def span_to_next(ratio, t_e, t_next, tau_m):
    """The span of the interval from the event ``t_e`` to the next one ``t_next`` (``inf``: none,
    the interval is left empty until the tail)."""
    empty = 1.0 if ratio == 2 else 0.0
    fin = jnp.isfinite(t_next)
    return jnp.where(fin, span_between(ratio, jnp.where(fin, t_next, 0.0), t_e, tau_m), empty)



def kernel_terms(ratio, d, gap, q1, q2, tau_m):
    """An event's terms from the suffix sums ``(q1, q2)`` of the first spike after it, at ``gap``
    before that spike (``d = exp(-gap/tau_m)``): ``(dF/dw, dF/dt_in / w)`` summed over the
    neuron's later spikes."""
    if ratio == 2:
        p_m, p_s = d * q1, d * d * q2  # e^{-s/tau_s} = (e^{-s/tau_m})^2
        g_w = tau_m * (p_m - p_s)  # kappa(s) = tau_m (e^{-s/tau_m} - e^{-s/tau_s})
        return g_w, p_m - 2.0 * p_s  # -kappa'(s) / w
    p_, q = d * q1, d * (q2 + gap * q1)
    return q, q / tau_m - p_  # kappa(s) = s e^{-s/tau}; -kappa'(s) / w = -(1 - s/tau) e^{-s/tau}
