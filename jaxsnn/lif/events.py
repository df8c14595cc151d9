"""The input events of a LIF layer: sorting the input spikes of each sample, and reading them.

A layer's input ``t_flat [B, n_in * k_in]`` (each input neuron's ``k_in`` slots, sorted,
``inf``-padded) becomes, per sample, the events in time order ``(times [B, E + 1], order [B, E + 1])``
with ``order`` the flat input slot of each event. The forward walk and the backward walk read them
through a cursor (:func:`event_cursor`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxsnn._internal import argsort
from jaxsnn._vma import vary_like
from jaxsnn.lif.config import DEFAULT, Config


def sort_capped(t_flat, t_max, counts, k_in, cap):
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
        order = argsort(t, axis=1).astype(jnp.int32)
        return pad_events(jnp.take_along_axis(t, order, axis=1), order, m)
    ends = jnp.cumsum(counts, axis=1)
    p = vary_like(jnp.arange(cap, dtype=jnp.int32), counts)  # jax.shard_map: a search key like the data
    j = jax.vmap(lambda e: jnp.searchsorted(e, p, side="right"))(ends).astype(jnp.int32)
    j = jnp.minimum(j, m // k_in - 1)
    start = jnp.take_along_axis(ends - counts, j, axis=1)
    src = j * k_in + jnp.clip(p[None, :] - start, 0, k_in - 1)
    valid = p[None, :] < ends[:, -1:]
    comp_t = jnp.where(valid, jnp.take_along_axis(t_flat, src, axis=1), jnp.inf)
    o = argsort(comp_t, axis=1)
    times = jnp.take_along_axis(comp_t, o, axis=1)
    order = jnp.where(jnp.isfinite(times), jnp.take_along_axis(src, o, axis=1), 0)
    return pad_events(times, order, m)


def pad_events(times, order, m):
    """Sorted events ``[B, cap]`` padded to ``[B, m + 1]`` (``inf``, index 0): every event then has a
    successor. One write of the padded arrays (for a sparse layer input ``m`` is large)."""
    pad = ((0, 0), (0, m + 1 - times.shape[1]))
    return jnp.pad(times, pad, constant_values=jnp.inf), jnp.pad(order, pad)


def sort_topk(t_flat, t_max, counts, k_in, cap):
    """:func:`sort_capped` by a partial sort: the ``cap`` earliest times with their slots
    (``lax.top_k`` is stable: equal times keep the order of their slots)."""
    m = t_flat.shape[1]
    neg, order = jax.lax.top_k(-jnp.where(t_flat <= t_max, t_flat, jnp.inf), cap)
    times = -neg
    order = jnp.where(jnp.isfinite(times), order, 0).astype(jnp.int32)
    return pad_events(times, order, m)


def sorted_events(t_flat, t_max, k_in, config: Config = DEFAULT):
    """Input spikes of each sample in time order: ``(time [B, E+1], order [B, E+1])``, ``order``
    being the flat input slot of each sorted event (its input neuron is ``order // k_in``, see
    :func:`source`), ``E = n_in * k_in``.

    Spikes after ``t_max`` are dropped (``inf``). The events are padded with ``inf`` (slot 0)
    to ``E + 1``, so that every event has a successor. Nothing downstream passes over all
    ``E + 1`` columns but the padding. Sparse inputs (e.g. TTFS-coded images with silent
    pixels, or a multi-spike hidden layer, ``n_in x k_in`` slots, mostly empty) are sorted on the
    largest number of spikes in the batch, rounded up to the next size of a ladder: up to
    ``config.topk_max`` slots a partial sort (``top_k``) at sizes 128, 192, 256, 384, ...; wider
    inputs are compacted to ``config.compact_min`` (1024), 1536, 2048, 3072, ... slots first
    (``lax.switch`` over the sizes;
    under ``vmap`` with a batched ``t_max`` every size is evaluated).
    """
    B, m = t_flat.shape
    if m <= config.topk_max:
        ladder = [c for b in (128, 256, 512, 1024, 2048) for c in (b, b + b // 2)]
        sorts = [functools.partial(sort_topk, k_in=k_in, cap=c) for c in ladder if c < m]
        caps = [c for c in ladder if c < m]
    else:
        caps, c = [], config.compact_min
        while c < m:
            caps += [c, c + c // 2]
            c *= 2
        caps = [cp for cp in caps if cp < m]
        sorts = [functools.partial(sort_capped, k_in=k_in, cap=cp) for cp in caps]
    caps.append(m)
    sorts.append(functools.partial(sort_capped, k_in=k_in, cap=m))
    # spikes that count, per input neuron (one fused pass over the input)
    counts = jnp.sum((jnp.isfinite(t_flat) & (t_flat <= t_max)).reshape(B, m // k_in, k_in), axis=-1, dtype=jnp.int32)
    if len(caps) == 1:
        return sorts[0](t_flat, t_max, counts)
    branch = jnp.sum(jnp.asarray(caps[:-1]) < jnp.max(jnp.sum(counts, axis=1)))
    sorts = [lambda *a, sort=sort: vary_like(sort(*a), *a) for sort in sorts]  # jax.shard_map: same types
    return jax.lax.switch(branch, sorts, t_flat, t_max, counts)


def source(order, k_in):
    """Input neuron of each event slot."""
    return order // k_in if k_in > 1 else order


def event_cursor(times_e, order, k_in, ties):
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
        return (jnp.zeros(times_e.shape[:1], jnp.int32), lambda p: (times_e[rows, p], source(order[rows, p], k_in)),
                lambda p, m: p + m)
    times_t, order_t = times_e.T, order.T
    return jnp.int32(0), lambda p: (times_t[p], source(order_t[p], k_in)), lambda p, m: p + 1


def add_rows(read, move, jump, p, here, t_e, c, ties=True):
    """Add the rows ``jump[src]`` of every event of each sample at time ``t_e`` to ``c``.

    ``p`` points at each sample's first event at ``t_e`` (``here``: the sample has one; see
    :func:`event_cursor`); returns the pointer moved past those events, and ``c``. The first
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



def unsort(dt_sorted, times_e, order):
    """Input-time gradients from event order ``[B, E]`` back to the input slots ``[B, E]``: each
    input spike (finite, ``<= t_max``) is one event, so a scatter to distinct slots, the padding
    events dropped (twice as fast as a scatter-add of every padded event)."""
    B, E = dt_sorted.shape
    slots = jnp.where(jnp.isfinite(times_e[:, :-1]), order[:, :-1], E)
    return jnp.zeros_like(dt_sorted).at[jnp.arange(B)[:, None], slots].set(dt_sorted, mode="drop", unique_indices=True)
