"""jaxsnn.srm.first_spike_times against independent oracles, finite differences and invariances."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads
from oracles import srm_first_spike_grid, srm_layer_exact

from jaxsnn import srm, srm_ramp
from jaxsnn._internal import argsort


def random_case(seed, B=5, n=7, m=6, p_silent_input=0.2, w_mean=0.3, delays=False):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 1.0, (B, n))
    t[rng.uniform(size=(B, n)) < p_silent_input] = np.inf
    w = rng.normal(w_mean, 1.0, (n, m))
    theta = rng.uniform(0.2, 1.5, (m,))
    d = rng.uniform(0.0, 0.5, (n, m)) if delays else None
    return t, w, theta, d


CASES = [
    dict(kernel="ramp", delta=math.inf, delays=False),
    dict(kernel="ramp", delta=0.6, delays=False),
    dict(kernel="ramp", delta=math.inf, delays=True),
    dict(kernel="ramp", delta=0.45, delays=True),
    dict(kernel="step", delta=math.inf, delays=False),
    dict(kernel="step", delta=0.3, delays=False),
    dict(kernel="step", delta=0.3, delays=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['kernel']}-delta{c['delta']}-delays{c['delays']}")
@pytest.mark.parametrize("seed", range(4))
def test_matches_exact_rational_oracle(case, seed):
    t, w, theta, d = random_case(seed, delays=case["delays"])
    if case["kernel"] == "step":
        theta = theta * 0.8  # step potentials are sums of weights: keep some neurons firing
    got = np.asarray(srm.first_spike_times(t, w, theta, delays=d, kernel=case["kernel"], delta=case["delta"]))
    want = srm_layer_exact(t, w, theta, d, case["kernel"], case["delta"])
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-10, atol=1e-12)
    # The cases exercise both firing and silent neurons.
    assert fin.any()


@pytest.mark.parametrize("kernel", ["ramp", "step"])
@pytest.mark.parametrize("seed", range(6))
def test_ties_on_a_time_grid_match_the_oracle(kernel, seed):
    # Quantized times (as on a clocked chip) make arrivals and cutoffs coincide often.
    t, w, theta, d = random_case(200 + seed, B=6, n=8, m=6, delays=True)
    t, d = np.round(t * 10) / 10, np.round(d * 10) / 10
    for delays, delta in [(None, 0.3), (d, 0.2), (None, math.inf)]:
        got = np.asarray(srm.first_spike_times(t, w, theta, delays=delays, kernel=kernel, delta=delta))
        want = srm_layer_exact(t, w, theta, delays, kernel, delta)
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        fin = np.isfinite(want)
        np.testing.assert_allclose(got[fin], want[fin], rtol=1e-9, atol=1e-12)


def test_oracle_cases_cover_silent_and_inhibitory():
    t, w, theta, _ = random_case(0)
    assert (w < 0).any() and np.isinf(t).any()
    want = srm_layer_exact(t, w, theta)
    assert np.isinf(want).any() and np.isfinite(want).any()


def test_traced_delta_equals_static_delta():
    t, w, theta, _ = random_case(3)
    static = srm.first_spike_times(t, w, theta, delta=0.6)
    traced = jax.jit(lambda dl: srm.first_spike_times(t, w, theta, delta=dl))(0.6)
    np.testing.assert_allclose(static, traced, rtol=1e-12)
    # A traced infinite delta takes the cutoff path and agrees with the static no-cutoff path.
    inf_traced = jax.jit(lambda dl: srm.first_spike_times(t, w, theta, delta=dl))(jnp.inf)
    np.testing.assert_allclose(srm.first_spike_times(t, w, theta), inf_traced, rtol=1e-12)


@pytest.mark.parametrize("kernel,delta", [("ramp", math.inf), ("ramp", 0.6), ("step", 0.4)])
def test_matches_fine_grid_simulation(kernel, delta):
    t, w, theta, _ = random_case(11, B=3, n=5, m=4)
    h = 1e-4
    got = np.asarray(srm.first_spike_times(t, w, theta, kernel=kernel, delta=delta))
    grid = srm_first_spike_grid(t, w, theta, h=h, t_end=6.0, kernel=kernel, delta=delta)
    inside = np.isfinite(got) & (got < 6.0 - 2 * h)
    np.testing.assert_array_equal(np.isfinite(grid), inside | (np.isfinite(got) & np.isfinite(grid)))
    # The grid sees the crossing at the first grid point at or after the exact time.
    np.testing.assert_array_less(got[inside] - 1e-9, grid[inside])
    np.testing.assert_array_less(grid[inside], got[inside] + h + 1e-9)


def test_known_values():
    t = jnp.array([[0.1, 0.5, jnp.inf]])
    w = jnp.array([[1.0, 2.0], [1.0, -1.0], [3.0, 3.0]])
    # neuron 0: (t-0.1) + (t-0.5) = 1 -> t = 0.8; neuron 1: 2(t-0.1) - (t-0.5) = 1 -> t = 0.7
    np.testing.assert_allclose(srm.first_spike_times(t, w, 1.0), [[0.8, 0.7]])
    # step kernel: neuron 0 reaches 2 >= 1.5 when the second input arrives (t = 0.5).
    np.testing.assert_allclose(srm.first_spike_times(t, w, 1.5, kernel="step"), [[0.5, 0.1]])


# ------------------------------------------------------------------------------------------
# Gradients: finite differences in float64
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: f"delta{c['delta']}-delays{c['delays']}")
@pytest.mark.parametrize("seed", range(3))
def test_ramp_gradients_match_finite_differences(case, seed):
    t, w, theta, d = random_case(100 + seed, B=3, n=5, m=4, delays=case["delays"])
    fin_t = np.isfinite(t)
    t0 = np.where(fin_t, t, 0.0)

    def f(tf, w, theta, *dd):
        t_in = jnp.where(fin_t, tf, jnp.inf)
        out = srm.first_spike_times(t_in, w, theta, delays=dd[0] if dd else None, delta=case["delta"])
        return jnp.where(jnp.isfinite(out), out, 0.0)

    args = (t0, w, theta) + ((d,) if d is not None else ())
    assert np.isfinite(srm_layer_exact(t, w, theta, d, "ramp", case["delta"])).sum() >= 2
    check_grads(f, args, order=1, modes=("rev",), eps=1e-6, atol=1e-5, rtol=1e-5)


def test_step_gradient_moves_with_trigger_input():
    t = jnp.array([[0.2, 0.6]])
    w = jnp.array([[1.0], [1.0]])
    g = jax.grad(lambda t: srm.first_spike_times(t, w, 1.5, kernel="step").sum())(t)
    np.testing.assert_allclose(g, [[0.0, 1.0]])  # the spike is the arrival of input 1
    gw = jax.grad(lambda w: srm.first_spike_times(t, w, 1.5, kernel="step").sum())(w)
    np.testing.assert_allclose(gw, 0.0)
    # inhibitory input (on during (0, 1]) leaving at its cutoff releases the spike:
    # P = 0.5 on (0.1, 1], then 1.0 >= 0.8 on (1, 1.1], so t = 0 + delta and dt/ddelta = 1
    t2, w2 = jnp.array([[0.1, 0.0]]), jnp.array([[1.0], [-0.5]])
    f = lambda dl: srm.first_spike_times(t2, w2, 0.8, kernel="step", delta=dl).sum()
    np.testing.assert_allclose(f(1.0), 1.0)
    np.testing.assert_allclose(jax.grad(f)(1.0), 1.0)


def test_gradients_are_finite_for_silent_neurons_and_missing_inputs():
    t = jnp.array([[0.1, jnp.inf, 0.3], [jnp.inf, jnp.inf, jnp.inf]])
    w = jnp.array([[1.0, -1.0], [2.0, -2.0], [1.0, -0.5]])  # neuron 1 never fires
    for kernel, delta in [("ramp", jnp.inf), ("ramp", 0.5), ("step", 0.5)]:
        def loss(t, w, th):
            out = srm.first_spike_times(t, w, th, kernel=kernel, delta=delta)
            return jnp.sum(jnp.where(jnp.isfinite(out), out, 0.0))
        grads = jax.grad(loss, argnums=(0, 1, 2))(t, w, jnp.array([0.5, 0.5]))
        for g in grads:
            assert np.all(np.isfinite(g)), (kernel, g)
        assert np.all(grads[0][1] == 0) and np.all(grads[1][:, 1] == 0)


def test_delay_gradient_equals_input_time_gradient_for_single_output():
    t, w, theta, d = random_case(7, B=1, n=5, m=1, p_silent_input=0.0, delays=True)
    f = lambda t, d: srm.first_spike_times(t, w, theta, delays=d).sum()
    gt, gd = jax.grad(f, argnums=(0, 1))(t, d)
    np.testing.assert_allclose(gt[0], gd[:, 0], rtol=1e-12)


# ------------------------------------------------------------------------------------------
# Invariances and transformations
# ------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 10.0), kernel=st.sampled_from(["ramp", "step"]))
def test_scaling_weights_and_threshold_leaves_times_unchanged(seed, scale, kernel):
    t, w, theta, _ = random_case(seed)
    a = srm.first_spike_times(t, w, theta, kernel=kernel, delta=0.7)
    b = srm.first_spike_times(t, w * scale, theta * scale, kernel=kernel, delta=0.7)
    np.testing.assert_allclose(a, b, rtol=1e-9)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_permuting_inputs_with_weight_rows(seed):
    t, w, theta, d = random_case(seed, delays=True)
    perm = np.random.default_rng(seed).permutation(t.shape[1])
    a = srm.first_spike_times(t, w, theta, delays=d)
    b = srm.first_spike_times(t[:, perm], w[perm], theta, delays=d[perm])
    np.testing.assert_allclose(a, b, rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), bump=st.floats(0.0, 2.0), kernel=st.sampled_from(["ramp", "step"]))
def test_raising_threshold_never_makes_a_spike_earlier(seed, bump, kernel):
    t, w, theta, _ = random_case(seed)
    a = np.asarray(srm.first_spike_times(t, w, theta, kernel=kernel))
    b = np.asarray(srm.first_spike_times(t, w, theta + bump, kernel=kernel))
    assert np.all(b >= a - 1e-12)


def test_shifting_all_inputs_shifts_all_spikes():
    t, w, theta, d = random_case(5, delays=True)
    a = srm.first_spike_times(t, w, theta, delays=d, delta=0.8)
    b = srm.first_spike_times(t + 2.5, w, theta, delays=d, delta=0.8)
    np.testing.assert_allclose(np.asarray(a) + 2.5, b, rtol=1e-10)


class TestTransformations(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_jit_and_eager_agree(self):
        t, w, theta, d = random_case(21, delays=True)
        f = self.variant(lambda t, w, th, d: srm.first_spike_times(t, w, th, delays=d, delta=0.5))
        want = srm_layer_exact(t, w, theta, d, "ramp", 0.5)
        np.testing.assert_allclose(f(t, w, theta, d), want, rtol=1e-10)

    def test_vmap_matches_batch(self):
        t, w, theta, _ = random_case(22)
        batched = srm.first_spike_times(t, w, theta)
        mapped = jax.vmap(lambda x: srm.first_spike_times(x, w, theta))(t)
        np.testing.assert_allclose(batched, mapped, rtol=1e-12)
        # vmap over a hyperparameter (threshold) and over weights
        ths = jnp.stack([theta, theta * 1.3])
        swept = jax.vmap(lambda th: srm.first_spike_times(t, w, th))(ths)
        np.testing.assert_allclose(swept[1], srm.first_spike_times(t, w, theta * 1.3), rtol=1e-12)
        gw = jax.vmap(jax.grad(lambda w, x: jnp.nansum(jnp.where(jnp.isfinite(
            y := srm.first_spike_times(x, w, theta)), y, 0.0))), in_axes=(None, 0))(w, t[:, None])
        assert gw.shape == (t.shape[0],) + w.shape and np.all(np.isfinite(gw))

    def test_leading_batch_axes(self):
        t, w, theta, _ = random_case(23, B=6)
        flat = srm.first_spike_times(t, w, theta)
        nested = srm.first_spike_times(t.reshape(2, 3, -1), w, theta)
        np.testing.assert_allclose(nested.reshape(6, -1), flat)
        single = srm.first_spike_times(t[0], w, theta)
        np.testing.assert_allclose(single, flat[0])


def test_float32_default():
    with jax.enable_x64(False):
        out = srm.first_spike_times(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), 1.0)
        assert out.dtype == jnp.float32


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,match", [
    (dict(weights=np.ones((4, 2))), "t_in"),
    (dict(weights=np.ones(3)), "weights"),
    (dict(threshold=np.ones(5)), "threshold"),
    (dict(threshold=0.0), "threshold"),
    (dict(threshold=-1.0), "threshold"),
    (dict(delays=-np.ones((3, 2))), "delays"),
    (dict(delays=np.ones((2, 2))), "delays"),
    (dict(kernel="exp"), "kernel"),
    (dict(delta=0.0), "delta"),
    (dict(t_in=np.array([[0.1, np.nan, 0.2]])), "t_in"),
    (dict(t_in=np.array([[0.1, -np.inf, 0.2]])), r"t_in: .*-inf"),
    (dict(weights=np.array([[1.0, 1.0], [np.nan, 1.0], [1.0, 1.0]])), "weights: expected finite"),
    (dict(threshold=np.array([1.0, np.inf])), "threshold"),
])
def test_bad_input_raises_value_error_naming_the_argument(kwargs, match):
    args = dict(t_in=np.zeros((2, 3)), weights=np.ones((3, 2)), threshold=1.0)
    args.update(kwargs)
    t_in, weights, threshold = args.pop("t_in"), args.pop("weights"), args.pop("threshold")
    with pytest.raises(ValueError, match=match):
        srm.first_spike_times(t_in, weights, threshold, **args)


@pytest.mark.parametrize("shape,axis", [((7, 50), 1), ((3, 40, 5), 1), ((4, 33), 0)])
def test_fast_float32_argsort_is_the_stable_argsort(shape, axis):
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=shape) * 4) / 4  # many ties, negative values, zeros
    x[rng.uniform(size=shape) < 0.2] = np.inf
    x[rng.uniform(size=shape) < 0.05] = -0.0
    x = x.astype(np.float32)
    got = np.asarray(argsort(jnp.asarray(x), axis))
    np.testing.assert_array_equal(got, np.argsort(x, axis=axis, kind="stable"))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['kernel']}-delta{c['delta']}-delays{c['delays']}")
def test_float32_path_matches_the_oracle(case):
    t, w, theta, d = random_case(300, B=8, n=12, m=6, delays=case["delays"])
    with jax.enable_x64(False):
        t32, w32, th32 = t.astype(np.float32), w.astype(np.float32), theta.astype(np.float32)
        d32 = None if d is None else d.astype(np.float32)
        got = np.asarray(srm.first_spike_times(t32, w32, th32, delays=d32, kernel=case["kernel"], delta=case["delta"]))
    want = srm_layer_exact(t32.astype(float), w32.astype(float), th32.astype(float),
                           None if d32 is None else d32.astype(float), case["kernel"], case["delta"])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("delta,delays", [(math.inf, False), (0.6, False), (math.inf, True)])
def test_potential_reaches_threshold_exactly_at_the_first_spike(delta, delays):
    t, w, theta, d = random_case(400, B=4, n=6, m=5, delays=delays)
    ts = np.asarray(srm.first_spike_times(t, w, theta, delays=d, delta=delta))
    grid = np.linspace(0.0, 4.0, 4001)
    P = np.asarray(srm.potential(jnp.broadcast_to(grid, (4, grid.size)), t, w, delays=d, delta=delta))
    jumps = 0
    for b in range(4):
        for v in range(5):
            before = grid < ts[b, v] - 1e-9
            assert np.all(P[b, before, v] < theta[v])  # below threshold before the spike
            if np.isfinite(ts[b, v]):
                # t_v = inf{t : P(t) >= theta}: at or just after t_v the potential reaches theta;
                # at t_v itself it equals theta (line crossing) or lies below (jump at a cutoff).
                q = jnp.array([ts[b, v], ts[b, v] + 1e-9])
                at, after = np.asarray(srm.potential(q, t[b], w, delays=d, delta=delta))[:, v]
                assert after >= theta[v] - 1e-7
                assert abs(at - theta[v]) < 1e-9 or at < theta[v]
                jumps += at < theta[v] - 1e-9
    if math.isfinite(delta):
        assert jumps > 0  # the case exercises spikes released by an inhibitory cutoff


@pytest.mark.parametrize("scale", [0.05, 1.0, 40.0])
@pytest.mark.parametrize("seed", range(2))
def test_fast_path_equals_the_event_walk(seed, scale):
    # ReLU response without delays runs jaxsnn.srm_ramp (screen by matrix products, block search,
    # masked solve); zero delays give the same model through the general event walk. Scales: most
    # neurons fire while inputs arrive / mixed / all fire after the last input (the screen alone).
    t, w, theta, _ = random_case(300 + seed, B=6, n=40, m=9, w_mean=0.1)
    t[::2] = np.round(t[::2] * 8) / 8  # ties in every other sample
    theta = theta * scale
    fin = np.isfinite(t)
    last = np.max(np.where(fin, t, -np.inf), axis=1, keepdims=True)
    coef = np.random.default_rng(seed).normal(size=(6, 9))

    def loss(t0, w, theta, delays):
        out = srm.first_spike_times(jnp.where(fin, t0, jnp.inf), w, theta, delays=delays)
        return jnp.sum(jnp.where(jnp.isfinite(out), out * coef, 0.0)), out

    args = (np.where(fin, t, 0.0), w, theta)
    (_, fast), g_fast = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(*args, None)
    (_, walk), g_walk = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(*args, np.zeros(w.shape))
    exact = srm_layer_exact(t, w, theta, None, "ramp", math.inf)
    np.testing.assert_array_equal(np.isinf(fast), np.isinf(exact))
    np.testing.assert_allclose(np.where(np.isfinite(fast), fast, 0), np.where(np.isfinite(exact), exact, 0), rtol=1e-9)
    np.testing.assert_allclose(np.where(np.isfinite(fast), fast, 0), np.where(np.isfinite(walk), walk, 0), rtol=1e-9)
    for a, b in zip(g_fast, g_walk):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    after = np.isinf(fast) | (fast > last)
    if scale == 40.0:
        assert after.all() and np.isfinite(fast).sum() > 10
    else:
        assert (~after).sum() > 10


@pytest.mark.parametrize("seed", range(2))
def test_delays_closed_form_after_the_last_arrival_equals_the_event_walk(seed):
    # ReLU response with delays: when no neuron can fire before its last arrival the layer takes the
    # closed form (matrix products, jaxsnn.srm_ramp.after_last_arrival); a cutoff far beyond every
    # spike (delta = 1e6, the same model) forces the general event walk.
    t, w, theta, d = random_case(400 + seed, B=5, n=12, m=7, w_mean=0.3, delays=True)
    theta = theta * 40.0
    fin = np.isfinite(t)
    exact = srm_layer_exact(t, w, theta, d, "ramp", math.inf)
    # a silent neuron of the infinite response fires at the far cutoff (an inhibitory input's end)
    coef = np.where(np.isfinite(exact), np.random.default_rng(seed).normal(size=(5, 7)), 0.0)

    def loss(t0, w, theta, d, delta):
        out = srm.first_spike_times(jnp.where(fin, t0, jnp.inf), w, theta, delays=d, delta=delta)
        return jnp.sum(jnp.where(jnp.isfinite(out), out * coef, 0.0)), out

    args = (np.where(fin, t, 0.0), w, theta, d)
    grad = jax.value_and_grad(loss, argnums=(0, 1, 2, 3), has_aux=True)
    (_, fast), g_fast = grad(*args, math.inf)
    (_, walk), g_walk = grad(*args, 1e6)
    walk = np.where(np.asarray(walk) > 1e5, np.inf, walk)
    last = np.max(np.where(fin[:, :, None], t[:, :, None] + d[None], -np.inf), axis=1)
    assert np.isfinite(fast).sum() > 10 and np.all(np.isinf(fast) | (fast > last))
    assert np.all(np.asarray(srm_ramp.cannot_fire_early(jnp.asarray(t), w, theta, d)))  # the closed form ran
    np.testing.assert_array_equal(np.isinf(fast), np.isinf(exact))
    np.testing.assert_allclose(np.where(np.isfinite(fast), fast, 0), np.where(np.isfinite(exact), exact, 0), rtol=1e-9)
    np.testing.assert_allclose(np.where(np.isfinite(fast), fast, 0), np.where(np.isfinite(walk), walk, 0), rtol=1e-9)
    for a, b in zip(g_fast, g_walk):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    # and against finite differences (float64): the closed form's own gradients
    check_grads(lambda *a: loss(*a, math.inf)[0], args, order=1, modes=["rev"], eps=1e-6, atol=1e-5, rtol=1e-5)
