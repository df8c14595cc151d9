"""Static configuration of the LIF layer's event paths: which formulation runs, and its sizes.

The event-driven algorithm has several formulations that give the same spikes and gradients (bit
for bit where the arithmetic is the same, to rounding otherwise; the tests run each one against the
oracles). Which one runs is chosen from the shapes; :class:`Config` holds the thresholds of that
choice, so a caller (a benchmark, a test, a user tuning for a machine) can move them without
touching module state. It is hashable and static under ``jit``: a different config compiles a
different program.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Config:
    """Thresholds that choose among the equivalent event-path formulations of :func:`spike_times`.

    Attributes:
      compact_min: inputs with more spike slots (``n_in * k_in``) than this are compacted
        before sorting (:func:`jaxsnn.lif.events.sorted_events`).
      topk_max: up to this many slots, the sort of a sparse input is a partial sort (``top_k``).
      fire_compact_min: the spike loop runs on gathered blocks of neurons (those that hold a
        crossing) when ``batch * width`` is at least this (:func:`jaxsnn.lif.forward.fire`).
      fire_compact_share: at most ``1 / fire_compact_share`` of the blocks per round.
      fire_blocks: candidate block sizes; the first that divides the layer width is used.
      chunk_max_neurons: small layers (``batch * width`` at most this) walk their events in
        chunks forward (multi-spike, continuous time, several spikes per input neuron), if they
        are also narrow (``chunk_max_width``).
      chunk_max_width: the widest layer that walks its events in chunks forward. A sample's
        chunk stops at the first event after which any of its neurons crosses, so on a wide
        layer with many spikes the chunks shrink to an event or two and cost more than the
        plain walk (784-400-400-10 Fashion-MNIST network, batch 5, its 400 -> 400 layer: 22 ms
        in chunks of 16 against 10 ms one event per step; its 400 -> 10 layer: 1.0 against 1.2).
      chunk_max_neurons_bwd: the same limit for the backward pass.
      screen_block: with a positive value, the first spikes (``max_spikes = 1``, continuous time)
        of a layer with ``batch * width >= screen_min_neurons`` are found by the block screen of
        :mod:`jaxsnn.lif.screen`: blocks of this many events (64 is a good size), their start
        states by matrix products, walks only in the blocks where a crossing is possible. Off by
        default (0: the event walk): on 2 CPU cores it ran the forward pass of a 784->400 layer at
        batch 128 about 1.7x faster than the walk on distinct input times, but slower on
        inputs with few distinct times (pixel-coded images), which the walk takes one time per step.
      screen_min_neurons: the smallest ``batch * width`` that uses the block screen.
      screen_chunk: flagged blocks walked at once by the block screen.
      chunk_events: events per chunk, forward.
      chunk_events_bwd: events per chunk, backward.
    """

    compact_min: int = 1024
    topk_max: int = 4096
    fire_compact_min: int = 4096
    fire_compact_share: int = 16
    fire_blocks: tuple = (16, 8, 4)
    chunk_max_neurons: int = 2048
    chunk_max_width: int = 64
    screen_block: int = 0
    screen_min_neurons: int = 16384
    screen_chunk: int = 16384
    chunk_max_neurons_bwd: int = 2048
    chunk_events: int = 16
    chunk_events_bwd: int = 64


DEFAULT = Config()
