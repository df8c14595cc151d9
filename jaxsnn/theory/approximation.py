"""Universal approximation with one hidden layer of SRM neurons (response length ``delta = 3``).

:func:`approximate` builds an :class:`~jaxsnn.theory.constructions.SRMNetwork` with one hidden
layer of ridge neurons and one output neuron whose spike time approximates a continuous
``f: [0, 1]^d -> [0, 1]`` within ``eps`` (Fono et al., arXiv 2503.02013).
"""

from __future__ import annotations

import warnings
from typing import Callable

import jax.numpy as jnp
import numpy as np

from jaxsnn.theory.constructions import SRMLayer, SRMNetwork, range_checked_encoder

__all__ = ["approximate"]


# ----------------------------------------------------------------------------------------------
# Universal approximation with one hidden spiking layer
# ----------------------------------------------------------------------------------------------

_ETA = 0.25       # hidden spikes lie in [1, 1 + ETA]
_T_OUT = 1.5      # output spikes lie at T_OUT + lambda + f_hat (< 3 for the delta = 3 response)


def _ridge_hidden_layer(directions, offsets, d, delta):
    """Hidden SRM neurons firing at ``1 + s1 (2 + u) + (s2 - s1) relu(u - b)``, ``u = a . x``.

    Inputs: ``x_1..x_d`` at times ``x_i``, three reference spikes at time 0. Neuron ``k``:
    weights ``a`` (l1 norm 1) on ``x``, ``-sum(a)`` on reference 0 (so that once every input
    has arrived the ``x`` part of the potential is the constant ``-a . x``), ``1/s1`` on
    reference 1 (delay 1) and ``1/s2 - 1/s1`` on reference 2 (delay ``t_b``), threshold 2.
    Before ``t = 1`` the potential is at most ``|a|_1 t < 2``; after it, ``R(t) - a . x`` with
    ``R`` the increasing ramp of the references, so the neuron fires where ``R(t) = 2 + a . x``.
    Three relay neurons fire at exactly 1 for the output neuron's reference ramp.
    """
    n = len(directions)
    s1, s2 = _ETA / 8, _ETA / 4
    w = np.zeros((d + 3, n + 3))
    dl = np.zeros((d + 3, n + 3))
    for k, (a, b) in enumerate(zip(directions, offsets)):
        w[:d, k] = a
        w[d, k] = -a.sum()
        w[d + 1, k], dl[d + 1, k] = 1.0 / s1, 1.0
        w[d + 2, k], dl[d + 2, k] = 1.0 / s2 - 1.0 / s1, 1.0 + s1 * (2.0 + b)
    w[d, n:] = 1.0                                   # relays: reference 0 -> spike at 1
    theta = np.concatenate([np.full(n, 2.0), np.ones(3)])
    return SRMLayer(w, theta, dl, delta)


def _readout_layer(c, c0, lam, n_hidden, delta):
    """Output neuron firing at ``T_OUT + lam + c0 + sum_k c_k (h_k - 1)/ETA`` (see approximate)."""
    wk = c / _ETA                                    # sigma = 1
    theta = 1.0
    r_out = theta - (lam + c0)                       # reference ramp R at T_OUT
    m1 = max(float(np.sum(np.abs(wk))), -r_out / _ETA) + 1.0
    r2 = (r_out + m1 * _ETA) / (_T_OUT - 1.0 - _ETA)
    w = np.zeros((n_hidden + 3, 1))
    dl = np.zeros((n_hidden + 3, 1))
    w[:n_hidden, 0] = wk
    w[n_hidden, 0] = -m1 - wk.sum()                  # balance + falling ramp from t = 1
    w[n_hidden + 1, 0], dl[n_hidden + 1, 0] = m1 + r2, _ETA
    w[n_hidden + 2, 0], dl[n_hidden + 2, 0] = 1.0 - r2, _T_OUT - 1.0
    return SRMLayer(w, np.array([theta]), dl, delta)


def _ridge_dictionary(d, level):
    """Ridge directions (l1 norm 1) and kink offsets for refinement ``level``."""
    if d == 1:
        n_off = 4 * 2 ** level
        dirs = [np.ones(1)] * n_off
        offs = list((np.arange(n_off) + 0.5) / n_off)
        return dirs, offs
    n_dir = 4 + 2 * level
    n_off = 4 + 3 * level
    rng = np.random.default_rng(level)
    dirs, offs = [], []
    for j in range(n_dir * (d - 1)):
        a = rng.standard_normal(d) if d > 2 else np.array([np.cos(np.pi * j / n_dir), np.sin(np.pi * j / n_dir)])
        a = a / np.abs(a).sum()
        u_lo, u_hi = np.minimum(a, 0).sum(), np.maximum(a, 0).sum()
        for i in range(n_off):
            dirs.append(a)
            offs.append(u_lo + (u_hi - u_lo) * (i + 0.5) / n_off)
    return dirs, offs


def _box_grid(d, n, shift=0.0):
    ax = np.clip(np.linspace(0.0, 1.0, n) + shift, 0.0, 1.0)
    return np.stack([g.ravel() for g in np.meshgrid(*([ax] * d), indexing="ij")], -1)


def approximate(f: Callable, d: int, eps: float, *, delta: float = 3.0, max_level: int = 8,
                fit_points: int = 0, check_points: int = 0, verbose: bool = False):
    r"""A network with one hidden layer of SRM neurons (``delta = 3``) approximating ``f`` within ``eps``.

    ``f: [0, 1]^d -> [0, 1]`` (continuous; a function of ``[N, d]`` numpy arrays returning ``[N]``).
    The network: inputs ``x_i`` spike at ``x_i``, three reference inputs at 0; one hidden layer
    of *ridge neurons* firing at

    .. math:: h_k(x) = 1 + s_1 (2 + a_k\cdot x) + (s_2 - s_1)\,\mathrm{relu}(a_k \cdot x - b_k)
       \in [1, 1.25]

    (balanced weights make the input part of the potential the constant ``-a.x`` once every
    input has arrived, and reference spikes build an increasing ramp with a kink, see
    ``_ridge_hidden_layer``), plus three relay neurons firing at 1; one output neuron fires at
    :math:`1.5 + \lambda + \hat f(x)` with :math:`\hat f = c_0 + \sum_k c_k (h_k - 1)/0.25`.
    Its weights on the hidden spikes are balanced by a relay, and its reference ramp first falls
    (so the potential cannot reach threshold while hidden spikes are still arriving), then rises
    to a level that makes the first crossing an exact affine function of the hidden times
    (window-type argument; ``\lambda > -\min \hat f`` keeps it after 1.5). Every spike comes
    within 3 time units of the earliest arrival, so a response of length ``delta >= 3`` acts as
    ``delta = inf`` (the condition of Fono et al., arXiv 2503.02013, for inputs in [0, 1]).

    Since each ``h_k`` is an affine function plus a ReLU ridge, ``\hat f`` is a one-hidden-layer
    ReLU network in ``x`` (plus affine terms): universal. The readout ``c`` is the least-squares
    fit of ``f`` on a grid by the *actual hidden spike times*; ridges are refined (``d = 1``:
    uniform kinks, i.e. piecewise-linear interpolation; ``d >= 2``: more directions and
    offsets) until the sup error measured on a finer, shifted check grid is at most ``eps``.

    Returns:
      ``(net, info)``: an :class:`SRMNetwork` with ``net(x [..., d]) -> [..., 1]`` (decoded value
      ``t - 1.5 - lambda``) and ``info`` with ``error`` (sup error on the check grid),
      ``hidden`` (ridge neurons), ``num_neurons``, ``level``, ``converged``, ``readout``
      (``[c_0, c_1, ...]``) and ``history`` (size and error of every refinement level).
    """
    if d < 1:
        raise ValueError(f"d must be positive, got {d}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    if not delta >= 3.0:
        raise ValueError(f"delta must be at least 3 (inputs in [0, 1]), got {delta}")
    lo, hi = np.zeros(d), np.ones(d)
    best, history = None, []
    for level in range(max_level + 1):
        dirs, offs = _ridge_dictionary(d, level)
        hidden = _ridge_hidden_layer(dirs, offs, d, delta)
        n_fit = fit_points or (max(2 * (4 * 2 ** level) + 1, 65) if d == 1 else 4 * (4 + 3 * level) + 1)
        n_chk = check_points or (4 * n_fit + 1 if d == 1 else 2 * n_fit + 1)
        xf = _box_grid(d, n_fit)
        xc = _box_grid(d, n_chk, shift=0.37 / n_chk)
        encode = range_checked_encoder(lo, hi, 3)
        hf = np.asarray(hidden(encode(jnp.asarray(xf))))[:, :len(dirs)]
        feats = np.concatenate([np.ones((len(xf), 1)), (hf - 1.0) / _ETA], 1)
        coef, *_ = np.linalg.lstsq(feats, np.asarray(f(xf), np.float64), rcond=None)
        c0, c = float(coef[0]), coef[1:]
        hc = np.asarray(hidden(encode(jnp.asarray(xc))))[:, :len(dirs)]
        fhat = coef[0] + ((hc - 1.0) / _ETA) @ c
        lam = 0.1 + max(0.0, -float(np.min(fhat)))
        out = _readout_layer(c, c0, lam, len(dirs), delta)
        shift = _T_OUT + lam
        net = SRMNetwork((hidden, out), encode, lambda t, s=shift: t - s, (lo, hi))
        err = float(np.max(np.abs(np.asarray(net(jnp.asarray(xc)))[:, 0] - np.asarray(f(xc)))))
        history.append(dict(level=level, hidden=len(dirs), num_neurons=net.num_neurons, error=err))
        info = dict(error=err, hidden=len(dirs), num_neurons=net.num_neurons, level=level,
                    converged=err <= eps, fit_points=len(xf), check_points=len(xc), readout=coef,
                    history=history)
        if verbose:
            print(f"approximate: level {level}: {len(dirs)} ridge neurons, sup error {err:.3g}", flush=True)
        best = (net, info)
        if err <= eps:
            return best
    warnings.warn(f"approximate: sup error {best[1]['error']:.3g} > eps = {eps} at max_level {max_level}")
    return best
