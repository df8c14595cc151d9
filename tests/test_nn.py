"""jaxsnn.nn modules."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsnn import coding, nn, srm


def test_srm_dense_calls_the_functional_core():
    x = jax.random.uniform(jax.random.PRNGKey(0), (4, 6))
    layer = nn.SRMDense(5, threshold=0.7, bias_time=0.0)
    params = layer.init(jax.random.PRNGKey(1), x)
    w = params["params"]["kernel"]
    assert w.shape == (7, 5)
    xb = jnp.concatenate([x, jnp.zeros((4, 1))], axis=1)
    np.testing.assert_allclose(layer.apply(params, x), srm.first_spike_times(xb, w, 0.7))


def test_srm_dense_trainable_threshold_and_delays_get_gradients():
    x = jax.random.uniform(jax.random.PRNGKey(0), (8, 6))
    layer = nn.SRMDense(5, learn_threshold=True, learn_delays=True, delay_init_max=0.2)
    params = layer.init(jax.random.PRNGKey(1), x)
    assert set(params["params"]) == {"kernel", "log_threshold", "delays"}

    def f(p):
        t = layer.apply(p, x)
        return jnp.sum(jnp.where(jnp.isfinite(t), t, 0.0))

    g = jax.grad(f)(params)["params"]
    for k in ("kernel", "log_threshold", "delays"):
        assert np.all(np.isfinite(g[k])) and np.any(g[k] != 0), k


def test_initialization_makes_neurons_fire():
    x = coding.ttfs_encode(jax.random.uniform(jax.random.PRNGKey(0), (64, 100)))
    model = nn.SRMMLP((50, 10), layer_kwargs=dict(bias_time=0.0))
    params = model.init(jax.random.PRNGKey(0), x)
    assert jnp.mean(jnp.isfinite(model.apply(params, x)[0])) > 0.9


def test_spike_dropout_deletes_hidden_spikes_only_in_training():
    x = coding.ttfs_encode(jax.random.uniform(jax.random.PRNGKey(0), (32, 20)))
    kw = dict(bias_time=0.0)
    model = nn.SRMMLP((40, 5), layer_kwargs=kw, spike_dropout=0.5)
    params = model.init(jax.random.PRNGKey(0), x)
    np.testing.assert_array_equal(model.apply(params, x)[0], nn.SRMMLP((40, 5), layer_kwargs=kw).apply(params, x)[0])
    k1, k2 = jax.random.PRNGKey(3), jax.random.PRNGKey(4)
    a = model.apply(params, x, train=True, rngs={"dropout": k1})[0]
    np.testing.assert_array_equal(a, model.apply(params, x, train=True, rngs={"dropout": k1})[0])
    assert not np.allclose(a, model.apply(params, x, train=True, rngs={"dropout": k2})[0])
    assert not np.allclose(a, model.apply(params, x)[0])
    # rate 1: every hidden spike deleted, the output layer sees only its bias spike
    everything = nn.SRMMLP((40, 5), layer_kwargs=kw, spike_dropout=1.0)
    out, _ = everything.apply(params, x, train=True, rngs={"dropout": k1})
    lone = nn.SRMDense(5, **kw).apply({"params": params["params"]["layer_1"]}, jnp.full((32, 40), jnp.inf))
    np.testing.assert_array_equal(out, lone)


def test_mlp_returns_hidden_spike_times_in_aux():
    x = coding.ttfs_encode(jax.random.uniform(jax.random.PRNGKey(0), (8, 6)))
    model = nn.SRMMLP((7, 5, 3), layer_kwargs=dict(bias_time=0.0))
    params = model.init(jax.random.PRNGKey(0), x)
    t, aux = model.apply(params, x)
    hidden = aux["hidden"]
    assert [h.shape for h in hidden] == [(8, 7), (8, 5)]
    np.testing.assert_array_equal(t, model.apply(params, x)[0])
    layer1 = nn.SRMDense(5, bias_time=0.0)
    np.testing.assert_array_equal(hidden[1], layer1.apply({"params": params["params"]["layer_1"]}, hidden[0]))


def test_learned_thresholds_share_one_parametrisation():
    # every module stores a learned threshold as log_threshold, initialised to log(threshold)
    t = jnp.array(np.random.default_rng(1).uniform(0, 0.1, (2, 6)))
    for layer, x in ((nn.SRMDense(4, threshold=0.7, learn_threshold=True), t),
                     (nn.LIFDense(4, threshold=0.7, learn_threshold=True), t[..., None]),
                     (nn.DLIFDense(4, threshold=0.7, learn_threshold=True), (t[None] < 0.05).astype(t.dtype))):
        p = layer.init(jax.random.PRNGKey(0), x)["params"]
        np.testing.assert_allclose(np.exp(np.asarray(p["log_threshold"])), np.full(4, 0.7), rtol=1e-6)
    layer = nn.LIFDense(4, threshold=0.2, learn_threshold=True, max_spikes=3, weight_low=2.0, weight_high=3.0)
    p = layer.init(jax.random.PRNGKey(0), t[..., None])
    g = jax.grad(lambda q: jnp.sum(jnp.where(jnp.isfinite(o := layer.apply(q, t[..., None])), o, 0.0)))(p)
    assert float(jnp.abs(g["params"]["log_threshold"]).sum()) > 0


def test_weight_init_follows_the_default_float_dtype():
    params = nn.SRMDense(3).init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
    assert params["params"]["kernel"].dtype == jnp.result_type(float)


def test_lif_modules_wrap_the_functional_core():
    from jaxsnn import lif

    x = jnp.array(np.random.default_rng(0).uniform(0, 0.1, (3, 20)))
    layer = nn.LIFDense(7, threshold=0.2, max_spikes=4, t_max=0.3, weight_low=0.0, weight_high=1.0)
    params = layer.init(jax.random.PRNGKey(0), x[..., None])
    w = params["params"]["kernel"]
    assert w.shape == (20, 7) and float(w.min()) >= 0.0 and float(w.max()) < 1.0
    out = layer.apply(params, x[..., None])
    np.testing.assert_array_equal(out, lif.spike_times(x[..., None], w, tau_syn=0.13, threshold=0.2,
                                                       max_spikes=4, t_max=0.3))
    mlp = nn.LIFMLP((16, 5), thresholds=(0.2, 0.5), max_spikes=(4, 2), layer_kwargs=dict(t_max=0.3))
    p = mlp.init(jax.random.PRNGKey(1), x[..., None])
    o, aux = mlp.apply(p, x[..., None])
    (h,) = aux["hidden"]
    assert o.shape == (3, 5, 2) and h.shape == (3, 16, 4)
    np.testing.assert_array_equal(o, lif.spike_times(h, p["params"]["layer_1"]["kernel"], tau_syn=0.13,
                                                     threshold=0.5, max_spikes=2, t_max=0.3))
    with pytest.raises(ValueError, match="one entry per layer"):
        nn.LIFMLP((16, 5), thresholds=(0.2,), max_spikes=(4, 2)).init(jax.random.PRNGKey(1), x[..., None])
    # an unbatched multi-spike input [n_in, k_in] is one sample, not a batch of one-spike inputs
    one = mlp.apply(p, x[0, :, None])[0]
    np.testing.assert_array_equal(one, o[0])
    with pytest.raises(ValueError, match="t_in"):
        mlp.apply(p, x[0])


def test_dlif_dense_wraps_the_functional_core():
    from jaxsnn import dlif

    x = (jax.random.uniform(jax.random.key(0), (6, 3, 8)) < 0.5).astype(jnp.float64)
    layer = nn.DLIFDense(5, beta=0.9, threshold=0.3, recurrent=True, learn_beta=True, learn_threshold=True)
    params = layer.init(jax.random.key(1), x)
    p = params["params"]
    assert p["kernel"].shape == (8, 5) and p["recurrent_kernel"].shape == (5, 5)
    assert np.all(np.abs(np.asarray(p["kernel"])) <= 1 / np.sqrt(8))
    s, v = layer.apply(params, x, return_membrane=True)
    assert "log_threshold" in p and "threshold" not in p
    s_ref, v_ref = dlif.simulate(x, p["kernel"], beta=p["beta"], threshold=jnp.exp(p["log_threshold"]), bias=p["bias"],
                                 recurrent_weights=p["recurrent_kernel"])
    np.testing.assert_array_equal(np.asarray(s), np.asarray(s_ref))
    np.testing.assert_array_equal(np.asarray(v), np.asarray(v_ref))
    g = jax.grad(lambda q: layer.apply(q, x).sum())(params)["params"]
    assert all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree_util.tree_leaves(g))
    assert float(jnp.abs(g["beta"]).sum()) > 0 and float(jnp.abs(g["log_threshold"]).sum()) > 0


def test_dlif_mlp_stacks_layers():
    x = (jax.random.uniform(jax.random.key(2), (4, 2, 12)) < 0.5).astype(jnp.float32)
    model = nn.DLIFMLP((7, 3), layer_kwargs=dict(beta=0.8, threshold=0.5, reset="zero", surrogate="arctan"))
    params = model.init(jax.random.key(3), x)
    s, aux = model.apply(params, x)
    v, hidden = aux["membrane"], aux["hidden"]
    assert s.shape == v.shape == (4, 2, 3) and len(hidden) == 1 and hidden[0].shape == (4, 2, 7)
    s2, _ = nn.DLIFDense(3, beta=0.8, threshold=0.5, reset="zero").apply(
        {"params": params["params"]["layer_1"]}, hidden[0], return_membrane=True)
    np.testing.assert_array_equal(np.asarray(s), np.asarray(s2))
    with pytest.raises(ValueError, match="inputs"):
        nn.DLIFDense(3).init(jax.random.key(0), x[0, 0])


def test_dlif_init_does_not_compact_silent_inputs(monkeypatch):
    from jaxsnn import dlif

    x = jnp.zeros((4, 2, 12)).at[..., :3].set(1.0)
    model = nn.DLIFMLP((5, 3), skip_silent_inputs=True)
    params = nn.DLIFMLP((5, 3)).init(jax.random.key(1), x)

    compact = dlif._compact

    def no_compaction(x, sizes):
        if sizes is not None:  # (called with None when nothing is skipped)
            raise AssertionError("init compacted the inputs")
        return compact(x, sizes)

    with monkeypatch.context() as m:
        m.setattr(dlif, "_compact", no_compaction)
        # init needs only shapes: the same parameters as without skipping, no compaction traced
        chex.assert_trees_all_equal(model.init(jax.random.key(1), x), params)
        with pytest.raises(AssertionError, match="compacted"):
            model.apply(params, x)  # apply does compact


def test_dlif_mlp_skip_silent_inputs_changes_nothing_but_speed():
    x = (jax.random.uniform(jax.random.key(4), (6, 3, 40)) < 0.3).astype(jnp.float64)
    x = x.at[..., 10:30].set(0.0)  # silent columns
    kw = dict(beta=0.8, threshold=0.5)
    dense, skip = nn.DLIFMLP((9, 3), layer_kwargs=kw), nn.DLIFMLP((9, 3), layer_kwargs=kw, skip_silent_inputs=True)
    params = dense.init(jax.random.key(5), x)
    loss = lambda m: lambda q: jnp.sum(m.apply(q, x)[1]["membrane"] ** 2)  # noqa: E731
    np.testing.assert_allclose(np.asarray(dense.apply(params, x)[1]["membrane"]),
                               np.asarray(skip.apply(params, x)[1]["membrane"]),
                               rtol=1e-13, atol=1e-13)
    g_dense, g_skip = jax.grad(loss(dense))(params), jax.grad(loss(skip))(params)
    for a, b in zip(jax.tree_util.tree_leaves(g_dense), jax.tree_util.tree_leaves(g_skip)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-11, atol=1e-13)
    assert np.all(np.asarray(g_skip["params"]["layer_0"]["kernel"])[10:30] == 0.0)


def test_clocked_modules_quantize_the_input_once_and_every_layer():
    from jaxsnn import discretize, lif

    rng = np.random.default_rng(2)
    x = jnp.array(rng.uniform(0, 0.1, (3, 20)))
    mlp = nn.LIFMLP((16, 5), thresholds=(0.2, 0.5), max_spikes=(4, 2), layer_kwargs=dict(t_max=0.3))
    p = mlp.init(jax.random.PRNGKey(1), x[..., None])
    kw = dict(tau_syn=0.13, t_max=0.3)

    @jax.jit
    def reference(p, dt):
        xq = discretize.quantize(x, dt)[..., None]
        h = lif.spike_times(xq, p["params"]["layer_0"]["kernel"], threshold=0.2, max_spikes=4, dt=dt, **kw)
        return lif.spike_times(h, p["params"]["layer_1"]["kernel"], threshold=0.5, max_spikes=2, dt=dt, **kw), h

    dts = jnp.array([0.0, 0.02])
    swept, swept_aux = jax.jit(jax.vmap(lambda d: mlp.apply(p, x[..., None], dt=d)))(dts)
    swept_h = swept_aux["hidden"]
    for k in range(2):
        o_ref, h_ref = reference(p, dts[k])
        np.testing.assert_array_equal(swept[k], o_ref)
        np.testing.assert_array_equal(swept_h[0][k], h_ref)
    # the attribute gives the same as the traced call argument
    fixed = nn.LIFMLP((16, 5), thresholds=(0.2, 0.5), max_spikes=(4, 2), layer_kwargs=dict(t_max=0.3), dt=0.02)
    np.testing.assert_array_equal(swept[1], fixed.apply(p, x[..., None])[0])

    srm_mlp = nn.SRMMLP((8, 3), layer_kwargs=dict(threshold=1.0))
    xs = jnp.array(rng.uniform(0, 1, (4, 6)))
    ps = srm_mlp.init(jax.random.PRNGKey(0), xs)
    out, aux = srm_mlp.apply(ps, xs, dt=0.1)
    (hs,) = aux["hidden"]
    h_ref = discretize.quantize(srm.first_spike_times(discretize.quantize(xs, 0.1), ps["params"]["layer_0"]["kernel"],
                                                      1.0), 0.1)
    np.testing.assert_array_equal(hs, h_ref)
    fin = np.isfinite(np.asarray(out))
    np.testing.assert_allclose(np.asarray(out)[fin] / 0.1, np.rint(np.asarray(out)[fin] / 0.1), atol=1e-9)
    def loss(p):
        o, aux = mlp.apply(p, x[..., None], dt=0.004)
        (h,) = aux["hidden"]
        return sum(jnp.sum(jnp.where(jnp.isfinite(a), a, 0.0)) for a in (o, h))

    g = jax.grad(loss)(p)
    assert all(np.all(np.isfinite(v)) for v in jax.tree.leaves(g))
    assert float(jnp.abs(g["params"]["layer_0"]["kernel"]).sum()) > 0
