"""Flax (linen) modules: thin wrappers around the functional core.

Each module owns its parameters and calls a pure function of :mod:`jaxsnn.srm`,
:mod:`jaxsnn.lif` or :mod:`jaxsnn.dlif`; the functional core stays usable without Flax.

Conventions shared by every module:

* ``learn_<name>`` flags make a constant trainable, one value per neuron (``learn_threshold``,
  ``learn_delays``, ``learn_beta``).
* A learned threshold is stored as its logarithm (parameter ``log_threshold``), so it stays
  positive and a multiplicative change is one additive step.
* The weight matrix is the parameter ``kernel`` (Flax's name); the SRM response shape is the
  attribute ``response``.
* Every MLP returns ``(output, aux)``: the last layer's output and a dict with ``"hidden"`` (the
  list of the hidden layers' outputs) and, for :class:`DLIFMLP`, ``"membrane"`` (the last
  layer's membrane).

The initializers and parametrisations (:func:`srm_weight_init`, :func:`uniform_weight_init`,
:func:`fan_in_uniform_init`, :func:`log_threshold_init`, :func:`threshold_from_log`) and the small
pieces of the forward passes (:func:`add_bias_spike`, :func:`drop_spikes`, :func:`chain`) are public
functions, shared with the Flax NNX modules of :mod:`jaxsnn.nnx`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxsnn import discretize, dlif, lif, srm

__all__ = ["SRMDense", "SRMMLP", "LIFDense", "LIFMLP", "DLIFDense", "DLIFMLP", "srm_weight_init",
           "uniform_weight_init", "fan_in_uniform_init", "log_threshold_init", "threshold_from_log",
           "threshold_param",
           "add_bias_spike", "drop_spikes", "chain"]


def srm_weight_init(mean: float = 2.0, std: float = 1.0, threshold: float = 1.0) -> Callable[..., jax.Array]:
    r"""Initializer for SRM weights ``[n_in, n_out]`` that makes neurons fire at the start.

    .. math::

        w_{uv} \sim \theta\,\mathcal N\!\Big(\frac{\mathrm{mean}}{n_{in}},
        \frac{\mathrm{std}^2}{n_{in}}\Big)

    With the ramp kernel and ``delta = inf`` a neuron fires as soon as the summed weight of its
    arrived inputs is positive, at :math:`t = \bar a + \theta / \sum w`, so a positive mean keeps
    the network active while the standard deviation gives every neuron its own selectivity.

    >>> import jax
    >>> srm_weight_init(threshold=0.5)(jax.random.key(0), (4, 3)).shape
    (4, 3)
    """

    def init(key, shape, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype  # float64 when x64 is enabled
        n_in = shape[0]
        z = jax.random.normal(key, shape, dtype)
        return threshold * (mean / n_in + std * z / jnp.sqrt(n_in)).astype(dtype)

    return init


def uniform_weight_init(low: float, high: float) -> Callable[..., jax.Array]:
    r"""Uniform initializer :math:`w_{uv} \sim \mathcal U[\mathrm{low}, \mathrm{high})` of the LIF
    weights: ``U(0, 1)`` in the Fast & Deep reference code (single spike), ``U(-1, 1)`` for Bacho & Chu.

    >>> import jax
    >>> w = uniform_weight_init(0.0, 1.0)(jax.random.key(0), (3, 2))
    >>> bool((w >= 0).all() and (w < 1).all())
    True
    """

    def init(key, shape, dtype=None):
        dtype = jnp.result_type(float) if dtype is None else dtype  # float64 when x64 is enabled
        return jax.random.uniform(key, shape, dtype, low, high)

    return init


def fan_in_uniform_init(fan_in: int) -> Callable[..., jax.Array]:
    r"""Initializer of DLIF weights and biases: :math:`\mathcal U(-1/\sqrt{n}, 1/\sqrt{n})` with
    :math:`n` = ``fan_in`` (PyTorch's ``nn.Linear``, as in the snnTorch and Norse examples).

    >>> import jax, jax.numpy as jnp
    >>> w = fan_in_uniform_init(4)(jax.random.key(0), (4, 3), jnp.float32)
    >>> bool((jnp.abs(w) <= 0.5).all())
    True
    """
    bound = 1.0 / jnp.sqrt(fan_in)
    return uniform_weight_init(-bound, bound)


def log_threshold_init(threshold: float) -> Callable[..., jax.Array]:
    r"""Initializer of a learned threshold's parameter ``log_threshold``: :math:`\log\theta_0` for
    every neuron, so that :func:`threshold_from_log` starts at ``threshold`` :math:`= \theta_0`.

    >>> import jax
    >>> log_threshold_init(1.0)(jax.random.key(0), (2,))
    Array([0., 0.], dtype=float32)
    """
    return nn.initializers.constant(jnp.log(threshold))


def threshold_from_log(log_threshold: ArrayLike) -> jax.Array:
    r"""A learned threshold from its parameter: :math:`\theta = \exp(\texttt{log\_threshold})`.

    It stays positive, and a multiplicative change of :math:`\theta` is one additive step.

    >>> threshold_from_log(0.0)
    Array(1., dtype=float32, weak_type=True)
    """
    return jnp.exp(log_threshold)


def threshold_param(module: nn.Module, value: float, learn: bool, n: int,
                    dtype: Optional[Any] = None) -> Union[float, jax.Array]:
    """``value``, or with ``learn`` a per-neuron parameter ``log_threshold`` initialised to ``log(value)``
    (:func:`log_threshold_init`), returned as :func:`threshold_from_log` of it. Call inside a compact
    ``__call__`` of ``module``; ``n`` neurons (or channels)."""
    if not learn:
        return value
    return threshold_from_log(module.param("log_threshold", log_threshold_init(value), (n,), dtype))


def add_bias_spike(t_in: jax.Array, bias_time: Optional[float]) -> jax.Array:
    """``t_in [..., n_in]`` with one more input spike at ``bias_time`` (``[..., n_in + 1]``), or
    ``t_in`` itself when ``bias_time`` is ``None``: the "bias spike" of TTFS networks.

    >>> import jax.numpy as jnp
    >>> add_bias_spike(jnp.array([0.3, 0.5]), 0.0)
    Array([0.3, 0.5, 0. ], dtype=float32)
    """
    if bias_time is None:
        return t_in
    bias = jnp.full(t_in.shape[:-1] + (1,), bias_time, t_in.dtype)
    return jnp.concatenate([t_in, bias], axis=-1)


def drop_spikes(t: jax.Array, key: jax.Array, rate: float) -> jax.Array:
    """Spike dropout: each spike time of ``t`` set to ``inf`` (deleted) with probability ``rate``.

    >>> import jax, jax.numpy as jnp
    >>> drop_spikes(jnp.array([0.1, 0.2]), jax.random.key(0), 1.0)
    Array([inf, inf], dtype=float32)
    """
    return jnp.where(jax.random.bernoulli(key, rate, t.shape), jnp.inf, t)


def chain(layers: Sequence[Callable[[Any], Any]], x: Any,
          between: Optional[Callable[[Any], Any]] = None) -> tuple[Any, list]:
    r"""Run ``layers`` in order, :math:`x_{l+1} = f_l(x_l)`, as every MLP does.

    Returns ``(output, hidden)``: the last layer's output and the list of the other layers'
    outputs, each passed through ``between`` (e.g. :func:`drop_spikes`) before the next layer.

    >>> chain([lambda x: x + 1, lambda x: 2 * x], 1)
    (4, [2])
    """
    hidden = []
    for i, layer in enumerate(layers):
        x = layer(x)
        if i < len(layers) - 1:
            x = x if between is None else between(x)
            hidden.append(x)
    return x, hidden


class SRMDense(nn.Module):
    """A dense layer of SRM neurons with piecewise-linear response (:func:`jaxsnn.srm.first_spike_times`).

    Input ``[..., n_in]`` spike times, output ``[..., features]`` first-spike times.

    Attributes:
      features: number of neurons.
      threshold: initial (or fixed) firing threshold.
      response: the response shape ``"ramp"`` or ``"step"`` (the ``kernel`` argument of
        :func:`jaxsnn.srm.first_spike_times`).
      delta: response length (``inf`` = ReLU response).
      bias_time: if not ``None``, one extra input spike at this time with its own trainable
        weights (the usual "bias spike" of TTFS networks).
      learn_threshold: learn one threshold per neuron (stored as its logarithm).
      learn_delays: learn non-negative per-synapse delays (stored as ``|d|``).
      delay_init_max: delays start uniform in ``[0, delay_init_max]``.
      weight_mean, weight_std: parameters of :func:`srm_weight_init`.
      dt: clock step (``None``: continuous time). With ``dt`` the first spike is emitted at the
        end of the bin of its threshold crossing (:func:`jaxsnn.discretize.quantize`); a
        first spike needs no other causality check (later inputs cannot undo a crossing).
        The call argument ``dt`` (traceable) overrides it.
      estimator: backward pass of the clock (``"straight_through"`` or ``"sine"``).
    """

    features: int
    threshold: float = 1.0
    response: str = "ramp"
    delta: float = jnp.inf
    bias_time: Optional[float] = None
    learn_threshold: bool = False
    learn_delays: bool = False
    delay_init_max: float = 0.0
    weight_mean: float = 2.0
    weight_std: float = 1.0
    dt: Optional[float] = None
    estimator: str = "straight_through"

    @nn.compact
    def __call__(self, t_in: jax.Array, dt: Optional[ArrayLike] = None) -> jax.Array:
        dt = self.dt if dt is None else dt
        t_in = add_bias_spike(t_in, self.bias_time)
        n_in = t_in.shape[-1]
        w = self.param(
            "kernel", srm_weight_init(self.weight_mean, self.weight_std, self.threshold),
            (n_in, self.features),
        )
        theta = threshold_param(self, self.threshold, self.learn_threshold, self.features)
        delays = None
        if self.learn_delays:
            raw = self.param(
                "delays", nn.initializers.uniform(self.delay_init_max), (n_in, self.features)
            )
            delays = jnp.abs(raw)
        t = srm.first_spike_times(t_in, w, theta, delays=delays, kernel=self.response, delta=self.delta)
        return t if dt is None else discretize.quantize(t, dt, estimator=self.estimator)


class SRMMLP(nn.Module):
    """A stack of :class:`SRMDense` layers; the output spike times of one are the input of the next.

    Attributes:
      features: neurons per layer, e.g. ``(350, 10)``.
      layer_kwargs: keyword arguments given to every layer (threshold, response, bias_time, ...).
      spike_dropout: during training (``train=True``), delete each hidden spike (set it to
        ``inf``) with this probability; needs ``rngs={"dropout": key}`` in ``apply``.
      dt: clock step of every layer (``None``: continuous); see :class:`SRMDense`.
      estimator: backward pass of the clock.
    """

    features: Sequence[int]
    layer_kwargs: dict = None
    spike_dropout: float = 0.0
    dt: Optional[float] = None
    estimator: str = "straight_through"

    @nn.compact
    def __call__(self, t_in: jax.Array, *, train: bool = False,
                 dt: Optional[ArrayLike] = None) -> tuple[jax.Array, dict[str, list[jax.Array]]]:
        """``(t_out, aux)``: output spike times ``[..., features[-1]]`` and ``aux["hidden"]``, the
        list of every hidden layer's spike times (after dropout), e.g. to count spikes. ``dt``
        (traceable, overrides the attribute) runs the network on a clock: the input is
        quantized once, every layer's output spikes at bin ends."""
        kw = dict(self.layer_kwargs or {})
        dt = self.dt if dt is None else dt
        if dt is not None:
            t_in = discretize.quantize(t_in, dt, estimator=self.estimator)
            kw = dict(kw, estimator=self.estimator)
        layers = [functools.partial(SRMDense(f, name=f"layer_{i}", **kw), dt=dt) for i, f in enumerate(self.features)]
        drop = (lambda t: drop_spikes(t, self.make_rng("dropout"), self.spike_dropout)) \
            if train and self.spike_dropout > 0 else None
        t, hidden = chain(layers, t_in, drop)
        return t, {"hidden": hidden}


# ----------------------------------------------------------------------------------------------
# Current-based LIF layers with exact spike times (jaxsnn.lif)
# ----------------------------------------------------------------------------------------------


class LIFDense(nn.Module):
    """A dense layer of current-based LIF neurons (:func:`jaxsnn.lif.spike_times`).

    Input ``[..., n_in, k_in]`` spike times (``k_in`` per input neuron, ``inf``-padded), output
    ``[..., features, max_spikes]``: layers chain directly. ``max_spikes = 1`` is the Fast &
    Deep (time-to-first-spike) neuron, more is the multi-spike neuron of Bacho & Chu.

    Attributes:
      features: number of neurons.
      tau_syn: synaptic time constant; ``tau_mem = tau_ratio * tau_syn``.
      threshold: firing threshold.
      tau_ratio: 2 or 1.
      learn_threshold: learn one threshold per neuron (stored as its logarithm).
      max_spikes: spikes kept per neuron.
      t_max: spikes after ``t_max`` are dropped.
      weight_low, weight_high: weights start uniform in ``[low, high)`` (the reference code:
        ``U(0, 1)`` for single-spike, ``U(-1, 1)`` for multi-spike networks).
      dt: clock step (``None``: continuous); see :func:`jaxsnn.lif.spike_times`. The call
        argument ``dt`` (traceable) overrides it. The layer does not quantize its input.
      estimator: backward pass of the clock (``"straight_through"`` or ``"sine"``).
    """

    features: int
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
        if jnp.ndim(t_in) < 2:
            raise ValueError(f"t_in: expected shape [..., n_in, k_in], got shape {jnp.shape(t_in)}")
        dt = self.dt if dt is None else dt
        n_in = t_in.shape[-2]
        w = self.param("kernel", uniform_weight_init(self.weight_low, self.weight_high), (n_in, self.features))
        theta = threshold_param(self, self.threshold, self.learn_threshold, self.features)
        if self.is_initializing():  # shapes only: no event loop (nor constant folding) at init
            return jnp.full(t_in.shape[:-2] + (self.features, self.max_spikes), jnp.inf, w.dtype)
        return lif.spike_times(t_in, w, tau_syn=self.tau_syn, threshold=theta,
                               tau_ratio=self.tau_ratio, max_spikes=self.max_spikes, t_max=self.t_max,
                               dt=dt, estimator=self.estimator)


class LIFMLP(nn.Module):
    """A stack of :class:`LIFDense` layers with per-layer thresholds and spike budgets.

    Attributes:
      features: neurons per layer, e.g. ``(800, 10)``.
      thresholds: one per layer.
      max_spikes: one per layer (e.g. ``(30, 30)``; ``(1, 1)`` for Fast & Deep).
      layer_kwargs: given to every layer (``tau_syn``, ``tau_ratio``, ``t_max``, weight range).
      dt: clock step of every layer (``None``: continuous time).
      estimator: backward pass of the clock (``"straight_through"`` or ``"sine"``).
    """

    features: Sequence[int]
    thresholds: Sequence[float]
    max_spikes: Sequence[int]
    layer_kwargs: dict = None
    dt: Optional[float] = None
    estimator: str = "straight_through"

    @nn.compact
    def __call__(self, t_in: jax.Array, *,
                 dt: Optional[ArrayLike] = None) -> tuple[jax.Array, dict[str, list[jax.Array]]]:
        """``t_in [..., n_in, k_in]`` (``k_in`` spikes per input neuron, as
        :func:`jaxsnn.lif.spike_times`; pass ``t[..., None]`` for one spike each); returns
        ``(t_out, aux)``: the output ``[..., features[-1], max_spikes[-1]]`` and ``aux["hidden"]``,
        the list of hidden layers' spike times. ``dt`` (traceable, overrides the attribute) runs
        the network on a clock: the input is quantized once (:func:`jaxsnn.discretize.quantize`)
        and every layer emits its spikes at bin ends."""
        if not (len(self.features) == len(self.thresholds) == len(self.max_spikes)):
            raise ValueError("features, thresholds and max_spikes must have one entry per layer")
        kw = dict(self.layer_kwargs or {})
        dt = self.dt if dt is None else dt
        if jnp.ndim(t_in) < 2:
            raise ValueError(f"t_in: expected shape [..., n_in, k_in] (t[..., None] for one spike per input), "
                             f"got shape {jnp.shape(t_in)}")
        t = t_in
        if dt is not None:
            t = discretize.quantize(t, dt, estimator=self.estimator)
            kw = dict(kw, estimator=self.estimator)
        layers = [functools.partial(LIFDense(f, threshold=th, max_spikes=k, name=f"layer_{i}", **kw), dt=dt)
                  for i, (f, th, k) in enumerate(zip(self.features, self.thresholds, self.max_spikes))]
        t, hidden = chain(layers, t)
        return t, {"hidden": hidden}


# ----------------------------------------------------------------------------------------------
# Discretized LIF layers with surrogate gradients (jaxsnn.dlif)
# ----------------------------------------------------------------------------------------------


class DLIFDense(nn.Module):
    """A dense (optionally recurrent) layer of discretized LIF neurons (:func:`jaxsnn.dlif.simulate`).

    Input ``[T, ..., n_in]`` (spikes or currents, time-major), output spikes ``[T, ..., features]``
    (and the membrane with ``return_membrane``): layers stack directly.

    Weights and bias start uniform in ``±1/sqrt(n_in)`` (PyTorch's ``nn.Linear``, as in the snnTorch
    and Norse examples). With ``learn_beta`` / ``learn_threshold`` each neuron gets its own trainable
    decay (kept in ``[0, 1]`` by a clip) / threshold (stored as its logarithm, parameter
    ``log_threshold``).

    Attributes:
      features: number of neurons.
      beta: decay per step (initial value when learned).
      threshold: firing threshold (initial value when learned).
      reset: ``"subtract"`` or ``"zero"``.
      surrogate: ``None``, a name or a callable (see :func:`jaxsnn.surrogate.resolve`).
      recurrent: add all-to-all recurrent weights ``[features, features]`` (init ``±1/sqrt(features)``).
      use_bias: a per-neuron bias current.
      detach_reset, remat, chunk, unroll, skip_silent_inputs: passed to :func:`jaxsnn.dlif.simulate`.
    """

    features: int
    beta: float = 0.95
    threshold: float = 1.0
    reset: str = "subtract"
    surrogate: Any = None
    recurrent: bool = False
    use_bias: bool = True
    learn_beta: bool = False
    learn_threshold: bool = False
    detach_reset: bool = False
    remat: bool = False
    chunk: Optional[int] = None
    unroll: Optional[int] = None
    skip_silent_inputs: bool = False

    @nn.compact
    def __call__(self, inputs: jax.Array, *,
                 return_membrane: bool = False) -> Union[jax.Array, tuple[jax.Array, jax.Array]]:
        if inputs.ndim < 2:
            raise ValueError(f"inputs: expected a time-major array [T, ..., n_in], got shape {inputs.shape}")
        n_in = inputs.shape[-1]
        dtype = jnp.result_type(inputs.dtype, float)
        w = self.param("kernel", fan_in_uniform_init(n_in), (n_in, self.features), dtype)
        b = self.param("bias", fan_in_uniform_init(n_in), (self.features,), dtype) if self.use_bias else None
        v = self.param("recurrent_kernel", fan_in_uniform_init(self.features), (self.features, self.features),
                       dtype) if self.recurrent else None
        beta = self.beta
        if self.learn_beta:
            beta = jnp.clip(self.param("beta", nn.initializers.constant(self.beta), (self.features,), dtype), 0.0, 1.0)
        threshold = threshold_param(self, self.threshold, self.learn_threshold, self.features, dtype)
        spikes, membrane = dlif.simulate(inputs, w, beta=beta, threshold=threshold, bias=b, reset=self.reset,
                                         surrogate=self.surrogate, recurrent_weights=v,
                                         detach_reset=self.detach_reset, remat=self.remat, chunk=self.chunk,
                                         unroll=self.unroll,
                                         # init needs only the shapes: no compaction to compile
                                         skip_silent_inputs=self.skip_silent_inputs and not self.is_initializing())
        return (spikes, membrane) if return_membrane else spikes


class DLIFMLP(nn.Module):
    """A stack of :class:`DLIFDense` layers (time-major ``[T, ..., n_in]`` in).

    Attributes:
      features: neurons per layer, e.g. ``(1000, 10)``.
      layer_kwargs: given to every layer (``beta``, ``threshold``, ``reset``, ``surrogate``, ...).
      skip_silent_inputs: for the first layer only (the encoded input, where whole columns are
        often silent; see :func:`jaxsnn.dlif.simulate`).
    """

    features: Sequence[int]
    layer_kwargs: dict = None
    skip_silent_inputs: bool = False

    @nn.compact
    def __call__(self, inputs: jax.Array) -> tuple[jax.Array, dict[str, Any]]:
        """Returns ``(spikes, aux)``: the last layer's spikes ``[T, ..., features[-1]]``, and
        ``aux["membrane"]`` (its membrane, same shape) and ``aux["hidden"]`` (the list of the hidden
        layers' spike trains)."""
        kw, last = dict(self.layer_kwargs or {}), len(self.features) - 1
        first = dict(kw, skip_silent_inputs=True) if self.skip_silent_inputs else kw  # skipping: first layer only
        layers = [functools.partial(DLIFDense(f, name=f"layer_{i}", **(first if i == 0 else kw)),
                                    return_membrane=i == last) for i, f in enumerate(self.features)]
        (x, membrane), hidden = chain(layers, inputs)
        return x, {"membrane": membrane, "hidden": hidden}
