"""Tests of jaxsnn.discretize.quantize: exact bin-end placement, identity at dt = 0, estimators."""

import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsnn.discretize import bin_index, quantize


@pytest.mark.parametrize("dt", [0.5, 0.125, 3 / 1024, 0.75])
def test_bin_end_exact_rational(dt):
    """Dyadic times and steps: products are exact, so the rational bin end is the answer."""
    rng = np.random.default_rng(0)
    t = rng.integers(0, 2 ** 16, 500) / 2 ** 12               # dyadic times in [0, 16)
    t = np.concatenate([t, np.arange(40) * dt])              # spikes exactly on bin starts
    q = np.asarray(quantize(jnp.asarray(t), dt))
    for ti, qi in zip(t, q):
        k = math.floor(Fraction(ti) / Fraction(dt))
        assert Fraction(qi) == (k + 1) * Fraction(dt), (ti, qi)


def test_bin_end_random_floats():
    rng = np.random.default_rng(1)
    for dt in [1e-4, 5e-4, 1e-3, 7e-3, 1.5e-2, 0.1]:
        t = rng.uniform(0, 0.2, 2000)
        q = np.asarray(quantize(jnp.asarray(t), dt))
        k = np.asarray(bin_index(jnp.asarray(t), dt))
        assert np.all(k * dt <= t) and np.all(t < (k + 1) * dt)       # in float arithmetic
        np.testing.assert_array_equal(q, (k + 1) * dt)
        assert np.all(q > t) and np.all(q - t <= dt * (1 + 1e-12))
        # agrees with the exact rational bin wherever t is not within rounding of a bin edge
        exact = np.array([math.floor(Fraction(x) / Fraction(dt)) for x in t])
        near_edge = np.abs(t / dt - np.round(t / dt)) < 1e-9
        assert np.all((exact == k) | near_edge)


def test_identity_inf_and_errors():
    t = jnp.array([0.0, 0.013, jnp.inf, 1.7])
    np.testing.assert_array_equal(np.asarray(quantize(t, 0.0)), np.asarray(t))
    q = np.asarray(quantize(t, 0.01))
    assert q[2] == np.inf and q[0] == 0.01 and q[1] == pytest.approx(0.02)
    assert np.asarray(quantize(jnp.inf, 0.5)) == np.inf
    with pytest.raises(ValueError, match="dt"):
        quantize(t, -0.1)
    with pytest.raises(ValueError, match="estimator"):
        quantize(t, 0.1, estimator="round")
    # per-neuron dt broadcasts
    np.testing.assert_allclose(np.asarray(quantize(jnp.array([[0.3, 0.3]]), jnp.array([0.25, 0.0]))), [[0.5, 0.3]])


def test_straight_through_and_sine_gradients():
    t = jnp.array([0.0123, 0.051, 0.0999, jnp.inf])
    dt = 0.02
    g = np.asarray(jax.grad(lambda x: quantize(x, dt).sum())(t))
    np.testing.assert_array_equal(g, [1.0, 1.0, 1.0, 0.0])
    gs = np.asarray(jax.grad(lambda x: quantize(x, dt, estimator="sine").sum())(t))
    tn = np.array([0.0123, 0.051, 0.0999])
    np.testing.assert_allclose(gs[:3], 1 - np.cos(2 * np.pi * tn / dt), rtol=1e-10)
    assert gs[3] == 0.0 and np.all(np.isfinite(gs))
    # the sine estimator averages to 1 over a bin, like straight-through
    grid = (np.arange(4000) + 0.5) / 4000 * dt
    mean = np.mean(np.asarray(jax.vmap(jax.grad(lambda x: quantize(x, dt, estimator="sine")))(jnp.asarray(grid))))
    assert mean == pytest.approx(1.0, abs=1e-9)
    # at dt = 0 both are the identity's derivative
    for est in ("straight_through", "sine"):
        assert float(jax.grad(lambda x: quantize(x, 0.0, estimator=est))(0.3)) == 1.0


def test_dt_gradient_matches_finite_differences():
    t = jnp.array([0.0123, 0.051, 0.0999])
    f = lambda dt: quantize(t, dt).sum()
    dt, h = 0.02, 1e-7
    fd = (f(dt + h) - f(dt - h)) / (2 * h)                  # no bin edge within +-h of these times
    assert float(jax.grad(f)(dt)) == pytest.approx(float(fd), rel=1e-6)
    assert float(jax.grad(f)(dt)) == sum(math.floor(x / dt) + 1 for x in np.asarray(t))
    assert np.isfinite(float(jax.grad(lambda d: quantize(jnp.array([jnp.inf, 0.1]), d).sum())(0.0)))


def test_vmapped_sweep_over_dt_compiles_once():
    t = jnp.asarray(np.random.default_rng(2).uniform(0, 0.2, (64, 10)))
    dts = jnp.array([0.0, 1e-4, 5e-4, 1e-3, 2e-3, 4e-3, 5e-3, 7e-3, 8e-3, 1e-2, 1.5e-2])
    traces = []

    def count(dt):
        traces.append(1)
        return quantize(t, dt)

    sweep = jax.jit(jax.vmap(count))(dts)
    assert len(traces) == 1
    for i, dt in enumerate(np.asarray(dts)):
        np.testing.assert_array_equal(np.asarray(sweep[i]), np.asarray(quantize(t, float(dt))))
