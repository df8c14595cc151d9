r"""Losses for spiking networks.

Time-to-first-spike cross-entropy (Göltz et al. 2021, *Fast and energy-efficient neuromorphic
deep learning with first-spike times*; Bacho & Chu 2023): the output spike times ``t_k`` define
logits ``-t_k / tau``, so the earliest neuron is the most probable class,

.. math::

    L = -\log \frac{\exp(-t_y/\tau)}{\sum_k \exp(-t_k/\tau)}
        + \alpha\,\Big(\exp\big(t_y / \tau_{\mathrm{reg}}\big) - 1\Big),

where the optional second term pulls the label neuron's spike earlier.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["ttfs_cross_entropy", "finite_times", "soft_cap", "weight_sum_hinge"]


def finite_times(t, t_silent):
    """Replace ``inf`` (no spike) by ``t_silent`` with a NaN-free gradient (zero where silent)."""
    fired = jnp.isfinite(t)
    return jnp.where(fired, jnp.where(fired, t, 0.0), t_silent)


def ttfs_cross_entropy(t_out, labels, *, tau=1.0, t_silent=None, t_cap=None, cap="soft", alpha=0.0, tau_reg=None):
    """Softmax cross-entropy on ``-t / tau`` with an optional early-label regularizer.

    Args:
      t_out: output spike times ``[..., n_classes]`` (``inf`` = silent).
      labels: integer labels ``[...]``.
      tau: temperature, in the units of ``t_out``.
      t_silent: the time used for silent neurons. Default: 10 ``tau`` after the latest spike
        of the batch (so a silent neuron counts as "very late"; its gradient is zero).
      t_cap: if given, spikes later than ``t_cap`` are compressed by :func:`soft_cap`
        (logarithmically, keeping a gradient) and ``t_silent`` defaults to ``t_cap``. This
        tames neurons whose small slope at threshold makes them fire very late.
      cap: ``"soft"`` (:func:`soft_cap`) or ``"hard"`` (``min(t, t_cap)``: no gradient past it).
      alpha: weight of the regularizer :math:`\\alpha(\\exp(t_y/\\tau_{reg}) - 1)`.
      tau_reg: time scale of the regularizer (default ``tau``).
    Returns:
      The mean loss over the leading axes (a scalar); finite even when neurons are silent.
    """
    if t_silent is None and t_cap is not None:
        t_silent = t_cap
    if t_silent is None:
        fired = jnp.isfinite(t_out)
        latest = jnp.max(jnp.where(fired, t_out, -jnp.inf))
        latest = jnp.where(jnp.isfinite(latest), latest, 0.0)
        t_silent = jax.lax.stop_gradient(latest) + 10.0 * tau
    t = finite_times(t_out, t_silent)
    if t_cap is not None:
        if cap == "soft":
            t = soft_cap(t, t_cap, tau)
        elif cap == "hard":
            t = jnp.minimum(t, t_cap)
        else:
            raise ValueError(f"cap must be 'soft' or 'hard', got {cap!r}")
    logp = jax.nn.log_softmax(-t / tau, axis=-1)
    t_label = jnp.take_along_axis(t, labels[..., None], axis=-1)[..., 0]
    nll = -jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    loss = nll
    if not (isinstance(alpha, (int, float)) and alpha == 0):  # alpha may be traced (sweeps)
        tau_reg = tau if tau_reg is None else tau_reg
        loss = loss + alpha * (jnp.exp(t_label / tau_reg) - 1.0)
    return jnp.mean(loss)


def soft_cap(t, t_cap, scale):
    r"""Identity below ``t_cap``, logarithmic growth above it (continuous, with a gradient).

    .. math:: c(t) = t \text{ if } t \le t_{cap}, \quad t_{cap} + s \log(1 + (t - t_{cap})/s) \text{ otherwise.}
    """
    over = jnp.maximum(t - t_cap, 0.0)
    return jnp.minimum(t, t_cap) + scale * jnp.log1p(over / scale)


def weight_sum_hinge(weights, margin=1.0):
    r"""Penalty that keeps neurons able to fire: :math:`\sum_v \max(0, m - \sum_u w_{uv})`.

    With the ramp response and no cutoff an SRM neuron fires exactly when the summed weight
    of its arrived inputs is positive; a silent neuron has no spike time and hence no
    gradient from a time-based loss. This term (Mostafa 2018, *Supervised learning based on
    temporal coding in spiking neural networks*, IEEE TNNLS) pushes every column sum of
    ``weights [n_in, n_out]`` above ``margin``.
    """
    return jnp.sum(jax.nn.relu(margin - jnp.sum(weights, axis=0)))
