r"""Convolution and pooling for time-to-first-spike networks: SRM and LIF layers on image patches.

A convolutional layer of spiking neurons is a dense layer applied to every patch of its input
with shared weights. With input spike times ``t [..., H, W, C]`` (NHWC) and a kernel
``K [KH, KW, C, O]`` (HWIO, as :class:`flax.linen.Conv`), output neuron ``(y, x, o)`` receives the
patch

.. math::

    p_{yx} = \big(t_{s_h y + i - \pi_t,\; s_w x + j - \pi_l,\; c}\big)_{i < KH,\, j < KW,\, c < C}

(strides :math:`s`, leading padding :math:`\pi`), flattened in the order ``(i, j, c)`` of the
kernel's rows, through the weights ``K.reshape(KH * KW * C, O)``. So

.. math::

    \texttt{srm\_conv}(t, K, \theta)_{yxo} = \texttt{first\_spike\_times}(p_{yx}, K_{(ijc), o}, \theta)_o

and likewise :func:`lif_conv` with :func:`jaxsnn.lif.spike_times`. The patches are gathered by
strided slices (an exact gather: no arithmetic touches the times), and the exact gradients of
both layers come from the layer functions' ``custom_vjp``; the gather's transpose sums them back
onto the input times.

**Padding is a time, not a value.** A padded input must not act on the neuron, i.e. it must never
spike: the inputs are padded with ``inf`` (``pad_time``; a finite ``pad_time`` makes the padded
inputs spike then, which :mod:`jaxsnn.theory.conversion` uses for a value-0 padding). Zero
padding would be an input spike at ``t = 0``. Note that
:func:`jax.lax.conv_general_dilated_patches` cannot be used on spike times: it gathers by a
convolution with a one-hot filter, and ``0 * inf`` is NaN.

**Pooling.** With time-to-first-spike coding (earlier = larger), max pooling of values is the
minimum of the times in each window, :func:`min_time_pool` (padding ``inf``, as
:func:`flax.linen.max_pool` pads with ``-inf``). It has no parameters and its gradient goes to the
earliest spike. Average pooling has no such form: the mean of the times is defined only when every
input of the window spikes (a silent input, ``inf``, would make it ``inf``), and a neuron can only
output the mean once it has received its last input. An SRM neuron with the uniform weights
:math:`c` computes :math:`\theta/(n c) + \bar t` only under the window lemma of
:mod:`jaxsnn.theory` (inputs in a known window :math:`[A, B]` and :math:`\theta > n c (B - A)`);
otherwise it fires on the earliest inputs (the subset formula). So average pooling is a
(depthwise) :func:`srm_conv` with a fixed kernel and a large threshold, valid on a bounded input
window, not a pooling operation; no function for it is offered.

References: Singh, Fono & Kutyniok, *Expressivity of Spiking Neural Networks*, arXiv 2308.08218
(SRM); Göltz et al., Nat. Mach. Intell. 2021 and Bacho & Chu, Neural Computation 2023 (LIF);
Stanojevic et al., *High-performance deep spiking neural networks with 0.3 spikes per neuron*,
Nature Communications 2024 (convolutional TTFS networks, max pooling as the earliest spike).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxsnn import lif, srm
from jaxsnn._internal import fail
from jaxsnn.lif.config import Config

__all__ = ["patches", "srm_conv", "lif_conv", "min_time_pool", "conv_output_shape", "Padding"]

Padding = Union[str, int, Sequence[tuple[int, int]]]


def _pair(name, v):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (int(v), int(v))
    v = tuple(v)
    if len(v) != 2 or not all(isinstance(a, (int, np.integer)) and a >= 1 for a in v):
        raise fail(name, "a positive int or a pair of positive ints", repr(v))
    return tuple(int(a) for a in v)


def _pads(hw, window, strides, padding):
    """``((top, bottom), (left, right))`` for ``padding`` ``"SAME"``, ``"VALID"``, an int or two pairs."""
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise fail("padding", "'SAME', 'VALID', an int or ((top, bottom), (left, right))", repr(padding))
        return tuple(tuple(int(a) for a in p) for p in jax.lax.padtype_to_pads(hw, window, strides, padding.upper()))
    if isinstance(padding, (int, np.integer)):
        return ((int(padding),) * 2,) * 2
    pads = tuple(tuple(int(a) for a in p) for p in padding)
    if len(pads) != 2 or any(len(p) != 2 or min(p) < 0 for p in pads):
        raise fail("padding", "((top, bottom), (left, right)) of non-negative ints", repr(padding))
    return pads


def conv_output_shape(hw: Sequence[int], window: Union[int, Sequence[int]], strides: Union[int, Sequence[int]] = 1,
                      padding: Padding = "VALID") -> tuple[int, int]:
    r"""Spatial output shape ``(H', W')`` of a convolution or pooling window.

    :math:`H' = \lfloor (H + \pi_t + \pi_b - KH) / s_h \rfloor + 1` (likewise ``W'``); ``"SAME"``
    pads so that :math:`H' = \lceil H / s_h \rceil`, as :func:`jax.lax.conv_general_dilated`.

    >>> conv_output_shape((5, 5), 3, 2, "SAME"), conv_output_shape((5, 5), 3, 1, "VALID")
    ((3, 3), (3, 3))
    """
    window, strides = _pair("window", window), _pair("strides", strides)
    pads = _pads(tuple(hw), window, strides, padding)
    out = tuple((n + sum(p) - k) // s + 1 for n, p, k, s in zip(hw, pads, window, strides))
    if min(out) < 1:
        raise fail("window", f"at most the padded input size {tuple(n + sum(p) for n, p in zip(hw, pads))}",
                   repr(window))
    return out


def _windows(t, window, strides, padding, pad_time, n_trailing):
    """``t [..., H, W, *trailing]`` (``n_trailing`` axes after ``W``) -> ``[..., H', W', KH * KW, *trailing]``,
    the windows in the order ``(i, j)``; padded entries are ``pad_time`` (broadcast against ``trailing``)."""
    window, strides = _pair("window", window), _pair("strides", strides)
    ax = t.ndim - n_trailing - 2  # the H axis
    if ax < 0:
        raise fail("t_in", f"at least {n_trailing + 2} axes (H, W and {n_trailing} more)", f"shape {t.shape}")
    hw = t.shape[ax:ax + 2]
    (pt, pb), (pl, pr) = _pads(hw, window, strides, padding)
    ho, wo = conv_output_shape(hw, window, strides, ((pt, pb), (pl, pr)))
    if pt or pb or pl or pr:
        shape = t.shape[:ax] + (hw[0] + pt + pb, hw[1] + pl + pr) + t.shape[ax + 2:]
        full = jnp.broadcast_to(jnp.asarray(pad_time, t.dtype), shape)
        t = jax.lax.dynamic_update_slice(full, t, (0,) * ax + (pt, pl) + (0,) * n_trailing)
    (kh, kw), (sh, sw) = window, strides
    parts = [jax.lax.slice_in_dim(jax.lax.slice_in_dim(t, i, i + sh * (ho - 1) + 1, sh, axis=ax),
                                  j, j + sw * (wo - 1) + 1, sw, axis=ax + 1)
             for i in range(kh) for j in range(kw)]
    return jnp.stack(parts, axis=ax + 2)


def patches(t_in: ArrayLike, window: Union[int, Sequence[int]], strides: Union[int, Sequence[int]] = 1,
            padding: Padding = "VALID", *, pad_time: ArrayLike = jnp.inf, spike_axis: bool = False) -> jax.Array:
    r"""The input patches of a convolution, gathered exactly (strided slices), padded with ``pad_time``.

    ``patches(t)[..., y, x, (i * KW + j) * C + c] = t[..., s_h y + i - \pi_t, s_w x + j - \pi_l, c]``, the
    row order of ``kernel.reshape(KH * KW * C, O)`` for an HWIO kernel.

    Args:
      t_in: spike times ``[..., H, W, C]``, or ``[..., H, W, C, k]`` with ``spike_axis`` (LIF trains).
      window: ``(KH, KW)`` or an int.
      strides: ``(s_h, s_w)`` or an int.
      padding: ``"SAME"``, ``"VALID"``, an int or ``((top, bottom), (left, right))``.
      pad_time: time of the padded inputs: ``inf`` (never spike), a scalar or ``[C]`` (per channel).
      spike_axis: ``t_in`` has a trailing spike axis ``k`` (kept last).

    Returns:
      ``[..., H', W', KH * KW * C]`` (``[..., H', W', KH * KW * C, k]`` with ``spike_axis``).

    >>> import jax.numpy as jnp
    >>> t = jnp.arange(4.0).reshape(2, 2, 1)
    >>> patches(t, 2, padding=((0, 1), (0, 0)))
    Array([[[ 0.,  1.,  2.,  3.]],
    <BLANKLINE>
           [[ 2.,  3., inf, inf]]], dtype=float32)
    """
    t = jnp.asarray(t_in, jnp.result_type(t_in, float))
    n_tr = 2 if spike_axis else 1
    pad = jnp.asarray(pad_time, t.dtype)
    if spike_axis and pad.ndim:
        pad = pad[..., None]
    w = _windows(t, window, strides, padding, pad, n_tr)
    return w.reshape(w.shape[:t.ndim - n_tr] + (-1,) + w.shape[t.ndim - n_tr + 2:])


def _check_kernel(t, kernel, c_axis):
    if jnp.ndim(kernel) != 4:
        raise fail("kernel", "shape [KH, KW, C_in, C_out] (HWIO)", f"shape {jnp.shape(kernel)}")
    if jnp.ndim(t) < -c_axis + 2 or jnp.shape(t)[c_axis] != jnp.shape(kernel)[2]:
        dims = "[..., H, W, C_in]" if c_axis == -1 else "[..., H, W, C_in, k_in]"
        raise fail("t_in", f"shape {dims} with C_in = {jnp.shape(kernel)[2]} (kernel's I axis)",
                   f"shape {jnp.shape(t)}")


def srm_conv(t_in: ArrayLike, kernel: ArrayLike, threshold: ArrayLike, *, strides: Union[int, Sequence[int]] = 1,
             padding: Padding = "VALID", response: str = "ramp", delta: ArrayLike = jnp.inf,
             delays: Optional[ArrayLike] = None, bias_time: Optional[ArrayLike] = None,
             bias_weights: Optional[ArrayLike] = None, pad_time: ArrayLike = jnp.inf) -> jax.Array:
    r"""First spike times of a convolutional layer of SRM neurons (closed form, exact gradients).

    .. math::

        t_{yxo} = \inf\Big\{t : \sum_{i,j,c} K_{ijco}\,\varepsilon(t - p_{yx,ijc}) +
        b_o\,\varepsilon(t - t_b) \ge \theta_o\Big\}

    over the patch :math:`p_{yx}` of the input (see the module docstring), i.e.
    :func:`jaxsnn.srm.first_spike_times` on :func:`patches` with ``kernel.reshape(KH * KW * C, O)``.

    Args:
      t_in: input spike times ``[..., H, W, C]`` (NHWC; ``inf``: no spike).
      kernel: weights ``[KH, KW, C, O]`` (HWIO, as :class:`flax.linen.Conv`).
      threshold: positive scalar or ``[O]``.
      strides: ``(s_h, s_w)`` or an int.
      padding: ``"SAME"``, ``"VALID"``, an int or ``((top, bottom), (left, right))``.
      response: the response shape, ``"ramp"`` or ``"step"`` (``kernel`` of
        :func:`jaxsnn.srm.first_spike_times`).
      delta: response length (``inf``: the ReLU response).
      delays: optional per-synapse delays ``[KH, KW, C, O]``.
      bias_time: optional extra input spike shared by every position of a sample (the bias or
        reference spike): a scalar or the batch shape ``[...]``.
      bias_weights: its weights ``[O]`` (required with ``bias_time``).
      pad_time: time of the padded inputs, ``inf`` (default: they never spike), scalar or ``[C]``.

    Returns:
      ``[..., H', W', O]`` first spike times.

    Example: a 2x2 input with every pixel at ``t = 0``, one 2x2 kernel of ones and threshold 2:
    with ``"SAME"`` padding the corner neuron sees all 4 inputs (fires at 0.5), the others fewer:

    >>> import jax.numpy as jnp
    >>> from jaxsnn import conv
    >>> conv.srm_conv(jnp.zeros((2, 2, 1)), jnp.ones((2, 2, 1, 1)), 2.0, padding="SAME")[..., 0]
    Array([[0.5, 1. ],
           [1. , 2. ]], dtype=float32)
    """
    _check_kernel(t_in, kernel, -1)
    kh, kw, c, o = jnp.shape(kernel)
    p = patches(t_in, (kh, kw), strides, padding, pad_time=pad_time)
    w = jnp.reshape(kernel, (kh * kw * c, o))
    d = None if delays is None else jnp.reshape(delays, (kh * kw * c, o))
    if (bias_time is None) != (bias_weights is None):
        raise fail("bias_weights", "given together with bias_time", "only one of them")
    if bias_time is not None:
        b = jnp.asarray(bias_time, p.dtype)
        b = jnp.broadcast_to(b.reshape(b.shape + (1, 1, 1)), p.shape[:-1] + (1,))
        p = jnp.concatenate([p, b], axis=-1)
        w = jnp.concatenate([w, jnp.reshape(bias_weights, (1, o)).astype(w.dtype)], axis=0)
        if d is not None:
            d = jnp.concatenate([d, jnp.zeros((1, o), d.dtype)], axis=0)
    return srm.first_spike_times(p, w, threshold, delays=d, kernel=response, delta=delta)


def lif_conv(t_in: ArrayLike, kernel: ArrayLike, *, tau_syn: ArrayLike, threshold: ArrayLike,
             strides: Union[int, Sequence[int]] = 1, padding: Padding = "VALID", tau_ratio: int = 2,
             max_spikes: int = 1, t_max: ArrayLike = jnp.inf, dt: Optional[ArrayLike] = None,
             estimator: str = "straight_through", config: Optional[Config] = None) -> jax.Array:
    r"""Exact spike times of a convolutional layer of current-based LIF neurons (single or multi spike).

    Neuron ``(y, x, o)`` is the LIF neuron of :func:`jaxsnn.lif.spike_times` (:math:`\dot u = -u/\tau_m + i`,
    :math:`\dot i = -i/\tau_s`, an input spike adds its weight to ``i``, soft reset) whose inputs are the
    spike trains of its patch :math:`p_{yx}`, through the weights ``kernel.reshape(KH * KW * C, O)``;
    padded inputs never spike.

    Args:
      t_in: input spike trains ``[..., H, W, C, k_in]``, ascending and ``inf``-padded along ``k_in``
        (``t[..., None]`` for one spike per input), as :func:`jaxsnn.lif.spike_times`.
      kernel: weights ``[KH, KW, C, O]`` (HWIO).
      strides, padding: as :func:`srm_conv`.
      tau_syn, threshold, tau_ratio, max_spikes, t_max, estimator, config: as
        :func:`jaxsnn.lif.spike_times`.
      dt: the clock step (``None``: continuous time), as :func:`jaxsnn.lif.spike_times`.

    Returns:
      ``[..., H', W', O, max_spikes]``: layers chain directly.

    >>> import jax.numpy as jnp
    >>> from jaxsnn import conv
    >>> t = conv.lif_conv(jnp.zeros((3, 3, 1, 1)), jnp.full((2, 2, 1, 2), 0.8), tau_syn=1.0, threshold=1.0)
    >>> t.shape, bool(jnp.isfinite(t).all())
    ((2, 2, 2, 1), True)
    """
    _check_kernel(t_in, kernel, -2)
    kh, kw, c, o = jnp.shape(kernel)
    p = patches(t_in, (kh, kw), strides, padding, spike_axis=True)
    return lif.spike_times(p, jnp.reshape(kernel, (kh * kw * c, o)), tau_syn=tau_syn, threshold=threshold,
                           tau_ratio=tau_ratio, max_spikes=max_spikes, t_max=t_max, dt=dt, estimator=estimator,
                           config=config)


def min_time_pool(t: ArrayLike, window: Union[int, Sequence[int]], strides: Optional[Union[int, Sequence[int]]] = None,
                  padding: Padding = "VALID", *, max_spikes: Optional[int] = None) -> jax.Array:
    r"""Max pooling for time-to-first-spike codes: the earliest spike of each window.

    .. math:: \tau_{yxc} = \min_{i < KH,\, j < KW} t_{s_h y + i - \pi_t,\; s_w x + j - \pi_l,\; c}

    (padded entries are ``inf``: they never win). With values coded as :math:`t = K - v` this is
    :math:`K - \max v`, max pooling (Stanojevic et al., Nature Communications 2024). With
    ``max_spikes = k`` the input holds spike trains ``[..., H, W, C, k_in]`` and the output keeps
    the ``k`` earliest spikes of the union of each window's trains (for ``k = 1`` the minimum of the
    first spikes). Average pooling has no such form (module docstring).

    Args:
      t: spike times ``[..., H, W, C]`` (or ``[..., H, W, C, k_in]`` with ``max_spikes``).
      window: ``(KH, KW)`` or an int.
      strides: ``(s_h, s_w)`` or an int; ``None``: the window (non-overlapping windows).
      padding: ``"SAME"``, ``"VALID"``, an int or ``((top, bottom), (left, right))``.
      max_spikes: ``None`` (single times) or the static number of spikes kept per output.

    Returns:
      ``[..., H', W', C]`` (or ``[..., H', W', C, max_spikes]``).

    >>> import jax.numpy as jnp
    >>> t = jnp.array([[0.3, 0.1], [jnp.inf, 0.2]])[..., None]
    >>> min_time_pool(t, 2)[..., 0]
    Array([[0.1]], dtype=float32)
    """
    t = jnp.asarray(t, jnp.result_type(t, float))
    strides = window if strides is None else strides
    if max_spikes is None:
        return jnp.min(_windows(t, window, strides, padding, jnp.inf, 1), axis=-2)
    if not isinstance(max_spikes, (int, np.integer)) or isinstance(max_spikes, bool) or max_spikes < 1:
        raise fail("max_spikes", "a positive int (static) or None", repr(max_spikes))
    w = _windows(t, window, strides, padding, jnp.inf, 2)  # [..., H', W', P, C, k]
    w = jnp.moveaxis(w, -3, -2)
    merged = jnp.sort(w.reshape(w.shape[:-2] + (-1,)), axis=-1)[..., :max_spikes]
    short = max_spikes - merged.shape[-1]
    return jnp.pad(merged, [(0, 0)] * (merged.ndim - 1) + [(0, short)], constant_values=math.inf) if short else merged
