r"""Learning-theory bounds: growth functions, VC dimension and generalization gaps.

Upper bounds on the number of behaviours of SRM/TTFS classifiers (:func:`srm_log2_growth`,
Warren's theorem for piecewise-rational maps) and of DLIF classifiers unrolled over ``T`` time
steps (:func:`dlif_log2_growth`, Sauer's lemma, linear in ``T`` as in Fono et al.,
arXiv 2503.02013), turned into a VC-dimension bound (:func:`vc_dimension_bound`) and a uniform
generalization-gap bound (:func:`generalization_gap_bound`).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

__all__ = ["dlif_log2_growth", "srm_log2_growth", "vc_dimension_bound", "generalization_gap_bound"]


# ----------------------------------------------------------------------------------------------
# Generalization bounds
# ----------------------------------------------------------------------------------------------


def _log2_sauer(m, k):
    """log2 of the growth function bound of a class of VC dimension ``k`` on ``m`` points."""
    m = np.asarray(m, np.float64)
    return np.where(m <= k, m, k * np.log2(np.e * m / np.maximum(k, 1)))


def dlif_log2_growth(layer_sizes: Sequence[int], T: int, m):
    r"""log2 of an upper bound on the number of behaviours of a DLIF classifier on ``m`` samples.

    The network: layers ``layer_sizes = [n_0, n_1, ..., n_L]``, trainable weights and biases,
    fixed ``beta`` and ``threshold`` (:func:`jaxsnn.dlif.simulate`), any decision that is a
    function of the output spike trains (counts, first spikes). Unrolled over ``T`` steps, the
    spike of neuron ``j`` at step ``t`` is ``H(<p_j, phi_t> - c_t)``: a threshold of a function
    *linear* in the neuron's ``d_j = fan_in + 1`` parameters ``p_j``, whose features ``phi_t``
    (beta-weighted sums of earlier input spikes) and offset ``c_t`` (threshold and the neuron's
    own reset history) are fixed once the spikes of all earlier (layer, step) pairs are fixed.
    Counting layer by layer and step by step, Sauer's lemma for affine halfspaces in
    ``R^{d_j}`` (VC dimension ``d_j + 1``) gives

    .. math:: \log_2 \Pi(m) \le T \sum_j (d_j + 1) \log_2\frac{e\,m}{d_j + 1},

    linear in ``T``: the dependence on time steps of Fono et al. (arXiv 2503.02013). Each
    factor is capped at ``m`` bits.
    """
    sizes = list(layer_sizes)
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"layer_sizes must list at least two positive sizes, got {layer_sizes}")
    if int(T) < 1:
        raise ValueError(f"T must be positive, got {T}")
    total = 0.0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        k = n_in + 2                                      # d_j + 1 with d_j = n_in + 1
        total = total + n_out * _log2_sauer(m, k)
    return T * total


def _srm_test_degree(sizes):
    """Largest degree of the sign tests of an SRM network (see :func:`srm_log2_growth`)."""
    a = b = 0                       # the data's spike times are constants
    D = 1
    for n in sizes[:-1]:
        if a == 0:                  # layer 1: tests and times are (ratios of) affine maps
            a, b = 1, 1
            continue
        D = max(D, a + b, 1 + a + (n - 1) * b)   # arrival order; knot tests
        a, b = 1 + a + (n - 1) * b, 1 + n * b
    return max(D, a + b)            # order of the output spikes


def srm_log2_growth(layer_sizes: Sequence[int], m):
    r"""log2 of an upper bound on the number of behaviours of an SRM/TTFS classifier on ``m`` samples.

    Parameters: all weights and thresholds, ``W = sum_l n_l (n_{l-1} + 1)``. On each sample, the
    classifier's output (the first output neuron to fire, or any function of the output spike
    order) is fixed by the signs of these tests: for every neuron and every knot of its sorted
    arrivals, whether the potential there reaches threshold (``n_in + 1`` tests); the relative
    order of every pair of its arrivals (``n_in (n_in - 1)/2``); and the order of every pair of
    output spikes. Spike times of layer ``l`` are rational functions of the parameters, of
    degree ``(a_l, b_l)``: ``(1, 1)`` in layer 1, and ``(1 + a + (n - 1) b, 1 + n b)`` after a
    layer of fan-in ``n`` (common denominators). Clearing the (positive) denominators makes
    every test a polynomial of degree at most ``D``, and Warren's theorem as used by Goldberg &
    Jerrum (1995) bounds the sign vectors of ``N`` polynomials of degree ``D`` in ``W``
    variables by ``(8 e D N / W)^W`` for ``N >= W``:

    .. math:: \log_2 \Pi(m) \le W \log_2 \frac{8 e D\, N(m)}{W},\qquad N(m) = m \cdot (\text{tests per sample}).

    This is the generic parameter-counting bound for piecewise-rational maps: ``O(W log(m D))``.
    """
    sizes = list(layer_sizes)
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"layer_sizes must list at least two positive sizes, got {layer_sizes}")
    W = sum(n_out * (n_in + 1) for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    D = _srm_test_degree(sizes)
    tests = sum(n_out * (n_in + 1 + n_in * (n_in - 1) // 2) for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    k = sizes[-1]
    tests += k * (k - 1) // 2
    m = np.asarray(m, np.float64)
    N = m * tests
    return np.where(N >= W, W * np.log2(8 * np.e * D * np.maximum(N, 1) / W), N * np.log2(3.0))


def vc_dimension_bound(log2_growth: Callable, *, upper: float = 1e15) -> float:
    """The largest ``m`` with ``log2_growth(m) >= m`` (no larger set can be shattered)."""
    lo, hi = 1.0, 2.0
    while float(log2_growth(hi)) >= hi:
        lo, hi = hi, 2 * hi
        if hi > upper:
            return math.inf
    while hi - lo > 0.5:
        mid = 0.5 * (lo + hi)
        if float(log2_growth(mid)) >= mid:
            lo = mid
        else:
            hi = mid
    return math.floor(lo)


def generalization_gap_bound(log2_growth: Callable, m, *, confidence: float = 0.95):
    r"""Uniform bound on test error minus training error (0-1 loss) for ``m`` training samples.

    Vapnik-Chervonenkis inequality for a loss class whose growth function is at most
    :math:`\Pi`: with probability at least ``confidence = 1 - delta`` every network satisfies

    .. math:: \mathrm{err}(h) \le \widehat{\mathrm{err}}_m(h) + \sqrt{\frac{8\,(\ln \Pi(2m) + \ln(4/\delta))}{m}}.

    Values above 1 are vacuous (and returned as they are).
    """
    m = np.asarray(m, np.float64)
    delta = 1.0 - confidence
    ln_pi = np.asarray(log2_growth(2 * m)) * np.log(2.0)
    return np.sqrt(8.0 * (ln_pi + np.log(4.0 / delta)) / m)
