"""Rate coding (coding.*_encode, decoders) and rate losses (losses.rate_*)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsnn import coding, losses


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_bernoulli_encode_probabilities():
    x = jnp.array([0.0, 0.1, 0.5, 0.9, 1.0, 1.7])
    T = 20000
    s = coding.bernoulli_encode(jax.random.key(0), x, T)
    assert s.shape == (T, 6) and s.dtype == jnp.float64
    p = np.clip(np.asarray(x), 0, 1)
    mean = np.asarray(s).mean(0)
    sigma = np.sqrt(p * (1 - p) / T) + 1e-12
    assert np.all(np.abs(mean - p) <= 5 * sigma)  # exact at p in {0, 1}
    np.testing.assert_array_equal(np.unique(np.asarray(s)), [0.0, 1.0])
    # gain, determinism per key, independence across keys
    s2 = coding.bernoulli_encode(jax.random.key(0), x, 50, gain=0.5)
    np.testing.assert_array_equal(s2, coding.bernoulli_encode(jax.random.key(0), x, 50, gain=0.5))
    assert not np.array_equal(s2, coding.bernoulli_encode(jax.random.key(1), x, 50, gain=0.5))
    with pytest.raises(ValueError, match="num_steps"):
        coding.bernoulli_encode(jax.random.key(0), x, 0)


def test_poisson_encode_is_the_binned_poisson_process():
    x = jnp.array([0.0, 0.2, 1.0])
    rate, dt, T = 100.0, 0.004, 40000
    s = np.asarray(coding.poisson_encode(jax.random.key(3), x, T, max_rate=rate, dt=dt, dtype=jnp.float32))
    p = 1 - np.exp(-rate * np.asarray(x) * dt)
    assert np.all(np.abs(s.mean(0) - p) <= 5 * np.sqrt(p * (1 - p) / T) + 1e-12)
    assert s.dtype == np.float32


def test_constant_current_and_decoders():
    x = jnp.array([[0.5, 2.0]])
    c = coding.constant_current(x, 3, gain=2.0)
    np.testing.assert_array_equal(c, np.broadcast_to([[1.0, 4.0]], (3, 1, 2)))
    spikes = jnp.array([[[1, 0, 1], [0, 1, 1]], [[1, 0, 0], [0, 1, 1]], [[0, 0, 1], [0, 0, 1]]], jnp.float32)
    np.testing.assert_array_equal(coding.rate_counts(spikes), [[2, 0, 2], [0, 2, 3]])
    np.testing.assert_allclose(coding.firing_rate(spikes, dt=0.5), np.array([[2, 0, 2], [0, 2, 3]]) / 3 / 0.5)
    np.testing.assert_array_equal(coding.rate_class(spikes), [0, 2])


def test_rate_cross_entropy_and_its_gradient():
    rng = np.random.default_rng(0)
    s = (rng.random((7, 4, 5)) < 0.4).astype(float)
    y = np.array([0, 3, 4, 1])
    for scale in (1.0, 3.0):
        ref = -np.mean(_log_softmax(s.sum(0) / scale)[np.arange(4), y])
        np.testing.assert_allclose(float(losses.rate_cross_entropy(s, y, temperature=scale)), ref, rtol=1e-12)
    g = np.asarray(jax.grad(losses.rate_cross_entropy)(jnp.asarray(s), y))
    soft = np.exp(_log_softmax(s.sum(0)))
    expect = (soft - np.eye(5)[y]) / 4  # d/dcounts, identical at every step
    np.testing.assert_allclose(g, np.broadcast_to(expect, g.shape), rtol=1e-12, atol=1e-15)


def test_membrane_cross_entropy():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(6, 3, 4))
    y = np.array([1, 0, 3])
    for reduce, logits in (("mean", v.mean(0)), ("max", v.max(0)), ("last", v[-1])):
        ref = -np.mean(_log_softmax(logits)[np.arange(3), y])
        np.testing.assert_allclose(float(losses.membrane_cross_entropy(v, y, reduce=reduce)), ref, rtol=1e-12)
    with pytest.raises(ValueError, match="reduce"):
        losses.membrane_cross_entropy(v, y, reduce="sum")


def test_rate_mse_and_regularizer():
    rng = np.random.default_rng(2)
    s = (rng.random((10, 4, 3)) < 0.3).astype(float)
    y = np.array([2, 0, 1, 1])
    target = np.where(np.eye(3)[y] > 0, 0.8, 0.1) * 10
    ref = np.mean(np.sum((s.sum(0) - target) ** 2, -1))
    np.testing.assert_allclose(float(losses.rate_mse(s, y, correct_rate=0.8, incorrect_rate=0.1)), ref)
    r = s.mean(0)
    up = np.mean(np.maximum(r - 0.2, 0) ** 2)
    low = np.mean(np.maximum(0.35 - r.mean(0), 0) ** 2)
    np.testing.assert_allclose(float(losses.rate_regularizer(s, upper=0.2)), up, rtol=1e-12)
    np.testing.assert_allclose(float(losses.rate_regularizer(s, lower=0.35)), low, rtol=1e-12)
    np.testing.assert_allclose(float(losses.rate_regularizer(s, upper=0.2, lower=0.35)), up + low, rtol=1e-12)
    assert up > 0 and low > 0  # both terms active in this case
    assert float(losses.rate_regularizer(s)) == 0.0
