"""jaxsnn.coding and jaxsnn.losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsnn import coding, losses


def test_ttfs_encode_decode_roundtrip_and_order():
    x = jnp.array([0.0, 0.25, 1.0])
    t = coding.ttfs_encode(x, t_min=0.5, t_max=2.5)
    np.testing.assert_allclose(t, [2.5, 2.0, 0.5])
    np.testing.assert_allclose(coding.ttfs_decode(t, t_min=0.5, t_max=2.5), x)
    s = coding.ttfs_encode(x, silent_below=0.0)
    assert np.isinf(s[0]) and np.all(np.isfinite(s[1:]))
    assert coding.ttfs_decode(jnp.inf) == 0.0


def test_first_spike_class():
    t = jnp.array([[3.0, 1.0, jnp.inf], [jnp.inf, jnp.inf, 0.2]])
    np.testing.assert_array_equal(coding.first_spike_class(t), [1, 2])


def test_ttfs_cross_entropy_equals_softmax_formula():
    t = jnp.array([[1.0, 2.0, 1.5], [0.3, 0.1, 0.9]])
    y = jnp.array([0, 2])
    tau = 0.7
    logits = -np.asarray(t) / tau
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    want = -np.mean(np.log(p[[0, 1], [0, 2]]))
    np.testing.assert_allclose(losses.ttfs_cross_entropy(t, y, temperature=tau), want, rtol=1e-6)
    reg = 0.1 * np.mean(np.exp(np.asarray(t)[[0, 1], [0, 2]] / 2.0) - 1)
    np.testing.assert_allclose(losses.ttfs_cross_entropy(t, y, temperature=tau, alpha=0.1, tau_reg=2.0), want + reg,
                               rtol=1e-6)


def test_ttfs_cross_entropy_is_finite_with_silent_neurons():
    t = jnp.array([[jnp.inf, 1.0, jnp.inf], [jnp.inf, jnp.inf, jnp.inf]])
    y = jnp.array([0, 1])
    for kw in [{}, dict(t_cap=3.0), dict(t_cap=3.0, cap="hard")]:
        val, g = jax.value_and_grad(lambda t: losses.ttfs_cross_entropy(t, y, **kw))(t)
        assert np.isfinite(val) and np.all(np.isfinite(g))
        assert g[0, 0] == 0 and g[1, 0] == 0  # silent neurons get no gradient
    with pytest.raises(ValueError, match="cap"):
        losses.ttfs_cross_entropy(t, y, t_cap=1.0, cap="clip")


def test_soft_cap_is_continuous_and_keeps_a_gradient():
    f = lambda t: losses.soft_cap(t, 2.0, 0.5)
    np.testing.assert_allclose(f(jnp.array([1.0, 2.0])), [1.0, 2.0])
    np.testing.assert_allclose(f(2.0 + 1e-7), 2.0, atol=1e-6)
    assert 0 < jax.grad(f)(10.0) < 1 and jax.grad(f)(1.0) == 1.0
    # derivative above the cap: d/dt [s log(1 + (t - c)/s)] = 1 / (1 + (t - c)/s)
    np.testing.assert_allclose(jax.grad(f)(4.0), 1 / (1 + 2.0 / 0.5), rtol=1e-6)


def test_weight_sum_hinge():
    w = jnp.array([[0.5, -1.0], [0.2, 0.1]])
    np.testing.assert_allclose(losses.weight_sum_hinge(w, 1.0), (1 - 0.7) + (1 + 0.9), rtol=1e-6)
    g = jax.grad(losses.weight_sum_hinge)(w)
    np.testing.assert_allclose(g, -np.ones((2, 2)))
    assert losses.weight_sum_hinge(w + 5.0) == 0


def test_ttfs_cross_entropy_takes_traced_hyperparameters():
    """tau, t_cap and alpha can be traced (vmapped sweeps) and give the concrete-value results."""
    t = jnp.array([[0.5, 1.0, 2.0], [0.3, jnp.inf, 0.9]])
    y = jnp.array([1, 0])
    f = jax.jit(lambda tau, cap, a: losses.ttfs_cross_entropy(t, y, temperature=tau, t_cap=cap, alpha=a))
    for a in (0.0, 0.1):
        np.testing.assert_allclose(f(0.2, 8.0, a), losses.ttfs_cross_entropy(t, y, temperature=0.2, t_cap=8.0, alpha=a),
                                   rtol=1e-12)


def _silent_label_drive_by_loops(t_out, labels, t_in, w):
    """Value and weight gradient of ``losses.silent_label_drive``, sample by sample."""
    batch = len(labels)
    value, grad = 0.0, np.zeros_like(w)
    for b in range(batch):
        if np.isfinite(t_out[b, labels[b]]):
            continue
        n = np.isfinite(t_in[b]).sum(axis=-1).astype(float)
        total = max(1.0, n.sum())
        value -= float(n @ w[:, labels[b]]) / total / batch
        grad[:, labels[b]] -= n / total / batch
    return value, grad


def test_silent_label_drive_raises_the_weights_of_silent_label_neurons_only():
    rng = np.random.default_rng(3)
    batch, n_in, n_out, k = 6, 7, 4, 3
    t_in = rng.uniform(0, 1, (batch, n_in, k))
    t_in[rng.uniform(size=t_in.shape) < 0.5] = np.inf
    t_in[2] = np.inf  # a sample with no input spikes at all
    t_out = rng.uniform(0, 1, (batch, n_out))
    labels = np.array([0, 1, 2, 3, 1, 0])
    for b in (0, 2, 3, 4):
        t_out[b, labels[b]] = np.inf
    t_out[1, 3] = np.inf  # silent, but not the label neuron: no term
    w = rng.normal(size=(n_in, n_out))
    value, grad = jax.value_and_grad(losses.silent_label_drive, argnums=3)(
        jnp.asarray(t_out), jnp.asarray(labels), jnp.asarray(t_in), jnp.asarray(w))
    want_value, want_grad = _silent_label_drive_by_loops(t_out, labels, t_in, w)
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-7)
    assert np.all(grad <= 0) and np.any(grad < 0)  # descent raises weights
    # central finite difference on a weight of a silent label neuron's column
    f = lambda w_: float(losses.silent_label_drive(t_out, labels, t_in, jnp.asarray(w_)))  # noqa: E731
    i, j, eps = int(np.argmin(want_grad[:, 0])), 0, 1e-2
    wp, wm = w.copy(), w.copy()
    wp[i, j] += eps
    wm[i, j] -= eps
    np.testing.assert_allclose((f(wp) - f(wm)) / (2 * eps), want_grad[i, j], rtol=1e-3)
    # the term vanishes once every label neuron fires
    fired = np.where(np.isinf(t_out), 0.5, t_out)
    assert losses.silent_label_drive(fired, labels, t_in, w) == 0
    # [B, n_in] inputs are one spike per slot
    v1 = losses.silent_label_drive(t_out, labels, t_in[..., 0], w)
    np.testing.assert_allclose(v1, _silent_label_drive_by_loops(t_out, labels, t_in[..., :1], w)[0], rtol=1e-5)


def test_silent_label_drive_rejects_mismatched_shapes():
    t_out, labels, t_in = jnp.zeros((2, 3)), jnp.zeros(2, int), jnp.zeros((2, 5, 1))
    with pytest.raises(ValueError, match="weights"):
        losses.silent_label_drive(t_out, labels, t_in, jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match="t_out"):
        losses.silent_label_drive(t_out[0], labels, t_in, jnp.zeros((5, 3)))


def test_ttfs_cross_entropy_can_drop_the_gradient_of_samples_with_a_silent_label():
    t = jnp.array([[0.2, 0.1, 0.3], [jnp.inf, 0.1, 0.2], [0.1, jnp.inf, 0.4]])
    y = jnp.array([0, 0, 1])  # the label neuron is silent in samples 1 and 2
    kw = dict(temperature=0.1, t_silent=1.0)
    full = losses.ttfs_cross_entropy(t, y, **kw)
    dropped = losses.ttfs_cross_entropy(t, y, drop_silent_label=True, **kw)
    assert dropped == full  # the value is unchanged
    g_full = jax.grad(lambda t: losses.ttfs_cross_entropy(t, y, **kw))(t)
    g_drop = jax.grad(lambda t: losses.ttfs_cross_entropy(t, y, drop_silent_label=True, **kw))(t)
    np.testing.assert_array_equal(g_drop[0], g_full[0])  # a firing label: the same gradient
    assert np.all(g_drop[1:] == 0) and np.any(g_full[1:] != 0)


def test_perturb_spike_times_identity_missing_spikes_and_clipping():
    key = jax.random.PRNGKey(3)
    t = jnp.asarray([[0.0, 0.01, jnp.inf, 0.05], [jnp.inf, 0.2, 0.3, 0.001]])
    np.testing.assert_array_equal(coding.perturb_spike_times(key, t), t)
    out = coding.perturb_spike_times(key, t, jitter=0.05, drop=0.3, t_min=0.0)
    assert out.shape == t.shape and out.dtype == t.dtype
    assert np.all(~np.isfinite(np.asarray(out))[~np.isfinite(np.asarray(t))])  # missing stay missing
    assert np.all(np.asarray(out)[np.isfinite(np.asarray(out))] >= 0.0)
    everything = coding.perturb_spike_times(key, t, drop=1.0)
    assert not np.any(np.isfinite(np.asarray(everything)))
    g = jax.grad(lambda t: jnp.sum(jnp.where(jnp.isfinite(t2 := coding.perturb_spike_times(key, t, jitter=1e-3)),
                                             t2, 0.0)))(jnp.asarray([0.5, 0.6]))
    np.testing.assert_array_equal(g, [1.0, 1.0])


def test_perturb_spike_times_statistics():
    # deletion is Bernoulli(drop) per spike; the shift of spikes far from t_min is N(0, jitter^2)
    n, p, s = 200_000, 0.3, 0.01
    t = jnp.full((n,), 1.0)
    out = np.asarray(coding.perturb_spike_times(jax.random.PRNGKey(0), t, jitter=s, drop=p))
    kept = np.isfinite(out)
    assert abs((1 - kept.mean()) - p) < 4 * np.sqrt(p * (1 - p) / n)
    shift = out[kept] - 1.0
    m = kept.sum()
    assert abs(shift.mean()) < 4 * s / np.sqrt(m)
    assert abs(shift.std() / s - 1.0) < 4 / np.sqrt(2 * m)


def test_perturb_spike_times_traced_levels_and_bad_levels():
    t = jnp.linspace(0.0, 0.1, 50)
    f = jax.jit(jax.vmap(lambda j: coding.perturb_spike_times(jax.random.PRNGKey(1), t, jitter=j)))
    out = np.asarray(f(jnp.asarray([0.0, 0.01])))
    np.testing.assert_array_equal(out[0], np.asarray(t))
    assert np.any(out[1] != np.asarray(t))
    with pytest.raises(ValueError, match="jitter"):
        coding.perturb_spike_times(jax.random.PRNGKey(0), t, jitter=-1.0)
    with pytest.raises(ValueError, match="drop"):
        coding.perturb_spike_times(jax.random.PRNGKey(0), t, drop=1.5)
