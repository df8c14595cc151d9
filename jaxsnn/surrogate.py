r"""Spike functions with surrogate derivatives.

The forward pass of every function here is the exact Heaviside step of the distance to threshold
``x = v - threshold`` (a neuron spikes at ``x >= 0``):

.. math::

    S(x) = \begin{cases} 1 & x \ge 0 \\ 0 & x < 0 \end{cases}

Its true derivative is zero almost everywhere, so gradient training replaces it in the backward pass
by a smooth pseudo-derivative :math:`\sigma'(x)` (Neftci, Mostafa & Zenke 2019, *Surrogate gradient
learning in spiking neural networks*). Each function takes its shape parameter (slope or width) as an
ordinary argument, so it can be traced, swept under ``vmap`` or even differentiated through (its own
cotangent is zero: the parameter does not change the forward pass).

=====================  ===================================================  ==================================
function               backward :math:`\sigma'(x)`                          source
=====================  ===================================================  ==================================
``fast_sigmoid``       :math:`1 / (1 + k|x|)^2`                             SuperSpike, Zenke & Ganguli 2018
``arctan``             :math:`(\alpha/2) / (1 + (\pi \alpha x / 2)^2)`      Fang et al. 2021 (SpikingJelly)
``sigmoid``            :math:`k\,\mathrm{sig}(kx)\,(1 - \mathrm{sig}(kx))`  Zenke & Vogels 2021
``triangle``           :math:`\max(0, 1 - |x|/w) / w`                       Esser et al. 2016; Bellec et al. 2018
``rectangular``        :math:`\mathbb{1}[|x| < w/2] / w`                    Wu et al. 2018 (STBP)
``straight_through``   :math:`c`                                            Bengio et al. 2013
=====================  ===================================================  ==================================

Pass any of them (or any ``x -> spikes`` callable) as ``surrogate=`` to :func:`jaxsnn.dlif.simulate`;
strings name them with their default parameter, and :func:`resolve` does the lookup.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Optional, Union

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = [
    "fast_sigmoid", "arctan", "sigmoid", "triangle", "rectangular", "straight_through",
    "heaviside", "resolve", "SURROGATES", "DEFAULT",
]


def heaviside(x: ArrayLike) -> jax.Array:
    """The exact spike function ``1[x >= 0]`` in the dtype of ``x`` (no surrogate: zero gradient)."""
    x = _as_float(x)
    return (x >= 0).astype(x.dtype)


def _as_float(x):
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _spike_function(derivative):
    """A Heaviside step ``f(x, p)`` whose backward pass is ``g * derivative(x, p)``."""

    @jax.custom_vjp
    def f(x, p):
        return (x >= 0).astype(x.dtype)

    def fwd(x, p):
        return f(x, p), (x, p)

    def bwd(res, g):
        x, p = res
        p = jnp.asarray(p)  # jax 0.8.0 can hand a closure-converted constant over as a bare numpy subclass
        return g * derivative(x, p), jnp.zeros_like(p)

    f.defvjp(fwd, bwd)

    def spike(x, p):
        x = _as_float(x)
        return f(x, jnp.asarray(p, x.dtype))

    return spike


def _d_fast_sigmoid(x, k):
    return 1.0 / (1.0 + k * jnp.abs(x)) ** 2


def _d_arctan(x, a):
    return (a / 2) / (1.0 + (jnp.pi / 2 * a * x) ** 2)


def _d_sigmoid(x, k):
    return k * jax.nn.sigmoid(k * x) * jax.nn.sigmoid(-k * x)  # = k s (1 - s), without cancellation


def _d_triangle(x, w):
    return jnp.maximum(0.0, 1.0 - jnp.abs(x) / w) / w


def _d_rectangular(x, w):
    return jnp.where(jnp.abs(x) < w / 2, 1.0 / w, 0.0).astype(x.dtype)


def _d_straight_through(x, c):
    return jnp.broadcast_to(c, x.shape).astype(x.dtype)


_fast_sigmoid = _spike_function(_d_fast_sigmoid)
_arctan = _spike_function(_d_arctan)
_sigmoid = _spike_function(_d_sigmoid)
_triangle = _spike_function(_d_triangle)
_rectangular = _spike_function(_d_rectangular)
_straight_through = _spike_function(_d_straight_through)


def fast_sigmoid(x: ArrayLike, slope: ArrayLike = 25.0) -> jax.Array:
    r"""Heaviside forward; backward :math:`1/(1 + k|x|)^2` with ``k = slope``.

    The SuperSpike surrogate (Zenke & Ganguli 2018, *SuperSpike: supervised learning in multilayer
    spiking neural networks*); ``slope = 25`` is snnTorch's default.

    Args:
      x: distance to threshold ``v - threshold``, any shape.
      slope: steepness ``k > 0`` (scalar or broadcastable to ``x``; may be traced).
    Returns:
      ``1[x >= 0]`` with the shape and (float) dtype of ``x``.
    """
    return _fast_sigmoid(x, slope)


def arctan(x: ArrayLike, alpha: ArrayLike = 2.0) -> jax.Array:
    r"""Heaviside forward; backward :math:`(\alpha/2)/(1 + (\pi\alpha x/2)^2)`, the derivative of
    :math:`\arctan(\pi\alpha x/2)/\pi + 1/2` (Fang et al. 2021, *Incorporating learnable membrane time
    constant ...*; SpikingJelly's ``ATan``, ``alpha = 2``)."""
    return _arctan(x, alpha)


def sigmoid(x: ArrayLike, slope: ArrayLike = 25.0) -> jax.Array:
    r"""Heaviside forward; backward :math:`k\,\mathrm{sig}(kx)(1-\mathrm{sig}(kx))`, the derivative of the
    logistic :math:`\mathrm{sig}(kx)` (Zenke & Vogels 2021, *The remarkable robustness of surrogate
    gradient learning*)."""
    return _sigmoid(x, slope)


def triangle(x: ArrayLike, width: ArrayLike = 1.0) -> jax.Array:
    r"""Heaviside forward; backward :math:`\max(0, 1 - |x|/w)/w` (unit area, support ``|x| < w``;
    Esser et al. 2016; Bellec et al. 2018 use ``w = threshold`` with a dampening factor)."""
    return _triangle(x, width)


def rectangular(x: ArrayLike, width: ArrayLike = 1.0) -> jax.Array:
    r"""Heaviside forward; backward :math:`\mathbb{1}[|x| < w/2]/w`, the boxcar of unit area (Wu et al.
    2018, *Spatio-temporal backpropagation for training high-performance SNNs*)."""
    return _rectangular(x, width)


def straight_through(x: ArrayLike, scale: ArrayLike = 1.0) -> jax.Array:
    r"""Heaviside forward; backward the constant ``scale`` (the straight-through estimator, Bengio,
    Léonard & Courville 2013)."""
    return _straight_through(x, scale)


SURROGATES = {
    "fast_sigmoid": fast_sigmoid,
    "arctan": arctan,
    "sigmoid": sigmoid,
    "triangle": triangle,
    "rectangular": rectangular,
    "straight_through": straight_through,
}
"""The surrogate spike functions by name (each with its default parameter)."""

DEFAULT = "fast_sigmoid"
"""The surrogate used when none is given: ``fast_sigmoid`` with slope 25."""


def resolve(surrogate: Optional[Union[str, Callable[..., jax.Array]]] = None,
            **params: ArrayLike) -> Callable[..., jax.Array]:
    """Turn a surrogate specification into a function ``x -> spikes``.

    Args:
      surrogate: ``None`` (:data:`DEFAULT`), a name in :data:`SURROGATES`, or a callable ``x -> spikes``
        (returned as is; e.g. ``functools.partial(fast_sigmoid, slope=s)`` with a traced ``s``).
      **params: the parameter of a named surrogate, e.g. ``resolve("fast_sigmoid", slope=10.0)``.
    Raises:
      ValueError: unknown name (the message lists the known ones), or ``params`` with a callable.
    """
    if callable(surrogate):
        if params:
            raise ValueError("surrogate: parameters can only be given with a surrogate name")
        return surrogate
    name = DEFAULT if surrogate is None else surrogate
    if not isinstance(name, str) or name not in SURROGATES:
        raise ValueError(f"surrogate: expected None, a callable or one of {sorted(SURROGATES)}, got {surrogate!r}")
    fn = SURROGATES[name]
    return functools.partial(fn, **params) if params else fn
