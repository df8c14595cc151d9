"""Tests of jaxsnn.theory: exact emulation both ways, discontinuity, regions, approximation, bounds."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsnn import srm, theory


def random_relu(rng, sizes, scale=1.0):
    return [(scale * rng.standard_normal((a, b)), scale * rng.standard_normal(b))
            for a, b in zip(sizes[:-1], sizes[1:])]


def numpy_relu(layers, x):
    """Independent forward pass of the ReLU network."""
    h = np.asarray(x, np.float64)
    for i, (W, b) in enumerate(layers):
        h = h @ W + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h


# ---------------------------------------------------------------------------------------------
# relu_to_snn
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sizes,box", [((1, 3, 1), (0.0, 1.0)), ((2, 5, 1), (-1.0, 2.0)),
                                       ((3, 8, 8, 2), (0.0, 1.0)), ((4, 6, 5, 7, 3), (-0.5, 0.5)),
                                       ((5, 16, 4), (0.0, 3.0))])
def test_relu_to_snn_float64(sizes, box):
    rng = np.random.default_rng(sum(sizes))
    layers = random_relu(rng, sizes)
    net = theory.relu_to_snn(layers, box)
    x = rng.uniform(box[0], box[1], (400, sizes[0]))
    x[:4] = box[0]                      # corners of the box are valid too
    x[4:8] = box[1]
    ref = numpy_relu(layers, x)
    got = np.asarray(net(jnp.asarray(x)))
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9 * (1 + np.abs(ref).max()))
    L = len(sizes) - 1
    assert net.num_layers == 2 * L - 1
    assert net.num_neurons == 2 * sum(sizes[1:-1]) + sizes[-1] + 2 * (L - 1)
    assert net.num_inputs == sizes[0] + 1


def test_relu_to_snn_float32():
    rng = np.random.default_rng(7)
    for sizes in [(2, 5, 1), (3, 8, 8, 2)]:
        layers = random_relu(rng, sizes)
        net = theory.relu_to_snn(layers, (0.0, 1.0))
        x = rng.uniform(0, 1, (300, sizes[0]))
        ref = numpy_relu(layers, x)
        with jax.enable_x64(False):
            got = np.asarray(net(jnp.asarray(x, jnp.float32)))
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * (1 + np.abs(ref).max()))


def test_relu_to_snn_intermediate_spikes_follow_the_lemmas():
    """Affine layer fires at K - z, ReLU layer at K + relu(z), relays at K - 1 and K."""
    rng = np.random.default_rng(3)
    layers = random_relu(rng, (2, 4, 1))
    net = theory.relu_to_snn(layers, (0.0, 1.0))
    x = rng.uniform(0, 1, (50, 2))
    t0 = net.encode(jnp.asarray(x))
    t1 = np.asarray(net.layers[0](t0))
    t2 = np.asarray(net.layers[1](jnp.asarray(t1)))
    z = x @ layers[0][0] + layers[0][1]
    K = t1[0, -1] + 1.0                            # relay of the affine layer fires at K - 1
    np.testing.assert_allclose(t1[:, :-1], K - z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t2[:, :-1], K + np.maximum(z, 0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t2[:, -1], K)
    # and the spiking layer agrees with a direct scan of its potential (independent of the sort)
    s = np.linspace(0, t1.max() + 1, 200001)
    P = np.asarray(srm.potential(jnp.asarray(np.broadcast_to(s, (3, s.size))), t0[:3],
                                 jnp.asarray(net.layers[0].weights)))
    theta = net.layers[0].threshold
    first = np.array([[s[np.argmax(P[i, :, j] >= theta[j])] for j in range(P.shape[-1])] for i in range(3)])
    np.testing.assert_allclose(first, t1[:3], atol=2 * (s[1] - s[0]))


def test_relu_to_snn_jit_vmap():
    rng = np.random.default_rng(4)
    layers = random_relu(rng, (3, 4, 2))
    net = theory.relu_to_snn(layers, (0.0, 1.0))
    x = jnp.asarray(rng.uniform(0, 1, (6, 5, 3)))
    ref = numpy_relu(layers, np.asarray(x))
    np.testing.assert_allclose(np.asarray(jax.jit(net)(x)), ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.asarray(jax.vmap(net)(x)), ref, rtol=1e-9, atol=1e-9)


def test_relu_to_snn_errors():
    rng = np.random.default_rng(0)
    W1, b1 = rng.standard_normal((2, 3)), rng.standard_normal(3)
    with pytest.raises(ValueError, match="layers"):
        theory.relu_to_snn([(W1, b1), (rng.standard_normal((4, 1)), np.zeros(1))])
    with pytest.raises(ValueError, match="layers"):
        theory.relu_to_snn([(W1, np.zeros(2))])
    with pytest.raises(ValueError, match="layers"):
        theory.relu_to_snn([])
    with pytest.raises(ValueError, match="input_range"):
        theory.relu_to_snn([(W1, b1)], (1.0, 0.0))
    net = theory.relu_to_snn([(W1, b1)], (0.0, 1.0))
    with pytest.raises(ValueError, match="x"):
        net(jnp.array([[0.5, 1.5]]))
    with pytest.raises(ValueError, match="x"):
        net(jnp.array([[0.5, 0.5, 0.5]]))


# ---------------------------------------------------------------------------------------------
# snn_to_relu
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_in,n_out,delays", [(1, 2, False), (3, 2, True), (4, 3, True), (6, 1, False)])
def test_snn_to_relu_reproduces_firing_map(n_in, n_out, delays):
    rng = np.random.default_rng(10 * n_in + n_out)
    W = rng.uniform(0.1, 2.0, (n_in, n_out))
    W[0, -1] = 0.0 if n_in > 1 else W[0, -1]     # a missing synapse
    th = rng.uniform(0.2, 2.0, n_out)
    D = rng.uniform(0.0, 1.0, (n_in, n_out)) if delays else None
    relu = theory.snn_to_relu(W, th, delays=D)
    t = rng.uniform(-1.0, 3.0, (2000, n_in))
    ref = np.asarray(srm.first_spike_times(jnp.asarray(t), W, th, delays=D))
    np.testing.assert_allclose(np.asarray(relu(t)), ref, rtol=1e-9, atol=1e-9)
    k = int(np.max(np.sum(W > 0, 0)))             # positive weights of the widest neuron
    assert relu.num_layers == (1 if k == 1 else math.ceil(math.log2(2 ** k - 1)) + 1)


def test_snn_to_relu_errors():
    with pytest.raises(ValueError, match="weights"):
        theory.snn_to_relu(np.array([[1.0], [-0.5]]), 1.0)
    with pytest.raises(ValueError, match="weights"):
        theory.snn_to_relu(np.array([[0.0], [0.0]]), 1.0)
    with pytest.raises(ValueError, match="threshold"):
        theory.snn_to_relu(np.ones((2, 1)), 0.0)
    with pytest.raises(ValueError, match="delays"):
        theory.snn_to_relu(np.ones((2, 1)), 1.0, delays=-np.ones((2, 1)))


# ---------------------------------------------------------------------------------------------
# discontinuity and structural properties
# ---------------------------------------------------------------------------------------------

def test_discontinuous_example():
    net = theory.discontinuous_example()
    x = np.linspace(0, 1, 1001)[:, None]
    t = np.asarray(net(jnp.asarray(x)))[:, 0]
    expect = np.where(x[:, 0] <= 0.5, (1.5 + x[:, 0]) / 2, 2.5)   # derived in the docstring
    np.testing.assert_allclose(t, expect, rtol=1e-12)
    jumps = theory.find_jumps(lambda p: net(p), 0.0, 1.0)
    assert len(jumps) == 1
    loc, size = jumps[0]
    assert abs(loc - 0.5) < 1e-9 and abs(size - 1.5) < 1e-9
    # the same neuron with an unending response is continuous (potential never decreases)
    cont = theory.discontinuous_example(delta=math.inf)
    assert theory.find_jumps(lambda p: cont(p), 0.0, 1.0) == []


def test_find_jumps_ignores_steep_continuous_pieces():
    f = lambda p: jnp.clip(1000.0 * (p - 0.3), 0.0, 1.0)           # slope 1000 on a tiny interval
    assert theory.find_jumps(f, 0.0, 1.0, n=101) == []
    g = lambda p: jnp.where(p > 0.3, 1.0, 0.0) + p
    (loc, size), = theory.find_jumps(g, 0.0, 1.0, n=101)
    assert abs(loc - 0.3) < 1e-9 and abs(size - 1.0) < 1e-6


def test_firing_map_properties():
    rng = np.random.default_rng(1)
    W, th = rng.uniform(0.1, 1.5, (3, 2)), rng.uniform(0.3, 1.5, 2)
    props = theory.firing_map_properties(lambda p: srm.first_spike_times(p, W, th)[..., :1], np.zeros(3),
                                     np.ones(3), key=jax.random.PRNGKey(0), n=200)
    assert props["increasing"] and props["concave"] and props["continuous"] and props["piecewise_linear"]
    # an inhibitory input breaks monotonicity and concavity (still piecewise linear)
    Wi = np.array([[1.0], [-0.5]])
    props = theory.firing_map_properties(lambda p: srm.first_spike_times(p, Wi, 0.8), np.zeros(2), np.ones(2),
                                     key=jax.random.PRNGKey(1), n=200)
    assert props["piecewise_linear"] and not props["increasing"]
    props = theory.firing_map_properties(lambda p: theory.discontinuous_example()(p), np.zeros(1), np.ones(1),
                                     key=jax.random.PRNGKey(2), n=200)
    assert not props["continuous"] and props["piecewise_linear"]


# ---------------------------------------------------------------------------------------------
# linear regions
# ---------------------------------------------------------------------------------------------

def test_count_linear_regions_of_known_maps():
    ax = np.linspace(0.0013, 0.9971, 97)            # no grid point on a kink
    assert theory.count_linear_regions(lambda p: jnp.maximum(p[0] + p[1] - 1.0, 0.0), [ax, ax])[0] == 2
    assert theory.count_linear_regions(lambda p: jnp.abs(p[0] - 0.5) + jnp.abs(p[1] - 0.5), [ax, ax])[0] == 4
    assert theory.count_linear_regions(lambda p: jnp.abs(p[0] - 0.5), [ax])[0] == 2
    # two disjoint pieces with the same affine map count twice
    assert theory.count_linear_regions(lambda p: jnp.abs(jnp.abs(p[0] - 0.5) - 0.25), [ax])[0] == 4


@pytest.mark.parametrize("d", [1, 2])
def test_exponential_regions_on_grid(d):
    n = theory.exponential_regions_neuron(d)
    ax = np.linspace(0.0031, 0.9969, 101)
    assert theory.count_linear_regions(lambda p: n(p), [ax] * d)[0] == 2 ** d - 1


@pytest.mark.parametrize("d", [3, 4, 5])
def test_exponential_regions_all_active_sets(d):
    """Every non-empty active set S is the minimizer somewhere: 2^d - 1 distinct pieces."""
    net = theory.exponential_regions_neuron(d, threshold=0.5)
    pts = []
    for r in range(1, d + 1):
        for S in itertools.combinations(range(d), r):
            x = np.full(d, 0.97)
            x[list(S)] = 0.01 * (1 + np.arange(r)) / r
            pts.append(x)
    pts = np.array(pts)
    vals, grads, keys = theory.affine_signatures(lambda p: net(p), pts)
    assert len(np.unique(keys)) == 2 ** d - 1
    # and the gradient at each point is the subset formula's coefficient vector 1_S / |S|
    expect = (pts < vals[:, None]) / np.sum(pts < vals[:, None], 1, keepdims=True)
    np.testing.assert_allclose(grads, expect, atol=1e-12)


def test_exponential_regions_errors():
    with pytest.raises(ValueError, match="threshold"):
        theory.exponential_regions_neuron(2, threshold=1.5)
    with pytest.raises(ValueError, match="axes"):
        theory.count_linear_regions(lambda p: p[0], [np.zeros(2)] * 3)


# ---------------------------------------------------------------------------------------------
# approximation
# ---------------------------------------------------------------------------------------------

def test_approximate_one_dimension():
    f = lambda x: 0.5 + 0.4 * np.sin(6 * x[:, 0])
    net, info = theory.approximate(f, 1, 0.01)
    assert info["converged"] and info["error"] <= 0.01
    x = np.random.default_rng(0).uniform(0, 1, (2000, 1))
    got = np.asarray(net(jnp.asarray(x)))[:, 0]
    assert np.max(np.abs(got - f(x))) <= 0.011
    # the network computes its readout of its hidden spike times exactly (window construction)
    h = np.asarray(net.layers[0](net.encode(jnp.asarray(x))))[:, : info["hidden"]]
    c = info["readout"]
    np.testing.assert_allclose(got, c[0] + ((h - 1.0) / 0.25) @ c[1:], rtol=1e-9, atol=1e-9)
    # every spike comes within 3 of the first input: delta = 3 acts as delta = inf
    inf_net = theory.SRMNetwork(tuple(theory.SRMLayer(l.weights, l.threshold, l.delays, math.inf) for l in net.layers),
                            net.encode, net.decode)
    # (delta = inf takes the closed-form fast path, delta = 3 the event walk: equal up to rounding)
    np.testing.assert_allclose(np.asarray(inf_net(jnp.asarray(x))), got[:, None], rtol=1e-11, atol=1e-12)
    assert np.all(np.asarray(net.spike_times(net.encode(jnp.asarray(x)))) < 3.0)
    errors = [h_["error"] for h_ in info["history"]]
    assert errors == sorted(errors, reverse=True)


def test_approximate_two_dimensions():
    f = lambda x: 0.5 + 0.3 * np.sin(3 * x[:, 0]) * np.cos(2 * x[:, 1])
    net, info = theory.approximate(f, 2, 0.03)
    assert info["converged"]
    x = np.random.default_rng(1).uniform(0, 1, (3000, 2))
    assert np.max(np.abs(np.asarray(net(jnp.asarray(x)))[:, 0] - f(x))) <= 0.04


def test_approximate_errors():
    f = lambda x: x[:, 0]
    with pytest.raises(ValueError, match="eps"):
        theory.approximate(f, 1, 0.0)
    with pytest.raises(ValueError, match="delta"):
        theory.approximate(f, 1, 0.1, delta=2.0)
    with pytest.raises(ValueError, match="d"):
        theory.approximate(f, 0, 0.1)


# ---------------------------------------------------------------------------------------------
# generalization bounds
# ---------------------------------------------------------------------------------------------

def _dlif_behaviours(x, T, n_draws, rng):
    """Distinct spike patterns of a 1-input, 1-neuron DLIF layer over random parameters."""
    from jaxsnn import dlif
    params = jnp.asarray(rng.normal(0, 3, (n_draws, 2)))
    run = jax.jit(jax.vmap(lambda p: dlif.simulate(jnp.asarray(x), p[0].reshape(1, 1), beta=0.8,
                                                   threshold=1.0, bias=p[1:])[0]))
    spikes = np.asarray(run(params)).astype(np.int8).reshape(n_draws, -1)
    return len(np.unique(spikes, axis=0))


def test_dlif_growth_bounds_brute_force_count():
    rng = np.random.default_rng(0)
    m, T = 6, 3
    x = rng.uniform(0, 1, (T, m, 1))          # m samples of a constant-free input current
    count = _dlif_behaviours(x, T, 3000, rng)
    assert count > 1
    assert math.log2(count) <= float(theory.dlif_log2_growth([1, 1], T, m))


def test_dlif_growth_is_linear_in_T():
    g1, g8 = theory.dlif_log2_growth([784, 100, 10], 1, 1e5), theory.dlif_log2_growth([784, 100, 10], 8, 1e5)
    assert g8 == pytest.approx(8 * g1)
    # Sauer factor by hand for one neuron with 2 inputs: d_j + 1 = 4 parameters (+offset)
    assert float(theory.dlif_log2_growth([2, 1], 1, 100)) == pytest.approx(4 * math.log2(math.e * 100 / 4))
    assert float(theory.dlif_log2_growth([2, 1], 1, 3)) == 3.0      # capped at m bits


def test_vc_and_gap_bounds():
    assert theory.vc_dimension_bound(lambda m: np.minimum(m, 3.0)) == 3
    g = lambda m: theory.dlif_log2_growth([10, 5, 2], 4, m)
    vc = theory.vc_dimension_bound(g)
    assert float(g(vc)) >= vc and float(g(vc + 1)) < vc + 1
    gaps = theory.generalization_gap_bound(g, np.array([1e3, 1e4, 1e5, 1e6]))
    assert np.all(np.diff(gaps) < 0)
    m = 1e4
    assert float(gaps[1]) == pytest.approx(math.sqrt(8 * (float(g(2 * m)) * math.log(2) + math.log(80)) / m))
    s_small, s_big = (float(theory.srm_log2_growth(s, 1e4)) for s in ([784, 10, 10], [784, 100, 10]))
    assert s_big > s_small > 0
    with pytest.raises(ValueError, match="layer_sizes"):
        theory.srm_log2_growth([784], 10)
    with pytest.raises(ValueError, match="T"):
        theory.dlif_log2_growth([2, 1], 0, 10)
