"""jaxsnn.nnx: the NNX modules equal their linen twins (outputs and gradients), weights convert both ways,
``nnx.jit`` works, and ``nnx.Optimizer`` trains them."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxsnn.nnx as snnx
from jaxsnn import coding, losses, nn


@pytest.fixture(autouse=True)
def _float64():
    with jax.enable_x64(True):  # exact comparisons in float64
        yield


def _times(shape, seed, sort=False):
    t = np.random.default_rng(seed).uniform(0.0, 0.1, shape)
    return jnp.asarray(np.sort(t, axis=-1) if sort else t)


# name: (module class name, constructor arguments shared by linen and NNX, input, call arguments)
CASES = {
    "SRMDense": ("SRMDense", dict(features=3, threshold=0.7, bias_time=0.0, learn_threshold=True, learn_delays=True,
                                  delay_init_max=0.05), lambda: _times((4, 5), 0), {}),
    # the layers have a clock and estimator of their own; the MLP's clock (at the call) and estimator override them
    "SRMMLP": ("SRMMLP", dict(features=(6, 3), layer_kwargs=dict(bias_time=0.0, learn_threshold=True, dt=0.02,
                                                                 estimator="sine")), lambda: _times((4, 5), 1),
               dict(dt=0.03)),
    "LIFDense": ("LIFDense", dict(features=4, threshold=0.2, learn_threshold=True, max_spikes=2, t_max=0.5,
                                  weight_low=0.0), lambda: _times((3, 5, 1), 3), {}),
    "LIFMLP": ("LIFMLP", dict(features=(6, 3), thresholds=(0.2, 0.3), max_spikes=(3, 1),
                              layer_kwargs=dict(weight_low=0.0)), lambda: _times((3, 5, 2), 4, sort=True), {}),
    "DLIFDense": ("DLIFDense", dict(features=4, threshold=0.5, recurrent=True, learn_beta=True, learn_threshold=True,
                                    surrogate="arctan"),
                  lambda: jnp.asarray(np.random.default_rng(5).uniform(0.0, 0.6, (6, 2, 5))),
                  dict(return_membrane=True)),
    "DLIFMLP": ("DLIFMLP", dict(features=(6, 3), layer_kwargs=dict(beta=0.9, threshold=0.5, reset="zero"),
                                skip_silent_inputs=True),
                lambda: (jnp.asarray(np.random.default_rng(6).uniform(size=(6, 2, 5))) < 0.5).astype(jnp.float64), {}),
}


def _scalar(out):
    """A weighted sum of every finite output (spike times, spikes, membranes): one number to differentiate."""
    total = 0.0
    for a in jax.tree.leaves(out):
        c = jnp.cos(jnp.arange(a.size, dtype=a.dtype)).reshape(a.shape)
        total = total + jnp.sum(jnp.where(jnp.isfinite(a), a * c, 0.0))
    return total


def _models(case, seed=0, build_nnx=True):
    """The linen module, its NNX twin built with the same arguments (``seed``: its weights), an input and
    the call arguments."""
    name, kwargs, make_x, call_kw = CASES[case]
    x = make_x()
    n_in = x.shape[-2] if name.startswith("LIF") else x.shape[-1]
    nnx_model = getattr(snnx, name)(n_in, **kwargs, rngs=nnx.Rngs(seed)) if build_nnx else None
    return getattr(nn, name)(**kwargs), nnx_model, x, call_kw


def _assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.mark.parametrize("case", CASES)
def test_linen_weights_in_nnx_give_the_same_outputs_and_gradients(case):
    linen_model, _, x, call_kw = _models(case, build_nnx=False)
    params = linen_model.init(jax.random.key(1), x)
    model = snnx.from_linen(linen_model, params)
    loss = lambda out: (_scalar(out), out)
    static = {k: v for k, v in call_kw.items() if isinstance(v, bool)}
    traced = {k: v for k, v in call_kw.items() if k not in static}  # the clock step dt
    traces = []

    @nnx.jit  # one program for both (eager LIF calls compile again and again)
    def outputs_and_gradients(params, model, x, traced):
        traces.append(traced)
        kw, grad = {**static, **traced}, dict(argnums=(0, 1), has_aux=True)
        (_, out), (g_params, g_x) = jax.value_and_grad(lambda p, x: loss(linen_model.apply(p, x, **kw)), **grad)(
            params, x)
        (_, n_out), (n_params, n_x) = nnx.value_and_grad(lambda m, x: loss(m(x, **kw)), **grad)(model, x)
        return (out, g_params["params"], g_x), (n_out, n_params, n_x)

    for scale in (1.0, 0.5) if traced else (1.0,):  # a traced dt: one program for every clock step
        (out, g_params, g_x), (n_out, n_params, n_x) = outputs_and_gradients(
            params, model, x, {k: v * scale for k, v in traced.items()})
        _assert_trees_equal(n_out, out)
        _assert_trees_equal(nnx.to_pure_dict(n_params), g_params)
        _assert_trees_equal(n_x, g_x)
        assert float(jnp.abs(g_x).sum()) > 0  # the gradients compared are not all zero
        assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(g_params))
    assert len(traces) == 1


@pytest.mark.parametrize("case", CASES)
def test_nnx_parameters_have_the_linen_names_shapes_and_dtypes(case):
    linen_model, model, x, _ = _models(case, seed=2)
    layout = lambda tree: jax.tree.map(lambda a: (a.shape, a.dtype), tree)
    variables = snnx.to_linen_params(model)
    assert layout(variables) == layout(jax.eval_shape(linen_model.init, jax.random.key(0), x))
    # so either module's weights load into the other (the outputs then agree: the test above)
    _assert_trees_equal(snnx.to_linen_params(snnx.from_linen(linen_model, variables)), variables)


def test_initial_values_follow_the_linen_parametrisation():
    srm = snnx.SRMMLP(5, (4, 2), layer_kwargs=dict(threshold=0.7, learn_threshold=True), rngs=nnx.Rngs(0))
    np.testing.assert_allclose(np.exp(srm.layer_1.log_threshold[...]), np.full(2, 0.7), rtol=1e-12)
    lif_layer = snnx.LIFDense(5, 4, weight_low=2.0, weight_high=3.0, rngs=nnx.Rngs(0))
    assert 2.0 <= float(lif_layer.kernel[...].min()) and float(lif_layer.kernel[...].max()) < 3.0
    dlif_layer = snnx.DLIFDense(16, 4, beta=0.8, learn_beta=True, rngs=nnx.Rngs(0))
    assert float(jnp.abs(dlif_layer.kernel[...]).max()) <= 0.25 and np.all(dlif_layer.beta[...] == 0.8)
    assert dlif_layer.kernel[...].dtype == jnp.float64 and srm.layer_0.kernel.shape == (5, 4)


def test_from_linen_builds_or_fills_a_module_and_checks_the_parameters():
    kw = dict(features=(4, 3), layer_kwargs=dict(bias_time=0.0))
    params = snnx.to_linen_params(snnx.SRMMLP(5, **kw, rngs=nnx.Rngs(1)))
    # a class: in_features read off the first kernel (5 inputs and the bias spike's row)
    built = snnx.from_linen(snnx.SRMMLP, params["params"], **kw)
    assert isinstance(built, snnx.SRMMLP) and built.layer_0.kernel.shape == (6, 4)
    _assert_trees_equal(snnx.to_linen_params(built), params)
    # a linen module: its twin, built with its attributes
    twin = snnx.from_linen(nn.SRMMLP(**kw), params)
    assert isinstance(twin, snnx.SRMMLP) and twin.layer_0.bias_time == 0.0
    _assert_trees_equal(snnx.to_linen_params(twin), params)
    # an instance: filled in place
    other = snnx.SRMMLP(5, **kw, rngs=nnx.Rngs(9))
    assert snnx.from_linen(other, params) is other
    _assert_trees_equal(snnx.to_linen_params(other), params)
    with pytest.raises(ValueError, match="linen_params: expected the parameters of SRMMLP"):
        snnx.from_linen(snnx.SRMMLP(6, **kw, rngs=nnx.Rngs(0)), params)
    with pytest.raises(ValueError, match="kwargs"):
        snnx.from_linen(other, params, features=(4, 3))
    with pytest.raises(ValueError, match="target"):
        snnx.from_linen(flax.linen.Dense(3), params)
    with pytest.raises(ValueError, match="one entry per layer"):
        snnx.LIFMLP(5, (4, 3), thresholds=(0.2,), max_spikes=(1, 1), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="t_in"):
        snnx.LIFMLP(5, (4, 3), thresholds=(0.2, 0.2), max_spikes=(1, 1), rngs=nnx.Rngs(0))(jnp.zeros(5))


def test_spike_dropout_uses_the_kept_or_given_rngs():
    _, kwargs, make_x, _ = CASES["SRMMLP"]
    x = make_x()
    model = snnx.SRMMLP(x.shape[-1], **kwargs, spike_dropout=0.5, rngs=nnx.Rngs(0, dropout=1))
    linen_model = nn.SRMMLP(**kwargs)

    @nnx.jit
    def hidden(model, x, key):
        given = model(x, train=True, rngs=nnx.Rngs(dropout=key))[1]["hidden"][0]
        kept = model(x, train=True)[1]["hidden"][0]  # the stream kept at construction advances
        # no dropout outside training; no clock at the call: every layer on its own clock, as in linen
        return model(x), linen_model.apply(snnx.to_linen_params(model), x), given, kept

    out, linen_out, given, kept = hidden(model, x, jax.random.key(3))
    _, _, given_again, kept_again = hidden(model, x, jax.random.key(3))
    _assert_trees_equal(out, linen_out)
    full = out[1]["hidden"][0]
    _assert_trees_equal(given, given_again)
    assert not np.array_equal(kept, kept_again)
    assert np.all(np.isinf(given) | (given == full)) and np.isinf(given).sum() > np.isinf(full).sum()
    plain = snnx.SRMMLP(x.shape[-1], **kwargs, rngs=nnx.Rngs(0))
    plain.spike_dropout = 0.5  # built without dropout: no stream kept
    with pytest.raises(ValueError, match="rngs"):
        plain(x, train=True)


def test_nnx_optimizer_trains_with_nnx_jit():
    u = jax.random.uniform(jax.random.key(1), (32, 2))
    x, y = coding.ttfs_encode(u), (u[:, 0] > u[:, 1]).astype(jnp.int32)
    model = snnx.SRMDense(2, 2, bias_time=0.0, rngs=nnx.Rngs(0))
    before = snnx.to_linen_params(model)
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, x, y):
        loss, grads = nnx.value_and_grad(lambda m: losses.ttfs_cross_entropy(m(x), y, temperature=0.2))(model)
        optimizer.update(model, grads)  # in place
        return loss

    history = [float(step(model, optimizer, x, y)) for _ in range(8)]
    assert history[-1] < history[0] - 0.05 and all(np.diff(history) < 0)
    assert not np.allclose(snnx.to_linen_params(model)["params"]["kernel"], before["params"]["kernel"])
    # the trained weights run in the linen module as they are
    np.testing.assert_array_equal(nn.SRMDense(2, bias_time=0.0).apply(snnx.to_linen_params(model), x), model(x))


def test_train_fit_trains_an_nnx_model_through_split_and_merge():
    from jaxsnn import train

    u = jax.random.uniform(jax.random.key(2), (32, 2))
    x, y = coding.ttfs_encode(u), (u[:, 0] > u[:, 1]).astype(jnp.int32)
    graphdef, _ = nnx.split(snnx.SRMDense(2, 2, bias_time=0.0, rngs=nnx.Rngs(0)))

    def init(key, hp):
        return nnx.state(snnx.SRMDense(2, 2, bias_time=0.0, rngs=nnx.Rngs(key)))

    def loss(params, batch, key, hp):
        t = nnx.merge(graphdef, params)(batch[0])
        return losses.ttfs_cross_entropy(t, batch[1], temperature=hp["temperature"]), {}

    task = train.Task(init, loss, lambda hp: optax.adam(hp["lr"]))
    run = train.fit(task, (x, y), {"lr": 1e-2, "temperature": 0.2}, epochs=3, batch_size=16, progress=False)
    history = [r["train_loss"] for r in run.history]
    assert history[-1] < history[0]
    assert isinstance(nnx.merge(graphdef, run.state.params), snnx.SRMDense)
