"""Flax (linen) convolution and pooling modules for time-to-first-spike networks (:mod:`jaxsnn.conv`).

:class:`SRMConv` and :class:`LIFConv` own an HWIO ``kernel`` (as :class:`flax.linen.Conv`) and call
:func:`jaxsnn.conv.srm_conv` / :func:`jaxsnn.conv.lif_conv`; :class:`MinTimePool` is max pooling of
values, the earliest spike of each window (:func:`jaxsnn.conv.min_time_pool`). The conventions are
those of :mod:`jaxsnn.nn` (``learn_threshold`` stores ``log_threshold``, the SRM response shape is
``response``), whose public initializers they use. Layout NHWC: ``[..., H, W, C]`` for SRM,
``[..., H, W, C, k]`` (``k`` spikes per input) for LIF.

>>> import jax, jax.numpy as jnp
>>> import flax.linen as nn
>>> from jaxsnn import nn_conv
>>> net = nn.Sequential([nn_conv.SRMConv(4, (3, 3), padding="SAME"), nn_conv.MinTimePool((2, 2))])
>>> params = net.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
>>> net.apply(params, jnp.zeros((1, 8, 8, 1))).shape
(1, 4, 4, 4)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxsnn import conv, discretize
from jaxsnn.nn import srm_weight_init, threshold_param, uniform_weight_init

__all__ = ["SRMConv", "LIFConv", "MinTimePool", "conv_kernel_init"]


def conv_kernel_init(dense_init: Callable[..., jax.Array], extra_rows: int = 0) -> Callable[..., jax.Array]:
    r"""An HWIO kernel initializer from a dense ``[n_in, n_out]`` one: the kernel is drawn as the
    ``[KH KW C (+ extra_rows), O]`` weights of the dense layer on the patches (fan-in
    :math:`n_{in} = KH\,KW\,C` plus ``extra_rows``, e.g. a bias spike) and reshaped.

    >>> import jax
    >>> conv_kernel_init(srm_weight_init())(jax.random.key(0), (3, 3, 2, 4)).shape
    (3, 3, 2, 4)
    """

    def init(key, shape, dtype=None):
        n = math.prod(shape[:3])
        return dense_init(key, (n + extra_rows, shape[3]), dtype)[:n].reshape(shape)

    return init




class SRMConv(nn.Module):
    """A convolutional layer of SRM neurons (:func:`jaxsnn.conv.srm_conv`): ``[..., H, W, C]`` spike
    times in, ``[..., H', W', features]`` first-spike times out.

    Attributes:
      features: output channels.
      kernel_size: ``(KH, KW)``.
      strides: ``(s_h, s_w)`` or an int.
      padding: ``"SAME"``, ``"VALID"``, an int or ``((top, bottom), (left, right))``; padded inputs
        never spike.
      threshold: initial (or fixed) firing threshold.
      response: ``"ramp"`` or ``"step"``; delta: response length (``inf``: ReLU response).
      bias_time: if not ``None``, one extra input spike at this time, shared by every position, with
        its own trainable weights ``bias_weights [features]``.
      learn_threshold: learn one threshold per output channel (stored as ``log_threshold``).
      weight_mean, weight_std: of :func:`jaxsnn.nn.srm_weight_init`, with fan-in ``KH KW C``.
      dt: clock step (``None``: continuous time); the output spikes at the end of its bin
        (:func:`jaxsnn.discretize.quantize`). The call argument ``dt`` overrides it.
      estimator: backward pass of the clock.
    """

    features: int
    kernel_size: Sequence[int]
    strides: Union[int, Sequence[int]] = 1
    padding: conv.Padding = "VALID"
    threshold: float = 1.0
    response: str = "ramp"
    delta: float = jnp.inf
    bias_time: Optional[float] = None
    learn_threshold: bool = False
    weight_mean: float = 2.0
    weight_std: float = 1.0
    dt: Optional[float] = None
    estimator: str = "straight_through"

    @nn.compact
    def __call__(self, t_in: jax.Array, dt: Optional[ArrayLike] = None) -> jax.Array:
        dt = self.dt if dt is None else dt
        shape = tuple(self.kernel_size) + (t_in.shape[-1], self.features)
        dense = srm_weight_init(self.weight_mean, self.weight_std, self.threshold)
        extra = 0 if self.bias_time is None else 1
        kernel = self.param("kernel", conv_kernel_init(dense, extra), shape)
        bias = None
        if self.bias_time is not None:
            bias = self.param("bias_weights", lambda k, s: dense(k, (math.prod(shape[:3]) + 1, s[0]))[-1],
                              (self.features,))
        theta = threshold_param(self, self.threshold, self.learn_threshold, self.features)
        if self.is_initializing():  # shapes only: no event loop (nor its compilation) at init
            hw = conv.conv_output_shape(t_in.shape[-3:-1], self.kernel_size, self.strides, self.padding)
            return jnp.full(t_in.shape[:-3] + hw + (self.features,), jnp.inf, kernel.dtype)
        t = conv.srm_conv(t_in, kernel, theta, strides=self.strides, padding=self.padding, response=self.response,
                          delta=self.delta, bias_time=self.bias_time, bias_weights=bias)
        return t if dt is None else discretize.quantize(t, dt, estimator=self.estimator)


class LIFConv(nn.Module):
    """A convolutional layer of current-based LIF neurons (:func:`jaxsnn.conv.lif_conv`): spike trains
    ``[..., H, W, C, k_in]`` in, ``[..., H', W', features, max_spikes]`` out (layers chain).

    Attributes:
      features: output channels.
      kernel_size: ``(KH, KW)``.
      strides, padding: as :class:`SRMConv`.
      tau_syn: synaptic time constant; ``tau_mem = tau_ratio * tau_syn``.
      threshold: firing threshold; learn_threshold: one per channel, stored as ``log_threshold``.
      tau_ratio: 2 or 1.
      max_spikes: spikes kept per neuron (1: time to first spike).
      t_max: spikes after ``t_max`` are dropped.
      weight_low, weight_high: weights start uniform in ``[low, high)``.
      dt: clock step (``None``: continuous); see :func:`jaxsnn.lif.spike_times`. The call argument
        ``dt`` overrides it.
      estimator: backward pass of the clock.
    """

    features: int
    kernel_size: Sequence[int]
    strides: Union[int, Sequence[int]] = 1
    padding: conv.Padding = "VALID"
    tau_syn: float = 0.13
    threshold: float = 1.0
    tau_ratio: int = 2
    learn_threshold: bool = False
    max_spikes: int = 1
    t_max: float = jnp.inf
    weight_low: float = -1.0
    weight_high: float = 1.0
    dt: Optional[float] = None
    estimator: str = "straight_through"

    @nn.compact
    def __call__(self, t_in: jax.Array, dt: Optional[ArrayLike] = None) -> jax.Array:
        if jnp.ndim(t_in) < 4:
            raise ValueError(f"t_in: expected shape [..., H, W, C, k_in], got shape {jnp.shape(t_in)}")
        dt = self.dt if dt is None else dt
        shape = tuple(self.kernel_size) + (t_in.shape[-2], self.features)
        kernel = self.param("kernel", uniform_weight_init(self.weight_low, self.weight_high), shape)
        theta = threshold_param(self, self.threshold, self.learn_threshold, self.features)
        if self.is_initializing():  # shapes only: no event loop at init
            hw = conv.conv_output_shape(t_in.shape[-4:-2], self.kernel_size, self.strides, self.padding)
            return jnp.full(t_in.shape[:-4] + hw + (self.features, self.max_spikes), jnp.inf, kernel.dtype)
        return conv.lif_conv(t_in, kernel, tau_syn=self.tau_syn, threshold=theta, strides=self.strides,
                             padding=self.padding, tau_ratio=self.tau_ratio, max_spikes=self.max_spikes,
                             t_max=self.t_max, dt=dt, estimator=self.estimator)


class MinTimePool(nn.Module):
    """Max pooling of TTFS values: the earliest spike of each window (:func:`jaxsnn.conv.min_time_pool`).

    Attributes:
      window_shape: ``(KH, KW)``.
      strides: ``None`` (the window) or ``(s_h, s_w)``.
      padding: as :func:`jaxsnn.conv.min_time_pool` (padded entries never spike).
      max_spikes: ``None`` for ``[..., H, W, C]`` times; an int for LIF trains ``[..., H, W, C, k]``
        (keeps the ``max_spikes`` earliest spikes of each window).
    """

    window_shape: Sequence[int]
    strides: Optional[Union[int, Sequence[int]]] = None
    padding: conv.Padding = "VALID"
    max_spikes: Optional[int] = None

    @nn.compact
    def __call__(self, t: jax.Array) -> jax.Array:
        return conv.min_time_pool(t, tuple(self.window_shape), self.strides, self.padding,
                                  max_spikes=self.max_spikes)
