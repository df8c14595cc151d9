"""jaxsnn.energy: synapse counts against brute-force enumeration, energies against an explicit
event-by-event access count of a small network, and the properties of the efficiency curves."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsnn import energy


def conv_connections(h, w, c_in, c_out, k, stride, pad):
    """Every (input index, output index) pair of a convolution, by enumeration."""
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    pairs = []
    for oy, ox, co in itertools.product(range(oh), range(ow), range(c_out)):
        for dy, dx, ci in itertools.product(range(k), range(k), range(c_in)):
            y, x = oy * stride - pad + dy, ox * stride - pad + dx
            if 0 <= y < h and 0 <= x < w:
                pairs.append(((y * w + x) * c_in + ci, (oy * ow + ox) * c_out + co))
    return pairs, oh * ow * c_out


@pytest.mark.parametrize("h,w,c_in,c_out,k,stride,pad", [(5, 5, 2, 3, 3, 1, 0), (7, 6, 1, 2, 3, 2, 1),
                                                          (9, 9, 3, 2, 5, 2, 2), (4, 4, 2, 2, 4, 1, 0)])
def test_conv_synapses_match_enumeration(h, w, c_in, c_out, k, stride, pad):
    layer = energy.conv2d(h, w, c_in, c_out, k, stride=stride, padding=pad)
    pairs, n_out = conv_connections(h, w, c_in, c_out, k, stride, pad)
    assert layer.synapses == len(pairs) and layer.n_out == n_out and layer.n_in == h * w * c_in
    assert layer.params == k * k * c_in * c_out


def test_alexnet_shapes_chain():
    net = energy.alexnet()
    assert [l.name for l in net] == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    # conv1 output 55x55x96; conv2-5 keep 27x27 / 13x13 (padding), fc6 reads the pooled 6x6x256
    assert net[0].n_out == 55 * 55 * 96 and net[1].n_out == 27 * 27 * 256 and net[4].n_out == 13 * 13 * 256
    assert net[5].n_in == 6 * 6 * 256 and net[-1].n_out == 1000
    assert sum(l.params for l in net[5:]) == 9216 * 4096 + 4096 * 4096 + 4096 * 1000


def access_count_simulation(layers_pairs, spikes_in, T, costs):
    """Walk every spike of a small SNN event by event and add up what each one costs."""
    E = dict(compute=0.0, local=0.0, distant=0.0)
    for li, (pairs, n_in, n_out) in enumerate(layers_pairs):
        targets = {}
        for i, o in pairs:
            targets.setdefault(i, []).append(o)
        for i, count in enumerate(spikes_in[li]):
            if li > 0:
                E["distant"] += count * costs.e_distant  # written by the previous layer
            E["distant"] += count * costs.e_distant  # read by this layer
            for _ in range(int(count)):
                for _o in targets.get(i, []):
                    E["compute"] += costs.add
                    E["distant"] += costs.e_distant  # the weight
                    E["local"] += 2 * costs.e_local  # membrane read + write
        for _step in range(T):
            for _o in range(n_out):
                E["compute"] += costs.mul + costs.add
                E["local"] += 2 * costs.e_local
    return E


def test_snn_energy_matches_event_by_event_count():
    rng = np.random.default_rng(0)
    conv = energy.conv2d(5, 5, 2, 3, 3, stride=1, padding=1)
    pairs_c, _ = conv_connections(5, 5, 2, 3, 3, 1, 1)
    fc = energy.dense(conv.n_out, 4)
    pairs_f = [(i, o) for i in range(conv.n_out) for o in range(4)]
    T = 3
    # the conv layer: every input spikes the same number of times (exact for mean fan-out);
    # the dense layer: any pattern
    s0 = np.full(conv.n_in, 2)
    s1 = rng.integers(0, 4, conv.n_out)
    costs = energy.EnergyCosts(local=2.0, distant=30.0)
    ref = access_count_simulation([(pairs_c, conv.n_in, conv.n_out), (pairs_f, fc.n_in, fc.n_out)], [s0, s1], T,
                                  costs)
    got = energy.snn_energy([conv, fc], jnp.array([s0.sum(), s1.sum()]), neuron_updates=T, costs=costs)
    for k in ("compute", "local", "distant"):
        assert float(got[k]) == pytest.approx(ref[k], rel=1e-6), k
    assert float(got["events"]) == pytest.approx(2 * len(pairs_c) + sum(s1[i] * 4 for i in range(conv.n_out)))


def test_ann_energy_by_hand_for_one_dense_layer():
    costs = energy.EnergyCosts(mul=3.0, add=1.0, local=2.0, distant=10.0)
    layer = energy.dense(3, 2)  # 6 MACs, 6 weights, 3 inputs, 2 outputs
    base = energy.ann_energy([layer], costs, reuse="base")
    # base: per MAC a distant weight and input read and a local partial-sum read + write
    assert base == dict(compute=24.0, local=24.0, distant=(12 + 2) * 10.0, total=24.0 + 24.0 + 140.0)
    opt = energy.ann_energy([layer], costs, reuse="opt")
    # opt: per MAC four local accesses (weight, input, partial sum read + write); each weight,
    # input and output crosses distant memory once
    assert opt == dict(compute=24.0, local=48.0, distant=(6 + 3 + 2) * 10.0, total=24.0 + 48.0 + 110.0)


def test_sram_energy_follows_horowitz():
    # Horowitz 2014: 10, 20, 100 pJ per 64-bit read at 8 KiB, 32 KiB, 1 MiB
    for kib, pj64 in ((8, 10.0), (32, 20.0), (1024, 100.0)):
        assert energy.EnergyCosts.sram(kib) == pytest.approx(pj64 / 2, rel=0.15)
    assert energy.EnergyCosts().mac == pytest.approx(4.6)
    with pytest.raises(ValueError, match="positive"):
        energy.EnergyCosts.sram(0)


def test_efficiency_curves():
    net = energy.alexnet()
    rates = jnp.linspace(0.01, 2.0, 200)
    eff = {(T, r): np.asarray(energy.efficiency(net, rates, time_steps=T, reuse=r)) for T in (1, 2, 4) for r in
           ("base", "opt")}
    for v in eff.values():
        assert np.all(np.diff(v) < 0)  # more spikes, less efficient
    for r in ("base", "opt"):
        assert np.all(eff[(2, r)] < eff[(1, r)]) and np.all(eff[(4, r)] < eff[(2, r)])
    assert np.all(eff[(1, "base")] > eff[(1, "opt")])  # the optimized ANN is the harder reference
    # the SNN wins at low rates and loses at high ones against both accelerators
    assert eff[(1, "opt")][0] > 1 > eff[(1, "opt")][-1]
    # the crossover, located by bisection, is where the two energies agree
    lo, hi = 0.01, 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if float(energy.efficiency(net, mid, reuse="opt")) > 1 else (lo, mid)
    n_in = jnp.asarray([l.n_in for l in net], float)
    snn = energy.snn_energy(net, lo * n_in, neuron_updates=1, output_spikes=lo * 1000)["total"]
    assert float(snn) == pytest.approx(energy.ann_energy(net, reuse="opt")["total"], rel=1e-6)
    # with the default (Horowitz 45 nm) constants the T = 1 crossover against the optimized ANN
    # lies in the 0.3-0.5 spikes per synapse of Fono et al. (Figure 3)
    assert 0.3 < lo < 0.5


def test_batched_and_jitted_counting():
    a = jnp.array([[0.1, jnp.inf, 0.3], [jnp.inf, jnp.inf, 0.2]])  # [B, n]
    h = jnp.array([[[0.1, 0.2], [jnp.inf, jnp.inf]], [[0.4, jnp.inf], [0.5, jnp.inf]]])  # [B, n, K]
    np.testing.assert_array_equal(energy.spike_counts(a, h), [[2, 2], [1, 2]])
    trains = jnp.array(np.random.default_rng(1).integers(0, 2, (4, 2, 5)))  # [T, B, n]
    np.testing.assert_array_equal(energy.spike_counts(trains, time_major=True)[:, 0], trains.sum(axis=(0, 2)))
    net = [energy.dense(3, 2), energy.dense(2, 2)]
    counts = energy.spike_counts(a, h)
    batched = jax.jit(lambda c: energy.snn_energy(net, c, neuron_updates=0)["total"])(counts)
    single = [float(energy.snn_energy(net, counts[b], neuron_updates=0)["total"]) for b in range(2)]
    np.testing.assert_allclose(batched, single, rtol=1e-6)
    np.testing.assert_allclose(energy.spikes_per_synapse(net, counts), (counts[:, 0] * 2 + counts[:, 1] * 2) / 10)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="layers"):
        energy.ann_energy([])
    with pytest.raises(ValueError, match="reuse"):
        energy.ann_energy([energy.dense(2, 2)], reuse="ideal")
    with pytest.raises(ValueError, match="input_spikes"):
        energy.snn_energy([energy.dense(2, 2)], jnp.ones(3))
    with pytest.raises(ValueError, match="kernel"):
        energy.conv2d(3, 3, 1, 1, 5)
    with pytest.raises(ValueError, match="n_in"):
        energy.dense(0, 3)
    # hand-built layers are checked field by field
    with pytest.raises(ValueError, match="n_out"):
        energy.ann_energy([energy.Layer("bad", 3, -2, 6, 6)])
    with pytest.raises(ValueError, match="synapses"):
        energy.snn_energy([energy.Layer("bad", 3, 2, 7, 6)], jnp.ones(1))
    # spike counts: non-negative, and at most neurons x max_spikes into each layer and out of the last
    net = [energy.dense(3, 2), energy.dense(2, 1)]
    with pytest.raises(ValueError, match="input_spikes must be non-negative"):
        energy.snn_energy(net, jnp.array([-1.0, 0.0]))
    with pytest.raises(ValueError, match=r"input_spikes\[layer 1\] = 5 exceeds .* 4"):
        energy.snn_energy(net, jnp.array([[1.0, 1.0], [6.0, 5.0]]), max_spikes=2)
    with pytest.raises(ValueError, match="output_spikes = 3 exceeds"):
        energy.snn_energy(net, jnp.array([1.0, 1.0]), output_spikes=3.0, max_spikes=2)
    at_bound = energy.snn_energy(net, jnp.array([6.0, 4.0]), output_spikes=2.0, max_spikes=2)
    assert float(at_bound["events"]) == 6 * 2 + 4 * 1
    # under jit the counts are traced: no check, same numbers
    jitted = jax.jit(lambda x: energy.snn_energy(net, x, max_spikes=2)["total"])
    assert float(jitted(jnp.array([6.0, 4.0]))) == pytest.approx(
        float(energy.snn_energy(net, jnp.array([6.0, 4.0]))["total"]))
