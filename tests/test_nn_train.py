"""jaxsnn.nn modules and jaxsnn.train helpers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsnn import coding, data, losses, nn, srm, train


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
    layer = nn.SRMDense(5, train_threshold=True, train_delays=True, delay_init_max=0.2)
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
    assert jnp.mean(jnp.isfinite(model.apply(params, x))) > 0.9


def test_training_reduces_loss_on_yinyang_and_scan_equals_loop():
    (x, y), _ = data.load_yinyang(seed=0, n_train=500, n_test=10)
    x = coding.ttfs_encode(x).astype(jnp.float32)
    model = nn.SRMMLP((20, 3), layer_kwargs=dict(bias_time=0.0))
    params = model.init(jax.random.PRNGKey(0), x[:2])

    def loss_fn(p, batch, step):
        t = model.apply(p, batch[0])
        return losses.ttfs_cross_entropy(t, batch[1], tau=0.2, t_cap=8.0), {}

    tx = optax.adam(1e-2)
    step = train.make_train_step(loss_fn, tx)
    batches = data.epoch_batches(jax.random.PRNGKey(1), (x, y), 50)
    state0 = train.create_state(params, tx)
    epoch = jax.jit(lambda s, b: train.scan_epoch(step, s, b))
    s_scan, m = epoch(state0, batches)
    s_loop, jstep = state0, jax.jit(step)
    for i in range(batches[0].shape[0]):
        s_loop, _ = jstep(s_loop, (batches[0][i], batches[1][i]))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), s_scan.params, s_loop.params)
    first = float(loss_fn(params, (x, y), 0)[0])
    for e in range(5):
        s_scan, _ = epoch(s_scan, data.epoch_batches(jax.random.PRNGKey(e), (x, y), 50))
    assert float(loss_fn(s_scan.params, (x, y), 0)[0]) < 0.8 * first


def test_checkpoint_roundtrip_and_atomic_write(tmp_path):
    tree = dict(a=jnp.arange(3.0), b=(jnp.ones((2, 2)), 7))
    train.save_checkpoint(tmp_path / "c.pkl", tree)
    back = train.load_checkpoint(tmp_path / "c.pkl")
    np.testing.assert_array_equal(back["a"], tree["a"])
    assert back["b"][1] == 7
    assert train.load_checkpoint(tmp_path / "missing.pkl") is None
    assert [p.name for p in tmp_path.iterdir()] == ["c.pkl"]  # no temporary files left
    train.append_jsonl(tmp_path / "m.jsonl", dict(x=1))
    train.append_jsonl(tmp_path / "m.jsonl", dict(x=2))
    assert (tmp_path / "m.jsonl").read_text().count("\n") == 2


def test_spike_dropout_deletes_hidden_spikes_only_in_training():
    x = coding.ttfs_encode(jax.random.uniform(jax.random.PRNGKey(0), (32, 20)))
    kw = dict(bias_time=0.0)
    model = nn.SRMMLP((40, 5), layer_kwargs=kw, spike_dropout=0.5)
    params = model.init(jax.random.PRNGKey(0), x)
    np.testing.assert_array_equal(model.apply(params, x), nn.SRMMLP((40, 5), layer_kwargs=kw).apply(params, x))
    k1, k2 = jax.random.PRNGKey(3), jax.random.PRNGKey(4)
    a = model.apply(params, x, train=True, rngs={"dropout": k1})
    np.testing.assert_array_equal(a, model.apply(params, x, train=True, rngs={"dropout": k1}))
    assert not np.allclose(a, model.apply(params, x, train=True, rngs={"dropout": k2}))
    assert not np.allclose(a, model.apply(params, x))
    # rate 1: every hidden spike deleted, the output layer sees only its bias spike
    everything = nn.SRMMLP((40, 5), layer_kwargs=kw, spike_dropout=1.0)
    out = everything.apply(params, x, train=True, rngs={"dropout": k1})
    lone = nn.SRMDense(5, **kw).apply({"params": params["params"]["layer_1"]}, jnp.full((32, 40), jnp.inf))
    np.testing.assert_array_equal(out, lone)
