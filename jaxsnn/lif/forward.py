"""The forward event walk of a LIF layer: spike times, the slopes before them, the sorted events.

All output neurons of all samples walk the sorted input events in lock step
(``lax.while_loop``); at each event the state advances in closed form
(:mod:`jaxsnn.lif.closed_form`), the event's weight row is added, and the neurons that cross the
threshold before the next event fire (:func:`fire`). Formulations chosen by shape
(:class:`jaxsnn.lif.Config`): first spike only (:func:`forward_first`), chunks of events for
small, narrow layers (:func:`walk_chunked`), one event time per step otherwise (:func:`forward`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsnn._vma import vary_like
from jaxsnn.discretize import bin_end
from jaxsnn.lif.closed_form import advance, crossing, crossing_point, interval_span, span_between, span_to_next
from jaxsnn.lif.config import Config
from jaxsnn.lif.events import add_rows, event_cursor, sorted_events, source
from jaxsnn.lif.screen import forward_first_screened


class Params(NamedTuple):
    tau_syn: jax.Array
    tau_m: jax.Array
    theta: jax.Array  # [n_out]
    t_max: jax.Array
    dt: jax.Array = None  # clock step (discrete mode only)



class State(NamedTuple):
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


def detect(ratio, s: State, theta, K):
    active = s.count < K
    cross = crossing(ratio, s.u, s.c, s.span, theta, active)
    if s.end is None:
        return cross
    # on a clock, a neuron still above threshold after its reset fires again at once (in an
    # interval of non-zero length: the last event's interval waits for the tail)
    open_ = s.span < 1.0 if ratio == 2 else s.span > 0.0
    return (cross | (active & open_ & (s.u >= theta))) & ~s.blocked


def record(buf, pos, count, mask, *values):
    """``buf[pos, count] = values`` where ``mask``: one row scatter per neuron instead of a select
    over all ``K`` slots. ``buf`` is ``[B, n, K, R]``; ``pos`` holds each neuron's flat index
    ``b * n + j`` (distinct; an index ``>= B n`` is a padding neuron, never written)."""
    B, n, K, R = buf.shape
    idx = jnp.where(mask, pos * K + count, B * n * K + pos)  # masked-off: distinct, out of bounds, dropped
    rows = jnp.stack(values, axis=-1).reshape(-1, R)
    return buf.reshape(B * n * K, R).at[idx.reshape(-1)].set(rows, mode="drop", unique_indices=True).reshape(B, n, K, R)


def fire_loop(ratio, p: State, cross, pos, theta, tau_m, K, dt):
    """The spike loop of :func:`fire` on neurons of any shape (``theta`` and ``pos`` alike)."""

    def cond(carry):
        return jnp.any(carry[1])

    def body(carry):
        s, cross = carry
        ds, c_at, slope, rest = crossing_point(ratio, s.u, s.c, s.span, theta, tau_m)
        if dt is None:
            t_spike = s.anchor + ds
            s = State(
                u=jnp.where(cross, 0.0, s.u),
                c=jnp.where(cross, c_at, s.c),
                anchor=jnp.where(cross, t_spike, s.anchor),
                span=jnp.where(cross, rest, s.span),
                count=s.count + cross,
                rec=record(s.rec, pos, s.count, cross, t_spike, slope),
            )
            return s, detect(ratio, s, theta, K)
        imm = s.u >= theta
        t_star = s.anchor + jnp.where(imm, 0.0, ds)
        t_q = bin_end(t_star, dt)
        ok = cross & (t_q <= s.end)
        # state at t_q (no reset yet), then the soft reset
        to_q = span_between(ratio, t_q, s.anchor, tau_m)
        u_q, c_q = advance(ratio, s.u, s.c, to_q)
        rest = s.span / to_q if ratio == 2 else s.span - to_q
        s = State(
            u=jnp.where(ok, u_q - theta, s.u),
            c=jnp.where(ok, c_q, s.c),
            anchor=jnp.where(ok, t_q, s.anchor),
            span=jnp.where(ok, rest, s.span),
            count=s.count + ok,
            rec=record(s.rec, pos, s.count, ok, t_q, slope, t_star, imm.astype(s.rec.dtype)),
            end=s.end,
            blocked=s.blocked | (cross & ~ok),
        )
        return s, detect(ratio, s, theta, K)

    return jax.lax.while_loop(cond, body, vary_like((p, cross)))[0]


def fire(ratio, p: State, theta, tau_m, K, dt, config: Config):
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
    cross = detect(ratio, p, theta, K)
    S = next((b for b in config.fire_blocks if n % b == 0), 0)
    if B * n < config.fire_compact_min or not S:
        pos = jnp.arange(B * n, dtype=jnp.int32).reshape(B, n)
        return fire_loop(ratio, p, cross, pos, theta, tau_m, K, dt)
    nb = B * n // S
    cap = max(1, nb // config.fire_compact_share)
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
        q = State(rec=p.rec, **{k: take(getattr(p, k), fill.get(k, 0)) for k in names})
        theta_c = take(theta_b, 1)
        pos_c = jnp.where(real[:, None], idx[:, None] * S + lane, B * n + slot[:, None] * S + lane)
        q = fire_loop(ratio, q, detect(ratio, q, theta_c, K), pos_c, theta_c, tau_m, K, dt)
        put = lambda a, v: blocks(a).at[idx].set(v, mode="drop", unique_indices=True).reshape(B, n)  # noqa: E731
        p = p._replace(rec=q.rec, **{k: put(getattr(p, k), getattr(q, k)) for k in names})
        return p, hit.at[idx].set(0, mode="drop", unique_indices=True)

    return jax.lax.while_loop(cond, body, vary_like((p, hit)))[0]


def forward_first(t_flat, w, prm: Params, ratio, k_in, config: Config):
    """:func:`forward` for ``max_spikes = 1`` in continuous time.

    A neuron's first spike ends its part in the layer, so no inner loop is needed: the event loop
    only advances the state, adds the event's weights and runs the (cheap) crossing test; the
    state at the start of the interval where a neuron first crosses is recorded, and the crossing
    points (square root and logarithm, or Lambert W) are solved once, after the loop.
    """
    B, n = t_flat.shape[0], w.shape[1]
    times_e, order = sorted_events(t_flat, prm.t_max, k_in, config)
    te = times_e
    theta, tau_m = prm.theta, prm.tau_m
    zeros = jnp.zeros((B, n), w.dtype)
    empty = 1.0 if ratio == 2 else 0.0
    t_max = prm.t_max

    jump = tau_m * w  # an input spike's jump of c = tau_m i
    # inputs with one spike per neuron (encoded data) often tie: their events at one time are one
    # step, as in forward (the crossing test then runs once per distinct time, not per event)
    ties = k_in == 1
    p0, read, move = event_cursor(times_e, order, k_in, ties)

    def body(carry):
        # a neuron's (u, c) freeze at the step after which it first crosses (e_at >= 0 from then
        # on: the index of that step's last event); only the event index depends on the crossing
        # test, so XLA does not copy the test into the fusion of every carried array
        p, (u, c, span, e_at) = carry
        t_e = read(p)[0]
        here = jnp.isfinite(t_e)[:, None]
        u1, c1 = advance(ratio, u, c, span)
        p, c1 = add_rows(read, move, jump, p, here[:, 0], t_e, c1, ties)
        span1 = jnp.where(here, interval_span(ratio, t_e[:, None], read(p)[0][:, None], t_max, tau_m), empty)
        live = here & (e_at < 0)
        cross = crossing(ratio, u1, c1, span1, theta, live)
        last = jnp.broadcast_to(p - 1, (B,))[:, None]
        return p, (jnp.where(live, u1, u), jnp.where(live, c1, c), span1, jnp.where(cross, last, e_at))

    def cond(carry):
        # stop at the end of the events, or as soon as every neuron of every sample that still
        # has events has fired: later events cannot change a first spike
        p, (_, _, _, e_at) = carry
        waiting = jnp.any(e_at < 0, axis=1)
        return jnp.any(jnp.isfinite(read(p)[0]) & waiting)

    init = (zeros, zeros, jnp.full((B, 1), empty, w.dtype), jnp.full((B, n), -1, jnp.int32))
    _, (u_at, c_at, _, e_at) = jax.lax.while_loop(cond, body, vary_like((p0, init), t_flat, w))
    fired = e_at >= 0
    e_at = jnp.maximum(e_at, 0)
    anchor = jnp.take_along_axis(te, e_at, axis=1)
    nxt = jnp.take_along_axis(te, e_at + 1, axis=1)
    span = interval_span(ratio, anchor, nxt, t_max, tau_m)
    ds, _, slope, _ = crossing_point(ratio, u_at, c_at, span, theta, tau_m)
    times = jnp.where(fired, anchor + ds, jnp.inf)[..., None]
    slopes = jnp.where(fired, slope, 0.0)[..., None]
    return times, slopes, times_e, order, None, None



def forward(t_flat, w, prm: Params, ratio, k_in, K, config: Config):
    """Spike times ``[B, n, K]``, slopes before each spike, and the sorted events."""
    if K == 1 and prm.dt is None:
        B, m = t_flat.shape
        if config.screen_block and B * w.shape[1] >= config.screen_min_neurons and m >= 2 * config.screen_block:
            return forward_first_screened(t_flat, w, prm, ratio, k_in, config)
        return forward_first(t_flat, w, prm, ratio, k_in, config)
    B = t_flat.shape[0]
    n = w.shape[1]
    dtype = w.dtype
    times_e, order = sorted_events(t_flat, prm.t_max, k_in, config)
    theta, tau_m = prm.theta, prm.tau_m
    empty = 1.0 if ratio == 2 else 0.0
    zeros = jnp.zeros((B, n), dtype)
    dt = prm.dt
    s0 = State(
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
    if dt is None and not ties and B * n <= config.chunk_max_neurons and n <= config.chunk_max_width:
        s = walk_chunked(ratio, s0, times_e, order, k_in, jump, theta, tau_m, K, config)
        return finish(ratio, s, prm, times_e, order, K, config)
    p0, read, move = event_cursor(times_e, order, k_in, ties)

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
        u, c = advance(ratio, s.u, s.c, s.span)
        p, c = add_rows(read, move, jump, p, here[:, 0], t_e[:, 0], c, ties)
        t_next = read(p)[0][:, None]
        # the next interval ends at the next event; the last one waits for the tail
        span = span_to_next(ratio, t_e, t_next, tau_m)
        s = s._replace(
            u=jnp.where(here, u, s.u), c=jnp.where(here, c, s.c),
            anchor=jnp.where(here, jnp.broadcast_to(t_e, (B, n)), s.anchor),
            span=jnp.where(here, jnp.broadcast_to(span, (B, n)), s.span),
        )
        if dt is not None:
            end = jnp.where(jnp.isfinite(t_next), t_next, prm.t_max)
            s = s._replace(end=jnp.where(here, jnp.broadcast_to(end, (B, n)), s.end),
                           blocked=jnp.where(here, False, s.blocked))
        return p, fire(ratio, s, theta, tau_m, K, dt, config)

    _, s = jax.lax.while_loop(cond, body, vary_like((p0, s0), t_flat, w))
    return finish(ratio, s, prm, times_e, order, K, config)


def finish(ratio, s: State, prm: Params, times_e, order, K, config: Config):
    """After the last event: each neuron runs on from its anchor (last event or last spike) to
    ``t_max``; returns :func:`forward`'s outputs."""
    B, n = s.u.shape
    empty = 1.0 if ratio == 2 else 0.0
    tail = jnp.where(jnp.isfinite(prm.t_max), span_between(ratio, prm.t_max, s.anchor, prm.tau_m),
                     0.0 if ratio == 2 else jnp.inf)
    has_events = jnp.isfinite(times_e[:, :1])
    s = s._replace(span=jnp.where(has_events, tail, empty))
    if prm.dt is not None:
        s = s._replace(end=jnp.full((B, n), prm.t_max, s.u.dtype), blocked=~jnp.broadcast_to(has_events, (B, n)))
    s = fire(ratio, s, prm.theta, prm.tau_m, K, prm.dt, config)
    star, imm = (None, None) if prm.dt is None else (s.rec[..., 2], s.rec[..., 3] > 0)
    return s.rec[..., 0], s.rec[..., 1], times_e, order, star, imm


def walk_chunked(ratio, s: State, times_e, order, k_in, jump, theta, tau_m, K, config: Config):
    """The event loop of :func:`forward` (continuous time, one event per step) by chunks.

    Each sample has a pointer to its next event. A round takes the next ``C`` events of every
    sample and runs the state through them as if no neuron fired (unrolled; the same arithmetic
    as one event per step), finds the first event after which some neuron of the sample crosses
    before the next, and applies the events up to it (all ``C`` if none crosses); then the spike
    loop fires. A sample without a crossing moves ``C`` events per round, one with a crossing up
    to the crossing: the rounds are about the spiking intervals plus the events over ``C``.
    """
    B, n = s.u.shape
    C = config.chunk_events
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
            u1, c1 = advance(ratio, u, c, span)
            span1 = span_to_next(ratio, t_e, t_next, tau_m)
            u, c = jnp.where(here, u1, u), jnp.where(here, c1 + jc[:, j], c)
            anchor = jnp.where(here, t_e, anchor)
            span = jnp.where(here, span1, span)
            crossed.append(jnp.any(crossing(ratio, u, c, span, theta, active & here), axis=1))
        return s._replace(u=u, c=c, anchor=anchor, span=span), jnp.stack(crossed, axis=1)  # [B, C]

    def body(carry):
        p, s = carry
        idx = jnp.minimum(p[:, None] + steps, E)
        tc = jnp.take_along_axis(times_e, idx, axis=1)  # [B, C + 1]: the chunk and the event after it
        jc = jump[source(jnp.take_along_axis(order, idx[:, :C], axis=1), k_in)]  # [B, C, n]
        n_fin = jnp.sum(jnp.isfinite(tc[:, :C]), axis=1, dtype=jnp.int32)
        _, crossed = run(s, tc, jc, jnp.full((B,), C, jnp.int32))
        first = jnp.where(jnp.any(crossed, axis=1), jnp.argmax(crossed, axis=1), C - 1).astype(jnp.int32)
        last = jnp.minimum(first, n_fin - 1)  # -1: no event left
        s, _ = run(s, tc, jc, last)
        return p + last + 1, fire(ratio, s, theta, tau_m, K, None, config)

    return jax.lax.while_loop(cond, body, vary_like((jnp.zeros((B,), jnp.int32), s), times_e, jump, theta))[1]
