"""Flax NNX modules: the modules of :mod:`jaxsnn.nn`, for Flax's NNX API.

One NNX module for every linen module: :class:`SRMDense`, :class:`SRMMLP`, :class:`LIFDense`,
:class:`LIFMLP`, :class:`DLIFDense`, :class:`DLIFMLP`. Each is a thin wrapper that owns its
parameters and calls the same pure function of the core as its linen twin
(:func:`jaxsnn.srm.first_spike_times`, :func:`jaxsnn.lif.spike_times`, :func:`jaxsnn.dlif.simulate`),
with the same initializers and parametrisations (shared with :mod:`jaxsnn.nn`):

* the parameters have the linen names and shapes (``kernel``, ``log_threshold``, ``delays``,
  ``bias``, ``recurrent_kernel``, ``beta``), and an MLP's layers are its attributes ``layer_0``,
  ``layer_1``, ... (the linen submodule names), so that ``nnx.state(model, nnx.Param)`` has the
  layout of the linen ``params``: :func:`to_linen_params` and :func:`from_linen` convert both ways;
* the constructor takes ``in_features`` first (NNX builds its parameters eagerly), then the linen
  attributes as keywords, and ``rngs`` (``rngs.params()`` draws the initial weights);
* ``__call__`` takes the linen call arguments; every MLP returns ``(output, aux)``.

Training with :class:`flax.nnx.Optimizer`, optax and :func:`flax.nnx.jit`:

>>> import jax, jax.numpy as jnp, optax
>>> from flax import nnx
>>> import jaxsnn.nnx as snn
>>> from jaxsnn import coding, losses
>>> model = snn.SRMDense(2, 2, bias_time=0.0, rngs=nnx.Rngs(0))
>>> u = jax.random.uniform(jax.random.key(1), (64, 2))
>>> x, y = coding.ttfs_encode(u), (u[:, 0] > u[:, 1]).astype(jnp.int32)
>>> optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
>>> def loss_fn(model, x, y):
...     return losses.ttfs_cross_entropy(model(x), y, temperature=0.2)
>>> @nnx.jit
... def step(model, optimizer, x, y):
...     loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
...     optimizer.update(model, grads)  # changes model and optimizer in place
...     return loss
>>> history = [float(step(model, optimizer, x, y)) for _ in range(20)]
>>> round(history[0], 2), history[-1] < history[0] - 0.2
(1.1, True)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, Optional, Sequence, Union

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import ArrayLike

from jaxsnn import discretize, dlif, lif, nn, srm
from jaxsnn._internal import fail

__all__ = ["SRMDense", "SRMMLP", "LIFDense", "LIFMLP", "DLIFDense", "DLIFMLP", "from_linen", "to_linen_params"]


def _param(init: Callable, rngs: nnx.Rngs, shape: tuple, dtype=None) -> nnx.Param:
    return nnx.Param(init(rngs.params(), shape, dtype))


def _learned_threshold(threshold: float, learn: bool, n: int, rngs: nnx.Rngs, dtype=None) -> Optional[nnx.Param]:
    return _param(nn.log_threshold_init(threshold), rngs, (n,), dtype) if learn else None


def _theta(module: nnx.Module):
    """The firing threshold: the attribute ``threshold``, or the learned ``exp(log_threshold)``."""
    return module.threshold if module.log_threshold is None else nn.threshold_from_log(module.log_threshold[...])


def _value(p: Optional[nnx.Param]) -> Optional[jax.Array]:
    return None if p is None else p[...]


class _Stack(nnx.Module):
    """Layers kept as the attributes ``layer_0``, ``layer_1``, ... (the linen MLPs' submodule names)."""

    def _set_layers(self, layers: list) -> None:
        self.num_layers = len(layers)
        for i, layer in enumerate(layers):
            setattr(self, f"layer_{i}", layer)

    @property
    def layers(self) -> list:
        """The layers, first to last."""
        return [getattr(self, f"layer_{i}") for i in range(self.num_layers)]

    def _clocked(self, t_in: jax.Array, dt: Optional[ArrayLike]) -> tuple[jax.Array, list]:
        """As the linen MLPs: with a clock step (``dt``, else the attribute) the input is quantized
        once and every layer runs on that clock with the MLP's ``estimator``."""
        dt = self.dt if dt is None else dt
        if dt is None:
            return t_in, self.layers
        layers = [functools.partial(layer, dt=dt, estimator=self.estimator) for layer in self.layers]
        return discretize.quantize(t_in, dt, estimator=self.estimator), layers


class SRMDense(nnx.Module):
    """NNX twin of :class:`jaxsnn.nn.SRMDense`: SRM neurons, :func:`jaxsnn.srm.first_spike_times`.

    Input ``[..., in_features]`` spike times, output ``[..., features]`` first-spike times.

    Args:
      in_features: input neurons (without the bias spike; with ``bias_time`` the ``kernel`` has
        ``in_features + 1`` rows, as in linen).
      features, threshold, response, delta, bias_time, learn_threshold, learn_delays,
        delay_init_max, weight_mean, weight_std, estimator: as the attributes of
        :class:`jaxsnn.nn.SRMDense`.
      dt: clock step (``None``: continuous time); the call arguments ``dt`` and ``estimator``
        override the attributes.
      rngs: ``rngs.params()`` draws the initial weights (:func:`jaxsnn.nn.srm_weight_init`).

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import jaxsnn.nnx as snn
    >>> layer = snn.SRMDense(2, 3, bias_time=0.0, learn_threshold=True, rngs=nnx.Rngs(0))
    >>> layer.kernel.shape, layer.log_threshold.shape
    ((3, 3), (3,))
    >>> layer(jnp.array([[0.1, 0.4]])).shape
    (1, 3)
    """

    def __init__(self, in_features: int, features: int, *, threshold: float = 1.0, response: str = "ramp",
                 delta: float = jnp.inf, bias_time: Optional[float] = None, learn_threshold: bool = False,
                 learn_delays: bool = False, delay_init_max: float = 0.0, weight_mean: float = 2.0,
                 weight_std: float = 1.0, dt: Optional[float] = None, estimator: str = "straight_through",
                 rngs: nnx.Rngs):
        self.features, self.threshold, self.response, self.delta = features, threshold, response, delta
        self.bias_time, self.dt, self.estimator = bias_time, dt, estimator
        n_in = in_features + (bias_time is not None)
        self.kernel = _param(nn.srm_weight_init(weight_mean, weight_std, threshold), rngs, (n_in, features))
        self.log_threshold = _learned_threshold(threshold, learn_threshold, features, rngs)
        self.delays = _param(jax.nn.initializers.uniform(delay_init_max), rngs, (n_in, features)) \
            if learn_delays else None

    def __call__(self, t_in: jax.Array, dt: Optional[ArrayLike] = None, *,
                 estimator: Optional[str] = None) -> jax.Array:
        """First-spike times ``[..., features]`` (on the clock ``dt``, if any, as linen)."""
        dt = self.dt if dt is None else dt
        delays = None if self.delays is None else jnp.abs(self.delays[...])
        t = srm.first_spike_times(nn.add_bias_spike(t_in, self.bias_time), self.kernel[...], _theta(self),
                                  delays=delays, kernel=self.response, delta=self.delta)
        return t if dt is None else discretize.quantize(t, dt, estimator=estimator or self.estimator)


class SRMMLP(_Stack):
    """NNX twin of :class:`jaxsnn.nn.SRMMLP`: a stack of :class:`SRMDense` layers.

    Args:
      in_features: input neurons.
      features, layer_kwargs, spike_dropout, estimator: as the attributes of :class:`jaxsnn.nn.SRMMLP`.
      dt: clock step of every layer (``None``: continuous); the call argument ``dt`` overrides it.
      rngs: draws the initial weights; with ``spike_dropout`` its ``dropout`` stream (else its
        default stream) is kept for the dropout masks.

    ``model(t_in, train=True)`` deletes hidden spikes with probability ``spike_dropout`` (the keys
    come from the kept stream, or from the call argument ``rngs``). Returns ``(t_out, aux)`` with
    ``aux["hidden"]``, the hidden layers' spike times.

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import jaxsnn.nnx as snn
    >>> model = snn.SRMMLP(2, (4, 3), layer_kwargs=dict(bias_time=0.0), rngs=nnx.Rngs(0))
    >>> t, aux = model(jnp.array([[0.1, 0.4]]))
    >>> t.shape, [h.shape for h in aux["hidden"]]
    ((1, 3), [(1, 4)])
    """

    def __init__(self, in_features: int, features: Sequence[int], *, layer_kwargs: Optional[dict] = None,
                 spike_dropout: float = 0.0, dt: Optional[float] = None, estimator: str = "straight_through",
                 rngs: nnx.Rngs):
        kw = dict(layer_kwargs or {})
        self.spike_dropout, self.dt, self.estimator = spike_dropout, dt, estimator
        self._set_layers([SRMDense(n, f, rngs=rngs, **kw) for n, f in zip((in_features, *features), features)])
        self.rngs = rngs["dropout"].fork() if spike_dropout > 0 else None

    def __call__(self, t_in: jax.Array, *, train: bool = False, dt: Optional[ArrayLike] = None,
                 rngs: Optional[nnx.Rngs] = None) -> tuple[jax.Array, dict[str, list[jax.Array]]]:
        """``(t_out, aux)``: output spike times ``[..., features[-1]]`` and ``aux["hidden"]``."""
        drop = None
        if train and self.spike_dropout > 0:
            stream = rngs["dropout"] if rngs is not None else self.rngs
            if stream is None:
                raise fail("rngs", "nnx.Rngs for the spike dropout (here or at construction)", None)
            drop = lambda t: nn.drop_spikes(t, stream(), self.spike_dropout)
        t_in, layers = self._clocked(t_in, dt)
        t, hidden = nn.chain(layers, t_in, drop)
        return t, {"hidden": hidden}


class LIFDense(nnx.Module):
    """NNX twin of :class:`jaxsnn.nn.LIFDense`: current-based LIF neurons, :func:`jaxsnn.lif.spike_times`.

    Input ``[..., in_features, k_in]`` spike times, output ``[..., features, max_spikes]``.

    Args:
      in_features: input neurons.
      features, tau_syn, threshold, tau_ratio, learn_threshold, max_spikes, t_max, weight_low,
        weight_high, estimator: as the attributes of :class:`jaxsnn.nn.LIFDense`.
      dt: clock step (``None``: continuous); the call arguments ``dt`` and ``estimator`` override
        the attributes.
      rngs: ``rngs.params()`` draws the initial weights (:func:`jaxsnn.nn.uniform_weight_init`).

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import jaxsnn.nnx as snn
    >>> layer = snn.LIFDense(2, 3, threshold=0.2, max_spikes=2, weight_low=0.5, rngs=nnx.Rngs(0))
    >>> layer.kernel.shape  # layer(t) maps t [..., 2, k_in] to [..., 3, 2]
    (2, 3)
    """

    def __init__(self, in_features: int, features: int, *, tau_syn: float = 0.13, threshold: float = 1.0,
                 tau_ratio: int = 2, learn_threshold: bool = False, max_spikes: int = 1, t_max: float = jnp.inf,
                 weight_low: float = -1.0, weight_high: float = 1.0, dt: Optional[float] = None,
                 estimator: str = "straight_through", rngs: nnx.Rngs):
        self.features, self.tau_syn, self.threshold, self.tau_ratio = features, tau_syn, threshold, tau_ratio
        self.max_spikes, self.t_max, self.dt, self.estimator = max_spikes, t_max, dt, estimator
        self.kernel = _param(nn.uniform_weight_init(weight_low, weight_high), rngs, (in_features, features))
        self.log_threshold = _learned_threshold(threshold, learn_threshold, features, rngs)

    def __call__(self, t_in: jax.Array, dt: Optional[ArrayLike] = None, *,
                 estimator: Optional[str] = None) -> jax.Array:
        """Spike times ``[..., features, max_spikes]`` (``inf``-padded)."""
        if jnp.ndim(t_in) < 2:
            raise fail("t_in", "shape [..., n_in, k_in]", f"shape {jnp.shape(t_in)}")
        return lif.spike_times(t_in, self.kernel[...], tau_syn=self.tau_syn, threshold=_theta(self),
                               tau_ratio=self.tau_ratio, max_spikes=self.max_spikes, t_max=self.t_max,
                               dt=self.dt if dt is None else dt, estimator=estimator or self.estimator)


class LIFMLP(_Stack):
    """NNX twin of :class:`jaxsnn.nn.LIFMLP`: a stack of :class:`LIFDense` layers.

    Args:
      in_features: input neurons.
      features, thresholds, max_spikes: one entry per layer.
      layer_kwargs, estimator: as the attributes of :class:`jaxsnn.nn.LIFMLP`.
      dt: clock step of every layer (``None``: continuous); the call argument ``dt`` overrides it.
      rngs: draws the initial weights.

    Input ``[..., in_features, k_in]``; returns ``(t_out, aux)``: ``[..., features[-1],
    max_spikes[-1]]`` and ``aux["hidden"]``.

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import jaxsnn.nnx as snn
    >>> model = snn.LIFMLP(2, (4, 3), thresholds=(0.2, 0.3), max_spikes=(2, 1), rngs=nnx.Rngs(0))
    >>> [layer.kernel.shape for layer in model.layers], model.layer_1.max_spikes
    ([(2, 4), (4, 3)], 1)
    """

    def __init__(self, in_features: int, features: Sequence[int], thresholds: Sequence[float],
                 max_spikes: Sequence[int], *, layer_kwargs: Optional[dict] = None, dt: Optional[float] = None,
                 estimator: str = "straight_through", rngs: nnx.Rngs):
        if not (len(features) == len(thresholds) == len(max_spikes)):
            raise ValueError("features, thresholds and max_spikes must have one entry per layer")
        kw = dict(layer_kwargs or {})
        self.dt, self.estimator = dt, estimator
        self._set_layers([LIFDense(n, f, threshold=th, max_spikes=k, rngs=rngs, **kw)
                          for n, f, th, k in zip((in_features, *features), features, thresholds, max_spikes)])

    def __call__(self, t_in: jax.Array, *,
                 dt: Optional[ArrayLike] = None) -> tuple[jax.Array, dict[str, list[jax.Array]]]:
        """``(t_out, aux)`` of ``t_in [..., in_features, k_in]`` (``t[..., None]`` for one spike each)."""
        if jnp.ndim(t_in) < 2:
            raise fail("t_in", "shape [..., n_in, k_in] (t[..., None] for one spike per input)",
                       f"shape {jnp.shape(t_in)}")
        t_in, layers = self._clocked(t_in, dt)
        t, hidden = nn.chain(layers, t_in)
        return t, {"hidden": hidden}


class DLIFDense(nnx.Module):
    """NNX twin of :class:`jaxsnn.nn.DLIFDense`: discretized LIF neurons, :func:`jaxsnn.dlif.simulate`.

    Input ``[T, ..., in_features]`` (time-major), output spikes ``[T, ..., features]`` (and the
    membrane with ``return_membrane``).

    Args:
      in_features: input neurons.
      features, beta, threshold, reset, surrogate, recurrent, use_bias, learn_beta, learn_threshold,
        detach_reset, remat, chunk, unroll, skip_silent_inputs: as the attributes of
        :class:`jaxsnn.nn.DLIFDense` (a learned ``beta`` is the parameter ``beta``, clipped to
        ``[0, 1]``; a learned threshold is ``log_threshold``).
      param_dtype: dtype of the parameters (default: the default float; linen takes the inputs'
        float dtype).
      rngs: ``rngs.params()`` draws the initial weights (:func:`jaxsnn.nn.fan_in_uniform_init`).

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import jaxsnn.nnx as snn
    >>> layer = snn.DLIFDense(2, 3, recurrent=True, rngs=nnx.Rngs(0))
    >>> spikes, membrane = layer(jnp.ones((5, 1, 2)), return_membrane=True)
    >>> spikes.shape, membrane.shape, layer.recurrent_kernel.shape
    ((5, 1, 3), (5, 1, 3), (3, 3))
    """

    def __init__(self, in_features: int, features: int, *, beta: float = 0.95, threshold: float = 1.0,
                 reset: str = "subtract", surrogate: Any = None, recurrent: bool = False, use_bias: bool = True,
                 learn_beta: bool = False, learn_threshold: bool = False, detach_reset: bool = False,
                 remat: bool = False, chunk: Optional[int] = None, unroll: Optional[int] = None,
                 skip_silent_inputs: bool = False, param_dtype: Any = None, rngs: nnx.Rngs):
        dtype = jnp.result_type(float) if param_dtype is None else param_dtype
        self.features, self.threshold, self.reset, self.surrogate = features, threshold, reset, surrogate
        self.detach_reset, self.remat, self.chunk, self.unroll = detach_reset, remat, chunk, unroll
        self.skip_silent_inputs = skip_silent_inputs
        init = nn.fan_in_uniform_init(in_features)
        self.kernel = _param(init, rngs, (in_features, features), dtype)
        self.bias = _param(init, rngs, (features,), dtype) if use_bias else None
        self.recurrent_kernel = _param(nn.fan_in_uniform_init(features), rngs, (features, features), dtype) \
            if recurrent else None
        self.beta = _param(jax.nn.initializers.constant(beta), rngs, (features,), dtype) if learn_beta else beta
        self.log_threshold = _learned_threshold(threshold, learn_threshold, features, rngs, dtype)

    def __call__(self, inputs: jax.Array, *,
                 return_membrane: bool = False) -> Union[jax.Array, tuple[jax.Array, jax.Array]]:
        """Spikes ``[T, ..., features]``, or ``(spikes, membrane)`` with ``return_membrane``."""
        if inputs.ndim < 2:
            raise fail("inputs", "a time-major array [T, ..., n_in]", f"shape {inputs.shape}")
        beta = jnp.clip(self.beta[...], 0.0, 1.0) if isinstance(self.beta, nnx.Param) else self.beta
        spikes, membrane = dlif.simulate(inputs, self.kernel[...], beta=beta, threshold=_theta(self),
                                         bias=_value(self.bias), reset=self.reset, surrogate=self.surrogate,
                                         recurrent_weights=_value(self.recurrent_kernel),
                                         detach_reset=self.detach_reset, remat=self.remat, chunk=self.chunk,
                                         unroll=self.unroll, skip_silent_inputs=self.skip_silent_inputs)
        return (spikes, membrane) if return_membrane else spikes


class DLIFMLP(_Stack):
    """NNX twin of :class:`jaxsnn.nn.DLIFMLP`: a stack of :class:`DLIFDense` layers.

    Args:
      in_features: input neurons.
      features, layer_kwargs, skip_silent_inputs: as the attributes of :class:`jaxsnn.nn.DLIFMLP`
        (``skip_silent_inputs`` for the first layer only).
      rngs: draws the initial weights.

    Returns ``(spikes, aux)``: the last layer's spikes ``[T, ..., features[-1]]``, ``aux["membrane"]``
    (its membrane) and ``aux["hidden"]`` (the hidden layers' spikes).

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import jaxsnn.nnx as snn
    >>> model = snn.DLIFMLP(2, (4, 3), layer_kwargs=dict(beta=0.9), rngs=nnx.Rngs(0))
    >>> spikes, aux = model(jnp.ones((5, 1, 2)))
    >>> spikes.shape, aux["membrane"].shape, aux["hidden"][0].shape
    ((5, 1, 3), (5, 1, 3), (5, 1, 4))
    """

    def __init__(self, in_features: int, features: Sequence[int], *, layer_kwargs: Optional[dict] = None,
                 skip_silent_inputs: bool = False, rngs: nnx.Rngs):
        kw = dict(layer_kwargs or {})
        first = dict(kw, skip_silent_inputs=True) if skip_silent_inputs else kw  # skipping: first layer only
        self._set_layers([DLIFDense(n, f, rngs=rngs, **(first if i == 0 else kw))
                          for i, (n, f) in enumerate(zip((in_features, *features), features))])

    def __call__(self, inputs: jax.Array) -> tuple[jax.Array, dict[str, Any]]:
        """``(spikes, aux)`` of ``inputs [T, ..., in_features]``."""
        layers = self.layers
        layers[-1] = functools.partial(layers[-1], return_membrane=True)
        (x, membrane), hidden = nn.chain(layers, inputs)
        return x, {"membrane": membrane, "hidden": hidden}


# ----------------------------------------------------------------------------------------------
# Weights both ways between linen and NNX
# ----------------------------------------------------------------------------------------------

_TWINS = {nn.SRMDense: SRMDense, nn.SRMMLP: SRMMLP, nn.LIFDense: LIFDense, nn.LIFMLP: LIFMLP,
          nn.DLIFDense: DLIFDense, nn.DLIFMLP: DLIFMLP}


def _shapes(tree) -> dict[str, tuple]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(str(getattr(k, "key", k)) for k in path): tuple(np.shape(v)) for path, v in leaves}


def to_linen_params(module: nnx.Module) -> dict[str, Any]:
    """The variables ``{"params": ...}`` of the linen twin with the weights of the NNX ``module``:
    ``nn_model.apply(to_linen_params(model), x)`` equals ``model(x)``.

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import jaxsnn.nn, jaxsnn.nnx as snn
    >>> model = snn.SRMMLP(2, (4, 3), layer_kwargs=dict(bias_time=0.0), rngs=nnx.Rngs(0))
    >>> variables = to_linen_params(model)
    >>> variables["params"]["layer_1"]["kernel"].shape
    (5, 3)
    >>> x = jnp.array([[0.1, 0.4]])
    >>> linen_model = jaxsnn.nn.SRMMLP((4, 3), layer_kwargs=dict(bias_time=0.0))
    >>> bool((linen_model.apply(variables, x)[0] == model(x)[0]).all())
    True
    """
    return {"params": nnx.to_pure_dict(nnx.state(module, nnx.Param))}


def from_linen(target: Union[nnx.Module, type, flax.linen.Module], linen_params: Mapping[str, Any],
               **kwargs: Any) -> nnx.Module:
    """An NNX module holding the weights of a linen module (``params`` or ``{"params": params}``).

    ``target`` is one of

    * an NNX module of this module: its parameters are replaced (in place) and it is returned;
    * an NNX class, e.g. :class:`SRMMLP`: it is built with the constructor arguments ``kwargs``
      (``in_features`` is read off the first ``kernel`` unless given);
    * a linen module of :mod:`jaxsnn.nn`: its NNX twin is built with the linen module's attributes
      (and ``kwargs``, which override them).

    The parameters must have the module's names and shapes (``ValueError`` otherwise); their
    values and dtypes are taken as they are.

    >>> import jax, jax.numpy as jnp
    >>> import jaxsnn.nn
    >>> linen_model = jaxsnn.nn.DLIFMLP((4, 3), layer_kwargs=dict(beta=0.9))
    >>> x = jnp.ones((5, 1, 2))
    >>> params = linen_model.init(jax.random.key(0), x)
    >>> model = from_linen(linen_model, params)  # a jaxsnn.nnx.DLIFMLP
    >>> bool((model(x)[1]["membrane"] == linen_model.apply(params, x)[1]["membrane"]).all())
    True
    """
    params = linen_params["params"] if "params" in linen_params else linen_params
    module = target
    if isinstance(target, nnx.Module) and kwargs:
        raise fail("kwargs", "none with an NNX module (they are constructor arguments)", sorted(kwargs))
    if not isinstance(target, nnx.Module):
        if isinstance(target, flax.linen.Module):
            if type(target) not in _TWINS:
                raise fail("target", "an NNX module or class of jaxsnn.nnx, or a linen module of jaxsnn.nn",
                           type(target).__name__)
            fields = {f.name: getattr(target, f.name) for f in dataclasses.fields(target) if f.init}
            kwargs = {**{k: v for k, v in fields.items() if k not in ("parent", "name")}, **kwargs}
            target = _TWINS[type(target)]
        if "in_features" not in kwargs:
            bias_time = kwargs.get("bias_time", (kwargs.get("layer_kwargs") or {}).get("bias_time"))
            kwargs["in_features"] = np.shape(params.get("layer_0", params)["kernel"])[0] - (bias_time is not None)
        module = target(**kwargs, rngs=nnx.Rngs(0))
    state = nnx.state(module, nnx.Param)
    expected, got = _shapes(nnx.to_pure_dict(state)), _shapes(params)
    if expected != got:
        raise fail("linen_params", f"the parameters of {type(module).__name__} {expected}", got)
    nnx.replace_by_pure_dict(state, jax.tree.map(jnp.asarray, dict(params)))
    nnx.update(module, state)
    return module
