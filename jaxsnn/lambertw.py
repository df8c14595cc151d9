r"""The principal branch of the Lambert W function, differentiable, for float32 and float64.

Used by the ``tau_mem = tau_syn`` closed form of :mod:`jaxsnn.lif` (Göltz et al., Nat. Mach. Intell.
2021, Methods): the first threshold crossing of :math:`u(y) = (u_0 + B y) e^{-y}` is
:math:`y^* = -W_0(-\tfrac{\theta}{B} e^{-u_0/B}) - u_0/B`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["lambertw"]

_INV_E = math.exp(-1.0)


@jax.custom_jvp
def lambertw(x: ArrayLike) -> jax.Array:
    r"""Principal branch :math:`W_0(x)` of the Lambert W function, ``w e^w = x``, ``w >= -1``.

    Defined for ``x >= -1/e``; returns NaN below (no warning), ``inf`` at ``inf``. Initial
    guess from the branch-point series :math:`-1 + p - p^2/3 + 11 p^3/72`,
    :math:`p = \sqrt{2(e x + 1)}` near ``-1/e``, ``log1p(x)`` in the middle and
    :math:`L_1 - L_2 + L_2/L_1` for large ``x``; then five Halley steps (converged to the last
    bit in float64 across the domain, see the tests). The derivative
    :math:`W'(x) = e^{-W} / (1 + W)` is infinite at the branch point, as it should be.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    branch = 2.0 * (math.e * x + 1.0)
    p = jnp.sqrt(jnp.maximum(branch, 0.0))
    w_branch = -1.0 + p * (1.0 + p * (-1.0 / 3.0 + p * (11.0 / 72.0)))
    xs = jnp.maximum(x, 3.0)
    l1 = jnp.log(xs)
    l2 = jnp.log(l1)
    w_large = l1 - l2 + l2 / l1
    w = jnp.where(x < -0.25, w_branch, jnp.where(x < 3.0, jnp.log1p(jnp.maximum(x, -0.25)), w_large))
    finite = jnp.isfinite(x) & (x >= -_INV_E)
    w = jnp.where(finite, w, 0.0)
    xf = jnp.where(finite, x, 0.0)
    for _ in range(5):
        ew = jnp.exp(w)
        f = w * ew - xf
        wp1 = w + 1.0
        safe = jnp.abs(wp1) > 1e-7
        wp1s = jnp.where(safe, wp1, 1.0)
        denom = ew * wp1s - (w + 2.0) * f / (2.0 * wp1s)
        step = jnp.where(safe & (denom != 0), f / jnp.where(denom != 0, denom, 1.0), 0.0)
        w = w - step
    w = jnp.where(x == -_INV_E, -1.0, w)
    w = jnp.where(finite, w, jnp.where(x == jnp.inf, jnp.inf, jnp.nan))
    return w


@lambertw.defjvp
def _lambertw_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    w = lambertw(x)
    return w, dx * jnp.exp(-w) / (1.0 + w)
