r"""Losses for spiking networks.

Time-to-first-spike cross-entropy (Göltz et al. 2021, *Fast and energy-efficient neuromorphic
deep learning with first-spike times*; Bacho & Chu 2023): the output spike times ``t_k`` define
logits ``-t_k / temperature`` (written :math:`\tau` below), so the earliest neuron is the most probable class,

.. math::

    L = -\log \frac{\exp(-t_y/\tau)}{\sum_k \exp(-t_k/\tau)}
        + \alpha\,\Big(\exp\big(t_y / \tau_{\mathrm{reg}}\big) - 1\Big),

where the optional second term pulls the label neuron's spike earlier.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = [
    "ttfs_cross_entropy", "finite_times", "soft_cap", "weight_sum_hinge", "silent_label_drive",
    "soft_spike_count", "spike_count_loss", "spike_count_cross_entropy",
    "rate_cross_entropy", "membrane_cross_entropy", "rate_mse", "rate_regularizer",
]


def finite_times(t: ArrayLike, t_silent: ArrayLike) -> jax.Array:
    """Replace ``inf`` (no spike) by ``t_silent`` with a NaN-free gradient (zero where silent)."""
    fired = jnp.isfinite(t)
    return jnp.where(fired, jnp.where(fired, t, 0.0), t_silent)


def ttfs_cross_entropy(t_out: ArrayLike, labels: jax.Array, *, temperature: ArrayLike = 1.0,
                       t_silent: Optional[ArrayLike] = None, t_cap: Optional[ArrayLike] = None, cap: str = "soft",
                       alpha: ArrayLike = 0.0, tau_reg: Optional[ArrayLike] = None,
                       drop_silent_label: bool = False) -> jax.Array:
    """Softmax cross-entropy on ``-t / temperature`` with an optional early-label regularizer.

    Args:
      t_out: output spike times ``[..., n_classes]`` (``inf`` = silent).
      labels: integer labels ``[...]``.
      temperature: softmax temperature, in the units of ``t_out`` (Göltz et al. 2021 call it
        :math:`\tau_{soft}`).
      t_silent: the time used for silent neurons. Default: 10 ``temperature`` after the latest spike
        of the batch (so a silent neuron counts as "very late"; its gradient is zero).
      t_cap: if given, spikes later than ``t_cap`` are compressed by :func:`soft_cap`
        (logarithmically, keeping a gradient) and ``t_silent`` defaults to ``t_cap``. This
        tames neurons whose small slope at threshold makes them fire very late.
      cap: ``"soft"`` (:func:`soft_cap`) or ``"hard"`` (``min(t, t_cap)``: no gradient past it).
      alpha: weight of the regularizer :math:`\\alpha(\\exp(t_y/\\tau_{reg}) - 1)`.
      tau_reg: time scale of the regularizer (default ``temperature``).
      drop_silent_label: samples whose label neuron is silent still count in the value but give
        no gradient. Their full-strength push (``1/temperature``) on every firing wrong neuron can
        silence a whole output layer within tens of Adam steps; pair this with
        :func:`silent_label_drive`, which gives those samples a gradient that makes the label
        neuron fire.
    Returns:
      The mean loss over the leading axes (a scalar); finite even when neurons are silent.
    """
    if t_silent is None and t_cap is not None:
        t_silent = t_cap
    if t_silent is None:
        fired = jnp.isfinite(t_out)
        latest = jnp.max(jnp.where(fired, t_out, -jnp.inf))
        latest = jnp.where(jnp.isfinite(latest), latest, 0.0)
        t_silent = jax.lax.stop_gradient(latest) + 10.0 * temperature
    t = finite_times(t_out, t_silent)
    if t_cap is not None:
        if cap == "soft":
            t = soft_cap(t, t_cap, temperature)
        elif cap == "hard":
            t = jnp.minimum(t, t_cap)
        else:
            raise ValueError(f"cap must be 'soft' or 'hard', got {cap!r}")
    logp = jax.nn.log_softmax(-t / temperature, axis=-1)
    t_label = jnp.take_along_axis(t, labels[..., None], axis=-1)[..., 0]
    nll = -jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    loss = nll
    if not (isinstance(alpha, (int, float)) and alpha == 0):  # alpha may be traced (sweeps)
        tau_reg = temperature if tau_reg is None else tau_reg
        loss = loss + alpha * (jnp.exp(t_label / tau_reg) - 1.0)
    if drop_silent_label:
        label_fired = jnp.isfinite(jnp.take_along_axis(t_out, labels[..., None], axis=-1)[..., 0])
        loss = jnp.where(label_fired, loss, jax.lax.stop_gradient(loss))
    return jnp.mean(loss)


def soft_cap(t: ArrayLike, t_cap: ArrayLike, scale: ArrayLike) -> jax.Array:
    r"""Identity below ``t_cap``, logarithmic growth above it (continuous, with a gradient).

    .. math:: c(t) = t \text{ if } t \le t_{cap}, \quad t_{cap} + s \log(1 + (t - t_{cap})/s) \text{ otherwise.}
    """
    over = jnp.maximum(t - t_cap, 0.0)
    return jnp.minimum(t, t_cap) + scale * jnp.log1p(over / scale)


def weight_sum_hinge(weights: ArrayLike, margin: ArrayLike = 1.0) -> jax.Array:
    r"""Penalty that keeps neurons able to fire: :math:`\sum_v \max(0, m - \sum_u w_{uv})`.

    With the ramp response and no cutoff an SRM neuron fires exactly when the summed weight
    of its arrived inputs is positive; a silent neuron has no spike time and hence no
    gradient from a time-based loss. This term (Mostafa 2018, *Supervised learning based on
    temporal coding in spiking neural networks*, IEEE TNNLS) pushes every column sum of
    ``weights [n_in, n_out]`` above ``margin``.
    """
    return jnp.sum(jax.nn.relu(margin - jnp.sum(weights, axis=0)))


def silent_label_drive(t_out: ArrayLike, labels: jax.Array, t_in: ArrayLike, weights: jax.Array) -> jax.Array:
    r"""A gradient for label neurons that stayed silent: "weight bumping" written as a loss term.

    A silent output neuron has no spike time, so a time-based loss such as
    :func:`ttfs_cross_entropy` gives it no gradient. The cross-entropy keeps pushing the other
    classes later (towards silence), and the label neurons can follow them into silence with no
    way back. Göltz et al. 2021 (*Fast and energy-efficient neuromorphic deep learning with
    first-spike times*) answer with "weight bumping": raise the input weights of a label neuron
    that did not fire. This is that step as a loss term, so that it goes through the optimizer
    with the rest of the gradient:

    .. math::

        L = -\frac{1}{B} \sum_b \mathbb{1}[t_{b, y_b} = \infty]\;
            \frac{\sum_i n_{bi}\, w_{i y_b}}{\max(1, \sum_i n_{bi})},

    where :math:`n_{bi}` is the number of spikes input ``i`` sent in sample ``b``. Its gradient
    raises the weights from the inputs that did spike, in proportion to how often they spiked,
    and only while the label neuron stays silent; it is zero once the neuron fires. The value
    itself (the mean input weight of the silent label neurons, negated) carries no meaning
    beyond its gradient. The silence mask and the counts carry no gradient.

    Args:
      t_out: first output spike times ``[B, n_out]`` (``inf`` = silent); for ``[B, n_out, K]``
        spike trains pass ``t[..., 0]``.
      labels: integer labels ``[B]``.
      t_in: the spike times that feed the layer, ``[B, n_in]`` or ``[B, n_in, K]``.
      weights: the layer's weights ``[n_in, n_out]``.
    Returns:
      A scalar.
    """
    t_out, t_in = jnp.asarray(t_out), jnp.asarray(t_in)
    if t_in.ndim == t_out.ndim:
        t_in = t_in[..., None]
    if t_out.ndim != 2 or t_in.ndim != 3:
        raise ValueError(f"t_out must be [B, n_out] and t_in [B, n_in] or [B, n_in, K]; "
                         f"got {t_out.shape}, {t_in.shape}")
    if weights.shape != (t_in.shape[1], t_out.shape[1]):
        raise ValueError(f"weights must be [n_in, n_out] = {(t_in.shape[1], t_out.shape[1])}, got {weights.shape}")
    counts = jnp.sum(jnp.isfinite(t_in), axis=-1).astype(weights.dtype)  # [B, n_in]
    silent = ~jnp.isfinite(jnp.take_along_axis(t_out, labels[:, None], axis=1)[:, 0])  # [B]
    w_label = jnp.take(weights, labels, axis=1).T  # [B, n_in]
    drive = jnp.sum(counts * w_label, axis=-1) / jnp.maximum(jnp.sum(counts, axis=-1), 1.0)
    return -jnp.mean(jnp.where(silent, drive, 0.0))


@jax.custom_jvp
def soft_spike_count(t: ArrayLike, time_scale: ArrayLike = 1.0) -> jax.Array:
    r"""Spike count of each neuron ``[..., n, K] -> [..., n]`` with a gradient for every spike.

    The value is the number of finite spike times. The count is piecewise constant in the spike
    times, so (Bacho & Chu 2023) its error is passed to every spike of the neuron: the
    derivative is :math:`\partial c / \partial t_m = -1/T` for each emitted spike (``T =
    time_scale``), i.e. moving spikes earlier makes room for more spikes before ``t_max``.
    Silent slots get zero gradient.
    """
    return jnp.sum(jnp.isfinite(t), axis=-1).astype(jnp.result_type(t, float))


@soft_spike_count.defjvp
def _soft_spike_count_jvp(primals, tangents):
    t, time_scale = primals
    dt = tangents[0]
    fired = jnp.isfinite(t)
    return soft_spike_count(t, time_scale), -jnp.sum(jnp.where(fired, dt, 0.0), axis=-1) / time_scale


def spike_count_loss(t_out: ArrayLike, labels: ArrayLike, *, target_true: ArrayLike = 15.0,
                     target_false: ArrayLike = 3.0, time_scale: ArrayLike = 1.0) -> jax.Array:
    r"""Squared error between output spike counts and target counts (Bacho & Chu 2023).

    .. math::

        L = \tfrac12 \sum_k (c_k - \hat c_k)^2, \qquad
        \hat c_k = \text{target\_true if } k = y \text{ else target\_false},

    averaged over the batch. ``t_out [B, n_out, K]``; the gradient reaches every spike of a
    neuron through :func:`soft_spike_count`.
    """
    c = soft_spike_count(t_out, time_scale)
    target = jnp.where(jax.nn.one_hot(labels, c.shape[-1], dtype=bool), target_true, target_false)
    return jnp.mean(0.5 * jnp.sum((c - target) ** 2, axis=-1))


def spike_count_cross_entropy(t_out: ArrayLike, labels: jax.Array, *, temperature: ArrayLike = 1.0,
                              time_scale: ArrayLike = 1.0) -> jax.Array:
    """Softmax cross-entropy on spike counts ``c_k / temperature`` (gradient as in
    :func:`soft_spike_count`), averaged over the batch."""
    c = soft_spike_count(t_out, time_scale) / temperature
    return jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(c), labels[..., None], axis=-1)[..., 0])


# ----------------------------------------------------------------------------------------------
# Rate-coded (discrete-time) outputs: spike trains and membranes [T, ..., n_out]
# ----------------------------------------------------------------------------------------------


def _nll(logits, labels):
    return -jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), labels[..., None], axis=-1)[..., 0]


def rate_cross_entropy(spikes: ArrayLike, labels: jax.Array, *, temperature: ArrayLike = 1.0) -> jax.Array:
    r"""Softmax cross-entropy on output spike counts: logits :math:`c_k / T_{soft}`, :math:`c_k = \sum_t s_k[t]`.

    The loss of snnTorch's ``ce_count_loss`` (``temperature = 1``). ``spikes [T, ..., n_out]`` (the
    surrogate gradient reaches each step), ``labels [...]``; mean over the batch.
    """
    return jnp.mean(_nll(jnp.sum(spikes, axis=0) / temperature, labels))


def membrane_cross_entropy(membrane: ArrayLike, labels: jax.Array, *, reduce: str = "mean") -> jax.Array:
    """Softmax cross-entropy on the output membrane ``[T, ..., n_out]`` reduced over time (``"mean"``,
    ``"max"`` or ``"last"``): a smooth readout of non-spiking or spiking output neurons."""
    if reduce == "mean":
        logits = jnp.mean(membrane, axis=0)
    elif reduce == "max":
        logits = jnp.max(membrane, axis=0)
    elif reduce == "last":
        logits = membrane[-1]
    else:
        raise ValueError(f"reduce: expected 'mean', 'max' or 'last', got {reduce!r}")
    return jnp.mean(_nll(logits, labels))


def rate_mse(spikes: jax.Array, labels: ArrayLike, *, correct_rate: ArrayLike = 1.0,
             incorrect_rate: ArrayLike = 0.0) -> jax.Array:
    r"""Squared error between output spike counts and target counts (snnTorch's ``mse_count_loss``).

    .. math:: L = \sum_k (c_k - T r_k)^2,\quad r_k = \text{correct\_rate if } k = y
              \text{ else incorrect\_rate},

    with :math:`c_k = \sum_t s_k[t]`; mean over the batch (sum over classes).
    """
    num_steps = spikes.shape[0]
    counts = jnp.sum(spikes, axis=0)
    target = jnp.where(jax.nn.one_hot(labels, counts.shape[-1], dtype=bool), correct_rate, incorrect_rate)
    return jnp.mean(jnp.sum((counts - num_steps * target) ** 2, axis=-1))


def rate_regularizer(spikes: ArrayLike, *, upper: Optional[ArrayLike] = None,
                     lower: Optional[ArrayLike] = None) -> jax.Array:
    r"""Activity regularizer on spike trains ``[T, B, n]`` (Zenke & Vogels 2021).

    .. math:: R = \underbrace{\langle \max(0, r_{bn} - r_{up})^2 \rangle_{b,n}}_{\text{per sample}}
              + \underbrace{\langle \max(0, r_{low} - \bar r_n)^2 \rangle_n}_{\text{per neuron}},

    where :math:`r_{bn}` is the rate (spikes per step) of neuron ``n`` on sample ``b`` and
    :math:`\bar r_n` its mean over the batch: the upper term keeps activity (and energy) down, the
    lower term keeps neurons from falling silent. Either bound may be ``None`` (term left out).
    """
    rate = jnp.mean(spikes, axis=0)
    total = jnp.zeros((), rate.dtype)
    if upper is not None:
        total = total + jnp.mean(jax.nn.relu(rate - upper) ** 2)
    if lower is not None:
        mean_rate = jnp.mean(rate.reshape(-1, rate.shape[-1]), axis=0)
        total = total + jnp.mean(jax.nn.relu(lower - mean_rate) ** 2)
    return total
