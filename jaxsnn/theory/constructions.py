r"""Constructions: SRM networks as data, exact ReLU emulation both ways, special firing maps.

Networks of SRM neurons with the ramp response (:func:`jaxsnn.srm.first_spike_times`) as
explicit data (:class:`SRMLayer`, :class:`SRMNetwork`) next to ReLU networks
(:class:`ReLUNetwork`, :func:`relu_forward`), and the constructions of Singh, Fono & Kutyniok
(arXiv 2308.08218) built from the window, clamp and subset lemmas of :mod:`jaxsnn.theory`:
:func:`relu_to_snn` (lemmas 1-2), :func:`snn_to_relu` (lemma 3), :func:`discontinuous_example`
(a finite response makes the firing map jump) and :func:`exponential_regions_neuron`
(``2^d - 1`` linear regions in one neuron). The approximation construction is in
:mod:`jaxsnn.theory.approximation`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Callable, Optional

import jax.numpy as jnp
import numpy as np

from jaxsnn import srm
from jaxsnn._internal import is_concrete

__all__ = [
    "SRMLayer", "SRMNetwork", "ReLUNetwork", "relu_forward", "relu_to_snn", "snn_to_relu",
    "discontinuous_example", "exponential_regions_neuron",
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


def range_checked_encoder(lo, hi, n_ref, ref_times=None):
    """Encoder ``x -> [x - lo, reference times]``; raises for concrete ``x`` outside ``[lo, hi]``."""
    d = lo.size
    refs = np.zeros(n_ref) if ref_times is None else np.asarray(ref_times, np.float64)

    def encode(x):
        if x.shape[-1:] != (d,):
            raise ValueError(f"x must have shape [..., {d}], got {x.shape}")
        if is_concrete(x):
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
    of the package docstring, :mod:`jaxsnn.theory`). Each ReLU layer becomes two spiking layers
    plus one relay neuron each, which keeps a reference spike at a known time:

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
    return SRMNetwork(layers=tuple(snn), encode=range_checked_encoder(lo, hi, 1),
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
    threshold, delays=delays)``. By the subset formula (:mod:`jaxsnn.theory`)

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
    return SRMNetwork((layer,), range_checked_encoder(lo, hi, 2), lambda t: t, (lo, hi))


# ----------------------------------------------------------------------------------------------
# Exponentially many linear regions in one neuron
# ----------------------------------------------------------------------------------------------


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
    return SRMNetwork((layer,), range_checked_encoder(lo, hi, 0), lambda t: t, (lo, hi))
