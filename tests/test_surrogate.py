"""Surrogate spike functions: exact step forward, stated derivative backward."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsnn import surrogate

# The derivatives as the docstrings state them, written here in numpy.
STATED = {
    "fast_sigmoid": (25.0, lambda x, k: 1.0 / (1.0 + k * np.abs(x)) ** 2),
    "arctan": (2.0, lambda x, a: (a / 2) / (1.0 + (np.pi * a * x / 2) ** 2)),
    "sigmoid": (25.0, lambda x, k: k * np.exp(-k * x) / (1.0 + np.exp(-k * x)) ** 2),
    "triangle": (1.0, lambda x, w: np.clip(1.0 - np.abs(x) / w, 0.0, None) / w),
    "rectangular": (1.0, lambda x, w: (np.abs(x) < w / 2) / w),
    "straight_through": (1.0, lambda x, c: c * np.ones_like(x)),
}

X = np.array([-3.0, -0.7, -0.5, -0.2, -1e-3, 0.0, 1e-3, 0.2, 0.49, 0.8, 2.5])


@pytest.mark.parametrize("name", sorted(STATED))
def test_forward_is_the_exact_step(name):
    fn = surrogate.SURROGATES[name]
    s = fn(jnp.asarray(X))
    np.testing.assert_array_equal(np.asarray(s), (X >= 0).astype(float))
    assert s.dtype == jnp.float64
    assert fn(jnp.asarray(X, jnp.float32)).dtype == jnp.float32


@pytest.mark.parametrize("name", sorted(STATED))
@pytest.mark.parametrize("param", [None, 0.3, 4.0])
def test_backward_is_the_stated_derivative(name, param):
    default, deriv = STATED[name]
    p = default if param is None else param
    fn = surrogate.SURROGATES[name]
    g = np.random.default_rng(0).normal(size=X.shape)
    call = (lambda x: fn(x)) if param is None else (lambda x: fn(x, p))
    _, vjp = jax.vjp(call, jnp.asarray(X))
    np.testing.assert_allclose(np.asarray(vjp(jnp.asarray(g))[0]), g * deriv(X, p), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(STATED))
def test_parameter_is_traceable_and_vmappable(name):
    _, deriv = STATED[name]
    fn = surrogate.SURROGATES[name]
    params = jnp.array([0.5, 1.0, 7.0])
    grads = jax.jit(jax.vmap(lambda p: jax.grad(lambda x: fn(x, p).sum())(jnp.asarray(X))))(params)
    for p, gr in zip(np.asarray(params), np.asarray(grads)):
        np.testing.assert_allclose(gr, deriv(X, p), rtol=1e-12, atol=1e-15)
    # the parameter leaves the forward pass unchanged: its own gradient is zero
    assert float(jax.grad(lambda p: fn(jnp.asarray(X), p).sum())(2.0)) == 0.0


def test_integer_input_and_heaviside():
    np.testing.assert_array_equal(np.asarray(surrogate.fast_sigmoid(jnp.array([-1, 0, 2]))), [0.0, 1.0, 1.0])
    assert float(jax.grad(lambda x: surrogate.heaviside(x).sum())(jnp.array([0.0, 1.0]))[0]) == 0.0


def test_resolve():
    assert surrogate.resolve(None) is surrogate.SURROGATES[surrogate.DEFAULT]
    assert surrogate.resolve("arctan") is surrogate.arctan
    custom = functools.partial(surrogate.triangle, width=0.5)
    assert surrogate.resolve(custom) is custom
    fn = surrogate.resolve("fast_sigmoid", slope=10.0)
    g = jax.grad(lambda x: fn(x))(0.1)
    np.testing.assert_allclose(float(g), 1.0 / (1.0 + 10.0 * 0.1) ** 2)
    with pytest.raises(ValueError, match="surrogate"):
        surrogate.resolve("superspike")
    with pytest.raises(ValueError, match="surrogate"):
        surrogate.resolve(3.0)
    with pytest.raises(ValueError, match="surrogate"):
        surrogate.resolve(custom, width=1.0)
