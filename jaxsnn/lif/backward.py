"""The backward pass of a LIF layer: adjoints over each neuron's spikes, then one walk over the events.

Implicit function theorem (see :mod:`jaxsnn.lif`): :func:`spike_adjoints` runs the adjoint
recursion over each neuron's spikes (latest first) and returns the suffix sums the event walk
needs as a spike table; :func:`event_grads` (and its first-spike and chunked formulations) walks
the input events once and accumulates the weight gradient and the input-time gradient
``g_t`` (the cotangent of each input spike time).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxsnn._vma import vary_like
from jaxsnn.discretize import estimator_slope
from jaxsnn.lif.closed_form import kernel_terms
from jaxsnn.lif.events import event_cursor, source, unsort
from jaxsnn.lif.forward import Params


def spike_adjoints(ratio, t_out, slopes, g, prm: Params):
    """Per spike: ``nu_m = -lambda_m / du/dt`` and the suffix sums the event pass needs.

    The suffix sums are, for ``r = 2``, ``psi1_k = sum_{m>=k} nu_m e^{-(t_m-t_k)/tau_m}`` and
    ``psi2_k`` the same with ``tau_s``; for ``r = 1`` ``psi2_k = sum nu_m (t_m - t_k) e^{..}``.
    Returns them as the event walk's spike table (:func:`spike_table`), written slot by slot.
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
        return p1, p2, t, v, jax.lax.dynamic_update_index_in_dim(table, table_rows(t_k, p1, p2), k, 0)

    zero = jnp.zeros(tk.shape[1:], t_out.dtype)
    # the slots past the last used one stay empty rows (time inf)
    empty = jnp.asarray([jnp.inf, 0.0, 0.0, 0.0], t_out.dtype)
    table = jnp.broadcast_to(empty, (tk.shape[0] + 1,) + tk.shape[1:] + (4,))
    init = vary_like((zero, zero, zero, jnp.zeros(zero.shape, bool), table), t_out, g, prm)
    return jax.lax.fori_loop(0, used, step, init)[4]


def table_rows(t, p1, p2):
    """Rows (time, psi1, psi2, padding) of the spike table; ``inf`` time where there is no spike."""
    return jnp.stack([jnp.where(jnp.isfinite(t), t, jnp.inf), p1, p2, jnp.zeros_like(p1)], axis=-1)


def spike_table(t_eval, psi1, psi2):
    """The event walk's spike table ``[K+1, B, n, 4]`` (slot-major) from ``[K, B, n]`` arrays: per
    slot a row (time, psi1, psi2, padding), ``inf`` time where there is no spike, and after the
    last slot an empty one (``inf``, zeros). A pointer fetch is then one row gather (several times
    cheaper on CPU than three element gathers); slot-major, neighbouring neurons' pointers (mostly
    at similar slots) read neighbouring rows."""
    pad = lambda a, v: jnp.pad(a, ((0, 1), (0, 0), (0, 0)), constant_values=v)  # noqa: E731
    return table_rows(pad(t_eval, jnp.inf), pad(psi1, 0.0), pad(psi2, 0.0))


def spike_adjoints_discrete(ratio, t_q, star, imm, slopes, g, prm: Params, estimator):
    """:func:`spike_adjoints` for a clocked layer; also returns each spike's term of the
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


def add_event_terms(read, move, w, p, here, t_e, g_w, g_t, dw, d_tin, ties, with_t_in):
    """Add the terms ``g_w``, ``g_t`` (``[B, n]``) of each sample's events at time ``t_e`` (``[B]``):
    ``dw[src] += g_w``, and ``d_tin[b, p] = sum_j w[src, j] g_t[b, j]`` at each event's sorted
    position ``p``. ``p`` (see :func:`jaxsnn.lif.events.event_cursor`) points at each sample's
    first event at ``t_e`` (``here``: the sample has one); with ``ties`` the sample's further
    events at that time share the terms (one row each). Returns the pointer moved past them."""
    B, E = d_tin.shape
    rows = jnp.arange(B)

    def add(p, m, dw, d_tin):
        src = read(p)[1]
        dw = dw.at[src].add(jnp.where(m[:, None], g_w, 0.0))
        if with_t_in:  # a sample without an event there writes out of bounds: dropped
            d_tin = d_tin.at[rows, jnp.where(m, p, E)].set(jnp.sum(w[src] * g_t, axis=1), mode="drop")
        return dw, d_tin

    dw, d_tin = add(p, here, dw, d_tin)
    p = move(p, here)
    if not ties:
        return p, dw, d_tin

    def same(p):
        return here & (read(p)[0] == t_e)

    def body(c):
        p, dw, d_tin = c
        m = same(p)
        return (move(p, m),) + add(p, m, dw, d_tin)

    return jax.lax.while_loop(lambda c: jnp.any(same(c[0])), body, vary_like((p, dw, d_tin)))


def event_grads_first(ratio, w, prm, times_e, order, k_in, t_out, nu, with_t_in=True):
    """:func:`event_grads` for one spike per neuron (suffix sums ``psi1 = nu``, ``psi2 = nu``
    for ``r = 2`` and 0 for ``r = 1``): every event before a neuron's spike contributes, and
    the loop body needs no inner loop over spikes. ``t_out`` and ``nu`` are ``[B, n]``. Inputs
    with one spike per neuron (``k_in = 1``) take a sample's events at one time as one step:
    the kernel terms are computed once per time and only the rows are added one by one."""
    B, n = t_out.shape
    E = times_e.shape[1] - 1
    tau_m = prm.tau_m
    tk, q = t_out, nu
    ties = k_in == 1
    p0, read, move = event_cursor(times_e, order, k_in, ties)

    def body(carry):
        p, dw, d_tin = carry
        t_e = read(p)[0]
        here = jnp.isfinite(t_e)
        live = (tk > t_e[:, None]) & jnp.isfinite(tk)  # spikes at t_e were caused before the event
        gap = jnp.where(live, tk - t_e[:, None], 0.0)
        d = jnp.where(live, jnp.exp(-gap / tau_m), 0.0)
        p_m = d * q
        if ratio == 2:  # kappa(s) = tau_m (e^{-s/tau_m} - e^{-s/tau_s}), e^{-s/tau_s} = d^2
            g_w, g_t = tau_m * (p_m - d * p_m), p_m - 2.0 * d * p_m
        else:  # kappa(s) = s e^{-s/tau}
            g_w, g_t = gap * p_m, gap * p_m / tau_m - p_m
        p, dw, d_tin = add_event_terms(read, move, w, p, here, t_e, g_w, g_t, dw, d_tin, ties, with_t_in)
        return p, dw, d_tin

    # an event at or after a sample's last spike contributes nothing: stop when no sample has
    # an event before its last spike (inputs are sorted, so the rest of the events are later)
    last = jnp.max(jnp.where(jnp.isfinite(tk), tk, -jnp.inf), axis=1)

    def cond(carry):
        return jnp.any(read(carry[0])[0] < last)

    init = (p0, jnp.zeros_like(w), jnp.zeros((B, E), w.dtype))
    _, dw, d_tin = jax.lax.while_loop(cond, body, vary_like(init, w, prm, times_e))
    return dw, unsort(d_tin, times_e, order) if with_t_in else None


def event_grads(ratio, w, prm, times_e, order, k_in, table, with_t_in=True, ties=False):
    """Walk the events once; at each, the suffix sums over the spikes after it give
    ``dF/dw`` (summed into ``dw``) and ``dF/dt_in`` for that event.

    A pointer to each sample's next event (:func:`event_cursor`), and one per neuron to its
    first spike after that event, with that spike's time and suffix sums carried along, so the
    ``[K, B, n]`` arrays are only read (a gather) when some pointer moves. With ``ties``, a
    sample's events at one time are one step: they share the kernel values, and only their
    rows are added one by one. Without ``with_t_in`` the input-time gradients are skipped (zeros).
    ``table``: the spikes' times and suffix sums, ``[K+1, B, n, 4]`` (:func:`spike_table`).
    """
    K1, B, n, _ = table.shape
    E = times_e.shape[1] - 1
    tau_m = prm.tau_m
    first = table[0]
    table = table.reshape(K1 * B * n, 4)  # the empty slot needs no bounds check
    base = jnp.arange(B * n, dtype=jnp.int32).reshape(B, n)
    dims = jax.lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0,))
    p0, read, move = event_cursor(times_e, order, k_in, ties)

    def fetch(k):  # k <= K: a pointer only moves past finite times
        idx = (k * (B * n) + base).reshape(-1, 1)
        return jax.lax.gather(table, idx, dims, (1, 4), mode="promise_in_bounds").reshape(B, n, 4)

    def cond(carry):
        return jnp.any(jnp.isfinite(read(carry[0])[0]))

    def body(carry):
        p, k, cur, dw, d_tin = carry
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
        g_w, g_t = kernel_terms(ratio, d, gap, q1, q2, tau_m)
        here = jnp.isfinite(t_e[:, 0])
        p, dw, d_tin = add_event_terms(read, move, w, p, here, t_e[:, 0], g_w, g_t, dw, d_tin, ties, with_t_in)
        return p, k, cur, dw, d_tin

    k0 = jnp.zeros((B, n), jnp.int32)
    init = (p0, k0, first, jnp.zeros_like(w), jnp.zeros((B, E), w.dtype))
    _, _, _, dw, d_tin_sorted = jax.lax.while_loop(cond, body, vary_like(init, w, prm, times_e))
    return dw, unsort(d_tin_sorted, times_e, order) if with_t_in else None


def event_grads_chunked(ratio, w, prm, times_e, order, k_in, table, with_t_in=True, chunk=64):
    """:func:`event_grads` for narrow layers: the events in chunks of ``C``, each chunk at once.

    For every event of the chunk and every neuron, the first spike after the event is found by
    a binary search over the neuron's spike slots (the table's times are ascending, ``inf``
    after the last spike), and its suffix sums give the event's terms exactly as in the walk;
    the weight rows of the whole chunk are one scatter-add, and the input-time gradients go
    straight to the input slots. No pointers carried from event to event, so no inner loop.
    """
    K1, B, n, _ = table.shape
    E = times_e.shape[1] - 1  # the last column is padding (inf): reads past the end land there
    C = chunk
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
        s, dw, d_tin = carry
        idx = jnp.minimum(s + steps, E)
        t_e, o_e = times_e[:, idx], order[:, idx]  # [B, C]
        src = source(o_e, k_in)
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
        g_w, g_t = kernel_terms(ratio, d, gap, q1, q2, tau_m)
        dw = dw.at[src.reshape(-1)].add(g_w.reshape(B * C, n))  # padding events add zeros
        if with_t_in:
            slots = jnp.where(here, o_e, E)  # padding: out of bounds, dropped
            d_tin = d_tin.at[rows, slots].set(jnp.sum(w[src] * g_t, axis=-1), mode="drop", unique_indices=True)
        return s + C, dw, d_tin

    init = (jnp.int32(0), jnp.zeros_like(w), jnp.zeros((B, E) if with_t_in else (0, 0), w.dtype))
    _, dw, d_tin = jax.lax.while_loop(cond, body, vary_like(init, w, prm, times_e))
    return dw, d_tin if with_t_in else None
