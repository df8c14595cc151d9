"""jaxsnn.nir: NIR export/import round trips (in memory and through .nir files), an independent NIR
simulator standing in for a peer library, the error messages, and the spike-time/raster helpers."""

import sys
from collections import defaultdict

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsnn import discretize, nn
from jaxsnn import nir as jnir

nir = pytest.importorskip("nir")


# ----------------------------------------------------------------------------------------------
# A peer: NIR's documented node semantics, simulated with forward Euler on a clock of step dt.
# Written from the NIR documentation (primitives table and node docstrings), not from jaxsnn:
#   LI:      tau dv/dt = (v_leak - v) + R I
#   LIF:     LI, then z = [v > v_threshold], v -> v_reset where z
#   CubaLIF: tau_syn dI/dt = -I + w_in S, then LIF driven by I
#   I:       dv/dt = R I;  Threshold: z = [I > threshold];  Delay: y(t) = x(t - tau)
#   Affine / Linear: y = W x (+ b);  inputs arriving at a node over several edges are summed.
# A spike is a raster value 1 in its step; an edge closing a cycle delivers the previous step's value.
# ----------------------------------------------------------------------------------------------


def simulate_nir(graph, inputs, dt):
    """``inputs``: ``{Input node: raster [T, B, n]}`` -> ``{Output node: [T, B, n]}``."""
    nodes, pred, succ = graph.nodes, defaultdict(list), defaultdict(list)
    for a, b in graph.edges:
        pred[b].append(a)
        succ[a].append(b)
    post, seen = [], set()

    def dfs(n):  # reverse post-order from the inputs: every edge not closing a cycle points forward
        seen.add(n)
        for m in succ[n]:
            if m not in seen:
                dfs(m)
        post.append(n)

    for name in inputs:
        dfs(name)
    order = post[::-1]
    T = next(iter(inputs.values())).shape[0]
    state, prev, outs = {}, {}, defaultdict(list)
    for t in range(T):
        cur = {}
        for name in order:
            node = nodes[name]
            x = sum((cur[p] if p in cur else prev.get(p, 0.0)) for p in pred[name])
            kind = type(node).__name__
            if kind == "Input":
                y = inputs[name][t]
            elif kind == "Output":
                y = x
                outs[name].append(np.broadcast_to(y, y.shape))
            elif kind in ("Affine", "Linear"):
                y = x @ node.weight.T + (node.bias if kind == "Affine" else 0.0)
            elif kind in ("LI", "LIF"):
                v = state.get(name, 0.0)
                v = v + dt / node.tau * (node.v_leak - v + node.r * x)
                if kind == "LIF":
                    y = (v > node.v_threshold).astype(float)
                    v = np.where(y > 0, node.v_reset, v)
                else:
                    y = v
                state[name] = v
            elif kind == "CubaLIF":
                i_syn, v = state.get(name, (0.0, 0.0))
                i_syn = i_syn + dt / node.tau_syn * (-i_syn + node.w_in * x)
                v = v + dt / node.tau_mem * (node.v_leak - v + node.r * i_syn)
                y = (v > node.v_threshold).astype(float)
                state[name] = (i_syn, np.where(y > 0, node.v_reset, v))
            elif kind == "I":
                y = state[name] = state.get(name, 0.0) + dt * node.r * x
            elif kind == "Threshold":
                y = (x > node.threshold).astype(float)
            elif kind == "Delay":
                buf = state.setdefault(name, [])
                buf.append(x)
                d = int(round(float(np.max(node.delay)) / dt))
                y = buf[-1 - d] if len(buf) > d else 0.0 * x
            else:
                raise NotImplementedError(kind)
            cur[name] = y
        prev = cur
    return {k: np.stack(v) for k, v in outs.items()}


# ----------------------------------------------------------------------------------------------
# Round trips
# ----------------------------------------------------------------------------------------------

KEY = jax.random.key(0)


def _raster(shape, p=0.3, seed=1):
    return (jax.random.uniform(jax.random.key(seed), shape) < p).astype(jnp.float64)


def _times(shape, seed=2, t_max=2.0):
    return jax.random.uniform(jax.random.key(seed), shape, jnp.float64, 0.0, t_max)


def _perturb(params, name, f):
    return jax.tree_util.tree_map_with_path(
        lambda path, v: f(v) if getattr(path[-1], "key", None) == name else v, params)


CASES = {
    "dlif_mlp_subtract": (nn.DLIFMLP(features=(6, 3), layer_kwargs=dict(beta=0.83, threshold=0.7)),
                          lambda: _raster((12, 4, 5)), None),
    "dlif_dense_zero_recurrent_learned": (
        nn.DLIFDense(4, reset="zero", recurrent=True, learn_beta=True, learn_threshold=True, use_bias=False,
                     surrogate="arctan"), lambda: _raster((12, 4, 5)),
        lambda p: _perturb(_perturb(p, "beta", lambda v: v - 0.3 * jnp.arange(4) / 4), "log_threshold",
                           lambda v: v - 0.8 + 0.1 * jnp.arange(4))),
    "dlif_mlp_recurrent_subtract": (nn.DLIFMLP(features=(5, 2), layer_kwargs=dict(recurrent=True, beta=0.9)),
                                    lambda: _raster((12, 3, 4)), None),
    "lif_mlp": (nn.LIFMLP(features=(4, 3), thresholds=(0.3, 0.5), max_spikes=(2, 1),
                          layer_kwargs=dict(tau_syn=0.5, t_max=5.0, weight_low=0.0)),
                lambda: _times((3, 5, 1)), None),
    "lif_dense_ratio1_learned": (nn.LIFDense(3, tau_ratio=1, learn_threshold=True, threshold=0.4, weight_low=0.0),
                                 lambda: _times((3, 5, 1)),
                                 lambda p: _perturb(p, "log_threshold", lambda v: v + 0.1 * jnp.arange(3))),
    "srm_mlp_bias_cutoff": (nn.SRMMLP(features=(5, 3), layer_kwargs=dict(bias_time=0.1, delta=2.0,
                                                                         learn_threshold=True)),
                            lambda: _times((4, 6)), None),
    "srm_dense_step_delays": (nn.SRMDense(3, response="step", learn_delays=True, delay_init_max=0.5),
                              lambda: _times((4, 6)), None),
}


_COMPILED = {}


def _output(module, params, x):
    """The module's output (``out[0]`` for an MLP), compiled once per module configuration."""
    if repr(module) not in _COMPILED:  # Flax modules with dict attributes are not hashable
        def run(p, x):
            out = module.apply({"params": p}, x)
            return out[0] if isinstance(out, tuple) else out
        _COMPILED[repr(module)] = jax.jit(run)
    return _COMPILED[repr(module)](params, x)


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_gives_identical_params_and_outputs(case, tmp_path):
    module, make_x, change = CASES[case]
    x = make_x()
    params = module.init(KEY, x)["params"]
    if change is not None:  # trained-looking per-neuron values
        params = change(params)
    expected = _output(module, params, x)
    graph = jnir.to_nir(module, params, dt=0.25, time_unit="ms")
    assert float(graph.metadata["dt"]) == 0.25 and graph.metadata["time_unit"] == "ms"
    nir.write(tmp_path / "net.nir", graph)
    for g in (graph, nir.read(tmp_path / "net.nir")):
        imported = jnir.from_nir(g)
        assert type(imported.module) is type(module)
        assert jax.tree.structure(imported.params) == jax.tree.structure(params)
        for a, b in zip(jax.tree.leaves(imported.params), jax.tree.leaves(params)):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(_output(imported.module, imported.params, x), expected)


def test_module_config_round_trips():
    module = nn.DLIFMLP(features=(6, 3), layer_kwargs=dict(beta=0.83, threshold=0.7, surrogate="arctan"))
    params = module.init(KEY, _raster((4, 2, 5)))["params"]
    imported = jnir.from_nir(jnir.to_nir(module, params, dt=0.1))
    kw = imported.module.layer_kwargs
    assert imported.module.features == (6, 3)
    assert kw["beta"] == 0.83 and kw["threshold"] == 0.7 and kw["surrogate"] == "arctan"  # exact, not rounded
    assert kw["reset"] == "subtract" and not kw["learn_beta"]


# ----------------------------------------------------------------------------------------------
# The exported graphs run on the peer and agree with jaxsnn
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["dlif_mlp_subtract", "dlif_dense_zero_recurrent_learned",
                                  "dlif_mlp_recurrent_subtract"])
def test_dlif_export_runs_the_same_on_a_peer(case):
    module, make_x, change = CASES[case]
    x = make_x()
    params = module.init(KEY, x)["params"]
    if change is not None:
        params = change(params)
    dt = 0.5
    spikes = np.asarray(_output(module, params, x))
    peer = simulate_nir(jnir.to_nir(module, params, dt=dt), {"input": np.asarray(x)}, dt)["output"]
    assert spikes.sum() > 0 and (1 - spikes).sum() > 0  # a real comparison: some spikes, some silence
    np.testing.assert_array_equal(peer, spikes)


def test_foreign_dlif_graph_with_any_r_and_v_leak_imports_exactly():
    rng = np.random.default_rng(0)
    dt, n_in, n1, n2 = 0.5, 3, 4, 2
    graph = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([n_in])}),
        "w1": nir.Affine(weight=rng.normal(size=(n1, n_in)), bias=rng.normal(0.1, 0.1, n1)),
        "lif1": nir.LIF(tau=rng.uniform(1, 5, n1), r=rng.uniform(0.5, 3, n1), v_leak=np.full(n1, 0.2),
                        v_threshold=np.full(n1, 0.6), v_reset=np.zeros(n1)),
        "rec1": nir.Linear(weight=rng.normal(0, 0.5, (n1, n1))),
        "w2": nir.Linear(weight=rng.normal(size=(n2, n1))),
        "li2": nir.LI(tau=np.full(n2, 3.0), r=np.full(n2, 2.0), v_leak=np.zeros(n2)),
        "z2": nir.Threshold(threshold=np.full(n2, 0.5)),
        "out": nir.Output(output_type={"output": np.array([n2])}),
    }, edges=[("in", "w1"), ("w1", "lif1"), ("lif1", "rec1"), ("rec1", "lif1"), ("lif1", "w2"), ("w2", "li2"),
              ("li2", "z2"), ("z2", "out")])
    # the two layers reset differently: one DLIFMLP cannot hold both
    with pytest.raises(ValueError, match="reset"):
        jnir.from_nir(graph, dt=dt)
    with pytest.raises(ValueError, match="dt"):
        jnir.from_nir(graph)
    del graph.nodes["z2"], graph.nodes["li2"]
    graph.nodes["lif2"] = nir.LIF(tau=np.full(n2, 3.0), r=np.full(n2, 2.0), v_leak=np.zeros(n2),
                                  v_threshold=np.full(n2, 0.5), v_reset=np.zeros(n2))
    graph.edges = [e for e in graph.edges if "li2" not in e and "z2" not in e] + [("w2", "lif2"), ("lif2", "out")]
    module, params, _ = jnir.from_nir(graph, dt=dt)
    x = _raster((30, 5, n_in), p=0.5)
    spikes = np.asarray(_output(module, params, x))
    peer = simulate_nir(graph, {"in": np.asarray(x)}, dt)["out"]
    assert spikes.sum() > 0
    np.testing.assert_array_equal(peer, spikes)


def test_lif_export_approximates_the_exact_spike_times_on_a_fine_clock():
    module = nn.LIFDense(3, tau_syn=1.0, threshold=1.0)
    params = {"kernel": jnp.array([[1.5, 0.5, 2.0], [1.0, 2.0, 0.5], [0.5, 1.0, 1.0], [1.0, 0.2, 0.5]])}
    t_in = jnp.array([[0.1], [0.3], [0.6], [1.0]])
    exact = np.asarray(module.apply({"params": params}, t_in))[:, 0]
    assert np.all(np.isfinite(exact))
    dt = 1e-3
    graph = jnir.to_nir(module, params, dt=dt)
    assert graph.nodes["cubalif_0"].metadata["exact"]  # max_spikes = 1: the reset does not matter
    raster = np.asarray(jnir.times_to_raster(t_in[None, :, 0], dt=dt, n_steps=4000))
    peer = simulate_nir(graph, {"input": raster}, dt)["output"]
    t_peer = np.asarray(jnir.raster_to_times(peer, dt=dt))[0]
    np.testing.assert_allclose(t_peer, exact, atol=0.02)


def test_srm_export_crosses_where_jaxsnn_fires():
    module = nn.SRMDense(4, delta=1.5, bias_time=0.2, threshold=1.0)
    dt = 0.01
    t_in = jnp.array([[0.0, 0.3, 0.5, 1.2, 2.0], [0.4, 0.1, 1.0, 0.7, 0.0]])
    params = module.init(KEY, t_in)["params"]
    params = {"kernel": params["kernel"].at[:, 0].set(-0.3).at[0, 0].set(1.5)}  # one neuron mixes signs
    t_srm = np.asarray(module.apply({"params": params}, t_in))
    assert np.all(np.isfinite(t_srm))
    graph = jnir.to_nir(module, params, dt=dt)
    assert graph.nodes["spike_0"].metadata["first_spike_only"]
    T = 600
    inputs = {"input": np.asarray(jnir.times_to_raster(t_in, dt=dt, n_steps=T)),
              "bias_0": np.asarray(jnir.times_to_raster(jnp.full((2, 1), 0.2), dt=dt, n_steps=T))}
    z = simulate_nir(graph, inputs, dt)["output"]
    # the ramp at the end of step k is the potential at (k + 1) dt: the first crossing is the bin end
    t_peer = np.asarray(jnir.raster_to_times(z, dt=dt)) + dt
    np.testing.assert_allclose(t_peer, np.asarray(discretize.quantize(t_srm, dt)), atol=dt * 1.01)


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


def _chain(*named):
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}), **dict(named),
             "output": nir.Output(output_type={"output": np.array([2])})}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), type_check=False)


def test_unsupported_nodes_are_named():
    with pytest.raises(ValueError, match="'my_scale'.*Scale"):
        jnir.from_nir(_chain(("my_scale", nir.Scale(scale=np.ones(2)))), dt=1.0)
    with pytest.raises(ValueError, match="'my_if'.*IF"):
        jnir.from_nir(_chain(("w", nir.Linear(weight=np.eye(2))),
                             ("my_if", nir.IF(r=np.ones(2), v_threshold=np.ones(2)))), dt=1.0)
    with pytest.raises(ValueError, match="'input'.*Affine/Linear"):  # neurons without a weight node
        jnir.from_nir(_chain(("lif", nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2),
                                             v_threshold=np.ones(2)))), dt=1.0)
    with pytest.raises(ValueError, match="'lif'.*v_reset"):
        jnir.from_nir(_chain(("w", nir.Linear(weight=np.eye(2))),
                             ("lif", nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2),
                                             v_threshold=np.ones(2), v_reset=np.full(2, 0.5)))), dt=1.0)


def test_export_errors():
    module = nn.DLIFDense(3, learn_beta=True)
    params = module.init(KEY, _raster((2, 1, 2)))["params"]
    with pytest.raises(ValueError, match="dt"):
        jnir.to_nir(module, params)
    with pytest.raises(ValueError, match="beta = 1"):
        jnir.to_nir(module, {**params, "beta": jnp.ones(3)}, dt=1.0)
    with pytest.raises(ValueError, match="module"):
        jnir.to_nir(object(), params, dt=1.0)


def test_missing_nir_says_how_to_install(monkeypatch):
    module = nn.DLIFDense(3)
    params = module.init(KEY, _raster((2, 1, 2)))["params"]
    graph = jnir.to_nir(module, params, dt=1.0)
    monkeypatch.setitem(sys.modules, "nir", None)  # `import nir` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "jaxsnn-exact\[nir\]"'):
        jnir.to_nir(module, params, dt=1.0)
    with pytest.raises(ImportError, match=r'pip install "jaxsnn-exact\[nir\]"'):
        jnir.from_nir(graph)
    jnir.times_to_raster(jnp.zeros(2), dt=1.0, n_steps=2)  # the raster helpers need no nir


def test_importing_jaxsnn_nir_does_not_need_nir():
    import subprocess

    code = ("import sys; sys.modules['nir'] = None; import jaxsnn.nir; "
            "print(jaxsnn.nir.raster_to_times(jaxsnn.nir.times_to_raster([0.5], dt=1.0, n_steps=2), dt=1.0))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[0.]"


# ----------------------------------------------------------------------------------------------
# Spike times <-> rasters
# ----------------------------------------------------------------------------------------------


def test_raster_round_trip():
    dt, T = 0.1, 20
    t = np.array(jax.random.uniform(jax.random.key(3), (4, 7), jnp.float64, 0.0, 2.5))
    t[0, 0], t[1, 2], t[2, 3] = np.inf, -0.5, 1.0  # silent, before the start, on the grid
    raster = jnir.times_to_raster(t, dt=dt, n_steps=T)
    assert raster.shape == (T, 4, 7) and set(np.unique(raster)) <= {0.0, 1.0}
    k = np.asarray(discretize.bin_index(jnp.asarray(t), dt))
    expected = np.where((k >= 0) & (k < T), k * dt, np.inf)
    np.testing.assert_allclose(jnir.raster_to_times(raster, dt=dt), expected, rtol=1e-12)
    assert float(jnir.raster_to_times(raster, dt=dt)[2, 3]) == pytest.approx(1.0)
    # clocked jaxsnn spikes (bin ends, on the grid) come back unchanged
    q = np.asarray(discretize.quantize(jnp.asarray(np.where(t > 0, t, 0.05)), dt))
    back = np.asarray(jnir.raster_to_times(jnir.times_to_raster(q, dt=dt, n_steps=40), dt=dt))
    np.testing.assert_allclose(back, np.where(np.isfinite(q), q, np.inf), rtol=1e-12)


def test_multi_spike_raster_counts_and_round_trips():
    t = jnp.array([[[0.05, 0.07, 0.35, jnp.inf], [0.2, jnp.inf, jnp.inf, jnp.inf]]])  # [B, n, k], sorted
    raster = jnir.times_to_raster(t, dt=0.1, n_steps=5, multi_spike=True)
    np.testing.assert_array_equal(raster[:, 0, 0], [2, 0, 0, 1, 0])  # two spikes share step 0
    back = jnir.raster_to_times(raster, dt=0.1, max_spikes=4)
    np.testing.assert_allclose(back, [[[0.0, 0.0, 0.3, np.inf], [0.2, np.inf, np.inf, np.inf]]])
    np.testing.assert_allclose(jnir.raster_to_times(raster, dt=0.1), [[0.0, 0.2]])


# ----------------------------------------------------------------------------------------------
# A peer library: Spyx (JAX, Flax NNX), in the test extra; skipped where it is not installed.
# ----------------------------------------------------------------------------------------------


def test_dlif_through_spyx_and_back():
    """jaxsnn -> NIR -> Spyx: every neuron's first spike one step later (Spyx fires on the previous
    step's membrane); Spyx -> NIR -> jaxsnn reads Spyx's graph as NIR defines it (docs/nir.md)."""
    snir = pytest.importorskip("spyx.nir")

    x = _raster((20, 4, 5), p=0.4)
    module = nn.DLIFDense(6, reset="zero", beta=0.8, threshold=0.7, use_bias=False)
    params = jax.tree.map(lambda v: 2 * v, module.init(KEY, x)["params"])
    ours = np.asarray(module.apply({"params": params}, x))
    graph = jnir.to_nir(module, params, dt=0.5)
    spyx_model, theirs = snir.from_nir(graph, x.astype(jnp.float32), dt=0.5)
    theirs = np.asarray(theirs)

    def first(s):  # the step of each neuron's first spike, -1 if silent
        return np.where(s.any(0), s.argmax(0), -1)

    assert (first(ours) >= 0).any() and (first(ours) < 0).any()  # some neurons fire, some do not
    late = first(ours) + 1  # a first spike on the last step comes after the horizon in Spyx
    np.testing.assert_array_equal(first(theirs), np.where((first(ours) >= 0) & (late < len(x)), late, -1))
    # back: Spyx's own export of the model it built. Spyx writes LIF(tau = dt/(1-beta), r = beta); read
    # as NIR defines it (Euler: the input enters with gain r dt/tau), the weights come back scaled by
    # beta (1 - beta): jaxsnn reads what the graph says, not what Spyx runs
    exported = snir.to_nir(spyx_model, {"input": np.array([5])}, {"output": np.array([6])}, dt=0.5)
    assert np.allclose(exported.nodes["layer_1"].r, 0.8)
    back = jnir.from_nir(exported, dt=0.5)
    assert back.module.layer_kwargs["beta"] == pytest.approx(0.8) and back.module.layer_kwargs["reset"] == "zero"
    kernel = jax.tree.leaves(back.params)[0]
    np.testing.assert_allclose(kernel, params["kernel"] * 0.8 * 0.2, rtol=1e-6)
