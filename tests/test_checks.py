"""jaxsnn.checks.checked: the value checks of the layer functions inside jit (checkify), opt-in.

Each bad value below raises a ValueError naming the argument outside jit; under plain jit it passes
unchecked (the documented default); under ``checks.checked`` it raises checkify's error with the
same name. Good values give the same result with and without the checks.
"""

import jax
import jax.numpy as jnp
import pytest
from jax.experimental import checkify

from jaxsnn import checks, dlif, lif, srm

W = jnp.array([[1.0, 0.5], [0.5, 1.0]])
T = jnp.array([[0.0, 1.0]])


def srm_call(t=T, w=W, threshold=1.0, delays=None):
    return srm.first_spike_times(t, w, threshold=threshold, delays=delays)


def lif_call(t=T, w=W, threshold=0.1):
    return lif.spike_times(t[..., None], w, tau_syn=1.0, threshold=threshold)


def dlif_call(x=jnp.ones((3, 1, 2)), w=W, beta=0.5, threshold=1.0):
    return dlif.simulate(x, w, beta=beta, threshold=threshold)[0]


BAD = {  # name -> (function of one array argument, bad value, argument named in the error)
    "srm -inf time": (lambda t: srm_call(t=t), jnp.array([[0.0, -jnp.inf]]), "t_in"),
    "srm NaN time": (lambda t: srm_call(t=t), jnp.array([[0.0, jnp.nan]]), "t_in"),
    "srm NaN weight": (lambda w: srm_call(w=w), W.at[0, 0].set(jnp.nan), "weights"),
    "srm zero threshold": (lambda th: srm_call(threshold=th), jnp.array(0.0), "threshold"),
    "srm negative delay": (lambda d: srm_call(delays=d), -jnp.ones((2, 2)), "delays"),
    "lif -inf time": (lambda t: lif_call(t=t), jnp.array([[0.0, -jnp.inf]]), "t_in"),
    "lif inf weight": (lambda w: lif_call(w=w), W.at[1, 0].set(jnp.inf), "weights"),
    "dlif beta 1.5": (lambda b: dlif_call(beta=b), jnp.array(1.5), "beta"),
    "dlif negative threshold": (lambda th: dlif_call(threshold=th), jnp.array(-1.0), "threshold"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_value_raises_outside_jit_passes_plain_jit_and_raises_under_checked(case):
    fn, bad, name = BAD[case]
    with pytest.raises(ValueError, match=f"^{name}: expected"):
        fn(bad)
    jax.jit(fn)(bad)  # default: no value check inside jit, no error
    with pytest.raises(checkify.JaxRuntimeError, match=f"{name}: expected"):
        checks.checked(fn)(bad)


@pytest.mark.parametrize("fn", [srm_call, lif_call, dlif_call], ids=["srm", "lif", "dlif"])
def test_good_values_give_the_same_result_with_the_checks(fn):
    checked = checks.checked(fn)
    assert jnp.array_equal(checked(), fn(), equal_nan=True)
    assert jnp.array_equal(checked(), jax.jit(fn)(), equal_nan=True)  # the cached trace, called again


def test_checked_works_under_grad_on_a_batch():
    # (no vmap inside: checkify rejects a vmap of the event loops; the layer functions take batches)
    loss = lambda w, t: jnp.sum(jnp.where(jnp.isfinite(s := srm_call(t=t, w=w)), s, 0.0))
    g = checks.checked(jax.grad(loss))
    ts = jnp.concatenate([T, T + 0.5])
    assert jnp.allclose(g(W, ts), jax.grad(loss)(W, ts))
    with pytest.raises(checkify.JaxRuntimeError, match="t_in: expected"):
        g(W, ts.at[1, 0].set(-jnp.inf))
