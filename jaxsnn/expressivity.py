r"""Expressivity of SRM networks with linear response: constructions, firing-map analysis, bounds.

Networks of SRM neurons with the ramp response (:func:`jaxsnn.srm.first_spike_times`) compute
*firing maps*: input spike times in, output spike times out. Singh, Fono & Kutyniok
(*Expressivity of Spiking Neural Networks*, arXiv 2308.08218) and Fono et al. (*Sustainable AI:
Mathematical Foundations of Spiking Neural Networks*, arXiv 2503.02013) show that these maps are
piecewise linear, continuous or not, that they emulate ReLU networks, that one neuron can have
exponentially many linear regions, and that shallow networks approximate continuous functions.
This module makes those statements runnable. Every construction here is explicit and its
correctness argument is written in the docstring; every map is evaluated by the same
:func:`~jaxsnn.srm.first_spike_times` that trains networks, so the checks test the library too.

Three facts carry all constructions. For a neuron with ramp response and ``delta = inf`` whose
inputs arrive (input time plus delay) at :math:`a_u`:

1. **Window lemma.** If every arrival lies in :math:`[A, B]`, the weights sum to :math:`S > 0`,
   and :math:`\theta > W_+ (B - A)` with :math:`W_+` the sum of the positive weights, the
   potential stays below threshold until :math:`B` (it is at most :math:`W_+ (t - A)` there),
   and afterwards it is the line :math:`S t - \sum_u w_u a_u`. So the neuron fires at
   :math:`t = (\theta + \sum_u w_u a_u) / S`: an *exact affine map* of the arrival times.
2. **Clamp lemma.** A neuron with an excitatory reference (weight :math:`w`, time :math:`r`)
   and one inhibitory input (weight :math:`-u`, :math:`0 < u < w`, time :math:`a`) fires at
   :math:`K = r + \theta / w` if :math:`a \ge K` (it fires before the inhibition arrives), and at
   :math:`K + \tfrac{u}{w-u}(K - a)` otherwise: with :math:`u = w/2` this is
   :math:`K + \max(0, K - a)`, an *exact ReLU* of the value coded by how early :math:`a` is.
3. **Subset formula.** With positive weights, :math:`\sum_u w_u (t-a_u)_+ = \max_S \sum_{u\in S}
   w_u (t - a_u)` over non-empty input sets :math:`S`, so the first crossing is

   .. math:: t_v = \min_{S \neq \emptyset} \frac{\theta + \sum_{u \in S} w_u a_u}{\sum_{u\in S} w_u},

   a minimum of :math:`2^n - 1` affine maps: continuous, increasing and concave in the input
   times, with up to :math:`2^n - 1` linear regions (one per active set).

Contents: :func:`relu_to_snn` (lemmas 1-2), :func:`snn_to_relu` (lemma 3),
:func:`discontinuous_example` (a finite response makes the firing map jump),
:func:`count_linear_regions` and :func:`exponential_regions_neuron`, :func:`approximate`
(one hidden spiking layer with ``delta = 3`` approximating a continuous function),
firing-map property checks (:func:`firing_map_properties`, :func:`find_jumps`), and
growth-function generalization bounds for SRM and DLIF networks (:func:`srm_log2_growth`,
:func:`dlif_log2_growth`, :func:`vc_dimension_bound`, :func:`generalization_gap_bound`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsnn import srm

__all__ = [
    "SRMLayer", "SRMNetwork", "ReLUNetwork", "relu_forward", "relu_to_snn", "snn_to_relu",
    "discontinuous_example", "affine_signatures", "count_linear_regions", "exponential_regions_neuron",
    "find_jumps", "firing_map_properties", "approximate", "srm_log2_growth", "dlif_log2_growth",
    "vc_dimension_bound", "generalization_gap_bound",
]


# ----------------------------------------------------------------------------------------------
# Networks as data
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class SRMLayer:
    """One layer of SRM neurons (ramp response): ``weights [n_in, n_out]``, ``threshold [n_out]``,
    optional ``delays [n_in, n_out]``, response length ``delta``."""

    weights: np.ndarray
    threshold: np.ndarray
    delays: Optional[np.ndarray] = None
    delta: float = math.inf

    def __call__(self, t_in):
        return srm.first_spike_times(t_in, self.weights, self.threshold, delays=self.delays,
                                     kernel="ramp", delta=self.delta)


@dataclasses.dataclass(frozen=True, eq=False)
class SRMNetwork:
    """A feed-forward SRM network with a fixed input encoding and output decoding.

    ``net(x)`` encodes values ``x [..., d]`` as input spike times (``encode``), runs the layers
    (``spike_times``) and decodes the output times (``decode``). ``num_neurons`` counts the
    spiking neurons of all layers (reference/relay neurons included, input neurons not);
    ``num_inputs`` counts input neurons (reference inputs included).
    """

    layers: tuple
    encode: Callable
    decode: Callable
    input_range: tuple = (0.0, 1.0)
    offsets: Optional[tuple] = None

    def spike_times(self, t_in):
        """Output spike times (absolute) for input spike times ``t_in [..., num_inputs]``.

        With ``offsets`` (one float per layer), layer ``i`` is evaluated on times relative to
        ``offsets[i]``. Spike times are shift-equivariant, so the result is the same; the
        affine combinations inside a layer then act on small numbers instead of large absolute
        times, which keeps float32 accurate in deep constructions.
        """
        if self.offsets is None:
            t = t_in
            for layer in self.layers:
                t = layer(t)
            return t
        t = t_in - self.offsets[0]
        for i, layer in enumerate(self.layers):
            t = layer(t)
            nxt = self.offsets[i + 1] if i + 1 < len(self.layers) else 0.0
            t = t + (self.offsets[i] - nxt)
        return t

    def __call__(self, x):
        return self.decode(self.spike_times(self.encode(jnp.asarray(x))))

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_neurons(self) -> int:
        return int(sum(layer.weights.shape[1] for layer in self.layers))

    @property
    def num_inputs(self) -> int:
        return int(self.layers[0].weights.shape[0])

    @property
    def num_parameters(self) -> int:
        """Nonzero weights, thresholds and nonzero delays."""
        n = 0
        for layer in self.layers:
            n += int(np.count_nonzero(layer.weights)) + layer.threshold.size
            if layer.delays is not None:
                n += int(np.count_nonzero(layer.delays))
        return n


def _check_relu_layers(layers, name="layers"):
    if not isinstance(layers, (list, tuple)) or len(layers) == 0:
        raise ValueError(f"{name} must be a non-empty list of (W, b) pairs")
    out = []
    n_prev = None
    for i, pair in enumerate(layers):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"{name}[{i}] must be a pair (W, b)")
        W, b = np.asarray(pair[0], np.float64), np.asarray(pair[1], np.float64)
        if W.ndim != 2:
            raise ValueError(f"{name}[{i}]: W must have shape [n_in, n_out], got {W.shape}")
        if b.shape != (W.shape[1],):
            raise ValueError(f"{name}[{i}]: b must have shape ({W.shape[1]},), got {b.shape}")
        if n_prev is not None and W.shape[0] != n_prev:
            raise ValueError(f"{name}[{i}]: W has {W.shape[0]} inputs but the previous layer has "
                             f"{n_prev} outputs")
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            raise ValueError(f"{name}[{i}]: W and b must be finite")
        n_prev = W.shape[1]
        out.append((W, b))
    return out


def relu_forward(layers, x):
    """The ReLU network ``f(x) = relu(... relu(x @ W1 + b1) ...) @ WL + bL`` (no ReLU on the output).

    Args:
      layers: list of ``(W [n_in, n_out], b [n_out])``.
      x: ``[..., n_in]``.
    """
    h = x
    for i, (W, b) in enumerate(layers):
        h = h @ W + b
        if i < len(layers) - 1:
            h = jnp.maximum(h, 0.0)
    return h


@dataclasses.dataclass(frozen=True, eq=False)
class ReLUNetwork:
    """A ReLU network as a list of ``(W, b)``; ``net(x)`` applies :func:`relu_forward`."""

    layers: tuple

    def __call__(self, x):
        return relu_forward(self.layers, x)

    @property
    def num_layers(self) -> int:
        """Number of affine maps (hidden layers + 1)."""
        return len(self.layers)

    @property
    def num_neurons(self) -> int:
        """Hidden ReLU units."""
        return int(sum(W.shape[1] for W, _ in self.layers[:-1]))

    @property
    def num_parameters(self) -> int:
        return int(sum(W.size + b.size for W, b in self.layers))


# ----------------------------------------------------------------------------------------------
# ReLU network -> SRM network
# ----------------------------------------------------------------------------------------------


def _input_box(input_range, d):
    lo, hi = input_range
    lo = np.broadcast_to(np.asarray(lo, np.float64), (d,)).copy()
    hi = np.broadcast_to(np.asarray(hi, np.float64), (d,)).copy()
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi > lo)):
        raise ValueError(f"input_range must be finite (lo, hi) with hi > lo, got {input_range}")
    return lo, hi


def _range_checked_encoder(lo, hi, n_ref, ref_times=None):
    """Encoder ``x -> [x - lo, reference times]``; raises for concrete ``x`` outside ``[lo, hi]``."""
    d = lo.size
    refs = np.zeros(n_ref) if ref_times is None else np.asarray(ref_times, np.float64)

    def encode(x):
        if x.shape[-1:] != (d,):
            raise ValueError(f"x must have shape [..., {d}], got {x.shape}")
        if not isinstance(x, jax.core.Tracer):
            xn = np.asarray(x)
            tol = 1e-12 * (1.0 + np.abs(hi - lo))
            if np.any(xn < lo - tol) or np.any(xn > hi + tol):
                raise ValueError(f"x lies outside input_range [{lo.min()}, {hi.max()}] where the "
                                 "construction is valid")
        t = x - jnp.asarray(lo, x.dtype)
        r = jnp.broadcast_to(jnp.asarray(refs, t.dtype), t.shape[:-1] + (refs.size,))
        return jnp.concatenate([t, r], axis=-1)

    return encode


def relu_to_snn(layers, input_range=(0.0, 1.0)) -> SRMNetwork:
    r"""An SRM network (ramp response, ``delta = inf``) that computes a given ReLU network exactly.

    ``f(x) = relu(... relu(x @ W1 + b1) ...) @ WL + bL`` on the box ``input_range`` is computed as
    ``net(x)``: ``x`` is encoded as spike times ``x - lo`` plus one reference spike at 0, the
    spiking layers run with :func:`jaxsnn.srm.first_spike_times`, and the output times are
    decoded as ``f = K_L - t``.

    Construction (Singh, Fono & Kutyniok, arXiv 2308.08218, emulate ReLU networks with LSRM
    networks; the construction below is this library's, built from the window and clamp lemmas
    of the module docstring). Each ReLU layer becomes two spiking layers plus one relay neuron
    each, which keeps a reference spike at a known time:

    * *affine layer* (window lemma, slope ``S = 1``): values ``v_i \in [0, h_i]`` arrive at
      ``A + v_i`` with the reference at ``A``; neuron ``j`` has weights ``-W_ij``, reference
      weight ``1 + \sum_i W_ij`` and threshold ``K - A - b_j``, so it fires at ``K - z_j`` with
      ``z = v W + b``. ``K = A + max(0, max_j(b_j + W^+_j H)) + 2`` with ``H = max_i h_i``
      makes the threshold exceed ``W^+_j H`` as the lemma needs. The relay fires at ``K - 1``.
    * *ReLU layer* (clamp lemma, ``w = 2``, ``u = 1``, threshold 2): neuron ``j`` fires at
      ``K + relu(z_j)``; the relay fires at ``K``, the zero of the next layer's values.

    Size: a ReLU network with hidden widths ``n_1..n_{L-1}`` and ``n_L`` outputs becomes
    ``2L - 1`` spiking layers with ``2 \sum_{l<L} n_l + n_L + 2 (L - 1)`` neurons (plus ``d + 1``
    input neurons), i.e. linear in the number of ReLU units and in depth, with no delays.
    Singh et al. state emulation bounds of this kind (size growing with the ReLU network's depth
    and units); the constants here are explicit. The value ranges are propagated by interval
    arithmetic, so the construction is exact for every ``x`` in the box and not outside it.

    Args:
      layers: list of ``(W [n_in, n_out], b [n_out])``.
      input_range: ``(lo, hi)``, scalars or ``[d]`` arrays.

    Returns:
      :class:`SRMNetwork`; ``net(x [..., d]) -> [..., n_L]``.

    Raises:
      ValueError: inconsistent shapes (``layers``), an empty box (``input_range``), or concrete
        ``x`` outside the box (``x``).
    """
    layers = _check_relu_layers(layers)
    d = layers[0][0].shape[0]
    lo, hi = _input_box(input_range, d)
    h = hi - lo                      # value ranges [0, h] of the shifted inputs v = x - lo
    A = 0.0                          # time of value 0 (and of the reference spike)
    snn, offsets = [], []
    K = None
    for idx, (W, b) in enumerate(layers):
        last = idx == len(layers) - 1
        if idx == 0:
            b = b + lo @ W
        n_in, n_out = W.shape
        H = float(np.max(h)) if h.size else 0.0
        ref_w = 1.0 + W.sum(0)
        w_plus = np.maximum(-W, 0.0).sum(0) + np.maximum(ref_w, 0.0)
        K = A + max(0.0, float(np.max(b + w_plus * H))) + 2.0
        w = np.zeros((n_in + 1, n_out + (0 if last else 1)))
        w[:n_in, :n_out] = -W
        w[n_in, :n_out] = ref_w
        theta = list(K - A - b)
        if not last:
            w[n_in, n_out] = 1.0
            theta.append(K - 1.0 - A)
        snn.append(SRMLayer(w, np.asarray(theta)))
        offsets.append(A)
        if last:
            break
        z_hi = b + (np.maximum(W, 0.0) * h[:, None]).sum(0)
        w2 = np.zeros((n_out + 1, n_out + 1))
        w2[np.arange(n_out), np.arange(n_out)] = -1.0
        w2[n_out, :n_out] = 2.0
        w2[n_out, n_out] = 1.0
        snn.append(SRMLayer(w2, np.asarray([2.0] * n_out + [1.0])))
        offsets.append(K - 1.0)
        A, h = K, np.maximum(z_hi, 0.0)
    k_out = K
    return SRMNetwork(layers=tuple(snn), encode=_range_checked_encoder(lo, hi, 1),
                      decode=lambda t: k_out - t, input_range=(lo, hi), offsets=tuple(offsets))


# ----------------------------------------------------------------------------------------------
# One-layer SRM network -> ReLU network
# ----------------------------------------------------------------------------------------------


def _min_tree(values_W, values_b, n_groups, group_size):
    """ReLU layers computing the minimum within each group of affine values.

    ``values_W [n_prev, n_groups*group_size]``, ``values_b``: the values as affine maps of the
    previous activations. Uses ``min(a, b) = relu(b) - relu(-b) - relu(b - a)`` and, for an odd
    leftover ``c = relu(c) - relu(-c)``. Returns the list of ReLU layers and the final affine map.
    """
    layers = []
    Wv, bv, m = values_W, values_b, group_size
    while m > 1:
        pairs, odd = m // 2, m % 2
        units_per_group = 3 * pairs + 2 * odd
        n_vals = n_groups * m
        U = np.zeros((n_vals, n_groups * units_per_group))        # pre-activations = values @ U
        V = np.zeros((n_groups * units_per_group, n_groups * (pairs + odd)))  # new values
        for g in range(n_groups):
            base_v, base_u, base_n = g * m, g * units_per_group, g * (pairs + odd)
            for p in range(pairs):
                a, bb = base_v + 2 * p, base_v + 2 * p + 1
                u0 = base_u + 3 * p
                U[bb, u0], U[a, u0] = 1.0, -1.0                   # relu(b - a)
                U[bb, u0 + 1] = 1.0                               # relu(b)
                U[bb, u0 + 2] = -1.0                              # relu(-b)
                V[u0, base_n + p], V[u0 + 1, base_n + p], V[u0 + 2, base_n + p] = -1.0, 1.0, -1.0
            if odd:
                c, u0 = base_v + m - 1, base_u + 3 * pairs
                U[c, u0], U[c, u0 + 1] = 1.0, -1.0
                V[u0, base_n + pairs], V[u0 + 1, base_n + pairs] = 1.0, -1.0
        layers.append((Wv @ U, bv @ U))
        Wv, bv, m = V, np.zeros(V.shape[1]), pairs + odd
    return layers, (Wv, bv)


def snn_to_relu(weights, threshold, *, delays=None) -> ReLUNetwork:
    r"""A ReLU network computing the firing map of a one-layer SRM network (continuous setting).

    The SRM layer (ramp response, ``delta = inf``, positive weights, optional non-negative delays)
    maps input spike times ``t [..., n_in]`` to ``t_v = srm.first_spike_times(t, weights,
    threshold, delays=delays)``. By the subset formula (module docstring)

    .. math:: t_v = \min_{S \neq \emptyset} L_S(t),\quad
        L_S(t) = \frac{\theta_v + \sum_{u\in S} w_{uv}(t_u + d_{uv})}{\sum_{u \in S} w_{uv}},

    over the non-empty sets ``S`` of inputs with ``w_uv > 0`` (inputs with zero weight are
    ignored). The first layer computes the ``2^k - 1`` affine maps ``L_S`` (``k`` positive
    weights), and a binary tree of ReLU layers takes their minimum with
    ``min(a, b) = relu(b) - relu(-b) - relu(b - a)``.

    Size (reported by the returned network): ``ceil(log2(2^k - 1)) + 1`` affine maps and at most
    ``3 (2^k - 1)`` ReLU units per output neuron in the widest layer: exponential in the fan-in,
    as the exponential number of linear regions of one spiking neuron
    (:func:`exponential_regions_neuron`) forces for any ReLU network of this shallow form.
    Singh, Fono & Kutyniok (arXiv 2308.08218) give complexity bounds for this direction.

    Args:
      weights: ``[n_in, n_out]``, non-negative, at least one positive weight per neuron.
      threshold: positive scalar or ``[n_out]``.
      delays: optional non-negative ``[n_in, n_out]``.

    Returns:
      :class:`ReLUNetwork` with ``net(t) == first_spike_times(t, ...)`` for all finite ``t``.

    Raises:
      ValueError: a negative weight or a neuron without positive weight (``weights``, these are
        outside the continuous setting), more than 16 positive weights per neuron (``weights``),
        bad thresholds or delays.
    """
    W = np.asarray(weights, np.float64)
    if W.ndim != 2:
        raise ValueError(f"weights must have shape [n_in, n_out], got {W.shape}")
    n_in, n_out = W.shape
    if np.any(W < 0) or not np.all(np.isfinite(W)):
        raise ValueError("weights must be finite and non-negative: snn_to_relu covers the "
                         "continuous setting (excitatory inputs, delta = inf)")
    theta = np.broadcast_to(np.asarray(threshold, np.float64), (n_out,))
    if not np.all(theta > 0):
        raise ValueError("threshold must be positive")
    D = np.zeros_like(W) if delays is None else np.asarray(delays, np.float64)
    if D.shape != W.shape or np.any(D < 0):
        raise ValueError(f"delays must be non-negative with shape {W.shape}")
    pos = [np.flatnonzero(W[:, v] > 0) for v in range(n_out)]
    k_max = max(len(p) for p in pos)
    if min(len(p) for p in pos) == 0:
        raise ValueError("weights: every output neuron needs a positive weight (else it never fires)")
    if k_max > 16:
        raise ValueError(f"weights: {k_max} positive weights give 2^{k_max} - 1 affine pieces; at most 16")
    m = 2 ** k_max - 1
    Cx = np.zeros((n_in, n_out * m))
    c0 = np.zeros(n_out * m)
    for v in range(n_out):
        subsets = [s for r in range(1, len(pos[v]) + 1) for s in itertools.combinations(pos[v], r)]
        subsets += [subsets[-1]] * (m - len(subsets))          # pad with duplicates (min unchanged)
        for j, S in enumerate(subsets):
            S = np.asarray(S)
            ws = W[S, v]
            col = v * m + j
            Cx[S, col] = ws / ws.sum()
            c0[col] = (theta[v] + np.sum(ws * D[S, v])) / ws.sum()
    hidden, (Wf, bf) = _min_tree(Cx, c0, n_out, m)
    if not hidden:
        return ReLUNetwork(((Cx, c0),))
    return ReLUNetwork(tuple(hidden) + ((Wf, bf),))


# ----------------------------------------------------------------------------------------------
# A discontinuous firing map
# ----------------------------------------------------------------------------------------------


def discontinuous_example(delta: float = 1.0) -> SRMNetwork:
    r"""One SRM neuron whose firing map jumps: :math:`t(x) = (1.5 + x)/2` for :math:`x \le 1/2`,
    :math:`t(x) = 2.5` for :math:`x > 1/2` (with ``delta = 1``).

    The input ``x \in [0, 1]`` spikes at time ``x``; two reference spikes come at time 0, one
    through a delay of 2. Weights ``1`` (input), ``1`` (reference) and ``3`` (delayed reference),
    threshold ``1.5``, ramp response of length ``delta = 1``.

    Why it jumps: on ``(x, 1]`` both the input and the first reference are active and the
    potential is ``2t - x``, largest at ``t = 1`` where the reference's response *ends*
    (finite ``delta``). It reaches 1.5 there iff ``x <= 1/2``, at ``t = (1.5 + x)/2``. For
    ``x > 1/2`` the potential never exceeds ``max(2 - x, 1) < 1.5`` until the delayed reference
    alone lifts it, at ``t = 2 + 1.5/3 = 2.5``. The first-passage time jumps by 1.5 where the
    maximum of the potential over time passes through the threshold. With ``delta = inf`` and
    positive weights the potential never decreases and the map is continuous (subset formula);
    Singh, Fono & Kutyniok (arXiv 2308.08218) show that LSRM networks, unlike ReLU networks,
    realize discontinuous maps.

    Returns:
      :class:`SRMNetwork` with ``net(x [..., 1]) -> [..., 1]`` (the output spike time).
    """
    weights = np.array([[1.0], [1.0], [3.0]])
    delays = np.array([[0.0], [0.0], [2.0]])
    layer = SRMLayer(weights, np.array([1.5]), delays, float(delta))
    lo, hi = np.zeros(1), np.ones(1)
    return SRMNetwork((layer,), _range_checked_encoder(lo, hi, 2), lambda t: t, (lo, hi))


# ----------------------------------------------------------------------------------------------
# Linear regions
# ----------------------------------------------------------------------------------------------


def affine_signatures(f: Callable, x, *, decimals: int = 7):
    """Value, gradient and intercept of a scalar piecewise-linear ``f`` at points ``x [N, d]``.

    The gradient is exact (``jax.grad``; :func:`jaxsnn.srm.first_spike_times` has an exact
    custom VJP), so two points lie on the same affine piece iff their ``(gradient, intercept)``
    agree. Returns ``(values [N], grads [N, d], keys [N])`` where ``keys`` are integer ids of the
    rounded signatures (``decimals`` significant digits relative to the largest entry).
    """
    x = jnp.asarray(x)
    vg = jax.jit(jax.vmap(jax.value_and_grad(lambda p: jnp.squeeze(f(p)))))
    values, grads = map(np.asarray, vg(x))
    intercept = values - np.sum(grads * np.asarray(x), -1)
    sig = np.concatenate([grads, intercept[:, None]], -1)
    finite = np.all(np.isfinite(sig), -1)
    scale = max(1.0, float(np.max(np.abs(sig[finite])))) if finite.any() else 1.0
    rounded = np.round(np.where(finite[:, None], sig, np.inf) / scale, decimals)
    _, keys = np.unique(rounded, axis=0, return_inverse=True)
    return values, grads, keys.reshape(-1)


def count_linear_regions(f: Callable, axes: Sequence, *, decimals: int = 7, min_points: int = 1):
    """Number of linear regions of a scalar map ``f`` on a 1-D or 2-D grid.

    A region is a connected set of grid points (4-neighbourhood in 2-D) on the same affine piece
    (:func:`affine_signatures`). Regions smaller than ``min_points`` grid points are dropped
    (points that sit exactly on a boundary can show a third piece). Choose grids that do not
    put points on region boundaries (e.g. offset by an irrational shift) for exact counts.

    Args:
      f: scalar map of a point ``[d]`` (``d`` = ``len(axes)``).
      axes: one (1-D) or two (2-D) increasing 1-D coordinate arrays.

    Returns:
      ``(count, labels)`` with ``labels`` of the grid's shape (``-1`` for dropped points).
    """
    import scipy.ndimage

    if len(axes) not in (1, 2):
        raise ValueError(f"axes must hold one or two coordinate arrays, got {len(axes)}")
    grids = np.meshgrid(*[np.asarray(a, np.float64) for a in axes], indexing="ij")
    pts = np.stack([g.ravel() for g in grids], -1)
    _, _, keys = affine_signatures(f, pts, decimals=decimals)
    keys = keys.reshape(grids[0].shape)
    labels = -np.ones(keys.shape, int)
    count = 0
    for k in np.unique(keys):
        comp, n = scipy.ndimage.label(keys == k)
        for c in range(1, n + 1):
            mask = comp == c
            if mask.sum() >= min_points:
                labels[mask] = count
                count += 1
    return count, labels


def exponential_regions_neuron(d: int, threshold: float = 0.5) -> SRMNetwork:
    r"""One SRM neuron with ``2^d - 1`` linear regions on ``[0, 1]^d``.

    Inputs ``x_i`` spike at ``x_i`` through weights 1; threshold ``theta < 1``. By the subset
    formula the firing time is :math:`\min_S (\theta + \sum_{i\in S} x_i)/|S|`; the set ``S`` is
    the minimizer where ``x_i < t`` exactly for ``i \in S``, which happens on an open set for
    every non-empty ``S`` (take ``x_S`` near 0, where ``t = \theta/|S| < 1``, and the other
    inputs near 1). Each region is convex (a minimum of affine maps is attained on a convex set)
    and the ``2^d - 1`` affine pieces differ, so there are exactly ``2^d - 1`` linear regions,
    against at most 2 for one ReLU neuron (Singh, Fono & Kutyniok, arXiv 2308.08218: the number
    of regions of one spiking neuron can grow exponentially with the input dimension).
    """
    if not (0 < threshold < 1):
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    if d < 1:
        raise ValueError(f"d must be positive, got {d}")
    lo, hi = np.zeros(d), np.ones(d)
    layer = SRMLayer(np.ones((d, 1)), np.array([threshold]))
    return SRMNetwork((layer,), _range_checked_encoder(lo, hi, 0), lambda t: t, (lo, hi))


# ----------------------------------------------------------------------------------------------
# Firing-map properties
# ----------------------------------------------------------------------------------------------


def find_jumps(f: Callable, a: float, b: float, *, n: int = 1001, rel_tol: float = 1e-6,
               bisections: int = 60):
    """Jump discontinuities of a scalar piecewise-linear map of one variable on ``[a, b]``.

    On a grid of ``n`` points, an interval is suspect when ``|f(x+h) - f(x)|`` exceeds the
    largest exact slope seen (times ``h``) by more than ``rel_tol``; each suspect interval is
    bisected ``bisections`` times, keeping the half with the larger change. A jump survives
    (its size stays put while the interval shrinks to nothing); a steep but continuous piece
    does not. Returns a list of ``(location, jump size f(x+) - f(x-))``; ``inf`` sizes are
    reported for maps that switch between firing and silence.
    """
    fv = jax.jit(jax.vmap(lambda p: jnp.squeeze(f(jnp.reshape(p, (1,))))))
    grad = jax.jit(jax.vmap(jax.grad(lambda p: jnp.squeeze(f(jnp.reshape(p, (1,)))))))
    xs = np.linspace(a, b, n)
    vals = np.asarray(fv(xs))
    slopes = np.asarray(grad(xs))
    lip = float(np.max(np.abs(slopes[np.isfinite(slopes)]), initial=0.0))
    h = xs[1] - xs[0]
    diff = np.diff(vals)
    with np.errstate(invalid="ignore"):
        suspect = ~(np.abs(diff) <= lip * h * (1 + rel_tol) + rel_tol * (1 + np.abs(vals[:-1])))
    jumps = []
    for i in np.flatnonzero(suspect):
        lo, hi, vlo, vhi = xs[i], xs[i + 1], vals[i], vals[i + 1]
        for _ in range(bisections):
            mid = 0.5 * (lo + hi)
            vm = float(fv(np.array([mid]))[0])
            if abs(vm - vlo) >= abs(vhi - vm) or not np.isfinite(vm - vlo):
                hi, vhi = mid, vm
            else:
                lo, vlo = mid, vm
        size = vhi - vlo
        if not np.isfinite(size) or abs(size) > lip * (hi - lo) * (1 + rel_tol) + rel_tol:
            jumps.append((0.5 * (lo + hi), float(size)))
    return jumps


def firing_map_properties(f: Callable, lo, hi, *, key, n: int = 2000, tol: float = 1e-9):
    """Check a firing map for the structural properties of Singh, Fono & Kutyniok.

    Firing maps of SRM networks with linear response are always piecewise linear; with
    ``delta = inf`` and positive weights a one-layer map is moreover continuous, increasing in
    every input time and concave (subset formula in the module docstring). This function
    samples ``n`` random pairs in the box ``[lo, hi]^d`` and reports:

    * ``increasing``: ``f(max(x, y)) >= f(x)`` for every pair (coordinate-wise maximum);
    * ``concave``: ``f((x + y)/2) >= (f(x) + f(y))/2``;
    * ``continuous``: no jump along two random segments ``x -> y`` (:func:`find_jumps`; the whole
      interval for ``d = 1``);
    * ``piecewise_linear``: along each segment, the map coincides with the line through its
      exact gradient at the segment's start up to the first kink (checked at the midpoint of
      each pair of grid neighbours with equal exact gradients);
    * ``violations``: the worst margin of each test.

    Args:
      f: map from ``[..., d]`` input spike times to ``[..., 1]`` (or scalar) output times.
      lo, hi: the box.
      key: ``jax.random`` key for the sample.
    """
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    d = lo.size
    k1, k2 = jax.random.split(key)
    x = np.asarray(jax.random.uniform(k1, (n, d), jnp.float64 if jax.config.jax_enable_x64 else jnp.float32,
                                      lo, hi))
    y = np.asarray(jax.random.uniform(k2, (n, d), x.dtype, lo, hi))
    F = jax.jit(jax.vmap(lambda p: jnp.squeeze(f(p))))
    fx, fy = np.asarray(F(x)), np.asarray(F(y))
    inc = np.asarray(F(np.maximum(x, y))) - fx
    conc = np.asarray(F(0.5 * (x + y))) - 0.5 * (fx + fy)
    scale = 1.0 + np.nanmax(np.abs(np.concatenate([fx, fy])))
    # piecewise linearity along segments: second differences vanish wherever gradients agree
    s = np.linspace(0.0, 1.0, 65)
    seg = x[:16, None, :] + s[None, :, None] * (y[:16] - x[:16])[:, None, :]
    vals = np.asarray(F(seg.reshape(-1, d))).reshape(16, s.size)
    _, _, keys = affine_signatures(lambda p: f(p), seg.reshape(-1, d))
    keys = keys.reshape(16, s.size)
    same = (keys[:, :-2] == keys[:, 1:-1]) & (keys[:, 1:-1] == keys[:, 2:])
    second = np.abs(vals[:, :-2] - 2 * vals[:, 1:-1] + vals[:, 2:])
    pwl_dev = float(np.max(np.where(same & np.isfinite(second), second, 0.0), initial=0.0))
    jumps = []
    if d == 1:
        jumps = find_jumps(lambda p: f(p), float(lo[0]), float(hi[0]))
    else:
        for i in range(2):
            xi, yi = x[i], y[i]
            g = lambda s_, xi=xi, yi=yi: f(xi + s_[0] * (yi - xi))
            jumps += find_jumps(g, 0.0, 1.0, n=257)
    return dict(
        increasing=bool(np.all(inc >= -tol * scale)),
        concave=bool(np.all(conc >= -tol * scale)),
        continuous=not jumps,
        piecewise_linear=bool(pwl_dev <= tol * scale * 10),
        violations=dict(increasing=float(-np.min(inc)), concave=float(-np.min(conc)),
                        jumps=jumps, second_difference=pwl_dev),
    )


# ----------------------------------------------------------------------------------------------
# Universal approximation with one hidden spiking layer
# ----------------------------------------------------------------------------------------------

_ETA = 0.25       # hidden spikes lie in [1, 1 + ETA]
_T_OUT = 1.5      # output spikes lie at T_OUT + lambda + f_hat (< 3 for the delta = 3 response)


def _ridge_hidden_layer(directions, offsets, d, delta):
    """Hidden SRM neurons firing at ``1 + s1 (2 + u) + (s2 - s1) relu(u - b)``, ``u = a . x``.

    Inputs: ``x_1..x_d`` at times ``x_i``, three reference spikes at time 0. Neuron ``k``:
    weights ``a`` (l1 norm 1) on ``x``, ``-sum(a)`` on reference 0 (so that once every input
    has arrived the ``x`` part of the potential is the constant ``-a . x``), ``1/s1`` on
    reference 1 (delay 1) and ``1/s2 - 1/s1`` on reference 2 (delay ``t_b``), threshold 2.
    Before ``t = 1`` the potential is at most ``|a|_1 t < 2``; after it, ``R(t) - a . x`` with
    ``R`` the increasing ramp of the references, so the neuron fires where ``R(t) = 2 + a . x``.
    Three relay neurons fire at exactly 1 for the output neuron's reference ramp.
    """
    n = len(directions)
    s1, s2 = _ETA / 8, _ETA / 4
    w = np.zeros((d + 3, n + 3))
    dl = np.zeros((d + 3, n + 3))
    for k, (a, b) in enumerate(zip(directions, offsets)):
        w[:d, k] = a
        w[d, k] = -a.sum()
        w[d + 1, k], dl[d + 1, k] = 1.0 / s1, 1.0
        w[d + 2, k], dl[d + 2, k] = 1.0 / s2 - 1.0 / s1, 1.0 + s1 * (2.0 + b)
    w[d, n:] = 1.0                                   # relays: reference 0 -> spike at 1
    theta = np.concatenate([np.full(n, 2.0), np.ones(3)])
    return SRMLayer(w, theta, dl, delta)


def _readout_layer(c, c0, lam, n_hidden, delta):
    """Output neuron firing at ``T_OUT + lam + c0 + sum_k c_k (h_k - 1)/ETA`` (see approximate)."""
    wk = c / _ETA                                    # sigma = 1
    theta = 1.0
    r_out = theta - (lam + c0)                       # reference ramp R at T_OUT
    m1 = max(float(np.sum(np.abs(wk))), -r_out / _ETA) + 1.0
    r2 = (r_out + m1 * _ETA) / (_T_OUT - 1.0 - _ETA)
    w = np.zeros((n_hidden + 3, 1))
    dl = np.zeros((n_hidden + 3, 1))
    w[:n_hidden, 0] = wk
    w[n_hidden, 0] = -m1 - wk.sum()                  # balance + falling ramp from t = 1
    w[n_hidden + 1, 0], dl[n_hidden + 1, 0] = m1 + r2, _ETA
    w[n_hidden + 2, 0], dl[n_hidden + 2, 0] = 1.0 - r2, _T_OUT - 1.0
    return SRMLayer(w, np.array([theta]), dl, delta)


def _ridge_dictionary(d, level):
    """Ridge directions (l1 norm 1) and kink offsets for refinement ``level``."""
    if d == 1:
        n_off = 4 * 2 ** level
        dirs = [np.ones(1)] * n_off
        offs = list((np.arange(n_off) + 0.5) / n_off)
        return dirs, offs
    n_dir = 4 + 2 * level
    n_off = 4 + 3 * level
    rng = np.random.default_rng(level)
    dirs, offs = [], []
    for j in range(n_dir * (d - 1)):
        a = rng.standard_normal(d) if d > 2 else np.array([np.cos(np.pi * j / n_dir), np.sin(np.pi * j / n_dir)])
        a = a / np.abs(a).sum()
        u_lo, u_hi = np.minimum(a, 0).sum(), np.maximum(a, 0).sum()
        for i in range(n_off):
            dirs.append(a)
            offs.append(u_lo + (u_hi - u_lo) * (i + 0.5) / n_off)
    return dirs, offs


def _box_grid(d, n, shift=0.0):
    ax = np.clip(np.linspace(0.0, 1.0, n) + shift, 0.0, 1.0)
    return np.stack([g.ravel() for g in np.meshgrid(*([ax] * d), indexing="ij")], -1)


def approximate(f: Callable, d: int, eps: float, *, delta: float = 3.0, max_level: int = 8,
                fit_points: int = 0, check_points: int = 0, verbose: bool = False):
    r"""A network with one hidden layer of SRM neurons (``delta = 3``) approximating ``f`` within ``eps``.

    ``f: [0, 1]^d -> [0, 1]`` (continuous; a function of ``[N, d]`` numpy arrays returning ``[N]``).
    The network: inputs ``x_i`` spike at ``x_i``, three reference inputs at 0; one hidden layer
    of *ridge neurons* firing at

    .. math:: h_k(x) = 1 + s_1 (2 + a_k\cdot x) + (s_2 - s_1)\,\mathrm{relu}(a_k \cdot x - b_k)
       \in [1, 1.25]

    (balanced weights make the input part of the potential the constant ``-a.x`` once every
    input has arrived, and reference spikes build an increasing ramp with a kink, see
    ``_ridge_hidden_layer``), plus three relay neurons firing at 1; one output neuron fires at
    :math:`1.5 + \lambda + \hat f(x)` with :math:`\hat f = c_0 + \sum_k c_k (h_k - 1)/0.25`.
    Its weights on the hidden spikes are balanced by a relay, and its reference ramp first falls
    (so the potential cannot reach threshold while hidden spikes are still arriving), then rises
    to a level that makes the first crossing an exact affine function of the hidden times
    (window-type argument; ``\lambda > -\min \hat f`` keeps it after 1.5). Every spike comes
    within 3 time units of the earliest arrival, so a response of length ``delta >= 3`` acts as
    ``delta = inf`` (the condition of Fono et al., arXiv 2503.02013, for inputs in [0, 1]).

    Since each ``h_k`` is an affine function plus a ReLU ridge, ``\hat f`` is a one-hidden-layer
    ReLU network in ``x`` (plus affine terms): universal. The readout ``c`` is the least-squares
    fit of ``f`` on a grid by the *actual hidden spike times*; ridges are refined (``d = 1``:
    uniform kinks, i.e. piecewise-linear interpolation; ``d >= 2``: more directions and
    offsets) until the sup error measured on a finer, shifted check grid is at most ``eps``.

    Returns:
      ``(net, info)``: an :class:`SRMNetwork` with ``net(x [..., d]) -> [..., 1]`` (decoded value
      ``t - 1.5 - lambda``) and ``info`` with ``error`` (sup error on the check grid),
      ``hidden`` (ridge neurons), ``num_neurons``, ``level``, ``converged``, ``readout``
      (``[c_0, c_1, ...]``) and ``history`` (size and error of every refinement level).
    """
    if d < 1:
        raise ValueError(f"d must be positive, got {d}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    if not delta >= 3.0:
        raise ValueError(f"delta must be at least 3 (inputs in [0, 1]), got {delta}")
    lo, hi = np.zeros(d), np.ones(d)
    best, history = None, []
    for level in range(max_level + 1):
        dirs, offs = _ridge_dictionary(d, level)
        hidden = _ridge_hidden_layer(dirs, offs, d, delta)
        n_fit = fit_points or (max(2 * (4 * 2 ** level) + 1, 65) if d == 1 else 4 * (4 + 3 * level) + 1)
        n_chk = check_points or (4 * n_fit + 1 if d == 1 else 2 * n_fit + 1)
        xf = _box_grid(d, n_fit)
        xc = _box_grid(d, n_chk, shift=0.37 / n_chk)
        encode = _range_checked_encoder(lo, hi, 3)
        hf = np.asarray(hidden(encode(jnp.asarray(xf))))[:, :len(dirs)]
        feats = np.concatenate([np.ones((len(xf), 1)), (hf - 1.0) / _ETA], 1)
        coef, *_ = np.linalg.lstsq(feats, np.asarray(f(xf), np.float64), rcond=None)
        c0, c = float(coef[0]), coef[1:]
        hc = np.asarray(hidden(encode(jnp.asarray(xc))))[:, :len(dirs)]
        fhat = coef[0] + ((hc - 1.0) / _ETA) @ c
        lam = 0.1 + max(0.0, -float(np.min(fhat)))
        out = _readout_layer(c, c0, lam, len(dirs), delta)
        shift = _T_OUT + lam
        net = SRMNetwork((hidden, out), encode, lambda t, s=shift: t - s, (lo, hi))
        err = float(np.max(np.abs(np.asarray(net(jnp.asarray(xc)))[:, 0] - np.asarray(f(xc)))))
        history.append(dict(level=level, hidden=len(dirs), num_neurons=net.num_neurons, error=err))
        info = dict(error=err, hidden=len(dirs), num_neurons=net.num_neurons, level=level,
                    converged=err <= eps, fit_points=len(xf), check_points=len(xc), readout=coef,
                    history=history)
        if verbose:
            print(f"approximate: level {level}: {len(dirs)} ridge neurons, sup error {err:.3g}", flush=True)
        best = (net, info)
        if err <= eps:
            return best
    warnings.warn(f"approximate: sup error {best[1]['error']:.3g} > eps = {eps} at max_level {max_level}")
    return best


# ----------------------------------------------------------------------------------------------
# Generalization bounds
# ----------------------------------------------------------------------------------------------


def _log2_sauer(m, k):
    """log2 of the growth function bound of a class of VC dimension ``k`` on ``m`` points."""
    m = np.asarray(m, np.float64)
    return np.where(m <= k, m, k * np.log2(np.e * m / np.maximum(k, 1)))


def dlif_log2_growth(layer_sizes: Sequence[int], T: int, m):
    r"""log2 of an upper bound on the number of behaviours of a DLIF classifier on ``m`` samples.

    The network: layers ``layer_sizes = [n_0, n_1, ..., n_L]``, trainable weights and biases,
    fixed ``beta`` and ``threshold`` (:func:`jaxsnn.dlif.simulate`), any decision that is a
    function of the output spike trains (counts, first spikes). Unrolled over ``T`` steps, the
    spike of neuron ``j`` at step ``t`` is ``H(<p_j, phi_t> - c_t)``: a threshold of a function
    *linear* in the neuron's ``d_j = fan_in + 1`` parameters ``p_j``, whose features ``phi_t``
    (beta-weighted sums of earlier input spikes) and offset ``c_t`` (threshold and the neuron's
    own reset history) are fixed once the spikes of all earlier (layer, step) pairs are fixed.
    Counting layer by layer and step by step, Sauer's lemma for affine halfspaces in
    ``R^{d_j}`` (VC dimension ``d_j + 1``) gives

    .. math:: \log_2 \Pi(m) \le T \sum_j (d_j + 1) \log_2\frac{e\,m}{d_j + 1},

    linear in ``T``: the dependence on time steps of Fono et al. (arXiv 2503.02013). Each
    factor is capped at ``m`` bits.
    """
    sizes = list(layer_sizes)
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"layer_sizes must list at least two positive sizes, got {layer_sizes}")
    if int(T) < 1:
        raise ValueError(f"T must be positive, got {T}")
    total = 0.0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        k = n_in + 2                                      # d_j + 1 with d_j = n_in + 1
        total = total + n_out * _log2_sauer(m, k)
    return T * total


def _srm_test_degree(sizes):
    """Largest degree of the sign tests of an SRM network (see :func:`srm_log2_growth`)."""
    a = b = 0                       # the data's spike times are constants
    D = 1
    for n in sizes[:-1]:
        if a == 0:                  # layer 1: tests and times are (ratios of) affine maps
            a, b = 1, 1
            continue
        D = max(D, a + b, 1 + a + (n - 1) * b)   # arrival order; knot tests
        a, b = 1 + a + (n - 1) * b, 1 + n * b
    return max(D, a + b)            # order of the output spikes


def srm_log2_growth(layer_sizes: Sequence[int], m):
    r"""log2 of an upper bound on the number of behaviours of an SRM/TTFS classifier on ``m`` samples.

    Parameters: all weights and thresholds, ``W = sum_l n_l (n_{l-1} + 1)``. On each sample, the
    classifier's output (the first output neuron to fire, or any function of the output spike
    order) is fixed by the signs of these tests: for every neuron and every knot of its sorted
    arrivals, whether the potential there reaches threshold (``n_in + 1`` tests); the relative
    order of every pair of its arrivals (``n_in (n_in - 1)/2``); and the order of every pair of
    output spikes. Spike times of layer ``l`` are rational functions of the parameters, of
    degree ``(a_l, b_l)``: ``(1, 1)`` in layer 1, and ``(1 + a + (n - 1) b, 1 + n b)`` after a
    layer of fan-in ``n`` (common denominators). Clearing the (positive) denominators makes
    every test a polynomial of degree at most ``D``, and Warren's theorem as used by Goldberg &
    Jerrum (1995) bounds the sign vectors of ``N`` polynomials of degree ``D`` in ``W``
    variables by ``(8 e D N / W)^W`` for ``N >= W``:

    .. math:: \log_2 \Pi(m) \le W \log_2 \frac{8 e D\, N(m)}{W},\qquad N(m) = m \cdot (\text{tests per sample}).

    This is the generic parameter-counting bound for piecewise-rational maps: ``O(W log(m D))``.
    """
    sizes = list(layer_sizes)
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"layer_sizes must list at least two positive sizes, got {layer_sizes}")
    W = sum(n_out * (n_in + 1) for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    D = _srm_test_degree(sizes)
    tests = sum(n_out * (n_in + 1 + n_in * (n_in - 1) // 2) for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    k = sizes[-1]
    tests += k * (k - 1) // 2
    m = np.asarray(m, np.float64)
    N = m * tests
    return np.where(N >= W, W * np.log2(8 * np.e * D * np.maximum(N, 1) / W), N * np.log2(3.0))


def vc_dimension_bound(log2_growth: Callable, *, upper: float = 1e15) -> float:
    """The largest ``m`` with ``log2_growth(m) >= m`` (no larger set can be shattered)."""
    lo, hi = 1.0, 2.0
    while float(log2_growth(hi)) >= hi:
        lo, hi = hi, 2 * hi
        if hi > upper:
            return math.inf
    while hi - lo > 0.5:
        mid = 0.5 * (lo + hi)
        if float(log2_growth(mid)) >= mid:
            lo = mid
        else:
            hi = mid
    return math.floor(lo)


def generalization_gap_bound(log2_growth: Callable, m, *, confidence: float = 0.95):
    r"""Uniform bound on test error minus training error (0-1 loss) for ``m`` training samples.

    Vapnik-Chervonenkis inequality for a loss class whose growth function is at most
    :math:`\Pi`: with probability at least ``confidence = 1 - delta`` every network satisfies

    .. math:: \mathrm{err}(h) \le \widehat{\mathrm{err}}_m(h) + \sqrt{\frac{8\,(\ln \Pi(2m) + \ln(4/\delta))}{m}}.

    Values above 1 are vacuous (and returned as they are).
    """
    m = np.asarray(m, np.float64)
    delta = 1.0 - confidence
    ln_pi = np.asarray(log2_growth(2 * m)) * np.log(2.0)
    return np.sqrt(8.0 * (ln_pi + np.log(4.0 / delta)) / m)
