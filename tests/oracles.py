"""Independent reference implementations, written differently from the library.

``srm_first_spike_exact`` evaluates the SRM potential by direct summation in exact rational
arithmetic (``fractions.Fraction``), interval by interval between knots, instead of sorting
signed events and accumulating prefix sums as :mod:`jaxsnn.srm` does.
"""

from fractions import Fraction
import math

import numpy as np


def srm_first_spike_exact(t_in, w, theta, delays=None, kernel="ramp", delta=math.inf):
    """First spike time of one neuron: ``t_in [n]``, ``w [n]``, ``delays [n]`` or None. Returns float."""
    dl = None if math.isinf(delta) else Fraction(float(delta))
    th = Fraction(float(theta))
    arr, ws = [], []
    for i, t in enumerate(t_in):
        if math.isfinite(t):
            # Knot times are the float64 sums the library forms too (so that ties agree);
            # everything after that is exact.
            d = 0.0 if delays is None else float(delays[i])
            arr.append(Fraction(float(t) + d))
            ws.append(Fraction(float(w[i])))
    if not arr:
        return math.inf
    knots = set(arr)
    cut = {a: Fraction(float(a) + float(delta)) for a in arr} if dl is not None else {}
    knots |= set(cut.values())
    knots = sorted(knots)

    def eps(t, a):
        s = t - a
        if s <= 0 or (dl is not None and t > cut[a]):
            return Fraction(0)
        return s if kernel == "ramp" else Fraction(1)

    def P(t):
        return sum(wi * eps(t, a) for wi, a in zip(ws, arr))

    for j, left in enumerate(knots):
        right = knots[j + 1] if j + 1 < len(knots) else None
        if kernel == "step":
            probe = left + 1 if right is None else (left + right) / 2
            if P(probe) >= th:
                return float(left)
            continue
        if right is None:
            p1, p2 = P(left + 1), P(left + 2)
            slope = p2 - p1
            if p1 - slope >= th:
                return float(left)
            if slope > 0:
                return float(left + 1 + (th - p1) / slope)
            return math.inf
        mid = (left + right) / 2
        p_mid, p_end = P(mid), P(right)
        slope = (p_end - p_mid) / (right - mid)
        if p_mid - slope * (mid - left) >= th:  # the potential jumped above threshold at `left`
            return float(left)
        if p_end >= th:
            return float(right - (p_end - th) / slope)
    return math.inf


def srm_layer_exact(t_in, w, theta, delays=None, kernel="ramp", delta=math.inf):
    """Vectorized over a batch and output neurons: ``t_in [B, n]``, ``w [n, m]`` -> ``[B, m]``."""
    t_in, w = np.asarray(t_in, float), np.asarray(w, float)
    theta = np.broadcast_to(np.asarray(theta, float), (w.shape[1],))
    out = np.empty((t_in.shape[0], w.shape[1]))
    for b in range(t_in.shape[0]):
        for v in range(w.shape[1]):
            d = None if delays is None else np.asarray(delays)[:, v]
            out[b, v] = srm_first_spike_exact(t_in[b], w[:, v], theta[v], d, kernel, delta)
    return out


def srm_first_spike_grid(t_in, w, theta, *, h, t_end, delays=None, kernel="ramp", delta=math.inf):
    """Fine time-grid simulation (numpy, float64): first grid time with ``P >= theta``."""
    t_in, w = np.asarray(t_in, float), np.asarray(w, float)
    grid = np.arange(0.0, t_end, h)
    a = t_in[:, :, None] + (0.0 if delays is None else np.asarray(delays)[None])  # [B, n, m]
    out = np.full((t_in.shape[0], w.shape[1]), np.inf)
    for b in range(t_in.shape[0]):
        s = grid[:, None, None] - a[b][None]  # [T, n, m]
        with np.errstate(invalid="ignore"):
            on = (s > 0) & (s <= delta)
        eps = np.where(on, s, 0.0) if kernel == "ramp" else on.astype(float)
        P = np.einsum("tnm,nm->tm", eps, w)
        hit = P >= np.broadcast_to(theta, (w.shape[1],))
        idx = np.argmax(hit, axis=0)
        out[b] = np.where(hit.any(0), grid[idx], np.inf)
    return out
