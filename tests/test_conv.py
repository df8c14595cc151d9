"""jaxsnn.conv and jaxsnn.nn_conv: convolutions equal the dense layers on independently gathered patches."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from oracles import srm_layer_exact

from jaxsnn import conv, lif, nn_conv, srm


def np_pads(n, k, s, padding):
    """Leading and trailing padding of one spatial axis, written out (not jax.lax.padtype_to_pads)."""
    if padding == "VALID":
        return 0, 0
    if padding == "SAME":
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        return total // 2, total - total // 2
    raise AssertionError(padding)


def np_patches(t, k, s, padding, pad_time=np.inf):
    """Patches by an explicit loop over output positions: ``t [B, H, W, C, *rest]`` ->
    ``[B, H', W', KH KW C, *rest]``; positions outside the input read ``pad_time`` (per channel or scalar)."""
    t = np.asarray(t, float)
    B, H, W, C = t.shape[:4]
    rest = t.shape[4:]
    if isinstance(padding, str):
        (pt, pb), (pl, pr) = np_pads(H, k[0], s[0], padding), np_pads(W, k[1], s[1], padding)
    else:
        (pt, pb), (pl, pr) = padding
    Ho, Wo = (H + pt + pb - k[0]) // s[0] + 1, (W + pl + pr - k[1]) // s[1] + 1
    pad = np.broadcast_to(np.asarray(pad_time, float).reshape((-1,) + (1,) * len(rest)), (C,) + rest)
    out = np.empty((B, Ho, Wo, k[0] * k[1] * C) + rest)
    for b in range(B):
        for y in range(Ho):
            for x in range(Wo):
                col = 0
                for i in range(k[0]):
                    for j in range(k[1]):
                        r, c = y * s[0] + i - pt, x * s[1] + j - pl
                        inside = 0 <= r < H and 0 <= c < W
                        out[b, y, x, col:col + C] = t[b, r, c] if inside else pad
                        col += C
    return out


GEOMETRIES = [((3, 3), (1, 1), "VALID"), ((3, 3), (1, 1), "SAME"), ((2, 3), (2, 1), "SAME"),
              ((3, 2), (2, 2), "VALID"), ((2, 2), (1, 2), ((1, 0), (2, 1)))]


def random_map(rng, shape, p_silent=0.15):
    t = rng.uniform(0.0, 1.0, shape)
    t[rng.uniform(size=shape) < p_silent] = np.inf
    return t


@pytest.mark.parametrize("k,s,padding", GEOMETRIES)
def test_srm_conv_is_the_dense_layer_on_the_patches(k, s, padding):
    rng = np.random.default_rng(len(str((k, s, padding))))
    t = random_map(rng, (2, 5, 6, 2))
    kernel = rng.normal(0.4, 1.0, k + (2, 3))
    theta = rng.uniform(0.3, 1.0, 3)
    got = np.asarray(conv.srm_conv(t, kernel, theta, strides=s, padding=padding))
    p = np_patches(t, k, s, padding)
    want = np.asarray(srm.first_spike_times(p, kernel.reshape(-1, 3), theta))
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(got).any() and got.shape == p.shape[:3] + (3,)
    # and against the exact rational oracle for a few positions (independent of jaxsnn.srm)
    flat = p.reshape(-1, p.shape[-1])[:6]
    oracle = srm_layer_exact(flat, kernel.reshape(-1, 3), theta)
    np.testing.assert_allclose(got.reshape(-1, 3)[:6], oracle, rtol=1e-10)


def test_srm_conv_options_pad_time_bias_and_delays():
    rng = np.random.default_rng(3)
    t = random_map(rng, (2, 4, 4, 2))
    kernel, theta = rng.normal(0.3, 1.0, (3, 3, 2, 2)), np.array([0.6, 0.9])
    delays = rng.uniform(0.0, 0.3, kernel.shape)
    bias_t, bias_w = np.array([0.1, 0.4]), np.array([0.5, -0.2])
    got = conv.srm_conv(t, kernel, theta, padding="SAME", pad_time=np.array([0.0, 0.2]), bias_time=bias_t,
                        bias_weights=bias_w, delays=delays, delta=0.8)
    p = np_patches(t, (3, 3), (1, 1), "SAME", pad_time=[0.0, 0.2])
    p = np.concatenate([p, np.broadcast_to(bias_t[:, None, None, None], p.shape[:3] + (1,))], axis=-1)
    w = np.concatenate([kernel.reshape(-1, 2), bias_w[None]])
    d = np.concatenate([delays.reshape(-1, 2), np.zeros((1, 2))])
    want = srm_layer_exact(p.reshape(-1, p.shape[-1]), w, theta, d, "ramp", 0.8).reshape(got.shape)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_allclose(np.where(np.isinf(want), 0, got), np.where(np.isinf(want), 0, want), rtol=1e-10)


@pytest.mark.parametrize("max_spikes,k_in,geometry", [(1, 1, GEOMETRIES[2]), (3, 2, GEOMETRIES[4])])
def test_lif_conv_is_the_dense_layer_on_the_patches(max_spikes, k_in, geometry):
    k, s, padding = geometry
    rng = np.random.default_rng(10 * max_spikes + k[0])
    t = np.sort(random_map(rng, (2, 4, 5, 2, k_in)), axis=-1)
    kernel = rng.uniform(-0.3, 1.0, k + (2, 3))
    kw = dict(tau_syn=0.5, threshold=0.8, max_spikes=max_spikes, t_max=3.0)
    got = np.asarray(conv.lif_conv(t, kernel, strides=s, padding=padding, **kw))
    p = np_patches(t, k, s, padding)
    want = np.asarray(lif.spike_times(p, kernel.reshape(-1, 3), **kw))
    np.testing.assert_array_equal(got, want)
    assert got.shape == p.shape[:3] + (3, max_spikes) and np.isfinite(got).any()


def finite(x):
    return jnp.where(jnp.isfinite(x), x, 0.0)


def test_srm_conv_gradients_match_finite_differences():
    rng = np.random.default_rng(11)
    t = rng.uniform(0.0, 1.0, (1, 4, 4, 2))
    kernel, theta = rng.normal(0.4, 1.0, (2, 2, 2, 3)), rng.uniform(0.3, 0.8, 3)
    bias_w = np.array([0.3, 0.6, -0.1])
    f = jax.jit(lambda t, k, th, b: finite(conv.srm_conv(t, k, th, strides=2, padding="SAME", bias_time=0.2,
                                                 bias_weights=b)))
    assert np.isfinite(conv.srm_conv(t, kernel, theta, strides=2, padding="SAME")).sum() >= 6
    check_grads(f, (t, kernel, theta, bias_w), order=1, modes=("rev",), eps=1e-6, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("max_spikes", [1, 2])
def test_lif_conv_gradients_match_finite_differences(max_spikes):
    rng = np.random.default_rng(12 + max_spikes)
    t = np.sort(rng.uniform(0.0, 1.0, (1, 3, 3, 2, max_spikes)), axis=-1)
    kernel = rng.uniform(0.0, 1.0, (2, 2, 2, 2))
    f = jax.jit(lambda t, k: finite(conv.lif_conv(t, k, tau_syn=0.3, threshold=0.5, padding="SAME",
                                                  max_spikes=max_spikes, t_max=3.0)))
    assert np.isfinite(f(t, kernel)).sum() >= 4
    check_grads(f, (t, kernel), order=1, modes=("rev",), eps=1e-6, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("window,strides,padding", [((2, 2), None, "VALID"), ((3, 3), (2, 2), "SAME"),
                                                    ((2, 3), (1, 2), "SAME")])
def test_min_time_pool_matches_a_loop(window, strides, padding):
    rng = np.random.default_rng(4)
    t = random_map(rng, (2, 5, 6, 3), p_silent=0.4)
    got = np.asarray(conv.min_time_pool(t, window, strides, padding))
    s = window if strides is None else strides
    p = np_patches(t, window, s, padding)
    want = p.reshape(p.shape[:3] + (-1, 3)).min(axis=-2)
    np.testing.assert_array_equal(got, want)
    # max pooling of values (flax pads with -inf)
    np.testing.assert_array_equal(-got, nn.max_pool(jnp.asarray(-t), window, s, padding))


def test_min_time_pool_of_spike_trains_keeps_the_earliest_spikes():
    rng = np.random.default_rng(5)
    t = np.sort(random_map(rng, (1, 4, 4, 2, 3), p_silent=0.3), axis=-1)
    got = np.asarray(conv.min_time_pool(t, 2, padding="VALID", max_spikes=4))
    p = np_patches(t, (2, 2), (2, 2), "VALID")  # [1, 2, 2, 8, 3]
    merged = np.moveaxis(p.reshape(1, 2, 2, 4, 2, 3), 3, 4).reshape(1, 2, 2, 2, 12)
    np.testing.assert_array_equal(got, np.sort(merged, axis=-1)[..., :4])
    np.testing.assert_array_equal(conv.min_time_pool(t, 2, max_spikes=1)[..., 0], conv.min_time_pool(t[..., 0], 2))


def test_min_time_pool_gradient_goes_to_the_earliest_spike():
    t = jnp.array([[0.3, 0.1], [jnp.inf, 0.2]])[None, :, :, None]
    g = jax.grad(lambda t: conv.min_time_pool(t, 2).sum())(t)
    np.testing.assert_array_equal(g[0, :, :, 0], [[0.0, 1.0], [0.0, 0.0]])


def test_errors():
    t, k = jnp.zeros((4, 4, 2)), jnp.ones((3, 3, 2, 1))
    with pytest.raises(ValueError, match="kernel: expected"):
        conv.srm_conv(t, jnp.ones((3, 2, 1)), 1.0)
    with pytest.raises(ValueError, match="t_in: expected"):
        conv.srm_conv(jnp.zeros((4, 4, 3)), k, 1.0)
    with pytest.raises(ValueError, match="padding: expected"):
        conv.srm_conv(t, k, 1.0, padding="FULL")
    with pytest.raises(ValueError, match="strides: expected"):
        conv.srm_conv(t, k, 1.0, strides=0)
    with pytest.raises(ValueError, match="window: expected"):
        conv.srm_conv(t, jnp.ones((5, 5, 2, 1)), 1.0)
    with pytest.raises(ValueError, match="bias_weights: expected"):
        conv.srm_conv(t, k, 1.0, bias_time=0.0)
    with pytest.raises(ValueError, match="t_in: expected"):
        conv.lif_conv(t, k, tau_syn=1.0, threshold=1.0)  # no spike axis


# ----------------------------------------------------------------------------------------------
# Flax modules
# ----------------------------------------------------------------------------------------------


def test_srm_conv_module_runs_under_jit_and_grad():
    net = nn.Sequential([nn_conv.SRMConv(3, (3, 3), padding="SAME", bias_time=0.0, learn_threshold=True),
                         nn_conv.MinTimePool((2, 2)), nn_conv.SRMConv(2, (2, 2), strides=2)])
    x = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 1)))
    params = net.init(jax.random.key(0), x)
    p = params["params"]
    assert p["layers_0"]["kernel"].shape == (3, 3, 1, 3) and p["layers_0"]["bias_weights"].shape == (3,)
    assert p["layers_0"]["log_threshold"].shape == (3,) and "log_threshold" not in p["layers_2"]
    out, g = jax.jit(lambda p: (net.apply(p, x), jax.grad(lambda q: jnp.sum(finite(net.apply(q, x))))(p)))(params)
    assert out.shape == (2, 2, 2, 2) and np.isfinite(out).any()
    leaves = jax.tree_util.tree_leaves(g)
    assert all(np.all(np.isfinite(a)) for a in leaves) and any(np.any(a != 0) for a in leaves)
    # the module is the function with its parameters
    direct = conv.srm_conv(x, p["layers_0"]["kernel"], jnp.exp(p["layers_0"]["log_threshold"]), padding="SAME",
                           bias_time=0.0, bias_weights=p["layers_0"]["bias_weights"])
    np.testing.assert_array_equal(net.layers[0].apply({"params": p["layers_0"]}, x), direct)


def test_lif_conv_module_runs_under_jit_and_grad(max_spikes=2):
    net = nn.Sequential([nn_conv.LIFConv(3, (3, 3), padding="SAME", tau_syn=0.5, weight_low=0.0, max_spikes=max_spikes),
                         nn_conv.MinTimePool((2, 2), max_spikes=max_spikes),
                         nn_conv.LIFConv(2, (2, 2), tau_syn=0.5, threshold=0.5, weight_low=0.0, learn_threshold=True)])
    x = jnp.asarray(np.random.default_rng(1).uniform(0, 1, (2, 6, 6, 1, 1)))
    params = net.init(jax.random.key(1), x)
    out, g = jax.jit(lambda p: (net.apply(p, x), jax.grad(lambda q: jnp.sum(finite(net.apply(q, x))))(p)))(params)
    assert out.shape == (2, 2, 2, 2, 1) and np.isfinite(out).any()
    leaves = jax.tree_util.tree_leaves(g)
    assert all(np.all(np.isfinite(a)) for a in leaves) and any(np.any(a != 0) for a in leaves)
