"""jaxsnn.lif against an ODE integration (scipy, events), the Fast & Deep closed forms, and
finite differences in float64."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oracles import fast_and_deep_first_spike, lif_spikes_ode
from scipy.special import lambertw as scipy_lambertw

from jaxsnn import lif
from jaxsnn._internal import argsort
from jaxsnn.lif.events import sorted_events, source


@pytest.fixture(params=["chunks", "walk"])
def event_path(request):
    """A :class:`lif.Config` for each event path: narrow layers walk their events in chunks (here
    of 3 events forward and 2 backward, so that every case spans several chunks), wide ones one
    event per step."""
    limit = 0 if request.param == "walk" else 10**9
    return lif.Config(chunk_max_neurons=limit, chunk_max_width=limit, chunk_max_neurons_bwd=limit, chunk_events=3,
                      chunk_events_bwd=2)


def random_case(rng, n_in=6, k_in=2, n_out=4, batch=2, mean=0.5, std=1.0, p_silent=0.2):
    t = rng.uniform(0.0, 1.0, (batch, n_in, k_in))
    t[rng.random(t.shape) < p_silent] = np.inf
    t = np.sort(t, axis=-1)
    w = rng.normal(mean, std, (n_in, n_out))
    return t, w


def ode_layer(t, w, *, tau_syn, ratio, theta, max_spikes, t_max=math.inf):
    """[n_in, k_in] -> list over outputs of spike lists."""
    n_in, k_in = t.shape
    theta = np.broadcast_to(theta, (w.shape[1],))
    return [
        lif_spikes_ode(t.ravel(), np.repeat(w[:, j], k_in), tau_syn=tau_syn, tau_mem=ratio * tau_syn,
                       theta=float(theta[j]), max_spikes=max_spikes, t_max=t_max)
        for j in range(w.shape[1])
    ]


def assert_matches_ode(out, t, w, **kw):
    for b in range(t.shape[0]):
        ref = ode_layer(t[b], w, **kw)
        for j, r in enumerate(ref):
            got = out[b, j][np.isfinite(out[b, j])]
            assert len(got) == len(r), (b, j, got, r)
            np.testing.assert_allclose(got, r, rtol=0, atol=1e-9)


def test_worked_example():
    # inputs at 0, 0.01, 0.02 through weights 5, 5, 5; tau_syn 0.1, tau_mem 0.2, threshold 0.1
    t = jnp.array([0.0, 0.01, 0.02])[:, None]
    out = lif.spike_times(t, jnp.full((3, 1), 5.0), tau_syn=0.1, threshold=0.1, max_spikes=6)
    np.testing.assert_allclose(out[0, :4], [0.016041, 0.025065, 0.033280, 0.042249], atol=5e-7)
    ref = lif_spikes_ode([0.0, 0.01, 0.02], [5.0] * 3, tau_syn=0.1, tau_mem=0.2, theta=0.1, max_spikes=6)
    np.testing.assert_allclose(out[0], ref, atol=1e-10)
    # the same three spikes from one input neuron (k_in = 3)
    out3 = lif.spike_times(jnp.array([[0.0, 0.01, 0.02]]), jnp.full((1, 1), 5.0), tau_syn=0.1,
                           threshold=0.1, max_spikes=6)
    np.testing.assert_allclose(out3, out, rtol=0, atol=1e-14)


@pytest.mark.parametrize("ratio", [2, 1])
@pytest.mark.parametrize("max_spikes", [1, 6])
def test_matches_ode(ratio, max_spikes, event_path):
    spike_times = functools.partial(lif.spike_times, config=event_path)
    rng = np.random.default_rng(10 * ratio + max_spikes)
    t, w = random_case(rng)  # mixed signs: excitatory and inhibitory
    kw = dict(tau_syn=0.3, ratio=ratio, theta=np.array([0.4, 0.5, 0.3, 0.45]), max_spikes=max_spikes, t_max=2.0)
    out = np.asarray(spike_times(t, w, tau_syn=0.3, threshold=kw["theta"], tau_ratio=ratio,
                                     max_spikes=max_spikes, t_max=2.0))
    assert out.shape == (2, 4, max_spikes)
    assert_matches_ode(out, t, w, **kw)
    assert np.isfinite(out).sum() > 2 * max_spikes  # the case exercises spikes
    assert np.all(np.diff(np.where(np.isfinite(out), out, 1e9), axis=-1) >= 0)  # sorted, inf last


@pytest.mark.parametrize("ratio", [2, 1])
def test_many_spikes_between_events_and_tail(ratio, event_path):
    # strong input, long tail after the last event: several spikes per interval, up to t_max
    spike_times = functools.partial(lif.spike_times, config=event_path)
    t = np.array([[[0.0], [0.05]]])
    w = np.array([[3.0], [-0.5]])
    out = np.asarray(spike_times(t, w, tau_syn=0.2, threshold=0.05, tau_ratio=ratio, max_spikes=40, t_max=1.0))
    ref = ode_layer(t[0], w, tau_syn=0.2, ratio=ratio, theta=0.05, max_spikes=40, t_max=1.0)[0]
    assert len(ref) > 5 and sum(r < 0.05 for r in ref) >= 2
    got = out[0, 0][np.isfinite(out[0, 0])]
    np.testing.assert_allclose(got, ref, atol=1e-9)
    # a full buffer keeps the first spikes
    few = np.asarray(spike_times(t, w, tau_syn=0.2, threshold=0.05, tau_ratio=ratio, max_spikes=3, t_max=1.0))
    np.testing.assert_allclose(few[0, 0], ref[:3], atol=1e-9)


@pytest.mark.parametrize("ratio", [2, 1])
def test_single_spike_is_fast_and_deep(ratio):
    rng = np.random.default_rng(3 + ratio)
    t, w = random_case(rng, n_in=8, k_in=1, n_out=6, batch=3, mean=0.8)
    out = np.asarray(lif.spike_times(t, w, tau_syn=0.25, threshold=0.3, tau_ratio=ratio))[..., 0]
    ref = np.array([[fast_and_deep_first_spike(t[b, :, 0], w[:, j], tau_syn=0.25, tau_ratio=ratio, theta=0.3)
                     for j in range(6)] for b in range(3)])
    assert np.array_equal(np.isfinite(out), np.isfinite(ref)) and np.isfinite(ref).sum() >= 6
    np.testing.assert_allclose(out[np.isfinite(out)], ref[np.isfinite(ref)], rtol=0, atol=1e-12)


def test_t_max_and_late_inputs():
    t = np.array([[[0.1], [0.5]]])
    w = np.array([[2.0], [4.0]])
    full = np.asarray(lif.spike_times(t, w, tau_syn=0.1, threshold=0.05, max_spikes=20))
    cut = np.asarray(lif.spike_times(t, w, tau_syn=0.1, threshold=0.05, max_spikes=20, t_max=0.4))
    f = full[0, 0]
    np.testing.assert_allclose(cut[0, 0][np.isfinite(cut[0, 0])], f[f <= 0.4], atol=1e-12)
    # the input at 0.5 > t_max is ignored, and nothing happens without inputs
    silent = lif.spike_times(jnp.full((1, 2, 1), jnp.inf), jnp.ones((2, 3)), tau_syn=0.1, threshold=0.1, max_spikes=2)
    assert np.all(np.isinf(silent))


def test_chained_layers_match_ode(event_path):
    spike_times = functools.partial(lif.spike_times, config=event_path)
    rng = np.random.default_rng(7)
    t, w1 = random_case(rng, n_in=5, k_in=1, n_out=4, batch=1, mean=2.0, std=0.5)
    w2 = rng.normal(0.6, 0.8, (4, 3))
    h = spike_times(t, w1, tau_syn=0.2, threshold=0.1, max_spikes=4, t_max=1.5)
    o = np.asarray(spike_times(h, w2, tau_syn=0.2, threshold=0.3, max_spikes=3, t_max=1.5))
    assert h.shape == (1, 4, 4) and o.shape == (1, 3, 3) and np.isfinite(h).sum() >= 4
    assert_matches_ode(o, np.asarray(h), w2, tau_syn=0.2, ratio=2, theta=0.3, max_spikes=3, t_max=1.5)


# ---------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------


def central_fd(f, x, eps=1e-6):
    x = np.array(x, dtype=float)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        if not np.isfinite(x[idx]):
            continue
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (f(xp) - f(xm)) / (2 * eps)
    return g


@pytest.mark.parametrize("ratio", [2, 1])
@pytest.mark.parametrize("max_spikes", [1, 5])
def test_gradients_match_finite_differences(ratio, max_spikes, event_path):
    spike_times = functools.partial(lif.spike_times, config=event_path)
    rng = np.random.default_rng(100 + 10 * ratio + max_spikes)
    t, w = random_case(rng, n_in=5, k_in=2, n_out=3, mean=0.6)
    c = rng.normal(size=(2, 3, max_spikes))
    theta = np.array([0.4, 0.5, 0.3])

    @jax.jit
    def loss(t, w, tau, th):
        o = spike_times(t, w, tau_syn=tau, threshold=th, tau_ratio=ratio, max_spikes=max_spikes, t_max=2.5)
        return jnp.sum(jnp.where(jnp.isfinite(o), o * c, 0.0))

    n = np.isfinite(np.asarray(spike_times(t, w, tau_syn=0.3, threshold=theta, tau_ratio=ratio,
                                               max_spikes=max_spikes, t_max=2.5))).sum()
    assert n >= 3
    g = jax.grad(loss, argnums=(0, 1, 2, 3))(jnp.asarray(t), jnp.asarray(w), 0.3, jnp.asarray(theta))
    fd = (
        central_fd(lambda x: loss(x, w, 0.3, theta), t),
        central_fd(lambda x: loss(t, x, 0.3, theta), w),
        central_fd(lambda x: loss(t, w, x, theta), np.array(0.3)),
        central_fd(lambda x: loss(t, w, 0.3, x), theta),
    )
    for name, a, b in zip(("t_in", "weights", "tau_syn", "threshold"), g, fd):
        assert np.all(np.isfinite(a)), name
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)
    assert np.all(np.asarray(g[0])[~np.isfinite(t)] == 0)


@pytest.mark.parametrize("ratio", [2, 1])
def test_backward_walk_with_uneven_events_and_full_buffers(ratio, event_path):
    # Sample 0 runs out of events long before sample 1 (the walk goes on for sample 1 with no
    # event for sample 0). Neuron 0 fills its 2-spike buffer before the later events, so its
    # pointer reaches the empty slot after its last spike while events remain.
    spike_times = functools.partial(lif.spike_times, config=event_path)
    t = np.array([[[0.0], [0.05], [np.inf], [np.inf]], [[0.0], [0.1], [0.3], [0.6]]])
    w = np.array([[8.0, 5.0], [2.0, 1.0], [0.5, 0.3], [-0.5, 0.6]])
    kw = dict(tau_syn=0.2, threshold=0.3, tau_ratio=ratio, max_spikes=2, t_max=2.0)
    out = np.asarray(spike_times(t, w, **kw))
    assert_matches_ode(out, t, w, tau_syn=0.2, ratio=ratio, theta=0.3, max_spikes=2, t_max=2.0)
    assert np.all(out[1, 0] < 0.3)  # full buffer before sample 1's last two events
    assert np.any(np.isfinite(out[0, 1]) & (out[0, 1] > 0.05))  # a spike after sample 0's last event
    c = np.random.default_rng(7).normal(size=out.shape)

    @jax.jit
    def loss(t, w):
        o = spike_times(t, w, **kw)
        return jnp.sum(jnp.where(jnp.isfinite(o), o * c, 0.0))

    g_t, g_w = jax.grad(loss, argnums=(0, 1))(jnp.asarray(t), jnp.asarray(w))
    np.testing.assert_allclose(g_t, central_fd(lambda x: loss(x, w), t), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_w, central_fd(lambda x: loss(t, x), w), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ratio", [2, 1])
@pytest.mark.parametrize("k_in", [1, 4])
def test_chunked_event_paths_equal_the_event_walk(ratio, k_in):
    # a narrow layer with many events per sample (more than a chunk, ties for k_in = 1): the
    # chunked forward and backward give the walk's spikes and gradients, for chunks of several
    # sizes (a crossing then falls at any position of a chunk, or right at its end)
    rng = np.random.default_rng(40 + 10 * ratio + k_in)
    t, w = random_case(rng, n_in=60 // k_in, k_in=k_in, n_out=5, batch=3, mean=0.5, std=0.6, p_silent=0.1)
    t = np.sort(np.round(t, 2), axis=-1)  # ties
    kw = dict(tau_syn=0.1, threshold=0.3, tau_ratio=ratio, max_spikes=6, t_max=1.2)
    c = rng.normal(size=(3, 5, 6))

    def run(limit, fwd, bwd):
        cfg = lif.Config(chunk_max_neurons=limit, chunk_max_width=limit, chunk_max_neurons_bwd=limit,
                         chunk_events=fwd, chunk_events_bwd=bwd)
        loss = lambda t, w: jnp.sum(jnp.where(jnp.isfinite(o := lif.spike_times(t, w, **kw, config=cfg)), o * c, 0.0))  # noqa: E731
        out = jax.jit(lambda t, w: lif.spike_times(t, w, **kw, config=cfg))(t, w)
        return np.asarray(out), [np.asarray(g) for g in jax.jit(jax.grad(loss, argnums=(0, 1)))(t, w)]

    ref, ref_g = run(0, 16, 64)
    assert np.isfinite(ref).sum() >= 20 and np.isfinite(ref).sum(-1).max() >= 3
    for fwd, bwd in ((1, 1), (4, 3), (7, 64), (16, 5)):
        out, g = run(10**9, fwd, bwd)
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)
        for a, b in zip(g, ref_g):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert_matches_ode(out, t, w, tau_syn=0.1, ratio=ratio, theta=0.3, max_spikes=6, t_max=1.2)


@pytest.mark.parametrize("max_spikes", [1, 4])
@pytest.mark.parametrize("dt", [None, 0.01])
def test_weight_gradient_of_a_data_fed_layer(max_spikes, dt):
    # only the weights differentiated (data input, fixed tau_syn): the backward pass skips the
    # input-time gradients; the weight gradient is the full one's and matches finite differences
    rng = np.random.default_rng(60 + max_spikes)
    t, w = random_case(rng, n_in=5, k_in=1, n_out=3, mean=0.8)
    if dt is not None:
        t = np.ceil(t / dt) * dt
    c = rng.normal(size=(2, 3, max_spikes))

    @jax.jit
    def loss(t, w, tau):
        o = lif.spike_times(t, w, tau_syn=tau, threshold=0.3, max_spikes=max_spikes, t_max=2.0, dt=dt)
        return jnp.sum(jnp.where(jnp.isfinite(o), o * c, 0.0))

    g_w = jax.grad(loss, argnums=1)(t, w, 0.3)
    g_all = jax.grad(loss, argnums=(0, 1, 2))(t, w, 0.3)
    assert np.any(np.asarray(g_all[0]) != 0)
    np.testing.assert_allclose(g_w, g_all[1], rtol=1e-12, atol=1e-14)
    if dt is None:
        np.testing.assert_allclose(g_w, central_fd(lambda x: loss(t, x, 0.3), w), rtol=1e-5, atol=1e-6)


def test_scalar_threshold_gradient():
    rng = np.random.default_rng(5)
    t, w = random_case(rng, n_in=4, k_in=1, n_out=3, mean=0.8)

    @jax.jit
    def loss(th):
        o = lif.spike_times(t, w, tau_syn=0.3, threshold=th, max_spikes=3)
        return jnp.sum(jnp.where(jnp.isfinite(o), o, 0.0))

    np.testing.assert_allclose(jax.grad(loss)(0.4), central_fd(loss, np.array(0.4)),
                               rtol=1e-5)


@pytest.mark.parametrize("ratio", [2, 1])
def test_gradients_finite_at_tangent_and_silent(ratio):
    tau = 0.1
    tau_m = ratio * tau
    # one input at t = 0: the membrane peak equals the threshold exactly (tangent crossing)
    if ratio == 2:
        w_tan = 4.0 * 0.1 / tau_m  # u = tau_m w (x - x^2), peak tau_m w / 4
    else:
        w_tan = 0.1 * math.e / tau  # u = w s e^{-s/tau}, peak w tau / e
    w = jnp.array([[w_tan * (1 + 1e-12), 0.01, -1.0]])
    t = jnp.zeros((1, 1, 1))

    def loss(t, w):
        o = lif.spike_times(t, w, tau_syn=tau, threshold=0.1, tau_ratio=ratio, max_spikes=2)
        return jnp.sum(jnp.where(jnp.isfinite(o), o, 0.0))

    gt, gw = jax.grad(loss, argnums=(0, 1))(t, w)
    assert np.all(np.isfinite(gt)) and np.all(np.isfinite(gw))
    assert gw[0, 1] == 0 and gw[0, 2] == 0  # silent neurons
    # float32 too
    g32 = jax.grad(loss, argnums=1)(t.astype(jnp.float32), w.astype(jnp.float32))
    assert np.all(np.isfinite(g32))


# ---------------------------------------------------------------------------------------------
# Transformations, properties, errors
# ---------------------------------------------------------------------------------------------


def test_jit_vmap_over_hyperparameters():
    rng = np.random.default_rng(11)
    t, w = random_case(rng, batch=3)
    f = lambda tau, th, tm: lif.spike_times(t, w, tau_syn=tau, threshold=th, max_spikes=4, t_max=tm)
    taus, ths, tms = jnp.array([0.2, 0.3]), jnp.array([0.3, 0.5]), jnp.array([1.0, 2.0])
    batched = jax.jit(jax.vmap(f))(taus, ths, tms)
    for i in range(2):
        np.testing.assert_allclose(batched[i], f(float(taus[i]), float(ths[i]), float(tms[i])), rtol=1e-12)
    # the batch axis of inputs is independent: each sample alone gives the same answer
    full = lif.spike_times(t, w, tau_syn=0.3, threshold=0.4, max_spikes=4)
    for b in range(3):
        np.testing.assert_array_equal(full[b], lif.spike_times(t[b], w, tau_syn=0.3, threshold=0.4, max_spikes=4))


def test_permutation_and_float32():
    rng = np.random.default_rng(12)
    t, w = random_case(rng, n_in=7, k_in=1, n_out=5, batch=2)
    perm = rng.permutation(7)
    a = lif.spike_times(t, w, tau_syn=0.3, threshold=0.4, max_spikes=3)
    b = lif.spike_times(t[:, perm], w[perm], tau_syn=0.3, threshold=0.4, max_spikes=3)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    c = lif.spike_times(t.astype(np.float32), w.astype(np.float32), tau_syn=0.3, threshold=0.4, max_spikes=3)
    assert c.dtype == jnp.float32
    assert np.array_equal(np.isfinite(a), np.isfinite(c))
    np.testing.assert_allclose(c[np.isfinite(c)], a[np.isfinite(a)], atol=1e-4)


def test_bad_input_raises():
    t, w = jnp.zeros((2, 3, 1)), jnp.ones((3, 4))
    with pytest.raises(ValueError, match="tau_ratio"):
        lif.spike_times(t, w, tau_syn=0.1, threshold=1.0, tau_ratio=3)
    with pytest.raises(ValueError, match="t_in"):
        lif.spike_times(jnp.zeros((2, 4, 1)), w, tau_syn=0.1, threshold=1.0)
    with pytest.raises(ValueError, match="t_in"):
        lif.spike_times(jnp.zeros((3,)), w, tau_syn=0.1, threshold=1.0)
    with pytest.raises(ValueError, match="weights"):
        lif.spike_times(t, jnp.ones(3), tau_syn=0.1, threshold=1.0)
    with pytest.raises(ValueError, match="tau_syn"):
        lif.spike_times(t, w, tau_syn=0.0, threshold=1.0)
    with pytest.raises(ValueError, match="tau_syn"):
        lif.spike_times(t, w, tau_syn=-1.0, threshold=1.0)
    with pytest.raises(ValueError, match="threshold"):
        lif.spike_times(t, w, tau_syn=0.1, threshold=jnp.ones(3))
    with pytest.raises(ValueError, match="threshold"):
        lif.spike_times(t, w, tau_syn=0.1, threshold=-1.0)
    with pytest.raises(ValueError, match="max_spikes"):
        lif.spike_times(t, w, tau_syn=0.1, threshold=1.0, max_spikes=0)
    with pytest.raises(ValueError, match="NaN"):
        lif.spike_times(jnp.full((2, 3, 1), jnp.nan), w, tau_syn=0.1, threshold=1.0)
    with pytest.raises(ValueError, match=r"t_in: .*-inf"):
        lif.spike_times(t.at[0, 1, 0].set(-jnp.inf), w, tau_syn=0.1, threshold=1.0)
    with pytest.raises(ValueError, match="weights: expected finite"):
        lif.spike_times(t, w.at[0, 0].set(jnp.nan), tau_syn=0.1, threshold=1.0)
    with pytest.raises(ValueError, match="config"):
        lif.spike_times(t, w, tau_syn=0.1, threshold=1.0, config={"chunk_events": 3})


# ---------------------------------------------------------------------------------------------
# Lambert W
# ---------------------------------------------------------------------------------------------


def test_lambertw_matches_scipy():
    x = np.concatenate([np.linspace(-0.36, 0.0, 50), np.linspace(0.0, 5.0, 50), np.logspace(0, 300, 40)])
    np.testing.assert_allclose(lif.lambertw(x), scipy_lambertw(x, 0).real, rtol=1e-13, atol=1e-15)
    # near the branch point W is ill-conditioned (dW/dx = e^{-W} / (1 + W)): compare within
    # what the rounding of x allows, and check the defining equation
    x = -np.exp(-1.0) + np.logspace(-14, -2, 40)
    w, ref = np.asarray(lif.lambertw(x)), scipy_lambertw(x, 0).real
    assert np.all(np.abs(w - ref) <= 1e-15 / np.abs(1 + ref) + 1e-14)
    np.testing.assert_allclose(w * np.exp(w), x, rtol=1e-14)
    assert float(lif.lambertw(-np.exp(-1.0))) == pytest.approx(-1.0, abs=1e-7)
    assert np.isnan(lif.lambertw(-0.5)) and lif.lambertw(np.inf) == np.inf


def test_lambertw_derivative():
    for x in (-0.3, -0.1, 0.5, 3.0, 40.0):
        fd = (scipy_lambertw(x + 1e-7).real - scipy_lambertw(x - 1e-7).real) / 2e-7
        assert float(jax.grad(lif.lambertw)(x)) == pytest.approx(fd, rel=1e-6)


def test_wide_sparse_inputs_are_compacted_exactly():
    # 300 inputs x 4 slots = 1200 > 1024 slots, few spikes: the sort runs on a compacted copy
    rng = np.random.default_rng(21)
    t = np.full((2, 300, 4), np.inf)
    active = rng.choice(300, 40, replace=False)
    t[:, active, :2] = np.sort(rng.uniform(0, 0.5, (2, 40, 2)), axis=-1)
    w = rng.normal(0.3, 0.5, (300, 3))
    f = lambda t, w: lif.spike_times(t, w, tau_syn=0.1, threshold=0.2, max_spikes=4)
    wide = f(t, w)
    # the same spikes as a narrow input: 80 single-spike inputs (80 < 1024: sorted directly)
    narrow_t = t[:, active, :2].reshape(2, 80, 1)
    narrow_w = np.repeat(w[active], 2, axis=0)
    np.testing.assert_allclose(wide, f(narrow_t, narrow_w), rtol=0, atol=1e-13)
    assert np.isfinite(wide).sum() >= 4
    loss = lambda t, w: jnp.sum(jnp.where(jnp.isfinite(o := f(t, w)), o, 0.0))
    gt, gw = jax.grad(loss, argnums=(0, 1))(jnp.asarray(t), jnp.asarray(w))
    nt, nw = jax.grad(loss, argnums=(0, 1))(jnp.asarray(narrow_t), jnp.asarray(narrow_w))
    np.testing.assert_allclose(gt[:, active, :2].reshape(2, 80, 1), nt, atol=1e-12)
    np.testing.assert_allclose(gw[active], np.asarray(nw).reshape(40, 2, 3).sum(1), atol=1e-12)
    assert np.all(np.asarray(gt)[~np.isfinite(t)] == 0)


def test_unsorted_slots_are_rejected():
    with pytest.raises(ValueError, match="sorted"):
        lif.spike_times(jnp.array([[[0.5, 0.1]]]), jnp.ones((1, 1)), tau_syn=0.1, threshold=1.0)
    with pytest.raises(ValueError, match="sorted"):
        lif.spike_times(jnp.array([[[jnp.inf, 0.1]]]), jnp.ones((1, 1)), tau_syn=0.1, threshold=1.0)


@pytest.mark.parametrize("ratio", [2, 1])
@pytest.mark.parametrize("t_max", [0.35, np.inf])
@pytest.mark.parametrize("k_in", [3, 1])
def test_first_spike_path_matches_the_general_event_loop(ratio, t_max, k_in):
    # max_spikes = 1 runs its own loop (no inner spike loop, crossings solved after the loop);
    # the first column of the general multi-spike loop is the same spike with the same gradient
    # (a later spike does not move an earlier one). k_in = 1: times on a grid, so events tie
    # (both loops take a sample's events at one time as one step)
    rng = np.random.default_rng(40 + ratio)
    B, n_in, n = 6, 30 * (4 - k_in), 12
    t_in = np.sort(rng.uniform(0.0, 0.3, (B, n_in, k_in)), axis=-1)
    if k_in == 1:
        t_in = np.round(t_in / 0.02) * 0.02
        assert len(np.unique(t_in[0])) < n_in // 3
    t_in = np.where(rng.random((B, n_in, k_in)) < 0.3, np.inf, t_in)
    t_in = np.sort(t_in, axis=-1)
    w = rng.normal(0.15 if k_in == 3 else 0.06, 0.3, (n_in, n))
    theta = rng.uniform(0.05, 0.15, n)
    a = rng.normal(size=(B, n))
    kw = dict(tau_ratio=ratio, t_max=t_max)

    def loss(K):
        def f(t_in, w, theta, tau):
            t = lif.spike_times(t_in, w, tau_syn=tau, threshold=theta, max_spikes=K, **kw)[..., 0]
            return jnp.sum(jnp.where(jnp.isfinite(t), a * t, 0.0)), t
        return jax.jit(jax.grad(f, argnums=(0, 1, 2, 3), has_aux=True))

    g1, t1 = loss(1)(t_in, w, theta, 0.1)
    g2, t2 = loss(2)(t_in, w, theta, 0.1)
    assert 0.2 < np.mean(np.isfinite(t1)) < 1.0  # some neurons fire, some stay silent
    np.testing.assert_array_equal(np.isfinite(t1), np.isfinite(t2))
    np.testing.assert_allclose(np.asarray(t1), np.asarray(t2), rtol=1e-12)
    for x, y, name in zip(g1, g2, ("t_in", "weights", "threshold", "tau_syn")):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-9, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("ratio", [2, 1])
@pytest.mark.parametrize("t_max", [0.08, np.inf])
@pytest.mark.parametrize("k_in", [1, 3])
def test_block_screen_matches_the_event_walk(ratio, t_max, k_in):
    # the first spikes of wide layers come from the block screen (jaxsnn.lif.screen): start states
    # of blocks of events by matrix products, a bound on each block, walks only where the bound
    # reaches the threshold. Forced here on a small layer (blocks of 16 events, 64 blocks walked
    # at a time, so several rounds), it gives the event walk's spikes and gradients, and the ODE's
    # spikes. Weights of mean ~0: neurons approach the threshold and turn back, some never fire.
    # A screen without the bound on a block's own inputs misses crossings and fails here.
    rng = np.random.default_rng(90 + 10 * ratio + k_in)
    B, n_in, n = 5, 180 // k_in, 24
    t_in = rng.uniform(0.0, 0.1, (B, n_in, k_in))
    if k_in == 1:
        t_in = np.round(t_in, 3)  # ties, also across block boundaries
    t_in = np.sort(np.where(rng.random(t_in.shape) < 0.2, np.inf, t_in), axis=-1)
    w = rng.uniform(-1.0, 1.0, (n_in, n)) * (2.3 if ratio == 2 else 4.0) * np.sqrt(3 / (k_in + 2))
    theta = rng.uniform(0.5, 0.9, n)
    a = rng.normal(size=(B, n))
    kw = dict(tau_ratio=ratio, t_max=t_max, max_spikes=1)

    def run(cfg):
        def f(t_in, w, theta, tau):
            t = lif.spike_times(t_in, w, tau_syn=tau, threshold=theta, config=cfg, **kw)[..., 0]
            return jnp.sum(jnp.where(jnp.isfinite(t), a * t, 0.0)), t
        return jax.jit(jax.grad(f, argnums=(0, 1, 2, 3), has_aux=True))(t_in, w, theta, 0.13)

    g1, t1 = run(lif.Config(screen_block=16, screen_min_neurons=0, screen_chunk=64))
    g2, t2 = run(lif.Config(screen_block=0))
    assert 0.15 < np.mean(np.isfinite(t1)) < 0.85
    np.testing.assert_array_equal(np.isfinite(t1), np.isfinite(t2))
    np.testing.assert_allclose(np.asarray(t1), np.asarray(t2), rtol=1e-12)
    for x, y, name in zip(g1, g2, ("t_in", "weights", "threshold", "tau_syn")):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-9, atol=1e-11, err_msg=name)
    assert_matches_ode(np.asarray(t1)[:2, :, None], t_in[:2], w, tau_syn=0.13, ratio=ratio, theta=theta,
                       max_spikes=1, t_max=t_max)
    # finite differences of the screened loss along a random weight direction (central, float64)
    cfg = lif.Config(screen_block=16, screen_min_neurons=0, screen_chunk=64)
    loss = jax.jit(lambda w: jnp.sum(jnp.where(jnp.isfinite(o := lif.spike_times(
        t_in, w, tau_syn=0.13, threshold=theta, config=cfg, **kw)[..., 0]), a * o, 0.0)))
    v, h = rng.normal(size=w.shape), 1e-6
    fd = (loss(w + h * v) - loss(w - h * v)) / (2 * h)
    np.testing.assert_allclose(fd, np.sum(np.asarray(g1[1]) * v), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("ratio", [2, 1])
def test_first_spike_loops_stop_once_every_neuron_has_fired(ratio):
    # with one spike per neuron the forward loop stops when every neuron of every sample with
    # events left has fired, and the backward loop when no sample has an event before its last
    # spike. Sample 0: every neuron fires within its first events, most events come later.
    # Sample 1: one neuron stays silent, so its events run to the end. Checked against the ODE
    # and against the general multi-spike loop (no early stop), times and gradients.
    rng = np.random.default_rng(7 + ratio)
    n_in, n = 40, 5
    t_in = np.stack([np.r_[rng.uniform(0.0, 0.02, 4), rng.uniform(0.5, 1.0, n_in - 4)],
                     np.r_[np.full(4, np.inf), rng.uniform(0.0, 1.0, n_in - 4)]])[..., None]
    w = rng.normal(1.5, 0.5, (n_in, n))
    w[:4] = 3.0  # the four early inputs make every neuron fire before the late ones
    w[4:, 4] = 0.0  # neuron 4 listens to the early inputs only: silent in sample 1
    theta = 0.2
    kw = dict(tau_syn=0.1, threshold=theta, tau_ratio=ratio, t_max=1.5)
    a = rng.normal(size=(2, n))

    def loss(K):
        def f(t_in, w):
            t = lif.spike_times(t_in, w, max_spikes=K, **kw)[..., 0]
            return jnp.sum(jnp.where(jnp.isfinite(t), a * t, 0.0)), t
        return jax.jit(jax.grad(f, argnums=(0, 1), has_aux=True))

    g1, t1 = loss(1)(t_in, w)
    t1 = np.asarray(t1)
    assert np.all(np.isfinite(t1[0])) and np.max(t1[0]) < 0.5  # sample 0: all fired early
    assert np.isfinite(t1[1, :4]).all() and not np.isfinite(t1[1, 4])  # sample 1: one silent
    assert_matches_ode(lif.spike_times(t_in, w, max_spikes=1, **kw), t_in, w, tau_syn=0.1, ratio=ratio,
                       theta=theta, max_spikes=1, t_max=1.5)
    g2, t2 = loss(2)(t_in, w)
    np.testing.assert_allclose(t1, np.asarray(t2), rtol=1e-12)
    for x, y, name in zip(g1, g2, ("t_in", "weights")):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-9, atol=1e-12, err_msg=name)
    assert np.all(np.asarray(g1[0])[0, 4:] == 0)  # inputs after every spike of sample 0


@pytest.mark.parametrize("n_spikes", [5, 150, 300, 700])
def test_event_sort_ladder_equals_the_full_stable_sort(n_spikes):
    # the partial sort (top_k) of sparse inputs orders the events as the full stable argsort,
    # ties included (pixel-coded inputs share times); 700 of 784 slots takes the full sort
    rng = np.random.default_rng(n_spikes)
    t = np.full((4, 784), np.inf)
    for b in range(4):
        t[b, rng.choice(784, n_spikes - b, replace=False)] = rng.integers(0, 20, n_spikes - b) / 200.0
    times, order = jax.jit(sorted_events, static_argnums=2)(jnp.asarray(t), jnp.inf, 1)
    ref = np.asarray(argsort(jnp.asarray(t), axis=1))
    k = np.isfinite(t).sum(1)
    for b in range(4):
        np.testing.assert_array_equal(np.asarray(order)[b, :k[b]], ref[b, :k[b]])
        np.testing.assert_array_equal(np.asarray(times)[b, :k[b]], t[b, ref[b, :k[b]]])
        assert np.all(np.isinf(np.asarray(times)[b, k[b]:]))


@pytest.mark.parametrize("t_max", [np.inf, 0.3])
@pytest.mark.parametrize("n_spikes", [100, 1300, 2000, 4500])
def test_compacted_event_sort_ladder_equals_the_full_stable_sort(n_spikes, t_max):
    # 600 inputs x 8 slots (> 4096): the spikes are compacted to the next rung of 1024, 1536,
    # 2048, 3072, 4096 slots before sorting (4500 spikes: the full sort); ties included; spikes
    # after t_max (each input's last slots) do not count
    rng = np.random.default_rng(n_spikes)
    t = np.full((3, 600, 8), np.inf)
    for b in range(3):
        cnt = rng.multinomial(n_spikes - 7 * b, np.full(600, 1 / 600))
        cnt = np.minimum(cnt, 8)
        for i in np.nonzero(cnt)[0]:
            t[b, i, :cnt[i]] = np.sort(rng.integers(0, 400, cnt[i]) / 1000.0)
    flat = t.reshape(3, -1)
    times, order = jax.jit(sorted_events, static_argnums=2)(jnp.asarray(flat), t_max, 8)
    kept = np.where(flat <= t_max, flat, np.inf)
    ref = np.asarray(argsort(jnp.asarray(kept), axis=1))
    k = np.isfinite(kept).sum(1)
    assert times.shape == order.shape == (3, flat.shape[1] + 1)
    for b in range(3):
        np.testing.assert_array_equal(np.asarray(order)[b, :k[b]], ref[b, :k[b]])
        np.testing.assert_array_equal(np.asarray(source(order, 8))[b, :k[b]], ref[b, :k[b]] // 8)
        np.testing.assert_array_equal(np.asarray(times)[b, :k[b]], flat[b, ref[b, :k[b]]])
        assert np.all(np.isinf(np.asarray(times)[b, k[b]:]))


@pytest.mark.parametrize("ratio", [2, 1])
def test_equal_input_times_are_one_step(ratio):
    # One spike per input neuron on a coarse grid, so events tie, in groups of different sizes
    # in different samples: the event loop takes all of a sample's events at one time as one
    # step (their weight rows summed). Against the ODE, and against the same spikes given with
    # two slots per input neuron, where the loop takes each event as its own step (float64).
    # (a third of the inputs at 0, like saturated pixels: groups of 10 and more events)
    rng = np.random.default_rng(40 + ratio)
    t = np.round(rng.uniform(0.0, 0.3, (3, 40, 1)) / 0.05) * 0.05
    t[rng.random(t.shape) < 0.3] = 0.0
    t[rng.random(t.shape) < 0.2] = np.inf
    w = rng.normal(0.6, 2.0, (40, 5))
    groups = [np.unique(r[np.isfinite(r)], return_counts=True)[1] for r in t[..., 0]]
    assert max(g.max() for g in groups) >= 10 and min(g.max() for g in groups) >= 3
    assert len({tuple(g) for g in groups}) == 3
    kw = dict(tau_syn=0.1, threshold=0.3, tau_ratio=ratio, max_spikes=6, t_max=0.8)
    out = np.asarray(lif.spike_times(t, w, **kw))
    assert 10 < np.isfinite(out).sum() < out.size and np.isfinite(out).sum(-1).max() >= 3
    assert_matches_ode(out, t, w, tau_syn=0.1, ratio=ratio, theta=0.3, max_spikes=6, t_max=0.8)
    t2 = np.concatenate([t, np.full_like(t, np.inf)], axis=-1)
    np.testing.assert_allclose(lif.spike_times(t2, w, **kw), out, rtol=0, atol=1e-12)
    c = rng.normal(size=out.shape)

    @jax.jit
    def loss(t, w):
        o = lif.spike_times(t, w, **kw)
        return jnp.sum(jnp.where(jnp.isfinite(o), o * c, 0.0))

    g_t, g_w = jax.grad(loss, argnums=(0, 1))(t, w)
    g_t2, g_w2 = jax.grad(loss, argnums=(0, 1))(t2, w)
    np.testing.assert_allclose(g_t, g_t2[..., :1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(g_w, g_w2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(g_w, central_fd(lambda x: loss(t, x), w), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ratio", [2, 1])
@pytest.mark.parametrize("dt", [None, 0.01])
def test_compacted_spike_loop_equals_the_full_loop(ratio, dt):
    # 8 x 64 neurons, sparse firing: the inner spike loop runs on gathered blocks of 16 neurons
    # (one round; or one block per round, many rounds) and must give the full loop's times and
    # gradients bit for bit; without a clock also the ODE's spikes
    rng = np.random.default_rng(30 + ratio)
    t, w = random_case(rng, n_in=30, n_out=64, batch=8, mean=0.0, p_silent=0.3)
    t = t * 0.3
    kw = dict(tau_syn=0.1, threshold=0.3, tau_ratio=ratio, max_spikes=5, t_max=0.5, dt=dt)
    loss = lambda o: jnp.sum(jnp.where(jnp.isfinite(o), jnp.sin(3.0 * o), 0.0))

    def run(min_size, share):
        cfg = lif.Config(fire_compact_min=min_size, fire_compact_share=share)
        f = jax.jit(lambda t, w: lif.spike_times(t, w, **kw, config=cfg))
        grads = jax.jit(jax.grad(lambda t, w: loss(lif.spike_times(t, w, **kw, config=cfg)), argnums=(0, 1)))(t, w)
        return np.asarray(f(t, w)), [np.asarray(g) for g in grads]

    full_out, full_g = run(10**9, 8)
    assert 50 < np.isfinite(full_out).sum() < 0.5 * full_out.size  # sparse, but several spikes per neuron
    assert np.isfinite(full_out).sum(-1).max() >= 3
    for share in (1, 10**6):  # every block in one round; one block per round
        out, g = run(0, share)
        np.testing.assert_array_equal(out, full_out)
        for a, b in zip(g, full_g):
            np.testing.assert_array_equal(a, b)
    if dt is None:
        assert_matches_ode(out[:2, :16], t[:2], w[:, :16], tau_syn=0.1, ratio=ratio, theta=0.3, max_spikes=5, t_max=0.5)
