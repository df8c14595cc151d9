r"""Exact conversion of trained convolutional ReLU networks into SRM networks (time-to-first-spike).

A ReLU network given as a list of layers (:class:`Dense`, :class:`Conv`, :class:`MaxPool`,
:class:`Flatten`; a ReLU follows every dense or convolutional layer but the last, as in
:func:`jaxsnn.theory.relu_forward`) becomes, by :func:`convert`, a network of SRM neurons with the
ReLU response (:func:`jaxsnn.conv.srm_conv`, :func:`jaxsnn.srm.first_spike_times`) whose spike times
code the same activations, exactly for every input in a box.

**The mapping** is the one of :func:`jaxsnn.theory.relu_to_snn` (window and clamp lemmas of
:mod:`jaxsnn.theory`), generalised to convolutions. Times are measured in each layer from its
*reference spike*, a single spike per layer shared by every position and channel (the relay
neuron of the construction): a value :math:`v \ge 0` is a spike at time :math:`v` after it.

* *Affine layer* (dense, or convolution: a dense layer on every patch with shared weights, the
  reference entering every patch as an extra input). Neuron ``o`` has weights :math:`-W_{io}` on its
  inputs, :math:`1 + \sum_i W_{io}` on the reference and threshold :math:`\theta_o = K - b_o`, so its
  slope is 1 and, by the window lemma, it fires at :math:`K - z_o` with :math:`z = vW + b`, provided
  every input lies in :math:`[0, H]` and :math:`\theta_o > W^+_o H` (:math:`W^+_o` the sum of its
  positive weights). :math:`K = \max(0, \max_o(b_o + W^+_o H)) + 2` ensures it; the layer's relay
  neuron (weight 1 from the reference, threshold :math:`K - 1`) fires at :math:`K - 1`, the next
  reference, so the layer outputs :math:`1 - z_o` (earlier = larger).
* *Max pooling* of values is the earliest spike of the window (:func:`jaxsnn.conv.min_time_pool`),
  applied in the code :math:`1 - z`; it commutes with the ReLU, which follows it (as flattening does).
* *ReLU* (clamp lemma): one neuron per unit with weight 2 from the reference, -1 from its input
  and threshold 2 fires at :math:`1 + \max(0, z)`; its relay fires at 1: the value
  :math:`\max(0, z)` after the new reference, the input code of the next affine layer.
* *Padding*: the ReLU network pads with the value 0, which is a spike *at the reference* (not
  ``inf``): ``pad_time`` of :func:`jaxsnn.conv.srm_conv`.
* *Output*: the last affine layer (no ReLU) gives :math:`z = 1 - t`.

**Assumptions.** (1) Inputs lie in the box ``input_range = (lo, hi)`` (per feature for a dense
first layer, per channel for a convolutional one; the encoder raises outside it). Inputs are coded
as :math:`x - lo` (for a convolutional first layer the box is widened to contain 0, the padding
value, and :math:`lo` is folded into the biases: :math:`b + \sum_{ijc} lo_c K_{ijco}`). (2) The
value bounds :math:`H` of every layer are propagated by interval arithmetic (:math:`z \le b +
W^+ H`), so each layer has its own time scale :math:`K` (the per-layer scaling): the construction
is exact on the box, and the output time after the input's reference is :attr:`SpikingNetwork.latency`
:math:`+ 1 - z`, growing with the bounds. (3) No quantization: continuous spike times.
Size: per ReLU layer ``2 n + 2`` neurons (affine, clamp, two relays; ``n`` units), ``n + 1`` for
the last layer; no delays.

The converted network keeps its trainable parameters as plain arrays (``params``: per affine layer
``kernel``, ``ref_weights``, ``threshold``), so ``jax.grad`` of a loss of
:meth:`SpikingNetwork.apply` gives the exact spike-time gradients. To fine-tune, train ``kernel``
and ``threshold`` and derive the reference weights from the kernel (:func:`tie_reference_weights`):
every neuron then keeps slope 1 after its inputs and the gradient of a weight is its input's value,
as in the ReLU network. With free reference weights the weight gradients scale with the layer's
time scale :math:`K`, and a few small steps already scramble the outputs.

References: Stanojevic et al., *High-performance deep spiking neural networks with 0.3 spikes per
neuron*, Nature Communications 2024 (exact mapping of ReLU networks, incl. convolutional ones, to
TTFS networks, then fine-tuning); Singh, Fono & Kutyniok, *Expressivity of Spiking Neural
Networks*, arXiv 2308.08218 (ReLU emulation by LSRM networks).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxsnn import conv, srm
from jaxsnn._internal import fail, is_concrete

__all__ = ["Dense", "Conv", "MaxPool", "Flatten", "relu_network", "convert", "SpikingNetwork", "layers_from_flax",
           "clamp", "value_bounds", "tie_reference_weights"]


@dataclasses.dataclass(frozen=True, eq=False)
class Dense:
    """A dense layer ``h @ W + b``: ``W [n_in, n_out]``, ``b [n_out]``."""

    W: Any
    b: Any


@dataclasses.dataclass(frozen=True, eq=False)
class Conv:
    """A convolution (NHWC, ``kernel [KH, KW, C, O]`` HWIO, ``bias [O]``), zero padding as
    :class:`flax.linen.Conv` (``"SAME"``, ``"VALID"``, an int or ``((top, bottom), (left, right))``)."""

    kernel: Any
    bias: Any
    strides: Any = 1
    padding: Any = "VALID"


@dataclasses.dataclass(frozen=True)
class MaxPool:
    """Max pooling of values (padding ``-inf``, as :func:`flax.linen.max_pool`; ``strides=None`` is the
    window, unlike flax's default 1); callable on values, so it can stand in a :class:`flax.linen.Sequential`."""

    window: Any
    strides: Any = None
    padding: Any = "VALID"

    def __call__(self, h):
        return -conv.min_time_pool(-h, self.window, self.strides, self.padding)


@dataclasses.dataclass(frozen=True)
class Flatten:
    """``[..., H, W, C] -> [..., H W C]`` (row-major, as ``x.reshape(n, -1)``); callable."""

    def __call__(self, h):
        return h.reshape(h.shape[:-3] + (-1,))


def _layer(layer):
    if isinstance(layer, (Dense, Conv, MaxPool, Flatten)):
        return layer
    if isinstance(layer, (tuple, list)) and len(layer) == 2:
        return Dense(*layer)
    raise fail("layers", "Dense, Conv, MaxPool, Flatten or (W, b) entries", type(layer).__name__)


def relu_network(layers: Sequence[Any], x: ArrayLike) -> jax.Array:
    r"""The ReLU network of a layer list: :math:`h \mapsto \max(0, h W + b)` (dense),
    :math:`\max(0, K * h + b)` (convolution, zero padding), max pooling and flattening, with no
    ReLU after the last dense or convolutional layer.

    Args:
      layers: :class:`Dense` (or ``(W, b)``), :class:`Conv`, :class:`MaxPool`, :class:`Flatten`.
      x: ``[..., d]`` or ``[..., H, W, C]``.

    >>> import jax.numpy as jnp
    >>> relu_network([Dense(jnp.eye(2), jnp.array([0.0, -1.0])), Dense(jnp.ones((2, 1)), jnp.zeros(1))],
    ...              jnp.array([0.5, 0.5]))
    Array([0.5], dtype=float32)
    """
    return _relu_values(layers, x)[-1]


def _relu_values(layers, x) -> list:
    """The values after each layer of :func:`relu_network` (the last one: its output)."""
    layers = [_layer(layer) for layer in layers]
    last = max(i for i, layer in enumerate(layers) if isinstance(layer, (Dense, Conv)))
    h, values = jnp.asarray(x, jnp.result_type(x, float)), []
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense):
            h = h @ jnp.asarray(layer.W, h.dtype) + jnp.asarray(layer.b, h.dtype)
        elif isinstance(layer, Conv):
            batch = h.shape[:-3]
            k = jnp.asarray(layer.kernel, h.dtype)
            pads = layer.padding if isinstance(layer.padding, str) else _pads(layer.padding)
            h = jax.lax.conv_general_dilated(h.reshape((-1,) + h.shape[-3:]), k, _pair(layer.strides), pads,
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            h = h.reshape(batch + h.shape[1:]) + jnp.asarray(layer.bias, h.dtype)
        else:
            h = layer(h)
        if isinstance(layer, (Dense, Conv)) and i < last:
            h = jnp.maximum(h, 0.0)
        values.append(h)
    return values


def value_bounds(layers: Sequence[Any], x: ArrayLike) -> list:
    r"""The largest value entering each dense or convolutional layer but the first, on the data ``x``.

    For ``convert(layers, input_range, value_bounds=...)``: bounds measured on data (e.g. the training
    set, as Stanojevic et al. 2024 normalise by the data) are far tighter than the interval bounds
    :func:`convert` derives otherwise, so the time scales are smaller and float32 suffices. For a
    large dataset, take ``np.maximum`` of the bounds of its batches.

    Returns:
      one float per affine layer after the first: the maximum over ``x`` of the ReLU output that
      feeds it (max pooling and flattening keep the maximum).

    >>> import jax.numpy as jnp
    >>> value_bounds([Dense(jnp.array([[1.0, -1.0]]), jnp.zeros(2)), Dense(jnp.ones((2, 1)), jnp.zeros(1))],
    ...              jnp.array([[0.5], [-0.25]]))
    [0.5]
    """
    layers = [_layer(layer) for layer in layers]
    values = _relu_values(layers, x)
    affine = [i for i, layer in enumerate(layers) if isinstance(layer, (Dense, Conv))]
    return [max(0.0, float(jnp.max(values[i]))) for i in affine[:-1]]


def _pair(v):
    return (int(v), int(v)) if np.ndim(v) == 0 else tuple(int(a) for a in v)


def _pads(padding):
    return ((int(padding),) * 2,) * 2 if np.ndim(padding) == 0 else tuple(_pair(p) for p in padding)


@dataclasses.dataclass(frozen=True, eq=False)
class SpikingNetwork:
    """The SRM network made by :func:`convert`.

    ``net(x)`` encodes ``x`` (:meth:`encode`: times ``x - lo`` after the input's reference spike),
    runs the spiking layers (:meth:`spike_times`) and decodes ``z = 1 - t`` (:meth:`decode`).
    :meth:`apply` takes the parameters explicitly (``jax.grad`` with respect to them works).
    ``params`` holds per dense or convolutional layer ``kernel`` (``-W``), ``ref_weights``
    (:math:`1 + \\sum_i W_{io}`) and ``threshold``; ``ops`` is the static structure; ``latency`` the
    sum of the layers' relay times (the output spikes at ``latency + t`` after the input reference).
    """

    params: tuple
    ops: tuple
    lo: np.ndarray
    hi: np.ndarray
    shift: np.ndarray
    latency: float

    def encode(self, x: ArrayLike) -> jax.Array:
        """Input spike times ``x - shift`` (after the reference spike at 0); raises for concrete ``x``
        outside the box ``[lo, hi]``."""
        x = jnp.asarray(x, jnp.result_type(x, float))
        if is_concrete(x):
            xn, tol = np.asarray(x), 1e-12 * (1.0 + np.abs(self.hi - self.lo))
            if np.any(xn < self.lo - tol) or np.any(xn > self.hi + tol):
                raise fail("x", f"values inside input_range [{self.lo.min()}, {self.hi.max()}] where the "
                           "conversion is exact", f"values in [{xn.min()}, {xn.max()}]")
        return x - jnp.asarray(self.shift, x.dtype)

    def spike_times(self, params: Sequence[dict], t_in: ArrayLike, *,
                    return_layers: bool = False) -> Union[jax.Array, tuple[jax.Array, tuple]]:
        """Output spike times (each layer's times after its reference spike) for input times ``t_in``.

        With ``return_layers``: ``(t, layers)``, ``layers[k]`` the spike times after ``ops[k]`` (one
        entry per operation, pooling and flattening included; ``layers[-1]`` is ``t``), e.g. to
        count the spikes of every layer.
        """
        t, k, layers = jnp.asarray(t_in), 0, []
        for op in self.ops:
            if op[0] == "clamp":
                t = clamp(t) - 1.0  # measured from the clamp layer's relay (time 1)
            elif op[0] == "pool":
                t = conv.min_time_pool(t, *op[1:])
            elif op[0] == "flatten":
                t = t.reshape(t.shape[:-3] + (-1,))
            else:
                p, k = params[k], k + 1
                if op[0] == "conv":
                    t = conv.srm_conv(t, p["kernel"], p["threshold"], strides=op[1], padding=op[2], pad_time=op[3],
                                      bias_time=0.0, bias_weights=p["ref_weights"])
                else:
                    ref = jnp.zeros(t.shape[:-1] + (1,), t.dtype)
                    w = jnp.concatenate([p["kernel"], p["ref_weights"][None]], axis=0)
                    t = srm.first_spike_times(jnp.concatenate([t, ref], axis=-1), w, p["threshold"])
                t = t - op[-1]  # measured from the relay spike, the next reference
            layers.append(t)
        return (t, tuple(layers)) if return_layers else t

    def decode(self, t: ArrayLike) -> jax.Array:
        """Values ``z = 1 - t`` of the last layer."""
        return 1.0 - t

    def apply(self, params: Sequence[dict], x: ArrayLike) -> jax.Array:
        """``decode(spike_times(params, encode(x)))``, the ReLU network's output on the box."""
        return self.decode(self.spike_times(params, self.encode(x)))

    def __call__(self, x: ArrayLike) -> jax.Array:
        return self.apply(self.params, x)


CLAMP_WEIGHTS = ((-1.0,), (2.0,))  # from the unit, from the reference
CLAMP_THRESHOLD = 2.0


def clamp(t: ArrayLike) -> jax.Array:
    r"""Spike times of the clamp neurons: SRM neurons (ReLU response) with weight 2 from the reference
    spike at 0, weight -1 from their input at ``t`` and threshold 2 (``CLAMP_WEIGHTS``,
    ``CLAMP_THRESHOLD``). Their potential is :math:`2s - (s - t)_+`, so (clamp lemma of
    :mod:`jaxsnn.theory`) they fire at

    .. math:: \max(1,\ 2 - t) = 1 + \max(0, 1 - t),

    the closed form that :func:`jaxsnn.srm.first_spike_times` returns for them, evaluated here
    elementwise, with the same gradient (-1 where ``t < 1``, else 0).

    >>> import jax.numpy as jnp
    >>> clamp(jnp.array([0.25, 1.0, 3.0]))
    Array([1.75, 1.  , 1.  ], dtype=float32)
    """
    t = jnp.asarray(t)
    return jnp.where(t < 1.0, 2.0 - t, 1.0)  # at t = 1 it fires at the reference's crossing: gradient 0


def _box(lo, hi, n):
    lo = np.broadcast_to(np.asarray(lo, np.float64), (n,)).copy()
    hi = np.broadcast_to(np.asarray(hi, np.float64), (n,)).copy()
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi > lo)):
        raise fail("input_range", "finite (lo, hi) with hi > lo, scalars or one per input feature/channel",
                   f"({lo}, {hi})")
    return lo, hi


def convert(layers: Sequence[Any], input_range: tuple = (0.0, 1.0), *,
            value_bounds: Optional[Sequence[float]] = None) -> SpikingNetwork:
    r"""An SRM network (ramp response) computing a ReLU network exactly on an input box.

    ``layers`` is the ReLU network of :func:`relu_network`; the mapping (window and clamp lemmas,
    one reference spike per layer, max pooling as the earliest spike, zero padding as a spike at the
    reference), its assumptions and references are in the module docstring. For every ``x`` in the
    box, ``convert(layers, input_range)(x) == relu_network(layers, x)`` up to rounding, so the
    predictions (``argmax``) agree.

    Args:
      layers: list of :class:`Dense` (or ``(W, b)``), :class:`Conv`, :class:`MaxPool`,
        :class:`Flatten`; the first is dense or convolutional.
      input_range: ``(lo, hi)``: scalars, or one per feature (dense first layer) or per channel
        (convolutional first layer).
      value_bounds: optional, one bound per dense or convolutional layer after the first: the
        largest value entering it (e.g. :func:`value_bounds` of the training data). Default: the
        interval bounds (exact on the whole box, but they grow layer by layer: large time scales,
        which float32 resolves poorly in deep networks). With measured bounds the network is exact
        for the inputs whose values stay within them (and the slack of 2 in each time scale).

    Returns:
      :class:`SpikingNetwork`.

    Raises:
      ValueError: an empty list, a pooling or flattening layer first, a dense layer on an
        unflattened map, mismatched sizes, non-finite weights, an empty box.

    >>> import jax.numpy as jnp
    >>> layers = [Conv(jnp.ones((2, 2, 1, 1)), jnp.array([-1.0]), padding="SAME"), MaxPool(2), Flatten(),
    ...           Dense(jnp.array([[2.0]]), jnp.array([0.5]))]
    >>> x = jnp.array([[[0.2], [0.9]], [[0.4], [0.1]]])
    >>> net = convert(layers, (0.0, 1.0))
    >>> bool(jnp.allclose(net(x), relu_network(layers, x), atol=1e-5)), relu_network(layers, x)
    (True, Array([1.7], dtype=float32))
    """
    layers = [_layer(layer) for layer in layers]
    if not layers or not isinstance(layers[0], (Dense, Conv)):
        raise fail("layers", "a non-empty list starting with a dense or convolutional layer", repr(layers[:1]))
    last = max(i for i, layer in enumerate(layers) if isinstance(layer, (Dense, Conv)))
    first_conv = isinstance(layers[0], Conv)
    n0 = np.shape(layers[0].kernel)[2] if first_conv else np.shape(layers[0].W)[0]
    lo, hi = _box(*input_range, n0)
    shift = np.minimum(lo, 0.0) if first_conv else lo  # a conv pads with 0: the box must contain it
    H = float(np.max(np.maximum(hi, 0.0) - shift))
    n_affine = sum(isinstance(layer, (Dense, Conv)) for layer in layers)
    if value_bounds is not None:
        bounds = np.asarray(value_bounds, np.float64).reshape(-1)
        if bounds.shape != (n_affine - 1,) or not np.all(np.isfinite(bounds) & (bounds >= 0)):
            raise fail("value_bounds", f"{n_affine - 1} finite non-negative values (one per affine layer after "
                       "the first)", f"{np.asarray(value_bounds)}")
    n_done = 0
    params, ops, latency, pending_relu, width, spatial, flat = [], [], 0.0, False, n0, first_conv, False
    for i, layer in enumerate(layers):
        if isinstance(layer, (MaxPool, Flatten)):
            if not spatial:
                raise fail(f"layers[{i}]", "a feature map [..., H, W, C] (before any Flatten)", type(layer).__name__)
            ops.append(("flatten",) if isinstance(layer, Flatten) else ("pool", layer.window, layer.strides,
                                                                            layer.padding))
            spatial, flat = not isinstance(layer, Flatten), isinstance(layer, Flatten)
            continue
        if pending_relu:
            ops.append(("clamp",))
            latency += 1.0
        if isinstance(layer, Conv):
            Wk, b = np.asarray(layer.kernel, np.float64), np.asarray(layer.bias, np.float64)
            if Wk.ndim != 4 or not spatial:
                raise fail(f"layers[{i}].kernel", "[KH, KW, C, O] on a feature map", f"shape {Wk.shape}")
            n_in, n_out = Wk.shape[2], Wk.shape[3]
            W = Wk.reshape(-1, n_out)
        else:
            W, b = np.asarray(layer.W, np.float64), np.asarray(layer.b, np.float64)
            if W.ndim != 2 or spatial:
                raise fail(f"layers[{i}].W", "[n_in, n_out] on a flat input (Flatten a map first)", f"shape {W.shape}")
            n_in, n_out = W.shape
        # after a Flatten the width is H W C: only divisibility by the channels can be checked
        if b.shape != (n_out,) or (n_in % width if flat else n_in != width):
            raise fail(f"layers[{i}]", f"{width} input features/channels and a bias of shape ({n_out},)",
                       f"{n_in} and {b.shape}")
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            raise fail(f"layers[{i}]", "finite weights and bias", "NaN or inf")
        if value_bounds is not None and n_done > 0:
            H = float(bounds[n_done - 1])
        n_done += 1
        if i == 0:  # values are coded as x - shift: fold the shift into the bias
            b = b + (np.einsum("hwco,c->o", Wk, shift) if first_conv else shift @ W)
        ref_w = 1.0 + W.sum(0)
        w_plus = np.maximum(-W, 0.0).sum(0) + np.maximum(ref_w, 0.0)
        K = max(0.0, float(np.max(b + w_plus * H))) + 2.0
        kernel = -(Wk if isinstance(layer, Conv) else W)
        params.append({"kernel": jnp.asarray(kernel), "ref_weights": jnp.asarray(ref_w),
                       "threshold": jnp.asarray(K - b)})
        if isinstance(layer, Conv):
            pad_time = jnp.asarray(-shift) if i == 0 else 0.0  # the value 0, at the reference
            ops.append(("conv", _pair(layer.strides), layer.padding if isinstance(layer.padding, str)
                        else _pads(layer.padding), pad_time, K - 1.0))
        else:
            ops.append(("dense", K - 1.0))
        latency += K - 1.0
        H = max(0.0, float(np.max(b + np.maximum(W, 0.0).sum(0) * H)))
        pending_relu, width, flat = i < last, n_out, False
    return SpikingNetwork(tuple(params), tuple(ops), lo, hi, shift, latency)


def tie_reference_weights(params: Sequence[dict]) -> tuple:
    r"""Parameters of :meth:`SpikingNetwork.apply` whose reference weights follow the kernels.

    ``ref_weights`` :math:`= 1 - \sum_i \mathrm{kernel}_{io}` (:math:`1 + \sum_i W_{io}` of
    :func:`convert`), summed over the neuron's inputs (all axes of the kernel but the last); each
    dict of ``params`` needs ``kernel`` and ``threshold``. Fine-tune ``kernel`` and ``threshold``
    and apply ``net.apply(tie_reference_weights(params), x)``.

    >>> import jax.numpy as jnp
    >>> tie_reference_weights([{"kernel": -jnp.ones((3, 2)), "threshold": jnp.ones(2)}])[0]["ref_weights"]
    Array([4., 4.], dtype=float32)
    """
    return tuple(dict(p, ref_weights=1.0 - jnp.sum(p["kernel"], axis=tuple(range(jnp.ndim(p["kernel"]) - 1))))
                 for p in params)


def layers_from_flax(module: Any, variables: dict) -> list:
    """The layer list of a :class:`flax.linen.Sequential` of ``nn.Dense``, ``nn.Conv``, ``nn.relu``,
    ``nn.max_pool`` (a ``functools.partial``), :class:`MaxPool` and :class:`Flatten`, with its
    ``variables`` (``{"params": ...}`` or the params); checks that a ReLU follows every dense or
    convolutional layer but the last (pooling and flattening may stand between).

    >>> import jax, jax.numpy as jnp, flax.linen as nn
    >>> model = nn.Sequential([nn.Conv(2, (3, 3)), nn.relu, MaxPool(2), Flatten(), nn.Dense(3)])
    >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 1)))
    >>> [type(layer).__name__ for layer in layers_from_flax(model, variables)]
    ['Conv', 'MaxPool', 'Flatten', 'Dense']
    """
    import flax.linen as nn

    params = variables.get("params", variables)
    out, relu_ok, affine = [], [], []
    for i, layer in enumerate(module.layers):
        p = params.get(f"layers_{i}", {})
        if isinstance(layer, nn.Dense):
            out.append(Dense(p["kernel"], p.get("bias", np.zeros(layer.features))))
        elif isinstance(layer, nn.Conv):
            if (layer.kernel_dilation not in (None, 1, (1, 1)) or layer.input_dilation not in (None, 1, (1, 1))
                    or layer.feature_group_count != 1):
                raise fail(f"layers[{i}]", "a plain nn.Conv (no dilation, no feature groups)", repr(layer))
            pad = layer.padding
            pad = pad if isinstance(pad, (str, int)) else tuple(_pair(q) for q in pad)
            out.append(Conv(p["kernel"], p.get("bias", np.zeros(layer.features)), layer.strides or 1, pad))
        elif layer in (nn.relu, jax.nn.relu):
            relu_ok.append(len(out))
            continue
        elif isinstance(layer, functools.partial) and layer.func is nn.max_pool:
            kw = dict(zip(("window_shape", "strides", "padding"), layer.args), **layer.keywords)
            # flax's max_pool strides default to 1 (MaxPool's to the window)
            out.append(MaxPool(kw["window_shape"], kw.get("strides") or 1, kw.get("padding", "VALID")))
        elif isinstance(layer, (MaxPool, Flatten)):
            out.append(layer)
        else:
            raise fail(f"layers[{i}]", "nn.Dense, nn.Conv, nn.relu, nn.max_pool, MaxPool or Flatten", repr(layer))
        if isinstance(out[-1], (Dense, Conv)):
            affine.append(len(out) - 1)
    # one ReLU between consecutive affine layers, none before the first nor after the last
    bounds = list(zip(affine, affine[1:])) + [(affine[-1], len(out) + 1)] if affine else []
    counts = [sum(a < r <= n for r in relu_ok) for a, n in bounds]
    if not affine or counts != [1] * (len(counts) - 1) + [0] or any(r <= affine[0] for r in relu_ok):
        raise fail("module", "nn.relu after every Dense/Conv but the last, and nowhere else", "another pattern")
    return out

