"""Spike-count losses, decoders and decision metrics against hand-derived values and brute force."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsnn import coding, losses, metrics

inf = np.inf


def example():
    # neuron 0 spikes at 0.1, 0.3; neuron 1 at 0.2, 0.25, 0.4
    return jnp.array([[[0.1, 0.3, inf], [0.2, 0.25, 0.4]]])


def test_counts_and_count_class():
    t = example()
    np.testing.assert_array_equal(coding.spike_counts(t), [[2, 3]])
    assert int(coding.count_class(t)[0]) == 1
    tie = jnp.array([[[0.3, inf], [0.2, inf]], [[inf, inf], [inf, inf]]])
    np.testing.assert_array_equal(coding.count_class(tie), [1, 0])  # tie -> earlier first spike; silent -> 0


def test_soft_spike_count_gradient_is_the_stated_one():
    t = example()
    c, vjp = jax.vjp(lambda t: losses.soft_spike_count(t, 0.5), t)
    np.testing.assert_array_equal(c, [[2.0, 3.0]])
    (g,) = vjp(jnp.array([[1.0, -2.0]]))
    # d c_k / d t_m = -1/T for every emitted spike, 0 for empty slots
    np.testing.assert_allclose(g, [[[-2.0, -2.0, 0.0], [4.0, 4.0, 4.0]]])


def test_spike_count_loss_value_and_gradient():
    t = example()
    y = jnp.array([0])
    # targets 15 (label) and 3: 0.5 * ((2 - 15)^2 + (3 - 3)^2) = 84.5
    assert float(losses.spike_count_loss(t, y)) == pytest.approx(84.5)
    g = jax.grad(lambda t: losses.spike_count_loss(t, y))(t)
    # dL/dt_m = (c_k - target_k) * (-1): neuron 0 -> +13 per spike, neuron 1 -> 0
    np.testing.assert_allclose(g, [[[13.0, 13.0, 0.0], [0.0, 0.0, 0.0]]])
    ce = losses.spike_count_cross_entropy(t, y)
    assert float(ce) == pytest.approx(-np.log(np.exp(2) / (np.exp(2) + np.exp(3))))


def brute_force_latency(t, decoder):
    """Decision on a fine grid; latency = first grid time from which it equals the final one."""
    grid = np.linspace(0, 0.5, 5001)
    decs = np.asarray(metrics.decisions_over_time(t, grid, decoder))[:, 0]
    final = decs[-1]
    changed = np.nonzero(decs != final)[0]
    return grid[changed[-1] + 1] if len(changed) else grid[0]


@pytest.mark.parametrize("decoder,expected", [("count", 0.4), ("first", 0.1)])
def test_prediction_latency(decoder, expected):
    # count decisions: 0.1 -> n0, 0.2 -> tie, n0 spiked first, 0.25 -> n1, 0.3 -> tie -> n0, 0.4 -> n1
    t = example()
    lat = metrics.prediction_latency(t, decoder)
    assert float(lat[0]) == pytest.approx(expected)
    assert float(lat[0]) == pytest.approx(brute_force_latency(t, decoder), abs=1e-4)


def test_latency_random_against_brute_force():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 0.5, (6, 4, 5)), axis=-1)
    t[rng.random(t.shape) < 0.4] = inf
    t = np.sort(t, axis=-1)
    t[0] = inf  # a sample without output spikes
    lat = np.asarray(metrics.prediction_latency(jnp.asarray(t), "count"))
    assert lat[0] == inf
    for b in range(1, 6):
        assert lat[b] == pytest.approx(brute_force_latency(jnp.asarray(t[b:b + 1]), "count"), abs=2e-4)


def test_activity_metrics_and_accuracy_over_time():
    t = example()
    assert float(metrics.spikes_per_sample(t)) == 5.0
    assert float(metrics.silent_fraction(jnp.array([[[0.1], [inf]]]))) == 0.5
    acc = metrics.accuracy_over_time(t, jnp.array([1]), [0.05, 0.15, 0.26, 0.45])
    np.testing.assert_array_equal(acc, [0.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="decoder"):
        metrics.prediction_latency(t, "rate")


def test_confidence_over_time_counts_only_settled_correct_decisions():
    t = example()  # decisions: n0 from 0.1, n1 at 0.25, n0 at 0.3 (tie), n1 from 0.4 on
    times = [0.05, 0.15, 0.26, 0.45]
    np.testing.assert_array_equal(metrics.confidence_over_time(t, jnp.array([1]), times), [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(metrics.confidence_over_time(t, jnp.array([0]), times), [0.0] * 4)
    # random: never above accuracy over time, and reaches the final accuracy after the last spike
    rng = np.random.default_rng(3)
    r = np.sort(rng.uniform(0, 0.5, (40, 3, 4)), axis=-1)
    r[rng.random(r.shape) < 0.5] = inf
    r = jnp.asarray(np.sort(r, axis=-1))
    y = jnp.asarray(rng.integers(0, 3, 40))
    grid = np.linspace(0, 0.6, 13)
    conf = np.asarray(metrics.confidence_over_time(r, y, grid))
    assert np.all(conf <= np.asarray(metrics.accuracy_over_time(r, y, grid)) + 1e-12)
    assert np.all(np.diff(conf) >= 0)
    assert conf[-1] == pytest.approx(float(np.mean(np.asarray(coding.count_class(r)) == np.asarray(y))))


def test_pareto_frontier_against_brute_force():
    assert metrics.pareto_frontier([0.9, 0.8, 0.95, 0.85], [10, 5, 20, 12]) == [1, 0, 2]
    rng = np.random.default_rng(0)
    a, c = rng.random(60), rng.random(60)
    front = metrics.pareto_frontier(a, c)
    for i in range(60):
        beaten = any(a[j] >= a[i] and c[j] <= c[i] and (a[j] > a[i] or c[j] < c[i]) for j in range(60))
        assert (i in front) == (not beaten)
    assert list(np.argsort(c[front])) == list(range(len(front)))
    with pytest.raises(ValueError, match="same size"):
        metrics.pareto_frontier([1, 2], [1])
