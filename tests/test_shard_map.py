"""The spiking layers inside ``jax.shard_map`` (its default ``check_vma=True``) and data-parallel ``fit``.

Inside ``shard_map`` every array's type says along which mesh axes it varies; a loop whose carry
starts from constants but mixes with the batch is a type error unless the library marks the
carry (``jaxsnn._vma``). The typing does not depend on the number of devices, so a one-device
mesh in this process checks it; ``test_train.py`` runs the four-device data-parallel fit in a
separate process.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from jaxsnn import dlif, lif, losses, nn, srm, train
from jaxsnn._vma import vary_like, varying_axes

MESH = Mesh(np.asarray(jax.devices()[:1]), ("d",))
KEY = jax.random.PRNGKey(0)


def _in_times(shape, key=KEY):
    t = jax.random.uniform(key, shape, minval=0.0, maxval=0.1)
    return jnp.where(jax.random.uniform(jax.random.fold_in(key, 1), shape) < 0.2, jnp.inf, t)


LAYERS = {
    # name: (f(w, x), w shape, x, batch axis of x)
    # 160 input slots: partial sorts of several sizes (lax.switch); 5 neurons: the chunked event walk
    "lif multi-spike, narrow": (lambda w, x: lif.spike_times(x, w, tau_syn=0.13, threshold=0.2, max_spikes=4,
                                                             t_max=0.3),
                                (80, 5), jnp.sort(_in_times((6, 80, 2)), -1), 0),
    # 12 x 400 neurons: the per-event walk, firing on compacted blocks
    "lif multi-spike, wide": (lambda w, x: lif.spike_times(x, w, tau_syn=0.13, threshold=0.2, max_spikes=3,
                                                           t_max=0.3), (12, 400), _in_times((12, 12, 1)), 0),
    # 4400 input slots, 95 % empty: compacted before sorting (lax.switch over sizes)
    "lif sparse wide input": (lambda w, x: lif.spike_times(x, w, tau_syn=0.13, threshold=0.2, max_spikes=2,
                                                           t_max=0.3), (2200, 4), jnp.sort(jnp.where(
        jax.random.uniform(KEY, (4, 2200, 2)) < 0.95, jnp.inf, _in_times((4, 2200, 2))), -1), 0),
    "lif first spike, tau ratio 1": (lambda w, x: lif.spike_times(x, w, tau_syn=0.13, threshold=0.2, tau_ratio=1,
                                                                  t_max=0.5), (12, 5), _in_times((6, 12, 1)), 0),
    "lif clocked": (lambda w, x: lif.spike_times(x, w, tau_syn=0.13, threshold=0.2, max_spikes=3, t_max=0.3,
                                                 dt=0.01), (12, 5), _in_times((6, 12, 1)), 0),
    "srm": (lambda w, x: srm.first_spike_times(x, w, threshold=1.0), (12, 5), _in_times((6, 12)), 0),
    "dlif": (lambda w, x: dlif.simulate(x, w, beta=0.9, threshold=1.0)[0], (12, 5),
             (jax.random.uniform(KEY, (10, 6, 12)) < 0.3).astype(jnp.float64), 1),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layers_under_shard_map_equal_plain_calls(name):
    f, w_shape, x, batch_axis = LAYERS[name]
    w = jax.random.uniform(jax.random.fold_in(KEY, 2), w_shape, minval=-0.5, maxval=2.0)

    def loss(w, x):
        o = f(w, x)
        return jnp.sum(jnp.where(jnp.isfinite(o), o, 0.0))

    spec = P(*([None] * batch_axis + ["d"]))
    value_and_grads = jax.value_and_grad(loss, argnums=(0, 1))

    def per_device(w, x):  # the loss of the device's samples; the weight gradient is summed over devices
        value, grads = value_and_grads(w, x)
        return jax.lax.psum(value, "d"), grads

    sharded = jax.jit(jax.shard_map(per_device, mesh=MESH, in_specs=(P(), spec), out_specs=(P(), (P(), spec))))
    got = sharded(w, x)
    want = jax.jit(value_and_grads)(w, x)
    assert float(want[0]) != 0.0  # some spikes, so the gradients are not trivially zero
    assert float(jnp.max(jnp.abs(want[1][0]))) > 0.0
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_vary_like_marks_arrays_varying_only_inside_shard_map():
    x = jnp.ones(3)
    assert vary_like(x) is x and varying_axes(x) == frozenset()

    def inside(batch):
        zeros = jnp.zeros(3)
        assert varying_axes(batch) == {"d"} and varying_axes(zeros) == frozenset()
        assert varying_axes(vary_like(zeros, batch)) == {"d"}
        return batch

    jax.shard_map(inside, mesh=MESH, in_specs=P("d"), out_specs=P("d"))(jnp.ones((2, 3)))


def _lif_task():
    net = nn.LIFMLP((16, 3), thresholds=(0.2, 0.5), max_spikes=(3, 3),
                    layer_kwargs=dict(tau_syn=0.13, t_max=0.3, weight_low=-1.0, weight_high=2.0))

    def loss(params, batch, key, hp):
        x, y = batch
        out, _ = net.apply(params, x)
        return losses.spike_count_loss(out, y), {}

    def evaluate(params, batch, hp):
        x, y = batch
        counts = jnp.sum(jnp.isfinite(net.apply(params, x)[0]), -1)
        return dict(acc=jnp.mean(jnp.argmax(counts, -1) == y))

    return train.Task(lambda key, hp: net.init(key, jnp.zeros((1, 8, 1))), loss,
                      lambda hp: optax.adam(hp["lr"]), evaluate)


def test_data_parallel_fit_of_a_lif_network_equals_the_plain_fit():
    x = _in_times((40, 8, 1), jax.random.PRNGKey(3))
    y = jax.random.randint(jax.random.PRNGKey(4), (40,), 0, 3)
    task = _lif_task()
    kw = dict(epochs=2, batch_size=10, eval_data=(x[:10], y[:10]), progress=False)
    plain = train.fit(task, (x, y), {"lr": 0.01}, **kw)
    sharded = train.fit(task, (x, y), {"lr": 0.01}, mesh=train.make_mesh("d", jax.devices()[:1]), **kw)
    assert plain.history[0]["train_loss"] > 0
    for a, b in zip(jax.tree.leaves(sharded.state.params), jax.tree.leaves(plain.state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for ha, hb in zip(sharded.history, plain.history):
        np.testing.assert_allclose(ha["train_loss"], hb["train_loss"], rtol=1e-10)
        np.testing.assert_allclose(ha["eval_acc"], hb["eval_acc"], rtol=1e-6)  # eval_data: training samples
