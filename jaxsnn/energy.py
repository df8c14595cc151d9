r"""Energy per inference of a spiking network and of the ANN of the same topology: arithmetic
and memory accesses, counted from what a network actually does.

After Dampfhoffer, Mesquida, Valentian & Anghel, *Are SNNs really more energy-efficient than
ANNs? An in-depth hardware-aware study*, IEEE TETCI 2022, as used by Fono et al., *Sustainable
AI: Mathematical Foundations of Spiking Neural Networks*, arXiv 2503.02013 (Figure 3). Energy is
compute plus memory traffic, and memory is split into a **local** buffer next to the compute
units and a **distant** on-chip SRAM. All constants are in picojoules (:class:`EnergyCosts`).

Notation for one layer (:class:`Layer`): ``n_in`` inputs, ``n_out`` neurons, ``S`` synapses
(connections: ``n_out x fan-in``, a convolution counts every output position), ``W`` distinct
weights, fan-out ``S / n_in``.

**ANN** (one inference, ReLU activations, one MAC per synapse). Every MAC reads its partial
sum from the local buffer and writes it back (:math:`2E_l`), exactly as a synaptic event of the
SNN reads and writes its membrane potential: the two networks' accumulators are counted alike.

* ``"base"`` accelerator, no data reuse: every MAC reads its weight and its input from
  distant memory, every output is written there once:
  :math:`E = S\,(E_{mac} + 2E_d + 2E_l) + n_{out} E_d`.
* ``"opt"`` accelerator, maximal reuse (the upper bound on ANN efficiency of Dampfhoffer et al.):
  every weight, input and output crosses the distant memory once and every MAC reads its two
  operands from the local buffer:
  :math:`E = S\,(E_{mac} + 4E_l) + (W + n_{in} + n_{out}) E_d`.

**SNN** (event-driven, ``T`` time steps, ``N_in`` input spikes in the inference, hence
:math:`N_{in}\,S/n_{in}` synaptic events):

* per synaptic event: one accumulate (:math:`E_{add}`), its weight read from distant memory
  (sparse events leave no reuse), the target's membrane potential read and written locally:
  :math:`E_{add} + E_d + 2E_l`;
* per neuron and time step: the leak and the threshold test (:math:`E_{mul} + E_{add}`) with the
  membrane read and written locally: :math:`E_{mul} + E_{add} + 2E_l` (``neuron_updates``:
  ``T`` for DLIF; 0 for event-driven exact-time neurons, whose state is only touched by events);
* per spike: written to distant memory by its layer and read back by the next, :math:`2E_d`.

Memory access energy grows with the size of the SRAM. Horowitz (*Computing's energy problem*,
ISSCC 2014, 45 nm) gives 10, 20 and 100 pJ per 64-bit read for 8 KiB, 32 KiB and 1 MiB
caches: 5, 10 and 50 pJ per 32-bit word, close to :math:`5\,\mathrm{pJ}\sqrt{S/8\,\mathrm{KiB}}`
(:meth:`EnergyCosts.sram`). The same table gives 3.7 pJ (multiply) and 0.9 pJ (add) for 32-bit
floating point, so 4.6 pJ per MAC. Defaults: an 8 KiB local buffer (5 pJ) and a 1 MiB distant
SRAM (56.6 pJ); every constant can be overridden.

Counting is pure ``jax.numpy``: spike counts may carry batch axes and the functions run under
``jit`` and ``vmap``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = ["EnergyCosts", "Layer", "dense", "conv2d", "alexnet", "synapses", "ann_energy", "snn_energy",
           "synaptic_events", "spikes_per_synapse", "spike_counts", "efficiency"]


@dataclasses.dataclass(frozen=True)
class EnergyCosts:
    """Energy per operation and per 32-bit memory access, in pJ (defaults: Horowitz 2014, 45 nm).

    Attributes:
      mul, add: 32-bit floating-point multiply and add; a MAC costs ``mul + add``.
      local_kib, distant_kib: sizes of the local buffer and the distant SRAM.
      local, distant: access energies; ``None`` (default) takes :meth:`sram` of the sizes.
    """

    mul: float = 3.7
    add: float = 0.9
    local_kib: float = 8.0
    distant_kib: float = 1024.0
    local: float | None = None
    distant: float | None = None

    @staticmethod
    def sram(kib: float) -> float:
        """Energy of one 32-bit access to an SRAM of ``kib`` KiB: ``5 pJ * sqrt(kib / 8)``."""
        if not kib > 0:
            raise ValueError(f"SRAM size must be positive, got {kib}")
        return 5.0 * math.sqrt(kib / 8.0)

    @property
    def mac(self) -> float:
        return self.mul + self.add

    @property
    def e_local(self) -> float:
        return self.sram(self.local_kib) if self.local is None else self.local

    @property
    def e_distant(self) -> float:
        return self.sram(self.distant_kib) if self.distant is None else self.distant


class Layer(NamedTuple):
    """Shape of one layer for counting: ``n_in`` inputs, ``n_out`` neurons, ``synapses``
    connections (``n_out x`` fan-in), ``params`` distinct weights."""

    name: str
    n_in: int
    n_out: int
    synapses: int
    params: int

    @property
    def fan_out(self) -> float:
        """Mean number of synapses driven by one input (``synapses / n_in``)."""
        return self.synapses / self.n_in


def dense(n_in: int, n_out: int, name: str = "dense") -> Layer:
    """A fully connected layer: ``n_in x n_out`` synapses and weights."""
    for k, v in (("n_in", n_in), ("n_out", n_out)):
        if not (isinstance(v, int) and v > 0):
            raise ValueError(f"{k} must be a positive int, got {v!r}")
    return Layer(name, n_in, n_out, n_in * n_out, n_in * n_out)


def _out_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def conv2d(height: int, width: int, c_in: int, c_out: int, kernel: int, *, stride: int = 1, padding: int = 0,
           name: str = "conv") -> Layer:
    """A 2-D convolution on a ``height x width x c_in`` input.

    Synapses count only the taps that fall on the input (zero padding is not a synapse): for
    every output position, ``c_in x c_out x`` the number of kernel offsets inside the image.
    """
    for k, v in (("height", height), ("width", width), ("c_in", c_in), ("c_out", c_out), ("kernel", kernel),
                 ("stride", stride)):
        if not (isinstance(v, int) and v > 0):
            raise ValueError(f"{k} must be a positive int, got {v!r}")
    oh, ow = _out_size(height, kernel, stride, padding), _out_size(width, kernel, stride, padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {kernel} does not fit a {height}x{width} input with padding {padding}")

    def taps(size, out):  # sum over output positions of the kernel offsets inside [0, size)
        total = 0
        for o in range(out):
            start = o * stride - padding
            total += min(size, start + kernel) - max(0, start)
        return total

    syn = taps(height, oh) * taps(width, ow) * c_in * c_out
    return Layer(name, height * width * c_in, oh * ow * c_out, syn, kernel * kernel * c_in * c_out)


def alexnet() -> list[Layer]:
    """The AlexNet topology (Krizhevsky et al. 2012, single-tower): 5 convolutions and 3 dense
    layers on a 227x227x3 image; max-pooling (3x3, stride 2) after conv 1, 2 and 5 only changes
    the next layer's input size (its own energy is not counted)."""
    return [
        conv2d(227, 227, 3, 96, 11, stride=4, name="conv1"),  # -> 55x55x96, pool -> 27x27
        conv2d(27, 27, 96, 256, 5, padding=2, name="conv2"),  # -> 27x27x256, pool -> 13x13
        conv2d(13, 13, 256, 384, 3, padding=1, name="conv3"),
        conv2d(13, 13, 384, 384, 3, padding=1, name="conv4"),
        conv2d(13, 13, 384, 256, 3, padding=1, name="conv5"),  # -> 13x13x256, pool -> 6x6
        dense(6 * 6 * 256, 4096, name="fc6"),
        dense(4096, 4096, name="fc7"),
        dense(4096, 1000, name="fc8"),
    ]


def synapses(layers: Sequence[Layer]) -> int:
    """Total number of synapses."""
    return sum(l.synapses for l in layers)


def _check_layers(layers):
    if not layers or not all(isinstance(l, Layer) for l in layers):
        raise ValueError("layers must be a non-empty sequence of jaxsnn.energy.Layer")
    for l in layers:
        for field in ("n_in", "n_out", "synapses", "params"):
            v = getattr(l, field)
            if not (isinstance(v, (int, np.integer)) and v > 0):
                raise ValueError(f"layer {l.name!r}: {field} must be a positive int, got {v!r}")
        if l.synapses > l.n_in * l.n_out:
            raise ValueError(f"layer {l.name!r}: synapses ({l.synapses}) exceed n_in x n_out ({l.n_in * l.n_out})")


def _check_counts(x, neurons, max_spikes, name):
    """Spike counts ``x [..., L]`` (or ``[...]`` with one ``neurons``) must lie in
    ``[0, neurons x max_spikes]``; checked when the values are concrete (under ``jit`` they are
    traced and cannot be)."""
    try:
        v = np.asarray(x, np.float64)
    except jax.errors.TracerArrayConversionError:
        return
    if v.size and v.min() < 0:
        raise ValueError(f"{name} must be non-negative, got {v.min():g}")
    if max_spikes is None or not v.size:
        return
    bound = np.asarray(neurons, np.float64) * max_spikes
    excess = v - bound
    if excess.max() > 0:
        idx = np.unravel_index(np.argmax(excess), v.shape)
        layer = f"[layer {idx[-1]}]" if np.ndim(neurons) else ""
        b = np.broadcast_to(bound, v.shape)[idx]
        raise ValueError(f"{name}{layer} = {v[idx]:g} exceeds what the topology allows: {b:g} "
                         f"(neurons x max_spikes = {max_spikes})")


def ann_energy(layers: Sequence[Layer], costs: EnergyCosts = EnergyCosts(), *,
               reuse: str = "opt") -> dict[str, float]:
    """Energy of one inference of the ANN with this topology, in pJ.

    Returns ``{"compute", "local", "distant", "total"}`` (floats); see the module docstring
    for the ``"base"`` and ``"opt"`` accelerators.
    """
    _check_layers(layers)
    if reuse not in ("base", "opt"):
        raise ValueError(f"reuse must be 'base' or 'opt', got {reuse!r}")
    S = sum(l.synapses for l in layers)
    compute = S * costs.mac
    if reuse == "base":
        local = 2 * S * costs.e_local  # the partial sum, read and written
        distant = (2 * S + sum(l.n_out for l in layers)) * costs.e_distant
    else:
        local = 4 * S * costs.e_local  # weight, input, partial sum read and written
        distant = sum(l.params + l.n_in + l.n_out for l in layers) * costs.e_distant
    return dict(compute=compute, local=local, distant=distant, total=compute + local + distant)


def _per_layer(x, layers, name):
    x = jnp.asarray(x, jnp.result_type(float))
    if x.ndim == 0 or x.shape[-1] != len(layers):
        raise ValueError(f"{name} must have shape [..., {len(layers)}] (one entry per layer), got {x.shape}")
    return x


def synaptic_events(layers: Sequence[Layer], input_spikes: ArrayLike) -> jax.Array:
    """Synaptic events per layer ``[..., L]``: each input spike reaches the layer's fan-out.

    Exact for dense layers; for a convolution the fan-out of an input depends on its position
    near the border, and the mean fan-out is used (exact when the spikes are spread evenly,
    e.g. every input spiking once).

    Args:
      input_spikes: ``[..., L]``: spikes into each layer in one inference (all time steps);
        the network input for the first layer, the previous layer's output spikes after.
    """
    _check_layers(layers)
    x = _per_layer(input_spikes, layers, "input_spikes")
    return x * jnp.asarray([l.fan_out for l in layers], x.dtype)


def spikes_per_synapse(layers: Sequence[Layer], input_spikes: ArrayLike) -> jax.Array:
    """Synaptic events divided by synapses, over the whole network ``[...]``."""
    return jnp.sum(synaptic_events(layers, input_spikes), axis=-1) / synapses(layers)


def snn_energy(layers: Sequence[Layer], input_spikes: ArrayLike, *, neuron_updates: ArrayLike = 1,
               output_spikes: Optional[ArrayLike] = None, max_spikes: Optional[int] = None,
               costs: EnergyCosts = EnergyCosts()) -> dict[str, jax.Array]:
    """Energy of one inference of an event-driven SNN, in pJ, from its spike counts.

    Args:
      layers: the topology.
      input_spikes: ``[..., L]`` spikes into each layer (all time steps); batch axes allowed.
      neuron_updates: leak-and-threshold updates of every neuron per inference: ``T`` for a
        discretized LIF network with ``T`` steps; 0 for event-driven exact-time neurons.
      output_spikes: spikes out of the last layer ``[...]`` (default 0): they are written too.
      max_spikes: the most spikes one neuron can send in an inference (``T`` for DLIF, the spike
        buffer for exact-time neurons, 1 for time-to-first-spike); with it, concrete counts
        above ``neurons x max_spikes`` raise ``ValueError``. Counts must be non-negative.
      costs: :class:`EnergyCosts`.

    Returns:
      ``{"compute", "local", "distant", "total", "events"}``, arrays of the batch shape.
    """
    _check_layers(layers)
    x = _per_layer(input_spikes, layers, "input_spikes")
    _check_counts(x, [l.n_in for l in layers], max_spikes, "input_spikes")
    if output_spikes is not None:
        _check_counts(output_spikes, layers[-1].n_out, max_spikes, "output_spikes")
    events = jnp.sum(synaptic_events(layers, x), axis=-1)
    n_neurons = sum(l.n_out for l in layers)
    updates = jnp.asarray(neuron_updates, x.dtype) * n_neurons
    out = jnp.zeros(x.shape[:-1], x.dtype) if output_spikes is None else jnp.asarray(output_spikes, x.dtype)
    # every spike between layers is written once and read once; the network input is only read
    spikes_moved = 2 * jnp.sum(x[..., 1:], axis=-1) + x[..., 0] + out
    compute = events * costs.add + updates * (costs.mul + costs.add)
    local = (2 * events + 2 * updates) * costs.e_local
    distant = (events + spikes_moved) * costs.e_distant
    return dict(compute=compute, local=local, distant=distant, total=compute + local + distant, events=events)


def efficiency(layers: Sequence[Layer], rate: ArrayLike, *, time_steps: int = 1, reuse: str = "opt",
               costs: EnergyCosts = EnergyCosts()) -> jax.Array:
    """``E_ANN / E_SNN`` for a DLIF SNN with ``time_steps`` steps in which every synapse
    carries ``rate`` spikes per time step (so ``rate x time_steps`` per inference): > 1 where
    the SNN uses less energy. ``rate`` may be an array (a curve)."""
    rate = jnp.asarray(rate, jnp.result_type(float))
    per_inference = rate * time_steps
    n_in = jnp.asarray([l.n_in for l in layers], rate.dtype)
    spikes = per_inference[..., None] * n_in  # spikes into each layer: rate * n_in per step
    snn = snn_energy(layers, spikes, neuron_updates=time_steps, output_spikes=per_inference * layers[-1].n_out,
                     costs=costs)["total"]
    return ann_energy(layers, costs, reuse=reuse)["total"] / snn


def spike_counts(*spike_arrays: ArrayLike, time_major: bool = False) -> jax.Array:
    """Spikes per sample of each array, stacked ``[B, len(spike_arrays)]``.

    Spike-time arrays (``[B, n]`` or ``[B, n, K]``, ``inf`` = no spike) count their finite
    entries; with ``time_major`` the arrays are spike trains ``[T, B, n]`` (0/1) and are summed.
    Use the network input and every hidden layer's output as ``input_spikes`` of
    :func:`snn_energy`.
    """
    out = []
    for a in spike_arrays:
        a = jnp.asarray(a)
        if time_major:
            out.append(jnp.sum(a, axis=tuple(i for i in range(a.ndim) if i != 1)))
        else:
            out.append(jnp.sum(jnp.isfinite(a), axis=tuple(range(1, a.ndim))))
    return jnp.stack(out, axis=-1).astype(jnp.result_type(float))
