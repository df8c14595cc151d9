"""Shared internals: argument checks with one error style, and an exact fast argsort.

Private to the package: every module may import from here; no module imports another
module's private names. Error messages read ``"name: expected ..., got ..."``.

Checks of *values* run only where the values are known (outside ``jit``); shapes are always
known and always checked. :func:`is_concrete` is the one test for "known here".
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True when ``x`` holds values (not a tracer of ``jit``/``vmap``/``grad``), so they can be checked."""
    return not isinstance(x, jax.core.Tracer)


def fail(name: str, expected: str, got) -> ValueError:
    """The library's error: ``ValueError("name: expected <expected>, got <got>")``."""
    return ValueError(f"{name}: expected {expected}, got {got}")


def as_arrays(*xs):
    """Python lists and tuples as arrays (``jnp.asarray``); arrays, tracers and scalars unchanged."""
    return tuple(jnp.asarray(x) if isinstance(x, (list, tuple)) else x for x in xs)


def check_scalar(name: str, x) -> None:
    """``x`` must be a scalar (shape ``()``)."""
    if jnp.ndim(x) != 0:
        raise fail(name, "a scalar", f"shape {jnp.shape(x)}")


def check_positive(name: str, x, *, finite: bool = False) -> None:
    """Every value of ``x`` must be ``> 0`` (and finite when ``finite``), where known."""
    if not is_concrete(x):
        return
    v = np.asarray(x, dtype=float)
    ok = np.all(v > 0) and (not finite or np.all(np.isfinite(v)))
    if not ok:
        raise fail(name, "positive and finite values" if finite else "positive values",
                   _show(v))


def check_non_negative(name: str, x, *, hint: str = "") -> None:
    """Every value of ``x`` must be ``>= 0`` (NaN fails), where known."""
    if is_concrete(x) and not np.all(np.asarray(x, dtype=float) >= 0):
        raise fail(name, "non-negative values" + hint, _show(np.asarray(x, dtype=float)))


def check_no_nan(name: str, x, *, hint: str = "") -> None:
    """``x`` must not contain NaN, where known."""
    if is_concrete(x) and np.any(np.isnan(np.asarray(x, dtype=float))):
        raise fail(name, "no NaN" + hint, "NaN")


def check_finite(name: str, x) -> None:
    """``x`` must hold finite values only (no NaN, no inf), where known."""
    if is_concrete(x) and not np.all(np.isfinite(np.asarray(x, dtype=float))):
        raise fail(name, "finite values", "NaN or inf")


def _show(v: np.ndarray) -> str:
    return f"{float(v)}" if v.ndim == 0 else f"values in [{np.nanmin(v) if v.size else math.nan}, " \
        f"{np.nanmax(v) if v.size else math.nan}]" + (" with NaN" if np.any(np.isnan(v)) else "")


def check_weights_threshold(weights, threshold):
    """Shared by the layer functions: ``weights [n_in, n_out]``, finite; ``threshold`` scalar or
    ``[n_out]``, positive and finite (values checked where known). Returns ``(n_in, n_out)``."""
    if jnp.ndim(weights) != 2:
        raise fail("weights", "shape [n_in, n_out]", f"shape {jnp.shape(weights)}")
    n_in, n_out = jnp.shape(weights)
    if is_concrete(weights) and not np.all(np.isfinite(np.asarray(weights, dtype=float))):
        raise fail("weights", "finite values", "NaN or inf")
    if jnp.ndim(threshold) not in (0, 1) or (jnp.ndim(threshold) == 1 and jnp.shape(threshold)[0] not in (1, n_out)):
        raise fail("threshold", f"a scalar or shape [n_out] = [{n_out}]", f"shape {jnp.shape(threshold)}")
    check_positive("threshold", threshold, finite=True)
    return n_in, n_out


# ----------------------------------------------------------------------------------------------
# Sorting
# ----------------------------------------------------------------------------------------------


def ordered_int(x):
    """int32 keys that sort like the float32 values ``x`` (IEEE bits, negatives flipped).

    ``-0.0`` becomes ``+0.0`` first: the two are equal values but not equal bit patterns.
    """
    bits = jax.lax.bitcast_convert_type(jnp.where(x == 0, jnp.zeros_like(x), x), jnp.int32)
    return jnp.where(bits < 0, bits ^ jnp.int32(0x7FFFFFFF), bits)


def argsort(x, axis):
    """Stable argsort along ``axis``, exact, with two single-operand integer sorts.

    XLA's CPU sort of ``(float key, index)`` pairs is several times slower than a sort of one
    integer array. So: sort the order-preserving integer keys, take each element's position
    ``p`` among them (``searchsorted``, left: equal keys share it), and sort the unique
    integers ``p * m + index``, which order by value and then by index.
    """
    x = jnp.moveaxis(x, axis, -1)
    m = x.shape[-1]
    if x.dtype != jnp.float32 or m * m >= 2**31:
        return jnp.moveaxis(jnp.argsort(x, axis=-1, stable=True), -1, axis)
    keys = ordered_int(x)
    flat = keys.reshape(-1, m)
    pos = jax.vmap(lambda s, k: jnp.searchsorted(s, k, side="left", method="scan"))(
        jnp.sort(flat, axis=-1), flat
    ).astype(jnp.int32)
    idx = jax.lax.broadcasted_iota(jnp.int32, flat.shape, 1)
    order = jnp.sort(pos * m + idx, axis=-1) % m
    return jnp.moveaxis(order.reshape(x.shape), -1, axis)
