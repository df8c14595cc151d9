"""Independent reference implementations, written differently from the library.

``srm_first_spike_exact`` evaluates the SRM potential by direct summation in exact rational
arithmetic (``fractions.Fraction``), interval by interval between knots, instead of sorting
signed events and accumulating prefix sums as :mod:`jaxsnn.srm` does.
"""

import math
from fractions import Fraction

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


def lif_clocked_fine_step(t_in, w, *, tau_syn, tau_mem, theta, max_spikes, t_max, dt, substeps=400):
    """A clocked chip, simulated on a fine grid (independent of the closed forms of jaxsnn.lif).

    ``t_in [n_in, k]`` are spike times already on the clock grid (multiples of ``dt``). The
    state ``(u, i)`` is propagated with the matrix exponential of the linear ODE over
    ``dt / substeps``; an input adds its weight to ``i`` at its clock edge; a neuron whose
    membrane is at or above ``theta`` at any sample of a bin (the bin start included) emits a
    spike at the bin end, where ``u -> u - theta``. Returns ``[n_out, max_spikes]``.
    """
    from scipy.linalg import expm

    t_in = np.asarray(t_in, float)
    w = np.asarray(w, float)
    n_in, n_out = w.shape
    prop = expm(np.array([[-1.0 / tau_mem, 1.0], [0.0, -1.0 / tau_syn]]) * dt / substeps)
    edge = np.where(np.isfinite(t_in), np.rint(t_in / dt), -1).astype(int)
    n_bins = int(math.floor(t_max / dt + 1e-9))
    out = np.full((n_out, max_spikes), np.inf)
    theta = np.broadcast_to(np.asarray(theta, float), (n_out,))
    u, i, count = np.zeros(n_out), np.zeros(n_out), np.zeros(n_out, int)
    for k in range(n_bins):
        i = i + w[np.nonzero(edge == k)[0]].sum(axis=0)
        pending = (u >= theta) & (count < max_spikes)
        for _ in range(substeps):
            u, i = prop[0, 0] * u + prop[0, 1] * i, prop[1, 1] * i
            pending |= (u >= theta) & (count < max_spikes)
        for n in np.nonzero(pending)[0]:
            out[n, count[n]] = (k + 1) * dt
            count[n] += 1
            u[n] -= theta[n]
    return out


def lif_clocked_surrogate(t_q_out, t_in, w, *, tau_syn, tau_mem, theta, dt, slope_map=None):
    """The function whose derivative a clocked LIF layer's backward pass computes.

    Given the clocked spikes ``t_q_out [n_out, K]`` of a forward pass, recompute each spike's
    threshold crossing ``t*`` by root finding on

        u_m(t) = sum_j w_j kappa(t - t_j) - theta sum_{k<m} exp(-(t - t_q,k) / tau_mem)

    (``kappa`` the CUBA PSP), inside the bin before ``t_q,m``; a spike whose membrane is at or
    above ``theta`` right after the previous reset is immediate (``t* = t_q,m-1``). Returns a
    function ``f(t_in, w, theta, tau_syn) -> [n_out, K]`` that re-solves every crossing near
    its ``t*`` for perturbed arguments and maps it to ``t_q + (g(t*_new) - g(t*))``, ``g`` the
    estimator's smooth stand-in for the staircase (identity for straight-through). Finite
    differences of ``f`` are the oracle for the gradient.
    """
    from scipy.optimize import brentq

    g = slope_map or (lambda t: t)

    def kappa(s, ts, tm):
        s = np.where(s > 0, s, 0.0)
        if abs(tm - ts) < 1e-12 * tm:
            return s * np.exp(-s / tm)
        return tm * ts / (tm - ts) * (np.exp(-s / tm) - np.exp(-s / ts))

    def membrane(t, tj, wj, resets, th, ts, tm):
        fin = np.isfinite(tj)
        v = np.sum(wj[fin] * kappa(t - tj[fin], ts, tm))
        return v - th * np.sum(np.exp(-(t - np.asarray(resets)) / tm)) if len(resets) else v

    def solve(tin, wj, th, ts, tm, t_q, base=None):
        """Crossings and immediates of one neuron; with ``base`` re-solve near base's t*."""
        tj = np.asarray(tin, float).ravel()
        stars, imms, resets, out = [], [], [], []
        for m in range(len(t_q)):
            if not np.isfinite(t_q[m]):
                out.append(np.inf)
                continue
            prev = resets[-1] if resets else 0.0
            if base is None:
                imm = bool(resets) and membrane(prev, tj, wj, resets, th, ts, tm) >= th
            else:
                imm = base[1][m]
            if imm:
                star = prev
            else:
                if base is None:
                    lo = max(t_q[m] - dt, prev)
                    grid = np.linspace(lo, t_q[m], 2001)
                    f = np.array([membrane(x, tj, wj, resets, th, ts, tm) - th for x in grid])
                    j = int(np.argmax(f >= 0))
                    star = brentq(lambda x: membrane(x, tj, wj, resets, th, ts, tm) - th, grid[max(j - 1, 0)],
                                  grid[j], xtol=1e-15, rtol=1e-15) if j > 0 else grid[0]
                else:
                    s0 = base[0][m]
                    h = 1e-4 * dt
                    star = brentq(lambda x: membrane(x, tj, wj, resets, th, ts, tm) - th, s0 - h, s0 + h,
                                  xtol=1e-15, rtol=1e-15)
            stars.append(star)
            imms.append(imm)
            q = t_q[m] if base is None else t_q[m] + (g(star) - g(base[0][m]))
            out.append(q)
            resets.append(q)
        return stars, imms, out

    t_q_out = np.asarray(t_q_out, float)
    n_out = w.shape[1]
    base = [solve(t_in, w[:, n].repeat(np.shape(t_in)[-1]), theta, tau_syn, tau_mem, t_q_out[n])
            for n in range(n_out)]
    ratio = tau_mem / tau_syn

    def f(t_in2, w2, theta2, tau_syn2):
        return np.array([solve(t_in2, w2[:, n].repeat(np.shape(t_in2)[-1]), theta2, tau_syn2, ratio * tau_syn2,
                               t_q_out[n], base=base[n][:2])[2] for n in range(n_out)])

    return f, base
