"""Shared internals: argument checks with one error style, and an exact fast argsort.

Private to the package: every module may import from here; no module imports another
module's private names. Error messages read ``"name: expected ..., got ..."``.

Checks of *values* run where the values are known (outside ``jit``), and on traced values only
inside :func:`checks_in_jit` (the opt-in of :func:`jaxsnn.checks.checked`); shapes are always known
and always checked. :func:`is_concrete` is the one test for "known here".
"""

from __future__ import annotations

import contextlib
import contextvars
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


# Value checks. Known values (outside jit) are checked in Python and raise ``fail(...)``. Traced values
# are not checked, unless inside ``checks_in_jit()`` (entered by jaxsnn.checks.checked): then each check
# becomes a ``checkify.check`` of the same condition, which the caller's ``checkify`` turns into an error.
_IN_JIT = contextvars.ContextVar("jaxsnn_checks_in_jit", default=False)


@contextlib.contextmanager
def checks_in_jit():
    """Within it, the value checks below emit ``checkify.check`` for traced values (see jaxsnn.checks)."""
    token = _IN_JIT.set(True)
    try:
        yield
    finally:
        _IN_JIT.reset(token)


def require(name: str, x, ok, expected: str, got) -> None:
    """All of ``ok(x, xp)`` must hold (``xp``: ``np`` for known values, ``jnp`` for traced ones).

    Known values: raises ``fail(name, expected, got(values))`` (``got`` a function or a string).
    Traced values: nothing, or a ``checkify.check`` inside :func:`checks_in_jit`.
    """
    if is_concrete(x):
        v = np.asarray(x, dtype=float)
        if not np.all(ok(v, np)):
            raise fail(name, expected, got(v) if callable(got) else got)
    elif _IN_JIT.get():
        from jax.experimental import checkify

        checkify.check(jnp.all(ok(jnp.asarray(x), jnp)), f"{name}: expected {expected}")


def check_positive(name: str, x, *, finite: bool = False) -> None:
    """Every value of ``x`` must be ``> 0`` (and finite when ``finite``)."""
    require(name, x, lambda v, xp: (v > 0) & (xp.isfinite(v) | (not finite)),
            "positive and finite values" if finite else "positive values", _show)


def check_non_negative(name: str, x, *, hint: str = "") -> None:
    """Every value of ``x`` must be ``>= 0`` (NaN fails)."""
    require(name, x, lambda v, xp: v >= 0, "non-negative values" + hint, _show)


def check_finite(name: str, x) -> None:
    """``x`` must hold finite values only (no NaN, no inf)."""
    require(name, x, lambda v, xp: xp.isfinite(v), "finite values", "NaN or inf")


def check_times(name: str, t) -> None:
    """Spike times: finite or ``+inf`` (no spike); NaN and ``-inf`` fail."""
    require(name, t, lambda v, xp: ~xp.isnan(v), "no NaN (use jnp.inf for inputs that do not spike)", "NaN")
    require(name, t, lambda v, xp: v != -xp.inf, "finite times or +inf (no spike)", "-inf")


def _show(v: np.ndarray) -> str:
    return f"{float(v)}" if v.ndim == 0 else f"values in [{np.nanmin(v) if v.size else math.nan}, " \
        f"{np.nanmax(v) if v.size else math.nan}]" + (" with NaN" if np.any(np.isnan(v)) else "")


def check_weights_threshold(weights, threshold):
    """Shared by the layer functions: ``weights [n_in, n_out]``, finite; ``threshold`` scalar or
    ``[n_out]``, positive and finite (values checked where known). Returns ``(n_in, n_out)``."""
    if jnp.ndim(weights) != 2:
        raise fail("weights", "shape [n_in, n_out]", f"shape {jnp.shape(weights)}")
    n_in, n_out = jnp.shape(weights)
    check_finite("weights", weights)
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
