"""Flax (linen) modules: thin wrappers around the functional core.

Each module owns its parameters and calls a pure function of :mod:`jaxsnn.srm`; the
functional core stays usable without Flax.
"""

from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsnn import srm

__all__ = ["SRMDense", "SRMMLP", "srm_weight_init"]


def srm_weight_init(mean: float = 2.0, std: float = 1.0, threshold: float = 1.0):
    r"""Initializer for SRM weights ``[n_in, n_out]`` that makes neurons fire at the start.

    .. math::

        w_{uv} \sim \theta\,\mathcal N\!\Big(\frac{\mathrm{mean}}{n_{in}},
        \frac{\mathrm{std}^2}{n_{in}}\Big)

    With the ramp kernel and ``delta = inf`` a neuron fires as soon as the summed weight of its
    arrived inputs is positive, at :math:`t = \bar a + \theta / \sum w`, so a positive mean keeps
    the network active while the standard deviation gives every neuron its own selectivity.
    """

    def init(key, shape, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype  # float64 when x64 is enabled
        n_in = shape[0]
        z = jax.random.normal(key, shape, dtype)
        return threshold * (mean / n_in + std * z / jnp.sqrt(n_in)).astype(dtype)

    return init


class SRMDense(nn.Module):
    """A dense layer of SRM neurons with piecewise-linear response (:func:`jaxsnn.srm.first_spike_times`).

    Input ``[..., n_in]`` spike times, output ``[..., features]`` first-spike times.

    Attributes:
      features: number of neurons.
      threshold: initial (or fixed) firing threshold.
      kernel: ``"ramp"`` or ``"step"``.
      delta: response length (``inf`` = ReLU response).
      bias_time: if not ``None``, one extra input spike at this time with its own trainable
        weights (the usual "bias spike" of TTFS networks).
      train_threshold: learn one threshold per neuron (stored as its logarithm).
      train_delays: learn non-negative per-synapse delays (stored as ``|d|``).
      delay_init_max: delays start uniform in ``[0, delay_init_max]``.
      weight_mean, weight_std: parameters of :func:`srm_weight_init`.
    """

    features: int
    threshold: float = 1.0
    kernel: str = "ramp"
    delta: float = jnp.inf
    bias_time: Optional[float] = None
    train_threshold: bool = False
    train_delays: bool = False
    delay_init_max: float = 0.0
    weight_mean: float = 2.0
    weight_std: float = 1.0

    @nn.compact
    def __call__(self, t_in):
        if self.bias_time is not None:
            bias = jnp.full(t_in.shape[:-1] + (1,), self.bias_time, t_in.dtype)
            t_in = jnp.concatenate([t_in, bias], axis=-1)
        n_in = t_in.shape[-1]
        w = self.param(
            "kernel", srm_weight_init(self.weight_mean, self.weight_std, self.threshold),
            (n_in, self.features),
        )
        if self.train_threshold:
            log_theta = self.param(
                "log_threshold", nn.initializers.constant(jnp.log(self.threshold)), (self.features,)
            )
            theta = jnp.exp(log_theta)
        else:
            theta = self.threshold
        delays = None
        if self.train_delays:
            raw = self.param(
                "delays", nn.initializers.uniform(self.delay_init_max), (n_in, self.features)
            )
            delays = jnp.abs(raw)
        return srm.first_spike_times(
            t_in, w, theta, delays=delays, kernel=self.kernel, delta=self.delta
        )


class SRMMLP(nn.Module):
    """A stack of :class:`SRMDense` layers; the output spike times of one are the input of the next.

    Attributes:
      features: neurons per layer, e.g. ``(350, 10)``.
      layer_kwargs: keyword arguments given to every layer (threshold, kernel, bias_time, ...).
      spike_dropout: during training (``train=True``), delete each hidden spike (set it to
        ``inf``) with this probability; needs ``rngs={"dropout": key}`` in ``apply``.
    """

    features: Sequence[int]
    layer_kwargs: dict = None
    spike_dropout: float = 0.0

    @nn.compact
    def __call__(self, t_in, *, train: bool = False, return_hidden: bool = False):
        """Output spike times ``[..., features[-1]]``; with ``return_hidden`` also the list of
        every hidden layer's spike times (after dropout), e.g. to count spikes."""
        kw = dict(self.layer_kwargs or {})
        t, hidden = t_in, []
        for i, f in enumerate(self.features):
            t = SRMDense(f, name=f"layer_{i}", **kw)(t)
            if i < len(self.features) - 1:
                if train and self.spike_dropout > 0:
                    drop = jax.random.bernoulli(self.make_rng("dropout"), self.spike_dropout, t.shape)
                    t = jnp.where(drop, jnp.inf, t)
                hidden.append(t)
        return (t, hidden) if return_hidden else t
