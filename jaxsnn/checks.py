r"""Argument checks inside ``jit``: an opt-in with :mod:`jax.experimental.checkify`.

The layer functions check their arguments in two ways:

* **Shapes and static arguments** are known while tracing, so they are checked everywhere, inside
  ``jit``/``vmap``/``grad`` too, and raise ``ValueError("name: expected ..., got ...")``.
* **Values** (a NaN or ``-inf`` input time, a non-finite weight, a threshold ``<= 0``, a ``beta``
  outside ``[0, 1]``, negative delays, ...) are checked where they are known: on concrete arrays,
  i.e. outside ``jit``. Inside ``jit`` they are abstract and the checks are skipped by default, so
  a jitted training step costs nothing extra.

:func:`checked` switches the value checks on inside ``jit``: it traces ``fn`` with every value check
staged as a ``checkify.check`` of the same condition, runs it, and raises the first failed check
as an error naming the argument. Use it to debug a jitted function; leave it out of production
steps (each check is a reduction over its array). ``checkify`` cannot look through a ``jax.vmap`` of
the library's event loops ("checkify-of-vmap-of-while"): check the batched call (the layer
functions take a batch axis) or put the ``vmap`` outside the checked function's jitted core.

================================  ===========================  ==============================
argument                          outside ``jit``              inside ``jit``
================================  ===========================  ==============================
shapes, static options            ``ValueError``               ``ValueError``
values (times, weights, ...)      ``ValueError``               skipped; with :func:`checked`:
                                                               ``checkify.JaxRuntimeError``
================================  ===========================  ==============================

>>> import jax.numpy as jnp
>>> from jaxsnn import checks, srm
>>> f = checks.checked(lambda t: srm.first_spike_times(t, jnp.ones((2, 1)), threshold=1.0))
>>> f(jnp.array([[0.0, 1.0]]))
Array([[1.]], dtype=float32)
>>> try:
...     f(jnp.array([[0.0, -jnp.inf]]))
... except Exception as e:
...     print(str(e).splitlines()[0])
t_in: expected finite times or +inf (no spike)...

References: JAX documentation, *The checkify transformation*
(https://docs.jax.dev/en/latest/debugging/checkify_guide.html).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
from jax.experimental import checkify

from jaxsnn._internal import checks_in_jit

__all__ = ["checked"]


def checked(fn: Callable) -> Callable:
    """``fn``, jitted, with the library's value checks active inside it.

    Args:
      fn: a function of arrays (not yet jitted: a function jitted and called before may hold a
        trace without the checks) that calls jaxsnn's layer functions.
    Returns:
      a function with ``fn``'s arguments and result that raises ``checkify.JaxRuntimeError``
      (message ``"name: expected ..."``) when a value check fails. Its trace is cached as
      ``jax.jit``'s is.
    """
    run = jax.jit(checkify.checkify(fn))

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with checks_in_jit():  # the trace (first call, new shapes) stages the checks
            err, out = run(*args, **kwargs)
        err.throw()
        return out

    return wrapper
