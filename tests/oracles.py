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


# ----------------------------------------------------------------------------------------------
# Current-based LIF: ODE integration with events (scipy), and the Fast & Deep closed forms
# ----------------------------------------------------------------------------------------------


def lif_spikes_ode(t_in, w, *, tau_syn, tau_mem, theta, max_spikes, t_max=math.inf, rtol=1e-12):
    """Spike times of one LIF neuron by numerical ODE integration (``scipy.integrate.solve_ivp``).

    ``t_in`` is a list of input spike times (any order, ``inf`` ignored) and ``w`` the weight of
    each. The state ``(u, i)`` is integrated with DOP853 between input spikes; threshold
    crossings are located by the solver's event detection, after which ``u -> u - theta`` and the
    integration restarts. Nothing here uses the closed forms of :mod:`jaxsnn.lif`.
    """
    from scipy.integrate import solve_ivp

    ev = sorted((float(t), float(wi)) for t, wi in zip(t_in, w) if math.isfinite(t) and t <= t_max)
    if not ev:
        return []
    t_end = t_max if math.isfinite(t_max) else ev[-1][0] + 60.0 * max(tau_mem, tau_syn)

    def rhs(t, y):
        return [-y[0] / tau_mem + y[1], -y[1] / tau_syn]

    def hit(t, y):
        return y[0] - theta

    hit.terminal = True
    hit.direction = 1
    out = []
    u, i, t = 0.0, 0.0, ev[0][0]
    k = 0
    while k < len(ev) or t < t_end:
        while k < len(ev) and ev[k][0] <= t:
            i += ev[k][1]
            k += 1
        stop = ev[k][0] if k < len(ev) else t_end
        while t < stop:
            sol = solve_ivp(rhs, (t, stop), [u, i], method="DOP853", rtol=rtol, atol=1e-14 * theta,
                            events=hit)
            if sol.t_events[0].size:
                ts = float(sol.t_events[0][0])
                u, i = sol.y_events[0][0]
                out.append(ts)
                if len(out) == max_spikes:
                    return out
                u -= theta
                t = ts
            else:
                u, i = sol.y[:, -1]
                t = stop
        if k >= len(ev) and t >= t_end:
            break
    return out


def fast_and_deep_first_spike(t_in, w, *, tau_syn, tau_ratio, theta):
    """First spike of one neuron from the closed forms of Göltz et al. (2021), global sums.

    Inputs sorted by time; for each prefix (the candidate causal set) the crossing is solved
    with sums of ``w e^{t/tau}`` over the whole prefix (no anchoring); the first crossing that
    falls between the last causal input and the next one is the spike. ``tau_ratio = 2``:
    quadratic in ``e^{-t/tau_m}``; ``1``: Lambert W (``scipy.special.lambertw``).
    """
    from scipy.special import lambertw as W

    ev = sorted((float(t), float(wi)) for t, wi in zip(t_in, w) if math.isfinite(t))
    tau_m = tau_ratio * tau_syn
    for n in range(1, len(ev) + 1):
        ts = np.array([e[0] for e in ev[:n]])
        ws = np.array([e[1] for e in ev[:n]])
        lo = ts[-1]
        hi = ev[n][0] if n < len(ev) else math.inf
        if tau_ratio == 2:
            A = np.sum(ws * np.exp(ts / tau_m))
            Bc = np.sum(ws * np.exp(ts / tau_syn))
            disc = A * A - 4.0 * Bc * theta / tau_m
            if Bc <= 0 or disc < 0 or A <= 0:
                continue
            t = tau_m * math.log(2.0 * Bc / (A + math.sqrt(disc)))
        else:
            A = np.sum(ws * np.exp(ts / tau_syn))
            Bt = np.sum(ws * ts * np.exp(ts / tau_syn))
            if A <= 0:
                continue
            arg = -theta / (tau_syn * A) * math.exp(Bt / (tau_syn * A))
            if arg < -math.exp(-1.0):
                continue
            t = Bt / A - tau_syn * float(W(arg, 0).real)
        if lo <= t <= hi:
            return t
    return math.inf
