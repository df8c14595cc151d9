"""jaxsnn.theory.conversion: convolutional ReLU networks -> SRM networks, exact on the input box."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxsnn import srm
from jaxsnn.theory import conversion as cv


def rnd(rng, *shape):
    return rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))


def conv_net(rng, c_in=2):
    """conv (SAME) - relu - maxpool (SAME) - conv (strided, explicit padding) - relu - flatten - dense, on 5x5."""
    return [cv.Conv(rnd(rng, 3, 3, c_in, 4), 0.3 * rng.standard_normal(4), 1, "SAME"),
            cv.MaxPool(2, padding="SAME"),
            cv.Conv(rnd(rng, 2, 2, 4, 3), 0.3 * rng.standard_normal(3), (2, 1), ((1, 0), (0, 1))),
            cv.Flatten(),
            cv.Dense(rnd(rng, 2 * 3 * 3, 4), rng.standard_normal(4))]


def small_net(rng):
    """conv (SAME) - relu - maxpool - flatten - dense, on 4x4x1."""
    return [cv.Conv(rnd(rng, 2, 2, 1, 2), 0.2 * rng.standard_normal(2), 1, "SAME"), cv.MaxPool(2), cv.Flatten(),
            cv.Dense(rnd(rng, 2 * 2 * 2, 3), rng.standard_normal(3))]


def numpy_relu_dense(layers, x):
    h = np.asarray(x, float)
    for i, (W, b) in enumerate(layers):
        h = h @ W + b
        h = np.maximum(h, 0.0) if i < len(layers) - 1 else h
    return h


def test_reference_relu_network_equals_flax():
    rng = np.random.default_rng(0)
    model = nn.Sequential([nn.Conv(4, (3, 3)), nn.relu, cv.MaxPool(2, padding="SAME"),
                           nn.Conv(3, (2, 2), strides=(2, 1), padding=((1, 0), (0, 1))), nn.relu, cv.Flatten(),
                           nn.Dense(6), nn.relu, nn.Dense(4)])
    x = jnp.asarray(rng.uniform(-1, 1, (3, 5, 5, 2)))
    variables = model.init(jax.random.key(0), x)
    layers = cv.layers_from_flax(model, variables)
    assert [type(layer).__name__ for layer in layers] == ["Conv", "MaxPool", "Conv", "Flatten", "Dense", "Dense"]
    np.testing.assert_allclose(cv.relu_network(layers, x), model.apply(variables, x), rtol=1e-12, atol=1e-12)
    # nn.max_pool given as a partial is read too
    import functools
    m2 = nn.Sequential([nn.Conv(2, (2, 2)), functools.partial(nn.max_pool, window_shape=(2, 2)), nn.relu,
                        cv.Flatten(), nn.Dense(2)])
    v2 = m2.init(jax.random.key(1), x)
    np.testing.assert_allclose(cv.relu_network(cv.layers_from_flax(m2, v2), x), m2.apply(v2, x), rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_conversion_of_a_conv_net_is_exact_on_the_box(seed):
    rng = np.random.default_rng(seed)
    layers = conv_net(rng)
    lo, hi = np.array([-1.0, 0.5]), np.array([1.0, 2.0])  # per channel; channel 1's box excludes 0
    x = rng.uniform(lo, hi, (40, 5, 5, 2))
    x[0], x[1] = lo, hi  # corners
    net = cv.convert(layers, (lo, hi))
    ref = np.asarray(cv.relu_network(layers, x))
    got = np.asarray(net(x))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * (1 + np.abs(ref).max()))
    np.testing.assert_array_equal(got.argmax(-1), ref.argmax(-1))
    assert net.latency > 0 and len(net.params) == 3
    # the hidden ReLUs are active and inactive (the clamp is exercised both ways)
    h = np.asarray(cv.relu_network(layers[:1], x))  # the first layer alone: no ReLU
    assert (h > 0).any() and (h < 0).any()


def test_conversion_of_a_dense_net_and_jit_vmap():
    rng = np.random.default_rng(5)
    dense = [(rnd(rng, 3, 8), rng.standard_normal(8)), (rnd(rng, 8, 2), rng.standard_normal(2))]
    net = cv.convert(dense, (-0.5, 1.5))
    x = rng.uniform(-0.5, 1.5, (100, 3))
    ref = numpy_relu_dense(dense, x)
    f = jax.jit(jax.vmap(net.apply, in_axes=(None, 0)))
    np.testing.assert_allclose(f(net.params, x), ref, rtol=1e-10, atol=1e-10)


def test_every_layers_spike_times_code_the_relu_networks_values():
    rng = np.random.default_rng(7)
    dense = [(rnd(rng, 3, 8), rng.standard_normal(8)), (rnd(rng, 8, 2), rng.standard_normal(2))]
    net = cv.convert(dense, (-0.5, 1.5))
    x = rng.uniform(-0.5, 1.5, (30, 3))
    t, layers = net.spike_times(net.params, net.encode(x), return_layers=True)
    z = x @ dense[0][0] + dense[0][1]
    assert [op[0] for op in net.ops] == ["dense", "clamp", "dense"] and len(layers) == 3
    assert (z > 0).any() and (z < 0).any()
    np.testing.assert_allclose(layers[0], 1.0 - z, atol=1e-10)  # an affine layer: z = 1 - t
    np.testing.assert_allclose(layers[1], np.maximum(z, 0.0), atol=1e-10)  # after the clamp: t = max(0, z)
    np.testing.assert_allclose(1.0 - layers[2], numpy_relu_dense(dense, x), atol=1e-10)
    np.testing.assert_array_equal(layers[-1], t)
    np.testing.assert_array_equal(t, net.spike_times(net.params, net.encode(x)))


def test_conversion_in_float32():
    rng = np.random.default_rng(6)
    layers = small_net(rng)
    x = rng.uniform(0, 1, (20, 4, 4, 1))
    ref = np.asarray(cv.relu_network(layers, x))
    with jax.enable_x64(False):
        net = cv.convert(layers, (0.0, 1.0))
        got = np.asarray(net(jnp.asarray(x, jnp.float32)))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-4 * (1 + np.abs(ref).max()))


def test_gradients_of_the_converted_network():
    rng = np.random.default_rng(7)
    layers = small_net(rng)
    net = cv.convert(layers, (0.0, 1.0))
    x = rng.uniform(0, 1, (4, 4, 4, 1))
    labels = jnp.array([0, 1, 2, 1])

    def loss(params):
        z = net.apply(params, x)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), labels[:, None], axis=1))

    loss = jax.jit(loss)
    g = jax.grad(loss)(net.params)
    leaves = jax.tree_util.tree_leaves(g)
    assert all(np.all(np.isfinite(a)) for a in leaves)
    assert all(np.any(a != 0) for a in jax.tree_util.tree_leaves(g[-1]))
    # exact: against central differences (the spike times are locally affine in the parameters)
    check_grads(loss, (net.params,), order=1, modes=("rev",), eps=1e-6, atol=1e-6, rtol=1e-6)


def test_clamp_is_the_srm_neuron_it_names():
    a = np.concatenate([np.linspace(-2.0, 3.0, 41), [1.0]])
    pair = np.stack([a, np.zeros_like(a)], axis=-1)
    want = srm.first_spike_times(pair, np.asarray(cv.CLAMP_WEIGHTS), cv.CLAMP_THRESHOLD)[:, 0]
    np.testing.assert_allclose(cv.clamp(a), want, rtol=1e-15)
    ga = jax.vmap(jax.grad(lambda t: cv.clamp(t)))(jnp.asarray(a[:-1]))
    gs = jax.grad(lambda p: srm.first_spike_times(p, np.asarray(cv.CLAMP_WEIGHTS), 2.0).sum())(pair[:-1])[:, 0]
    np.testing.assert_allclose(ga, gs, atol=1e-15)


def test_errors():
    rng = np.random.default_rng(8)
    W = (rnd(rng, 2, 3), np.zeros(3))
    net = cv.convert([W, (rnd(rng, 3, 1), np.zeros(1))], (0.0, 1.0))
    with pytest.raises(ValueError, match="x: expected"):
        net(jnp.array([[0.5, 1.5]]))
    with pytest.raises(ValueError, match="layers: expected"):
        cv.convert([cv.MaxPool(2), W])
    with pytest.raises(ValueError, match="layers: expected"):
        cv.convert([])
    with pytest.raises(ValueError, match=r"layers\[1\]"):
        cv.convert([cv.Conv(rnd(rng, 2, 2, 1, 2), np.zeros(2)), W])  # dense on an unflattened map
    with pytest.raises(ValueError, match=r"layers\[1\]"):
        cv.convert([W, (rnd(rng, 4, 1), np.zeros(1))])  # sizes do not chain
    with pytest.raises(ValueError, match="input_range: expected"):
        cv.convert([W], (1.0, 0.0))
    model = nn.Sequential([nn.Dense(3), nn.Dense(2)])  # no ReLU in between
    with pytest.raises(ValueError, match="module: expected"):
        cv.layers_from_flax(model, model.init(jax.random.key(0), jnp.zeros((1, 2))))


def test_value_bounds_from_data_shrink_the_time_scales_and_keep_the_conversion_exact_on_that_data():
    rng = np.random.default_rng(7)
    # weights scaled up: values well beyond the slack of 2 in each time scale
    layers = [cv.Conv(10 * la.kernel, 10 * la.bias, la.strides, la.padding) if isinstance(la, cv.Conv) else
              cv.Dense(10 * la.W, 10 * la.b) if isinstance(la, cv.Dense) else la for la in conv_net(rng)]
    x = jnp.asarray(rng.uniform(0, 1, (64, 5, 5, 2)))
    bounds = cv.value_bounds(layers, x)
    # independently: the largest ReLU output of the prefix networks ending at the first and second conv
    prefix = [max(0.0, float(cv.relu_network(layers[:n], x).max())) for n in (1, 3)]
    np.testing.assert_allclose(bounds, prefix, rtol=1e-12)
    net_box, net_data = cv.convert(layers, (0.0, 1.0)), cv.convert(layers, (0.0, 1.0), value_bounds=bounds)
    assert net_data.latency < net_box.latency
    np.testing.assert_allclose(net_data(x), cv.relu_network(layers, x), rtol=1e-9, atol=1e-9)
    # bounds far below the data break the window lemma: the network no longer computes the ReLU network
    tiny = cv.convert(layers, (0.0, 1.0), value_bounds=[b * 1e-3 for b in bounds])
    assert not np.allclose(tiny(x), cv.relu_network(layers, x), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="value_bounds: expected 2 finite non-negative values"):
        cv.convert(layers, (0.0, 1.0), value_bounds=bounds[:1])
