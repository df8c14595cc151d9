"""DLIF simulation against a plain numpy step loop, and BPTT against a hand-written numpy adjoint."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsnn import dlif, surrogate


def numpy_simulate(x, w, beta, theta, bias, reset, rec=None):
    """The contract equations, one step at a time (x: [T, B, n_in])."""
    T, B, _ = x.shape
    n = w.shape[1]
    v_prev = np.zeros((B, n))
    s_prev = np.zeros((B, n))
    vs, ss = [], []
    for t in range(T):
        i_t = x[t] @ w + bias
        if rec is not None:
            i_t = i_t + s_prev @ rec
        if reset == "subtract":
            v = beta * v_prev + i_t - theta * s_prev
        else:
            v = beta * v_prev * (1.0 - s_prev) + i_t
        s = (v >= theta).astype(float)
        vs.append(v)
        ss.append(s)
        v_prev, s_prev = v, s
    return np.stack(ss), np.stack(vs)


def numpy_bptt(x, w, beta, theta, bias, reset, a, c, dsig):
    """Reverse-mode adjoint of L = sum(a * s + c * v) with s' replaced by dsig (numpy, by hand)."""
    s, v = numpy_simulate(x, w, beta, theta, bias, reset)
    T = x.shape[0]
    gv_next = np.zeros_like(v[0])
    dW = np.zeros_like(w)
    dbeta = np.zeros(w.shape[1])
    dtheta = np.zeros(w.shape[1])
    db = np.zeros(w.shape[1])
    dx = np.zeros_like(x)
    for t in reversed(range(T)):
        if reset == "subtract":
            dvnext_dv, dvnext_ds = beta, -theta
        else:
            dvnext_dv, dvnext_ds = beta * (1.0 - s[t]), -beta * v[t]
        gs = a[t] + dvnext_ds * gv_next
        sig = dsig(v[t] - theta)
        gv = c[t] + dvnext_dv * gv_next + gs * sig
        dW += x[t].T @ gv
        dx[t] = gv @ w.T
        db += gv.sum(0)
        dtheta += (-gs * sig).sum(0)
        v_prev = v[t - 1] if t > 0 else np.zeros_like(v[0])
        s_prev = s[t - 1] if t > 0 else np.zeros_like(v[0])
        if reset == "subtract":
            dbeta += (gv * v_prev).sum(0)
            dtheta += (-gv * s_prev).sum(0)
        else:
            dbeta += (gv * v_prev * (1.0 - s_prev)).sum(0)
        gv_next = gv
    return dW, dbeta, dtheta, db, dx


def random_problem(seed, T=12, B=3, n_in=6, n_out=5, p=0.4):
    rng = np.random.default_rng(seed)
    x = (rng.random((T, B, n_in)) < p).astype(float)
    w = rng.normal(0.0, 0.8, (n_in, n_out))
    beta = rng.uniform(0.5, 0.99, n_out)
    theta = rng.uniform(0.5, 1.5, n_out)
    bias = rng.normal(0.0, 0.1, n_out)
    return x, w, beta, theta, bias


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_matches_numpy_loop_exactly(reset):
    # dyadic weights, beta and thresholds: every operation is exact in float64, so any
    # difference at all (including the spike decisions) is a bug
    rng = np.random.default_rng(1)
    T, B, n_in, n_out = 10, 4, 7, 6
    x = (rng.random((T, B, n_in)) < 0.5).astype(float)
    w = rng.integers(-8, 12, (n_in, n_out)) / 16.0
    beta = rng.choice([0.5, 0.75, 0.875], n_out)
    theta = rng.choice([0.5, 1.0, 1.25], n_out)
    bias = rng.integers(-2, 3, n_out) / 32.0
    s_ref, v_ref = numpy_simulate(x, w, beta, theta, bias, reset)
    s, v = dlif.simulate(x, w, beta=beta, threshold=theta, bias=bias, reset=reset)
    np.testing.assert_array_equal(np.asarray(v), v_ref)
    np.testing.assert_array_equal(np.asarray(s), s_ref)
    assert 0.05 < s_ref.mean() < 0.95  # the case exercises spikes and resets


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_matches_numpy_loop_random(reset):
    x, w, beta, theta, bias = random_problem(2, T=30)
    rec = np.random.default_rng(3).normal(0, 0.3, (5, 5))
    for r in (None, rec):
        s_ref, v_ref = numpy_simulate(x, w, beta, theta, bias, reset, r)
        s, v = dlif.simulate(x, w, beta=beta, threshold=theta, bias=bias, reset=reset, recurrent_weights=r)
        np.testing.assert_allclose(np.asarray(v), v_ref, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(s), s_ref)


def test_scalar_parameters_no_bias_and_single_step():
    x, w, *_ = random_problem(4, T=1)
    s_ref, v_ref = numpy_simulate(x, w, 0.9, 1.0, 0.0, "subtract")
    s, v = dlif.simulate(x, w, beta=0.9, threshold=1.0)
    assert s.shape == (1, 3, 5)
    np.testing.assert_allclose(np.asarray(v), v_ref, atol=1e-14)
    # leading batch axes of any rank, and no batch axis at all
    x4 = np.random.default_rng(0).random((5, 2, 3, 6))
    s4, v4 = dlif.simulate(x4, w, beta=0.9, threshold=1.0)
    s_flat, v_flat = dlif.simulate(x4.reshape(5, 6, 6), w, beta=0.9, threshold=1.0)
    np.testing.assert_allclose(np.asarray(v4).reshape(5, 6, 5), np.asarray(v_flat), atol=1e-14)
    s1, _ = dlif.simulate(x4[:, 0, 0], w, beta=0.9, threshold=1.0)
    np.testing.assert_array_equal(np.asarray(s1), np.asarray(s4[:, 0, 0]))


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("name", ["fast_sigmoid", "triangle", "arctan"])
@pytest.mark.parametrize("chunk", [None, 1, 4])
def test_bptt_matches_hand_written_adjoint(reset, name, chunk):
    from tests.test_surrogate import STATED

    p, deriv = STATED[name]
    x, w, beta, theta, bias = random_problem(5, T=15)
    rng = np.random.default_rng(6)
    a = rng.normal(size=(15, 3, 5))
    c = rng.normal(size=(15, 3, 5))

    def loss(w, beta, theta, bias, x):
        s, v = dlif.simulate(x, w, beta=beta, threshold=theta, bias=bias, reset=reset, surrogate=name, chunk=chunk)
        return jnp.sum(a * s + c * v)

    grads = jax.grad(loss, argnums=(0, 1, 2, 3, 4))(w, beta, theta, bias, x)
    ref = numpy_bptt(x, w, beta, theta, bias, reset, a, c, lambda z: deriv(z, p))
    for g, r, label in zip(grads, ref, ("weights", "beta", "threshold", "bias", "inputs")):
        np.testing.assert_allclose(np.asarray(g), r, rtol=1e-10, atol=1e-10, err_msg=label)


def test_gradient_is_exact_where_surrogate_is_not_involved():
    # with a loss on the membrane only, no neuron near threshold and a surrogate of bounded
    # support, the surrogate never enters: BPTT is the true gradient (central finite differences)
    x, w, beta, theta, bias = random_problem(7, T=8)
    theta = theta + 50.0  # silent: every spike decision is far from flipping

    def loss(w, beta):
        _, v = dlif.simulate(x, w, beta=beta, threshold=theta, bias=bias, surrogate="triangle")
        return jnp.sum(jnp.sin(v))

    gw, gb = jax.grad(loss, argnums=(0, 1))(w, beta)
    eps = 1e-6
    i, j = 2, 3
    e = np.zeros_like(w)
    e[i, j] = eps
    fd = (loss(w + e, beta) - loss(w - e, beta)) / (2 * eps)
    np.testing.assert_allclose(float(gw[i, j]), float(fd), rtol=1e-7)
    eb = np.zeros_like(beta)
    eb[1] = eps
    fd = (loss(w, beta + eb) - loss(w, beta - eb)) / (2 * eps)
    np.testing.assert_allclose(float(gb[1]), float(fd), rtol=1e-7)


def test_detach_reset_and_remat():
    x, w, beta, theta, bias = random_problem(8, T=20)

    def loss(w, **kw):
        s, v = dlif.simulate(x, w, beta=beta, threshold=theta, bias=bias, **kw)
        return jnp.sum(s) + 0.1 * jnp.sum(v ** 2)

    g = jax.grad(loss)(w)
    np.testing.assert_allclose(np.asarray(jax.grad(functools.partial(loss, remat=True))(w)), np.asarray(g),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.grad(functools.partial(loss, unroll=4))(w)), np.asarray(g),
                               rtol=1e-12, atol=1e-12)
    g_detached = jax.grad(functools.partial(loss, detach_reset=True))(w)
    assert not np.allclose(np.asarray(g_detached), np.asarray(g))
    # detaching changes the gradient, never the forward pass
    np.testing.assert_array_equal(
        np.asarray(dlif.simulate(x, w, beta=beta, threshold=theta, detach_reset=True)[1]),
        np.asarray(dlif.simulate(x, w, beta=beta, threshold=theta)[1]))


def test_jit_vmap_over_hyperparameters():
    x, w, *_ = random_problem(9, T=10)
    betas = jnp.array([0.6, 0.8, 0.95])
    thetas = jnp.array([0.5, 1.0, 2.0])
    slopes = jnp.array([5.0, 25.0, 100.0])

    def run(b, th, k):
        s, v = dlif.simulate(x, w, beta=b, threshold=th, surrogate=functools.partial(surrogate.fast_sigmoid, slope=k))
        fn = functools.partial(surrogate.fast_sigmoid, slope=k)
        return s, jax.grad(lambda w: dlif.simulate(x, w, beta=b, threshold=th, surrogate=fn)[0].sum())(w)

    s_v, g_v = jax.jit(jax.vmap(run))(betas, thetas, slopes)
    for i in range(3):
        s_i, g_i = run(betas[i], thetas[i], slopes[i])
        np.testing.assert_array_equal(np.asarray(s_v[i]), np.asarray(s_i))
        np.testing.assert_allclose(np.asarray(g_v[i]), np.asarray(g_i), rtol=1e-12, atol=1e-12)


def test_step_is_the_scan_body():
    x, w, beta, theta, bias = random_problem(10, T=6)
    s_ref, v_ref = dlif.simulate(x, w, beta=beta, threshold=theta, bias=bias, reset="zero")
    state = dlif.DLIFState(jnp.zeros((3, 5)), jnp.zeros((3, 5)))
    for t in range(6):
        state, (s, v) = dlif.step(state, x[t] @ w + bias, beta=beta, threshold=theta, reset="zero")
        np.testing.assert_allclose(np.asarray(v), np.asarray(v_ref[t]), atol=1e-14)
        np.testing.assert_array_equal(np.asarray(s), np.asarray(s_ref[t]))


def test_bad_input_names_the_argument():
    x, w, beta, theta, _ = random_problem(11)
    cases = [
        (dict(inputs=x[0, 0]), "inputs"),
        (dict(inputs=x[..., :4]), "inputs"),
        (dict(weights=w[0]), "weights"),
        (dict(beta=np.ones(4)), "beta"),
        (dict(threshold=np.ones((5, 1, 2))), "threshold"),
        (dict(bias=np.ones(3)), "bias"),
        (dict(reset="hard"), "reset"),
        (dict(surrogate="boxcar"), "surrogate"),
        (dict(recurrent_weights=np.ones((5, 4))), "recurrent_weights"),
    ]
    for override, name in cases:
        kw = dict(inputs=x, weights=w, beta=beta, threshold=theta) | override
        with pytest.raises(ValueError, match=name):
            dlif.simulate(kw.pop("inputs"), kw.pop("weights"), **kw)
    with pytest.raises(ValueError, match="reset"):
        dlif.step(dlif.DLIFState(0.0, 0.0), 1.0, beta=0.9, threshold=1.0, reset="none")


def autodiff_reference(current, beta, theta, reset, rec, detach, spike_fn):
    """The dynamics as a Python loop of jnp ops, differentiated by JAX autodiff (no custom BPTT)."""
    v = jnp.zeros(current.shape[1:])
    s = jnp.zeros(current.shape[1:])
    ss, vs = [], []
    for t in range(current.shape[0]):
        i_t = current[t] + (s @ rec if rec is not None else 0.0)
        sr = jax.lax.stop_gradient(s) if detach else s
        v = beta * v + i_t - theta * sr if reset == "subtract" else beta * v * (1.0 - sr) + i_t
        s = spike_fn(v - theta)
        ss.append(s)
        vs.append(v)
    return jnp.stack(ss), jnp.stack(vs)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("per_neuron", [False, True])
@pytest.mark.parametrize("chunk", [None, 2, 4])
def test_custom_bptt_matches_autodiff_of_a_step_loop(reset, detach, recurrent, per_neuron, chunk):
    rng = np.random.default_rng(12)
    T, B, n = 9, 2, 4
    current = rng.normal(0.4, 0.6, (T, B, n))
    beta = rng.uniform(0.6, 0.95, n) if per_neuron else 0.85
    theta = rng.uniform(0.5, 1.2, n) if per_neuron else 0.9
    rec = rng.normal(0, 0.4, (n, n)) if recurrent else None
    a, c = rng.normal(size=(2, T, B, n))
    fn = functools.partial(surrogate.sigmoid, slope=3.0)

    def loss(impl, current, beta, theta, rec):
        s, v = impl(current, beta, theta, rec)
        return jnp.sum(a * s + c * v)

    ours = lambda cur, b, th, r: dlif.integrate(cur, beta=b, threshold=th, reset=reset, surrogate=fn,  # noqa: E731
                                                recurrent_weights=r, detach_reset=detach, chunk=chunk)
    ref = lambda cur, b, th, r: autodiff_reference(cur, b, th, reset, r, detach, fn)  # noqa: E731
    argnums = (1, 2, 3, 4) if recurrent else (1, 2, 3)
    g = jax.grad(loss, argnums=argnums)(ours, current, beta, theta, rec)
    g_ref = jax.grad(loss, argnums=argnums)(ref, current, beta, theta, rec)
    np.testing.assert_array_equal(np.asarray(ours(current, beta, theta, rec)[0]),
                                  np.asarray(ref(current, beta, theta, rec)[0]))
    for x, y, name in zip(g, g_ref, ("current", "beta", "threshold", "recurrent")):
        assert np.shape(x) == np.shape(y), name
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-11, atol=1e-12, err_msg=name)


def test_chunking_changes_nothing_but_speed():
    x, w, beta, theta, bias = random_problem(13, T=10, B=4)
    x = np.stack([x, x[::-1]], axis=1)  # two batch axes: [T, 2, B, n_in]
    rng = np.random.default_rng(14)
    a, c = rng.normal(size=(2, 10, 2, 4, 5))

    def run(chunk):
        def loss(w, beta, theta, bias, x):
            s, v = dlif.simulate(x, w, beta=beta, threshold=theta, bias=bias, chunk=chunk)
            return jnp.sum(a * s + c * v), (s, v)

        return jax.grad(loss, argnums=(0, 1, 2, 3, 4), has_aux=True)(w, beta, theta, bias, x)

    g_ref, (s_ref, v_ref) = run(10)
    for chunk in (1, 3, 4, 7, None, 50):
        g, (s, v) = run(chunk)
        np.testing.assert_array_equal(np.asarray(s), np.asarray(s_ref))
        np.testing.assert_allclose(np.asarray(v), np.asarray(v_ref), atol=1e-13)
        for gi, ri in zip(g, g_ref):
            np.testing.assert_allclose(np.asarray(gi), np.asarray(ri), rtol=1e-11, atol=1e-12)
    with pytest.raises(ValueError, match="chunk"):
        dlif.simulate(x, w, beta=0.9, threshold=1.0, chunk=0)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_unused_output_gets_a_symbolic_zero_and_the_same_gradient(reset):
    # loss on the spikes only (membrane unused) and on the membrane only (spikes unused)
    x, w, beta, theta, bias = random_problem(15, T=11)
    rng = np.random.default_rng(16)
    a = rng.normal(size=(11, 3, 5))
    zero = np.zeros_like(a)
    deriv = lambda z: 1.0 / (1.0 + 25.0 * np.abs(z)) ** 2  # noqa: E731 (fast sigmoid, slope 25)
    for which, (ca, cc) in (("spikes", (a, zero)), ("membrane", (zero, a))):
        def loss(w, beta, theta, bias, x):
            s, v = dlif.simulate(x, w, beta=beta, threshold=theta, bias=bias, reset=reset)
            return jnp.sum(a * (s if which == "spikes" else v))

        grads = jax.grad(loss, argnums=(0, 1, 2, 3, 4))(w, beta, theta, bias, x)
        ref = numpy_bptt(x, w, beta, theta, bias, reset, ca, cc, deriv)
        for g, r in zip(grads, ref):
            np.testing.assert_allclose(np.asarray(g), r, rtol=1e-10, atol=1e-10, err_msg=which)


def test_compact_sizes_ladder():
    assert dlif.compact_sizes(784) == (208, 400, 448, 496, 544, 592, 688, 784)
    assert dlif.compact_sizes(64) == (16, 32, 48, 64)
    assert dlif.compact_sizes(5) == (5,)  # every rung rounds up to the whole layer


@pytest.mark.parametrize("n_active", [0, 5, 16, 17, 40, 64])
@pytest.mark.parametrize("chunk", [None, 3])
def test_skip_silent_inputs_matches_numpy_loop(n_active, chunk):
    # the active-column projection against the plain loop (values and every gradient), with the
    # active count below, on and above rungs of the ladder (16, 32, 48, 64), all silent, all active
    rng = np.random.default_rng(100 + n_active)
    T, B, n_in, n_out = 9, 3, 64, 5
    cols = rng.choice(n_in, n_active, replace=False)
    x = np.zeros((T, B, n_in))
    x[:, :, cols] = (rng.random((T, B, n_active)) < 0.5)
    x[0, 0, cols] = 1.0  # every chosen column spikes at least once
    w = rng.normal(0.0, 0.5, (n_in, n_out))
    beta, theta, bias = rng.uniform(0.5, 0.99, n_out), rng.uniform(0.5, 1.5, n_out), rng.normal(0.0, 0.1, n_out)
    a, c = rng.normal(size=(2, T, B, n_out))
    deriv = lambda z: 1.0 / (1.0 + 25.0 * np.abs(z)) ** 2  # noqa: E731 (fast sigmoid, slope 25)

    def loss(w, beta, theta, bias, x):
        s, v = dlif.simulate(x, w, beta=beta, threshold=theta, bias=bias, chunk=chunk, skip_silent_inputs=True)
        return jnp.sum(a * s + c * v), (s, v)

    grads, (s, v) = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3, 4), has_aux=True))(w, beta, theta, bias, x)
    s_ref, v_ref = numpy_simulate(x, w, beta, theta, bias, "subtract")
    np.testing.assert_array_equal(np.asarray(s), s_ref)
    np.testing.assert_allclose(np.asarray(v), v_ref, rtol=1e-12, atol=1e-12)
    ref = numpy_bptt(x, w, beta, theta, bias, "subtract", a, c, deriv)
    for g, r, label in zip(grads, ref, ("weights", "beta", "threshold", "bias", "inputs")):
        np.testing.assert_allclose(np.asarray(g), r, rtol=1e-10, atol=1e-10, err_msg=label)
    if n_active < n_in:  # silent columns get exactly zero weight gradient
        silent = np.setdiff1d(np.arange(n_in), cols)
        assert np.all(np.asarray(grads[0])[silent] == 0.0)


@pytest.mark.parametrize("kw,match", [
    (dict(beta=1.5), "beta"), (dict(beta=-0.1), "beta"), (dict(beta=jnp.array([0.5, 1.2, 0.5])), "beta"),
    (dict(threshold=0.0), "threshold"), (dict(threshold=-1.0), "threshold"),
])
def test_out_of_range_beta_and_threshold_raise(kw, match):
    args = dict(beta=0.9, threshold=1.0) | kw
    with pytest.raises(ValueError, match=match):
        dlif.simulate(jnp.ones((3, 2, 4)), jnp.ones((4, 3)), **args)
    with pytest.raises(ValueError, match=match):
        dlif.step(dlif.DLIFState(jnp.zeros(3), jnp.zeros(3)), jnp.ones(3), **args)


def test_beta_from_tau_is_the_exact_decay_of_one_step():
    # oracle: dv/dt = -v / tau integrated over one step dt by 100000 Euler sub-steps
    tau, dt, n = 7.0, 0.5, 100000
    euler = (1.0 - dt / n / tau) ** n
    assert float(dlif.beta_from_tau(tau, dt)) == pytest.approx(euler, rel=1e-5)
    np.testing.assert_allclose(dlif.beta_from_tau(jnp.array([1.0, 2.0]), 1.0), np.exp([-1.0, -0.5]), rtol=1e-6)
    with pytest.raises(ValueError, match="tau_mem"):
        dlif.beta_from_tau(0.0, 1.0)
    with pytest.raises(ValueError, match="dt"):
        dlif.beta_from_tau(1.0, -1.0)
