r"""Discretized leaky integrate-and-fire (DLIF) neurons, simulated with ``lax.scan``.

The discrete-time LIF neuron of Fono et al. (arXiv 2503.02013) and of the surrogate-gradient
libraries (snnTorch ``Leaky``, Norse ``LIFBoxCell``, Spyx ``LIF``). With input spikes (or currents)
``x[t]`` and weights ``W``, for ``t = 0 .. T-1``:

.. math::

    I[t] &= x[t]\,W + b \;(+\; s[t-1]\,V \text{ if recurrent}) \\
    v[t] &= \beta\,v[t-1] + I[t] - \vartheta\,s[t-1]          &&\text{(reset = "subtract")} \\
    v[t] &= \beta\,v[t-1]\,(1 - s[t-1]) + I[t]                 &&\text{(reset = "zero")} \\
    s[t] &= \Theta(v[t] - \vartheta), \qquad v[-1] = s[-1] = 0,

with :math:`\Theta(x) = 1[x \ge 0]`. Training is backpropagation through time: the backward pass
replaces :math:`\Theta'` by a surrogate derivative (:mod:`jaxsnn.surrogate`).

The feed-forward projection :math:`x[t]\,W` does not depend on the state, so it is computed for a
chunk of steps at once, one ``[chunk * batch, n_in] @ [n_in, n_out]`` matmul, followed at once by
that chunk's (elementwise) dynamics while its current is still in cache. ``beta`` and ``threshold``
are scalars or per-neuron ``[n_out]`` arrays and may be traced, so they can be trained or swept with
``vmap``.

Silent inputs (``skip_silent_inputs``). Rate-coded images leave many input neurons silent over a whole
batch (MNIST's border pixels: about 260 of 784 columns in a batch of 128). Those columns of ``x``
contribute nothing to ``x W`` nor to the weight gradient :math:`\sum_t x[t]^\top g[t]`, so both
matmuls can run on the active columns only: the columns are permuted active-first, and the
projection uses the smallest size of a fixed ladder (:func:`compact_sizes`) that holds them all
(``lax.switch``, one compiled matmul per size). The result is exact: the skipped terms are zeros.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import CustomVJPPrimal, SymbolicZero
from jax.typing import ArrayLike

from jaxsnn import surrogate as _surrogate
from jaxsnn._internal import check_finite, check_positive, fail, require
from jaxsnn._vma import vary_like

__all__ = ["DLIFState", "step", "simulate", "integrate", "beta_from_tau", "compact_sizes", "RESETS"]

RESETS = ("subtract", "zero")


class DLIFState(NamedTuple):
    """The state carried from step ``t-1`` to ``t``: membrane ``v`` and spikes ``s``, both ``[..., n]``."""

    v: jax.Array
    s: jax.Array


def beta_from_tau(tau_mem: ArrayLike, dt: ArrayLike) -> jax.Array:
    r"""The decay per step of a membrane time constant on a clock: :math:`\beta = e^{-\Delta t/\tau_m}`.

    The exact solution of :math:`\dot v = -v/\tau_m` over one step ``dt`` (the forward-Euler
    factor :math:`1 - \Delta t/\tau_m` is its first-order approximation); the inverse of
    snnTorch's :math:`\tau = \Delta t / (1 - \beta)` only to first order.

    Args:
      tau_mem: membrane time constant, positive, scalar or ``[n]`` (same unit as ``dt``; may be traced).
      dt: the clock step, positive (may be traced).
    Returns:
      ``beta``, in ``(0, 1)``, the shape of ``tau_mem``.

    >>> from jaxsnn import dlif
    >>> round(float(dlif.beta_from_tau(20.0, 1.0)), 4)  # exp(-1/20)
    0.9512
    """
    check_positive("tau_mem", tau_mem)
    check_positive("dt", dt)
    return jnp.exp(-jnp.asarray(dt, jnp.result_type(dt, tau_mem, float)) / jnp.asarray(tau_mem))


def _check_values(beta, threshold):
    """``beta`` in [0, 1] and ``threshold`` > 0 (values checked where known: jaxsnn._internal.require)."""
    require("beta", beta, lambda b, xp: (b >= 0) & (b <= 1),
            "values in [0, 1] (the decay per step, e.g. beta_from_tau(tau_mem, dt))",
            lambda b: f"values in [{np.min(b)}, {np.max(b)}]")
    check_positive("threshold", threshold)


def _check_reset(reset):
    if reset not in RESETS:
        raise ValueError(f"reset: expected one of {RESETS}, got {reset!r}")


def step(state: DLIFState, current: ArrayLike, *, beta: ArrayLike, threshold: ArrayLike, reset: str = "subtract",
         surrogate: Optional[Union[str, Callable[..., jax.Array]]] = None,
         detach_reset: bool = False) -> tuple[DLIFState, tuple[jax.Array, jax.Array]]:
    """One time step of the DLIF neuron (the body :func:`simulate` scans).

    Args:
      state: :class:`DLIFState` of the previous step (``v[t-1]``, ``s[t-1]``).
      current: input current ``I[t]`` ``[..., n]``.
      beta: membrane decay factor per step, scalar or ``[n]``.
      threshold: firing threshold, scalar or ``[n]``.
      reset: ``"subtract"`` (``v -= threshold`` after a spike) or ``"zero"`` (``v -> 0``).
      surrogate: spike function (see :func:`jaxsnn.surrogate.resolve`).
      detach_reset: stop the gradient through the reset term ``s[t-1]`` (as snnTorch does).
    Returns:
      ``(new_state, (s[t], v[t]))``.

    Example (``v = 0.5 * 1.2 + 0.5 = 1.1 >= 1``: a spike):

    >>> import jax.numpy as jnp
    >>> from jaxsnn import dlif
    >>> state = dlif.DLIFState(v=jnp.array([1.2]), s=jnp.array([0.0]))
    >>> state, (s, v) = dlif.step(state, jnp.array([0.5]), beta=0.5, threshold=1.0)
    >>> s
    Array([1.], dtype=float32)
    """
    _check_reset(reset)
    _check_values(beta, threshold)
    spike_fn = _surrogate.resolve(surrogate)
    return _step(state, current, beta, threshold, reset, spike_fn, detach_reset)


def _step(state, current, beta, threshold, reset, spike_fn, detach_reset):
    v_prev, s_prev = state
    if detach_reset:
        s_prev = jax.lax.stop_gradient(s_prev)
    if reset == "subtract":
        v = beta * v_prev + current - threshold * s_prev
    else:
        v = beta * v_prev * (1.0 - s_prev) + current
    s = spike_fn(v - threshold)
    return DLIFState(v, s), (s, v)


def _check_per_neuron(name, x, n_out):
    shape = jnp.shape(x)
    if shape not in ((), (n_out,), (1,)):
        raise ValueError(f"{name}: expected a scalar or shape ({n_out},), got shape {shape}")


CHUNK_BYTES = 3 * 2**20
"""Largest default size of one chunk's current ``[chunk, batch, n_out]`` (bytes), to stay in cache."""

MAX_CHUNK = 32
"""Most steps in a default chunk (each chunk's steps are unrolled into straight-line code)."""


def _default_chunk(T, rows, n_out, itemsize):
    """The most steps whose current fits :data:`CHUNK_BYTES`: a divisor of ``T`` if one is at least
    half that size (no padding), else an even split of ``T`` into chunks (padding < one chunk)."""
    most = int(max(1, min(T, MAX_CHUNK, CHUNK_BYTES // max(1, rows * n_out * itemsize))))
    divisor = max(c for c in range(1, most + 1) if T % c == 0)
    if 2 * divisor >= most:
        return divisor
    return -(-T // -(-T // most))


COMPACT_FRACTIONS = (1 / 4, 1 / 2, 9 / 16, 5 / 8, 11 / 16, 3 / 4, 7 / 8)
"""Fractions of ``n_in`` in the ladder of projection sizes used with ``skip_silent_inputs``."""


def compact_sizes(n_in: int) -> tuple[int, ...]:
    """Projection sizes tried by ``skip_silent_inputs``: :data:`COMPACT_FRACTIONS` of ``n_in``
    rounded up to multiples of 16 (a whole SIMD tile), and ``n_in`` itself."""
    sizes = {min(n_in, 16 * math.ceil(f * n_in / 16)) for f in COMPACT_FRACTIONS}
    return tuple(sorted(sizes | {n_in}))


def simulate(inputs: ArrayLike, weights: ArrayLike, *, beta: ArrayLike, threshold: ArrayLike,
             bias: Optional[ArrayLike] = None, reset: str = "subtract",
             surrogate: Optional[Union[str, Callable[..., jax.Array]]] = None,
             recurrent_weights: Optional[ArrayLike] = None, detach_reset: bool = False, remat: bool = False,
             chunk: Optional[int] = None, unroll: Optional[int] = None,
             skip_silent_inputs: bool = False) -> tuple[jax.Array, jax.Array]:
    """Simulate a layer of DLIF neurons over all time steps.

    Args:
      inputs: input spikes or currents, time-major ``[T, ..., n_in]`` (``T >= 1``).
      weights: ``[n_in, n_out]``.
      beta: decay per step, scalar or ``[n_out]`` (e.g. ``exp(-dt / tau_mem)``); may be traced.
      threshold: scalar or ``[n_out]``; may be traced.
      bias: ``None`` or ``[n_out]``, added to the current every step.
      reset: ``"subtract"`` or ``"zero"`` (see the module equations).
      surrogate: ``None`` (fast sigmoid, slope 25), a name in :data:`jaxsnn.surrogate.SURROGATES`, or a
        callable ``x -> spikes``.
      recurrent_weights: ``None`` or ``[n_out, n_out]``: adds ``s[t-1] @ V`` to the current.
      detach_reset: no gradient through the reset term.
      remat: ``jax.checkpoint`` the layer: keep only ``inputs`` and the parameters between the
        forward and the backward pass, and recompute the spikes and membrane there instead of
        keeping them alive; trades compute for memory on long sequences and deep stacks.
      chunk: time steps whose input projection is one matmul (static). The projection of a chunk
        is followed at once by its dynamics while the current is still in cache, and the backward
        pass accumulates the weight gradient chunk by chunk the same way. Default: as many steps as
        fit :data:`CHUNK_BYTES`; ``chunk = T`` is the fully hoisted projection. ``T`` is padded to a
        multiple of ``chunk`` with silent steps at the end (which change nothing before them).
      unroll: steps per iteration of the inner (per-step) scans; default: the whole chunk, so a
        chunk's dynamics are straight-line code that XLA fuses (one kernel for several steps instead
        of several kernels per step: the step of the benchmark network got 15 % faster).
      skip_silent_inputs: run the projection and the weight gradient on the input neurons that
        spike (are non-zero) somewhere in this call's ``inputs`` only, padded to the next size of
        :func:`compact_sizes` (exact; see the module docstring). Pays for sparse encoded inputs
        whose silent columns are many (on MNIST with batch 128, T = 25: about a third of the
        matmul FLOPs). Costs a column gather per chunk; under a ``vmap`` over ``inputs`` the
        ``lax.switch`` evaluates every size, so leave it off there.
    Returns:
      ``(spikes, membrane)``, both ``[T, ..., n_out]``.
    Raises:
      ValueError: no time axis, mismatched shapes, unknown ``reset`` or ``surrogate``, ``beta``
        outside ``[0, 1]`` or a non-positive ``threshold`` (values checked when concrete).

    Example: a constant input through ``w = 0.6`` with ``beta = 0.5``: ``v = 0.6, 0.9, 1.05``, so
    the neuron fires at the third step:

    >>> import jax.numpy as jnp
    >>> from jaxsnn import dlif
    >>> spikes, v = dlif.simulate(jnp.ones((3, 1)), jnp.array([[0.6]]), beta=0.5, threshold=1.0)
    >>> spikes[:, 0]
    Array([0., 0., 1.], dtype=float32)
    """
    inputs = jnp.asarray(inputs)
    weights = jnp.asarray(weights)
    if inputs.ndim < 2:
        raise ValueError(f"inputs: expected a time-major array [T, ..., n_in], got shape {inputs.shape}")
    if weights.ndim != 2:
        raise ValueError(f"weights: expected [n_in, n_out], got shape {weights.shape}")
    n_in, n_out = weights.shape
    if inputs.shape[-1] != n_in:
        raise ValueError(f"inputs: last axis {inputs.shape[-1]} does not match weights [n_in={n_in}, n_out]")
    if inputs.shape[0] == 0:
        raise fail("inputs", "at least one time step, [T >= 1, ..., n_in]", f"shape {inputs.shape}")
    check_finite("weights", weights)
    if bias is not None:
        _check_per_neuron("bias", bias, n_out)
    dtype = jnp.result_type(inputs.dtype, weights.dtype, float)
    bias = jnp.zeros((), dtype) if bias is None else bias
    return _run(inputs.astype(dtype), weights.astype(dtype), bias, beta=beta, threshold=threshold, reset=reset,
                surrogate=surrogate, recurrent_weights=recurrent_weights, detach_reset=detach_reset, remat=remat,
                chunk=chunk, unroll=unroll, sizes=compact_sizes(n_in) if skip_silent_inputs else None)


def integrate(current: ArrayLike, *, beta: ArrayLike, threshold: ArrayLike, reset: str = "subtract",
              surrogate: Optional[Union[str, Callable[..., jax.Array]]] = None,
              recurrent_weights: Optional[ArrayLike] = None, detach_reset: bool = False, chunk: Optional[int] = None,
              unroll: Optional[int] = None) -> tuple[jax.Array, jax.Array]:
    """The neuron dynamics of :func:`simulate` driven by a given current ``I[t]`` ``[T, ..., n]``
    (same arguments, no projection).

    Returns:
      ``(spikes, membrane)``, both ``[T, ..., n]``.

    Example (the current of the :func:`simulate` example):

    >>> import jax.numpy as jnp
    >>> from jaxsnn import dlif
    >>> spikes, v = dlif.integrate(jnp.full((3, 1), 0.6), beta=0.5, threshold=1.0)
    >>> spikes[:, 0]
    Array([0., 0., 1.], dtype=float32)
    """
    current = jnp.asarray(current)
    if current.ndim < 2:
        raise ValueError(f"current: expected a time-major array [T, ..., n], got shape {current.shape}")
    current = current.astype(jnp.result_type(current.dtype, float))
    return _run(current, None, jnp.zeros((), current.dtype), beta=beta, threshold=threshold, reset=reset,
                surrogate=surrogate, recurrent_weights=recurrent_weights, detach_reset=detach_reset, remat=False,
                chunk=chunk, unroll=unroll, sizes=None)


def _run(x, weights, bias, *, beta, threshold, reset, surrogate, recurrent_weights, detach_reset, remat, chunk,
         unroll, sizes):
    """Checks, flattening of the batch axes, padding to whole chunks; then the custom-VJP core."""
    _check_reset(reset)
    n = x.shape[-1] if weights is None else weights.shape[1]
    _check_per_neuron("beta", beta, n)
    _check_per_neuron("threshold", threshold, n)
    _check_values(beta, threshold)
    if recurrent_weights is not None and jnp.shape(recurrent_weights) != (n, n):
        raise ValueError(f"recurrent_weights: expected shape ({n}, {n}), got {jnp.shape(recurrent_weights)}")
    spike_fn = _surrogate.resolve(surrogate)
    dtype = x.dtype
    T, batch_shape = x.shape[0], x.shape[1:-1]
    rows = math.prod(batch_shape)
    if chunk is None:
        chunk = _default_chunk(T, rows, n, jnp.dtype(dtype).itemsize)
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk: expected a positive int, got {chunk!r}")
    chunk = min(chunk, T)
    unroll = chunk if unroll is None else unroll
    n_chunks = -(-T // chunk)
    x2 = x.reshape(T, rows, x.shape[-1])
    if n_chunks * chunk != T:
        x2 = jnp.concatenate([x2, jnp.zeros((n_chunks * chunk - T,) + x2.shape[1:], dtype)])
    # closed-over tracers of the spike function (e.g. a vmapped slope) become explicit arguments
    # traced on an example that varies like the data (jax.shard_map: see jaxsnn._vma)
    fn, consts = jax.closure_convert(spike_fn, vary_like(jnp.zeros((rows, n), dtype), x2, weights))
    params = (jnp.asarray(beta, dtype), jnp.asarray(threshold, dtype), jnp.asarray(bias, dtype),
              None if recurrent_weights is None else jnp.asarray(recurrent_weights, dtype))
    x2, weights, params, consts = vary_like((x2, weights, params, consts))
    core = functools.partial(_core, fn, reset, detach_reset, chunk, unroll, sizes)
    if remat:
        core = jax.checkpoint(core)
    spikes, membrane = core(x2, weights, params, consts)
    spikes, membrane = spikes[:T], membrane[:T]
    return spikes.reshape((T,) + batch_shape + (n,)), membrane.reshape((T,) + batch_shape + (n,))


def _chunks(a, chunk):
    return a.reshape((a.shape[0] // chunk, chunk) + a.shape[1:])


def _unchunk(a):
    return a.reshape((-1,) + a.shape[2:])


class _Compact(NamedTuple):
    """Active-first column permutation of the inputs and the ladder rung that holds the active ones."""

    perm: jax.Array  # [n_in] int32: active columns first (stable)
    branch: jax.Array  # int32 index into the sizes


def _compact(x, sizes):
    if sizes is None:
        return None
    # one fused float reduction (a boolean any() here lowered to a compare into a mask buffer and a
    # reduce-window: 7 ms of a 90 ms step); NaN counts as active
    active = ~(jnp.max(jnp.abs(x), axis=tuple(range(x.ndim - 1))) <= 0)
    perm = jnp.argsort(~active, stable=True).astype(jnp.int32)
    branch = jnp.sum(jnp.asarray(sizes[:-1]) < jnp.sum(active, dtype=jnp.int32), dtype=jnp.int32)
    return _Compact(perm, branch)


def _project(x_k, weights, comp, sizes):
    """``x_k @ weights`` (on the active columns only when ``comp`` is given; ``weights`` are then
    already permuted)."""
    if comp is None:
        return x_k @ weights
    branches = [lambda x_k, size=size: jnp.take(x_k, comp.perm[:size], axis=-1) @ weights[:size] for size in sizes]
    return jax.lax.switch(comp.branch, branches, x_k)


def _add_weight_grad(acc, x_k, gv, comp, sizes):
    """``acc + sum_rows x_k^T gv`` ``[n_in, n]`` (with ``comp``: in the permuted order, only the
    rows of the active columns are touched)."""
    x2, g2 = x_k.reshape(-1, x_k.shape[-1]), gv.reshape(-1, gv.shape[-1])
    dot = lambda a: jax.lax.dot_general(a, g2, (((0,), (0,)), ((), ())))  # noqa: E731
    if comp is None:
        return acc + dot(x2)
    branches = [lambda acc, x2, size=size: acc.at[:size].add(dot(jnp.take(x2, comp.perm[:size], axis=-1)))
                for size in sizes]
    return jax.lax.switch(comp.branch, branches, acc, x2)


def _forward(fn, reset, chunk, unroll, sizes, x, weights, params, consts, comp=None):
    beta, threshold, bias, rec = params
    n = x.shape[-1] if weights is None else weights.shape[1]
    zeros = jnp.zeros((x.shape[1], n), x.dtype)
    spike = lambda u: fn(u, *consts)  # noqa: E731
    if comp is not None:
        weights = weights[comp.perm]

    def per_chunk(state, x_k):
        current = (x_k if weights is None else _project(x_k, weights, comp, sizes)) + bias  # one matmul per chunk

        def per_step(state, i_t):
            if rec is not None:
                i_t = i_t + state.s @ rec
            return _step(state, i_t, beta, threshold, reset, spike, False)

        return jax.lax.scan(per_step, state, current, unroll=unroll)

    _, (spikes, membrane) = jax.lax.scan(per_chunk, vary_like(DLIFState(zeros, zeros), x), _chunks(x, chunk))
    return _unchunk(spikes), _unchunk(membrane)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3, 4, 5))
def _core(fn, reset, detach_reset, chunk, unroll, sizes, x, weights, params, consts):
    return _forward(fn, reset, chunk, unroll, sizes, x, weights, params, consts, _compact(x, sizes))


def _core_fwd(fn, reset, detach_reset, chunk, unroll, sizes, x, weights, params, consts):
    # symbolic_zeros=True: the primals arrive wrapped (value, perturbed)
    x, weights, params, consts = jax.tree.map(lambda p: p.value, (x, weights, params, consts),
                                              is_leaf=lambda p: isinstance(p, CustomVJPPrimal))
    comp = _compact(x, sizes)
    spikes, membrane = _forward(fn, reset, chunk, unroll, sizes, x, weights, params, consts, comp)
    return (spikes, membrane), (x, weights, params, consts, spikes, membrane, comp)


def _sum_to(x, shape):
    """Sum an array ``[..., n]`` down to a parameter's shape ``()``, ``(1,)`` or ``(n,)``."""
    if shape == () or shape == (1,):
        return jnp.sum(x).reshape(shape)
    return jnp.sum(x.reshape(-1, x.shape[-1]), axis=0)


def _core_bwd(fn, reset, detach_reset, chunk, unroll, sizes, res, cotangents):
    r"""Reverse-mode BPTT. With :math:`g_v[t] = dL/dv[t]` (total) and :math:`g_s[t] = dL/ds[t]`:

    .. math::

        g_s[t] &= \bar s[t] + \frac{\partial v[t+1]}{\partial s[t]}\, g_v[t+1] + g_v[t+1] V^\top, \qquad
        g_v[t] = \bar v[t] + \frac{\partial v[t+1]}{\partial v[t]}\, g_v[t+1]
                 + g_s[t]\,\sigma'(v[t] - \vartheta),

    with :math:`\partial v[t+1]/\partial v[t] = \beta` and :math:`\partial v[t+1]/\partial s[t] =
    -\vartheta` (subtract reset) or :math:`\beta (1 - s[t])` and :math:`-\beta v[t]` (zero reset); the
    reset term is dropped with ``detach_reset``. Then :math:`dL/dI[t] = g_v[t]`, and the weight
    gradient :math:`\sum_t x[t]^\top g_v[t]` is accumulated one chunk (one matmul) at a time, right
    after that chunk's adjoints. The parameter gradients are summed per chunk.
    """
    x, weights, params, consts, spikes, membrane, comp = res
    beta, threshold, bias, rec = params
    # an unused output (often the membrane) has a symbolic zero cotangent: no zeros array is read
    s_bar, v_bar = (None if isinstance(c, SymbolicZero) else c for c in cotangents)
    rows, n = spikes.shape[1], spikes.shape[2]
    zeros = vary_like(jnp.zeros((rows, n), spikes.dtype), spikes)
    spike = lambda u: fn(u, *consts)  # noqa: E731
    # the state entering each chunk (the last step of the chunk before; zeros for the first)
    s_in = jnp.concatenate([zeros[None], spikes[chunk - 1:-1:chunk]])
    v_in = jnp.concatenate([zeros[None], membrane[chunk - 1:-1:chunk]])

    def per_step(gv_next, xs):
        s_t, v_t, sb_t, vb_t = xs
        if reset == "subtract":
            dv_dv, dv_ds = beta, -threshold
        else:
            dv_dv, dv_ds = beta * (1.0 - s_t), -beta * v_t
        gs = jnp.zeros_like(gv_next) if sb_t is None else sb_t
        if not detach_reset:
            gs = gs + dv_ds * gv_next
        if rec is not None:
            gs = gs + gv_next @ rec.T
        _, vjp = jax.vjp(spike, v_t - threshold)
        (gsig,) = vjp(gs)
        gv = dv_dv * gv_next + gsig
        if vb_t is not None:
            gv = gv + vb_t
        return gv, (gv, gsig)

    def per_chunk(carry, xs):
        gv_next, acc = carry
        x_k, s_k, v_k, sb_k, vb_k, s0, v0 = xs
        gv_next, (gv, gsig) = jax.lax.scan(per_step, gv_next, (s_k, v_k, sb_k, vb_k), reverse=True, unroll=unroll)
        s_prev = jnp.concatenate([s0[None], s_k[:-1]])
        v_prev = jnp.concatenate([v0[None], v_k[:-1]])
        d = dict(acc)
        if weights is not None:
            d["w"] = _add_weight_grad(acc["w"], x_k, gv, comp, sizes)
        d["bias"] = acc["bias"] + _sum_to(gv, bias.shape)
        if reset == "subtract":
            d["beta"] = acc["beta"] + _sum_to(gv * v_prev, beta.shape)
            d["threshold"] = acc["threshold"] + _sum_to(-gsig - gv * s_prev, threshold.shape)
        else:
            d["beta"] = acc["beta"] + _sum_to(gv * v_prev * (1.0 - s_prev), beta.shape)
            d["threshold"] = acc["threshold"] + _sum_to(-gsig, threshold.shape)
        if rec is not None:
            d["rec"] = acc["rec"] + s_prev.reshape(-1, n).T @ gv.reshape(-1, n)
        return (gv_next, d), gv

    acc0 = dict(bias=jnp.zeros_like(bias), beta=jnp.zeros_like(beta), threshold=jnp.zeros_like(threshold))
    if weights is not None:
        acc0["w"] = jnp.zeros_like(weights)
    if rec is not None:
        acc0["rec"] = jnp.zeros_like(rec)
    xs = tuple(None if a is None else _chunks(a, chunk) for a in (x, spikes, membrane, s_bar, v_bar)) + (s_in, v_in)
    (_, acc), gv = jax.lax.scan(per_chunk, vary_like((zeros, acc0)), xs, reverse=True)
    gv = _unchunk(gv)
    if comp is not None:  # back from the active-first order
        acc["w"] = acc["w"][jnp.argsort(comp.perm)]
    dx = gv if weights is None else gv @ weights.T
    d_params = (acc["beta"], acc["threshold"], acc["bias"], acc.get("rec"))
    return dx, acc.get("w"), d_params, [jnp.zeros_like(c) for c in consts]


_core.defvjp(_core_fwd, _core_bwd, symbolic_zeros=True)
