"""Python lists are accepted, empty inputs give empty (or silent) outputs or a named error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsnn import dlif, lif, srm


def test_lists_give_the_same_result_as_arrays():
    t, w = [0.0, 1.0], [[1.0, 0.5], [1.0, 2.0]]
    np.testing.assert_array_equal(srm.first_spike_times(t, w, 1.0),
                                  srm.first_spike_times(jnp.array(t), jnp.array(w), 1.0))
    tl = [[0.0], [1.0]]
    np.testing.assert_array_equal(lif.spike_times(tl, w, tau_syn=1.0, threshold=0.1),
                                  lif.spike_times(jnp.array(tl), jnp.array(w), tau_syn=1.0, threshold=0.1))
    x = np.ones((3, 2)).tolist()
    for a, b in zip(dlif.simulate(x, w, beta=0.9, threshold=1.0),
                    dlif.simulate(jnp.array(x), jnp.array(w), beta=0.9, threshold=1.0)):
        np.testing.assert_array_equal(a, b)


def test_empty_batch_gives_an_empty_output_and_zero_gradients():
    out = srm.first_spike_times(jnp.zeros((0, 3)), jnp.ones((3, 2)), 1.0)
    assert out.shape == (0, 2)
    g = jax.grad(lambda w: jnp.sum(srm.first_spike_times(jnp.zeros((0, 3)), w, 1.0)))(jnp.ones((3, 2)))
    np.testing.assert_array_equal(g, 0.0)
    assert lif.spike_times(jnp.zeros((0, 3, 1)), jnp.ones((3, 2)), tau_syn=1.0, threshold=0.1).shape == (0, 2, 1)


def test_no_input_neuron_means_no_spike():
    # the potential of a neuron without inputs stays 0 < threshold
    np.testing.assert_array_equal(srm.first_spike_times(jnp.zeros((4, 0)), jnp.ones((0, 2)), 1.0), np.inf)
    out = lif.spike_times(jnp.zeros((4, 0, 1)), jnp.ones((0, 2)), tau_syn=1.0, threshold=0.1, max_spikes=3)
    assert out.shape == (4, 2, 3) and np.all(np.isinf(out))


def test_dlif_without_time_steps_or_with_nan_weights_raises_naming_the_argument():
    with pytest.raises(ValueError, match="inputs: expected at least one time step"):
        dlif.simulate(jnp.ones((0, 3, 2)), jnp.ones((2, 4)), beta=0.9, threshold=1.0)
    with pytest.raises(ValueError, match="weights: expected finite values"):
        dlif.simulate(jnp.ones((5, 3, 2)), jnp.full((2, 4), jnp.nan), beta=0.9, threshold=1.0)
