"""jaxsnn.lif.spike_times on a clock (``dt``): against a fine-step clocked simulation, and its
gradients against finite differences of the straight-through (or sine) surrogate function."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oracles import lif_clocked_fine_step, lif_clocked_surrogate

from jaxsnn import lif
from jaxsnn.discretize import quantize


def case(seed, n_in=6, n_out=5, k_in=2, mean=1.5, std=1.5):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0.0, 4.0, (n_in, k_in)), axis=-1)
    t[rng.random(t.shape) < 0.15] = np.inf
    t = np.sort(t, axis=-1)
    return t, rng.normal(mean, std, (n_in, n_out))


@pytest.mark.parametrize("ratio", [2, 1])
@pytest.mark.parametrize("dt", [0.05, 0.25, 0.7])
def test_matches_clocked_simulation(ratio, dt):
    """Spikes only at bin ends, inputs seen at their clocked times, reset at the bin end."""
    K, t_max = 6, 7.0
    n_spikes = 0
    for seed in range(2):
        t, w = case(seed)
        tq = np.asarray(quantize(jnp.asarray(t), dt))
        theta = np.array([1.0, 0.8, 1.2, 1.0, 0.6])
        out = np.asarray(lif.spike_times(tq[None], w, tau_syn=1.0, threshold=theta, tau_ratio=ratio,
                                         max_spikes=K, t_max=t_max, dt=dt))[0]
        ref = lif_clocked_fine_step(tq, w, tau_syn=1.0, tau_mem=ratio * 1.0, theta=theta, max_spikes=K,
                                    t_max=t_max, dt=dt)
        np.testing.assert_array_equal(np.isfinite(out), np.isfinite(ref))
        np.testing.assert_allclose(out[np.isfinite(out)], ref[np.isfinite(ref)], rtol=0, atol=1e-9)
        on_grid = out[np.isfinite(out)] / dt
        np.testing.assert_allclose(on_grid, np.rint(on_grid), atol=1e-9)
        n_spikes += np.isfinite(out).sum()
        first = np.asarray(lif.spike_times(tq[None], w, tau_syn=1.0, threshold=theta, tau_ratio=ratio,
                                           max_spikes=1, t_max=t_max, dt=dt))[0]
        np.testing.assert_array_equal(first, out[:, :1])  # single-spike (Fast & Deep) layer on the clock
    assert n_spikes > 15  # the cases are not trivially silent


def test_immediate_spikes_and_t_max():
    """A strong input drives the membrane past 2 theta within a bin: after the reset the
    neuron is still above threshold and fires at the end of the next bins; nothing is emitted
    after t_max even if the crossing happened before it."""
    t = np.array([[0.0]])
    w = np.array([[40.0]])
    dt, t_max = 0.5, 1.6
    out = np.asarray(lif.spike_times(t, w, tau_syn=1.0, threshold=1.0, max_spikes=8, t_max=t_max, dt=dt))[0]
    ref = lif_clocked_fine_step(t, w, tau_syn=1.0, tau_mem=2.0, theta=1.0, max_spikes=8, t_max=t_max, dt=dt)
    np.testing.assert_allclose(out, ref[0])
    assert np.sum(np.isfinite(out)) == 3 and np.all(out[np.isfinite(out)] <= t_max)


def test_dt_zero_is_continuous():
    t, w = case(4)
    kw = dict(tau_syn=1.0, threshold=1.0, max_spikes=5, t_max=6.0)
    f_c = lambda w, t: lif.spike_times(t, w, **kw)
    f_0 = lambda w, t: lif.spike_times(t, w, dt=0.0, **kw)
    np.testing.assert_allclose(f_0(w, t[None]), f_c(w, t[None]), rtol=0, atol=1e-12)
    loss = lambda f: lambda w, t: jnp.sum(jnp.where(jnp.isfinite(f(w, t)), f(w, t) * jnp.arange(5.0), 0.0))
    for a, b in zip(jax.grad(loss(f_0), argnums=(0, 1))(w, t[None]), jax.grad(loss(f_c), argnums=(0, 1))(w, t[None])):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def sine_map(dt):
    return lambda t: t - dt / (2 * np.pi) * np.sin(2 * np.pi * t / dt)


@pytest.mark.parametrize("ratio,estimator", [(2, "straight_through"), (1, "straight_through"), (2, "sine")])
def test_gradients_match_surrogate_finite_differences(ratio, estimator):
    dt, K, t_max = 0.25, 5, 6.0
    t, w = case(7, n_in=5, n_out=3, mean=3.0)
    tq = np.asarray(quantize(jnp.asarray(t), dt))
    theta, tau_syn = 0.5, 1.0
    c = np.random.default_rng(1).normal(size=(3, K))

    def fwd(tq, w, theta, tau_syn):
        return lif.spike_times(tq[None], w, tau_syn=tau_syn, threshold=theta, tau_ratio=ratio, max_spikes=K,
                               t_max=t_max, dt=dt, estimator=estimator)[0]

    def loss(tq, w, theta, tau_syn):
        out = fwd(tq, w, theta, tau_syn)
        return jnp.sum(jnp.where(jnp.isfinite(out), c * out, 0.0))

    out = np.asarray(fwd(tq, w, theta, tau_syn))
    assert np.isfinite(out).sum() >= 6
    f, base = lif_clocked_surrogate(out, tq, w, tau_syn=tau_syn, tau_mem=ratio * tau_syn, theta=theta, dt=dt,
                                    slope_map=None if estimator == "straight_through" else sine_map(dt))
    imm = [x for b in base for x in b[1]]
    assert any(imm) and sum(not x for x in imm) >= 5  # immediate and crossing spikes are both exercised
    L = lambda *a: float(np.sum(np.where(np.isfinite(out), c * np.where(np.isfinite(out), f(*a), 0.0), 0.0)))
    g = jax.grad(loss, argnums=(0, 1, 2, 3))(jnp.asarray(tq), jnp.asarray(w), theta, tau_syn)
    eps = 1e-6

    def fd(i, x):
        x = np.array(x, float)
        args = [tq, w, theta, tau_syn]
        out_ = np.zeros_like(x)
        for idx in np.ndindex(x.shape) if x.ndim else [()]:
            if x.ndim and not np.isfinite(x[idx]):
                continue
            xp, xm = x.copy(), x.copy()
            xp[idx] += eps
            xm[idx] -= eps
            ap, am = list(args), list(args)
            ap[i], am[i] = (xp if x.ndim else float(xp)), (xm if x.ndim else float(xm))
            out_[idx] = (L(*ap) - L(*am)) / (2 * eps)
        return out_

    for i, x in enumerate((tq, w, theta, tau_syn)):
        ref = fd(i, x)
        got = np.where(np.isfinite(x), np.asarray(g[i]), 0.0) if np.ndim(x) else np.asarray(g[i])
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6, err_msg=f"argument {i}")


def test_vmapped_dt_sweep_compiles_once():
    t, w = case(3)
    dts = jnp.array([0.0, 0.05, 0.1, 0.25, 0.5])
    traces = []

    def run(dt):
        traces.append(1)
        tq = quantize(jnp.asarray(t), dt)
        return lif.spike_times(tq[None], w, tau_syn=1.0, threshold=1.0, max_spikes=4, t_max=6.0, dt=dt)[0]

    swept = jax.jit(jax.vmap(run))(dts)
    assert len(traces) == 1
    for k, dt in enumerate(np.asarray(dts)):
        tq = quantize(jnp.asarray(t), dt)
        single = lif.spike_times(tq[None], w, tau_syn=1.0, threshold=1.0, max_spikes=4, t_max=6.0, dt=float(dt))[0]
        np.testing.assert_allclose(swept[k], single, rtol=0, atol=1e-12)
    # fewer spikes or the same as dt grows is not guaranteed; different from continuous is
    assert not np.allclose(np.where(np.isfinite(swept[3]), swept[3], 0), np.where(np.isfinite(swept[0]), swept[0], 0))


def test_bad_dt_raises():
    t, w = case(0)
    with pytest.raises(ValueError, match="dt"):
        lif.spike_times(t, w, tau_syn=1.0, threshold=1.0, dt=-0.1)
    with pytest.raises(ValueError, match="dt"):
        lif.spike_times(t, w, tau_syn=1.0, threshold=1.0, dt=jnp.ones(2))
    with pytest.raises(ValueError, match="estimator"):
        lif.spike_times(t, w, tau_syn=1.0, threshold=1.0, dt=0.1, estimator="round")
