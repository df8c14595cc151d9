r"""Discretization of spike times on a clock: each spike moves to the end of its time bin.

A digital neuromorphic chip represents a spike time only at the resolution of its time step
``dt``. Following Cojocaru (TU Delft, *The effects of the time step size on the accuracy,
sparsity and latency of the SNN*), a spike in the bin :math:`[k\,dt, (k+1)\,dt)` is delayed to
the end of that bin,

.. math:: q(t) = (\lfloor t / dt \rfloor + 1)\, dt,

so a discretized spike is never earlier than the continuous one (causality on a clocked chip:
an event is seen at the first clock edge after it happens). ``dt = 0`` is the identity and
``inf`` (no spike) stays ``inf``.

The forward pass is this staircase. Its derivative is zero almost everywhere, so training uses
an estimator in the backward pass:

* ``"straight_through"`` (default; Bengio et al. 2013): :math:`\partial q / \partial t = 1`.
* ``"sine"``: the derivative of the smooth staircase
  :math:`t - \tfrac{dt}{2\pi}\sin(2\pi t / dt)`, i.e. :math:`1 - \cos(2\pi t/dt)`. It averages to
  1 over a bin like the straight-through estimator, but vanishes at the bin ends, where a
  small move of ``t`` changes nothing in the forward pass, and peaks (2) mid-bin.

``dt`` is an ordinary, traceable argument, so a vmapped sweep over ``dt`` compiles once. Its
derivative is the exact one almost everywhere, :math:`\partial q/\partial dt = \lfloor t/dt
\rfloor + 1` (zero where ``dt = 0`` or ``t = inf``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = ["quantize", "bin_index", "bin_end", "estimator_slope", "ESTIMATORS"]

ESTIMATORS = ("straight_through", "sine")


def bin_index(t: ArrayLike, dt: ArrayLike) -> jax.Array:
    """Index ``k`` of the bin ``[k dt, (k+1) dt)`` that holds ``t`` (float, exact in the arithmetic used).

    ``floor(t / dt)`` corrected by one where rounding of the division put ``t`` outside
    ``[k dt, (k+1) dt)`` as evaluated in floating point, so that ``k dt <= t < (k+1) dt`` holds
    for the returned ``k``. ``inf`` for ``t = inf``; meaningless for ``dt = 0``.

    Args:
      t: spike times, any shape; ``inf`` = no spike.
      dt: time step, a scalar or an array broadcastable against ``t``.
    """
    safe_dt = jnp.where(dt > 0, dt, 1.0)
    finite = jnp.isfinite(t)
    t_safe = jnp.where(finite, t, 0.0)
    k = jnp.floor(t_safe / safe_dt)
    k = jnp.where((k + 1) * safe_dt <= t_safe, k + 1, k)
    k = jnp.where(k * safe_dt > t_safe, k - 1, k)
    return jnp.where(finite, k, jnp.inf)


def _forward(t, dt):
    k = bin_index(t, dt)
    q = jnp.where(jnp.isfinite(t), (k + 1) * dt, t)
    return jnp.where(dt > 0, q, t), k


def bin_end(t: ArrayLike, dt: ArrayLike) -> jax.Array:
    """The forward map of :func:`quantize` without its estimator: ``(floor(t/dt) + 1) dt``,
    ``t`` itself where ``dt = 0``; no custom derivative (for code with its own backward pass).

    Args:
      t: spike times, any shape; ``inf`` = no spike (stays ``inf``).
      dt: time step, a non-negative scalar or an array broadcastable against ``t``.
    """
    return _forward(t, dt)[0]


def estimator_slope(t: ArrayLike, dt: ArrayLike, estimator: str = "straight_through") -> jax.Array:
    r"""The derivative the backward pass of :func:`quantize` uses for ``t``.

    ``1`` for ``"straight_through"``; :math:`1 - \cos(2\pi t/dt)` for ``"sine"`` (``1`` where
    ``dt = 0``); ``0`` where ``t = inf``.

    Args:
      t: spike times, any shape.
      dt: time step, a non-negative scalar or an array broadcastable against ``t``.
      estimator: ``"straight_through"`` or ``"sine"``.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    finite = jnp.isfinite(t)
    if estimator == "straight_through":
        return jnp.where(finite, 1.0, 0.0).astype(jnp.result_type(t, float))
    ok = (dt > 0) & finite
    phase = jnp.where(ok, 2 * jnp.pi * jnp.where(finite, t, 0.0) / jnp.where(dt > 0, dt, 1.0), 0.0)
    return jnp.where(ok, 1.0 - jnp.cos(phase), jnp.where(finite, 1.0, 0.0))


@jax.custom_jvp
def _quantize_ste(t, dt):
    return _forward(t, dt)[0]


@jax.custom_jvp
def _quantize_sine(t, dt):
    return _forward(t, dt)[0]


def _dt_tangent(t, dt, k, dt_dot):
    ok = (dt > 0) & jnp.isfinite(t)
    return jnp.where(ok, jnp.where(ok, k, 0.0) + 1.0, 0.0) * dt_dot


@_quantize_ste.defjvp
def _ste_jvp(primals, tangents):
    t, dt = primals
    t_dot, dt_dot = tangents
    q, k = _forward(t, dt)
    return q, jnp.where(jnp.isfinite(t), t_dot, 0.0) + _dt_tangent(t, dt, k, dt_dot)


@_quantize_sine.defjvp
def _sine_jvp(primals, tangents):
    t, dt = primals
    t_dot, dt_dot = tangents
    q, k = _forward(t, dt)
    return q, estimator_slope(t, dt, "sine") * t_dot + _dt_tangent(t, dt, k, dt_dot)


def quantize(t: ArrayLike, dt: ArrayLike, *, estimator: str = "straight_through") -> jax.Array:
    r"""Move every spike time to the end of its time bin: ``(floor(t / dt) + 1) * dt``.

    Args:
      t: spike times, any shape; ``inf`` = no spike (stays ``inf``).
      dt: time step, a non-negative scalar or an array broadcastable against ``t``; traceable
        (vmap a sweep over it). ``dt = 0`` returns ``t`` unchanged.
      estimator: backward pass for ``t``: ``"straight_through"`` (derivative 1) or ``"sine"``
        (derivative ``1 - cos(2 pi t / dt)``); see the module docstring.

    Returns:
      The discretized times, same shape and dtype as ``t``. Gradients are finite everywhere
      (zero for ``t = inf``).

    Raises:
      ValueError: unknown ``estimator``, or a concrete negative ``dt``.

    Example (``dt = 0.5``: a spike in ``[0, 0.5)`` moves to 0.5, one at 0.5 to 1.0):

    >>> import jax.numpy as jnp
    >>> from jaxsnn import discretize
    >>> discretize.quantize(jnp.array([0.25, 0.5, jnp.inf]), 0.5)
    Array([0.5, 1. , inf], dtype=float32)
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    t = jnp.asarray(t)
    if not jnp.issubdtype(t.dtype, jnp.floating):
        t = t.astype(float)
    if not isinstance(dt, jax.core.Tracer):  # numpy: under jit, a jnp comparison of a constant is traced
        if bool(np.any(np.asarray(dt) < 0)):
            raise ValueError(f"dt must be non-negative, got {dt}")
    dt = jnp.asarray(dt, t.dtype)
    fn = _quantize_ste if estimator == "straight_through" else _quantize_sine
    return fn(t, jnp.broadcast_to(dt, jnp.broadcast_shapes(dt.shape, t.shape)) if dt.ndim else dt)
