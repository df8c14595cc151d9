"""Firing-map analysis: affine pieces, linear regions, jumps and structural properties.

Tools that look at the map a network computes (any scalar piecewise-linear map of input spike
times, evaluated with ``jax``): :func:`affine_signatures` (exact value, gradient and intercept
per point), :func:`count_linear_regions` (connected affine pieces on a 1-D or 2-D grid),
:func:`find_jumps` (jump discontinuities along one variable) and
:func:`firing_map_properties` (monotone, concave, continuous, piecewise linear: the properties
that Singh, Fono & Kutyniok, arXiv 2308.08218, prove for firing maps).
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["affine_signatures", "count_linear_regions", "find_jumps", "firing_map_properties"]


# ----------------------------------------------------------------------------------------------
# Linear regions
# ----------------------------------------------------------------------------------------------


def affine_signatures(f: Callable, x, *, decimals: int = 7):
    """Value, gradient and intercept of a scalar piecewise-linear ``f`` at points ``x [N, d]``.

    The gradient is exact (``jax.grad``; :func:`jaxsnn.srm.first_spike_times` has an exact
    custom VJP), so two points lie on the same affine piece iff their ``(gradient, intercept)``
    agree. Returns ``(values [N], grads [N, d], keys [N])`` where ``keys`` are integer ids of the
    rounded signatures (``decimals`` significant digits relative to the largest entry).
    """
    x = jnp.asarray(x)
    vg = jax.jit(jax.vmap(jax.value_and_grad(lambda p: jnp.squeeze(f(p)))))
    values, grads = map(np.asarray, vg(x))
    intercept = values - np.sum(grads * np.asarray(x), -1)
    sig = np.concatenate([grads, intercept[:, None]], -1)
    finite = np.all(np.isfinite(sig), -1)
    scale = max(1.0, float(np.max(np.abs(sig[finite])))) if finite.any() else 1.0
    rounded = np.round(np.where(finite[:, None], sig, np.inf) / scale, decimals)
    _, keys = np.unique(rounded, axis=0, return_inverse=True)
    return values, grads, keys.reshape(-1)


def count_linear_regions(f: Callable, axes: Sequence, *, decimals: int = 7, min_points: int = 1):
    """Number of linear regions of a scalar map ``f`` on a 1-D or 2-D grid.

    A region is a connected set of grid points (4-neighbourhood in 2-D) on the same affine piece
    (:func:`affine_signatures`). Regions smaller than ``min_points`` grid points are dropped
    (points that sit exactly on a boundary can show a third piece). Choose grids that do not
    put points on region boundaries (e.g. offset by an irrational shift) for exact counts.

    Args:
      f: scalar map of a point ``[d]`` (``d`` = ``len(axes)``).
      axes: one (1-D) or two (2-D) increasing 1-D coordinate arrays.

    Returns:
      ``(count, labels)`` with ``labels`` of the grid's shape (``-1`` for dropped points).
    """
    import scipy.ndimage

    if len(axes) not in (1, 2):
        raise ValueError(f"axes must hold one or two coordinate arrays, got {len(axes)}")
    grids = np.meshgrid(*[np.asarray(a, np.float64) for a in axes], indexing="ij")
    pts = np.stack([g.ravel() for g in grids], -1)
    _, _, keys = affine_signatures(f, pts, decimals=decimals)
    keys = keys.reshape(grids[0].shape)
    labels = -np.ones(keys.shape, int)
    count = 0
    for k in np.unique(keys):
        comp, n = scipy.ndimage.label(keys == k)
        for c in range(1, n + 1):
            mask = comp == c
            if mask.sum() >= min_points:
                labels[mask] = count
                count += 1
    return count, labels


# ----------------------------------------------------------------------------------------------
# Firing-map properties
# ----------------------------------------------------------------------------------------------


def find_jumps(f: Callable, a: float, b: float, *, n: int = 1001, rel_tol: float = 1e-6,
               bisections: int = 60):
    """Jump discontinuities of a scalar piecewise-linear map of one variable on ``[a, b]``.

    On a grid of ``n`` points, an interval is suspect when ``|f(x+h) - f(x)|`` exceeds the
    largest exact slope seen (times ``h``) by more than ``rel_tol``; each suspect interval is
    bisected ``bisections`` times, keeping the half with the larger change. A jump survives
    (its size stays put while the interval shrinks to nothing); a steep but continuous piece
    does not. Returns a list of ``(location, jump size f(x+) - f(x-))``; ``inf`` sizes are
    reported for maps that switch between firing and silence.
    """
    fv = jax.jit(jax.vmap(lambda p: jnp.squeeze(f(jnp.reshape(p, (1,))))))
    grad = jax.jit(jax.vmap(jax.grad(lambda p: jnp.squeeze(f(jnp.reshape(p, (1,)))))))
    xs = np.linspace(a, b, n)
    vals = np.asarray(fv(xs))
    slopes = np.asarray(grad(xs))
    lip = float(np.max(np.abs(slopes[np.isfinite(slopes)]), initial=0.0))
    h = xs[1] - xs[0]
    diff = np.diff(vals)
    with np.errstate(invalid="ignore"):
        suspect = ~(np.abs(diff) <= lip * h * (1 + rel_tol) + rel_tol * (1 + np.abs(vals[:-1])))
    jumps = []
    for i in np.flatnonzero(suspect):
        lo, hi, vlo, vhi = xs[i], xs[i + 1], vals[i], vals[i + 1]
        for _ in range(bisections):
            mid = 0.5 * (lo + hi)
            vm = float(fv(np.array([mid]))[0])
            if abs(vm - vlo) >= abs(vhi - vm) or not np.isfinite(vm - vlo):
                hi, vhi = mid, vm
            else:
                lo, vlo = mid, vm
        size = vhi - vlo
        if not np.isfinite(size) or abs(size) > lip * (hi - lo) * (1 + rel_tol) + rel_tol:
            jumps.append((0.5 * (lo + hi), float(size)))
    return jumps


def firing_map_properties(f: Callable, lo, hi, *, key, n: int = 2000, tol: float = 1e-9):
    """Check a firing map for the structural properties of Singh, Fono & Kutyniok.

    Firing maps of SRM networks with linear response are always piecewise linear; with
    ``delta = inf`` and positive weights a one-layer map is moreover continuous, increasing in
    every input time and concave (subset formula in the :mod:`jaxsnn.theory` docstring). This
    function samples ``n`` random pairs in the box ``[lo, hi]^d`` and reports:

    * ``increasing``: ``f(max(x, y)) >= f(x)`` for every pair (coordinate-wise maximum);
    * ``concave``: ``f((x + y)/2) >= (f(x) + f(y))/2``;
    * ``continuous``: no jump along two random segments ``x -> y`` (:func:`find_jumps`; the whole
      interval for ``d = 1``);
    * ``piecewise_linear``: along each segment, the map coincides with the line through its
      exact gradient at the segment's start up to the first kink (checked at the midpoint of
      each pair of grid neighbours with equal exact gradients);
    * ``violations``: the worst margin of each test.

    Args:
      f: map from ``[..., d]`` input spike times to ``[..., 1]`` (or scalar) output times.
      lo, hi: the box.
      key: ``jax.random`` key for the sample.
    """
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    d = lo.size
    k1, k2 = jax.random.split(key)
    x = np.asarray(jax.random.uniform(k1, (n, d), jnp.float64 if jax.config.jax_enable_x64 else jnp.float32,
                                      lo, hi))
    y = np.asarray(jax.random.uniform(k2, (n, d), x.dtype, lo, hi))
    F = jax.jit(jax.vmap(lambda p: jnp.squeeze(f(p))))
    fx, fy = np.asarray(F(x)), np.asarray(F(y))
    inc = np.asarray(F(np.maximum(x, y))) - fx
    conc = np.asarray(F(0.5 * (x + y))) - 0.5 * (fx + fy)
    scale = 1.0 + np.nanmax(np.abs(np.concatenate([fx, fy])))
    # piecewise linearity along segments: second differences vanish wherever gradients agree
    s = np.linspace(0.0, 1.0, 65)
    seg = x[:16, None, :] + s[None, :, None] * (y[:16] - x[:16])[:, None, :]
    vals = np.asarray(F(seg.reshape(-1, d))).reshape(16, s.size)
    _, _, keys = affine_signatures(lambda p: f(p), seg.reshape(-1, d))
    keys = keys.reshape(16, s.size)
    same = (keys[:, :-2] == keys[:, 1:-1]) & (keys[:, 1:-1] == keys[:, 2:])
    second = np.abs(vals[:, :-2] - 2 * vals[:, 1:-1] + vals[:, 2:])
    pwl_dev = float(np.max(np.where(same & np.isfinite(second), second, 0.0), initial=0.0))
    jumps = []
    if d == 1:
        jumps = find_jumps(lambda p: f(p), float(lo[0]), float(hi[0]))
    else:
        for i in range(2):
            xi, yi = x[i], y[i]
            g = lambda s_, xi=xi, yi=yi: f(xi + s_[0] * (yi - xi))
            jumps += find_jumps(g, 0.0, 1.0, n=257)
    return dict(
        increasing=bool(np.all(inc >= -tol * scale)),
        concave=bool(np.all(conc >= -tol * scale)),
        continuous=not jumps,
        piecewise_linear=bool(pwl_dev <= tol * scale * 10),
        violations=dict(increasing=float(-np.min(inc)), concave=float(-np.min(conc)),
                        jumps=jumps, second_difference=pwl_dev),
    )
