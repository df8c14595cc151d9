"""Varying manual axes under ``jax.shard_map``: loop carries built from constants vary like the data.

Inside ``jax.shard_map`` (with its default ``check_vma=True``) every array has a type-level set of
mesh axes along which its value *varies* (differs between devices): the batch shard does, a
replicated weight matrix does not. A ``lax.while_loop`` / ``scan`` / ``fori_loop`` must return its
carry with the same set it was given, so a carry initialized with ``jnp.zeros`` (varies along no
axis) that the loop body mixes with the batch (varies along the data axis) is rejected. The event
loops of the spiking layers are all like that; :func:`vary_like` marks such initial carries as
varying along every axis along which the data varies. Outside ``shard_map`` (no manual axes) it
returns its argument unchanged, so it costs nothing in plain ``jit``/``vmap``/``grad`` code.
"""

from __future__ import annotations

import jax

__all__ = ["cond", "varying_axes", "vary_like"]


def _axes(x) -> frozenset:
    typeof = getattr(jax, "typeof", None)
    if typeof is None:  # JAX without varying-axis types
        return frozenset()
    aval = typeof(x)
    mat = getattr(aval, "mat", None)  # JAX >= 0.10: aval.mat.varying; 0.6 - 0.9: aval.vma
    return frozenset(mat.varying if mat is not None else getattr(aval, "vma", ()))


def varying_axes(*trees) -> frozenset:
    """The mesh axes along which any array in ``trees`` varies (empty outside ``shard_map``)."""
    return frozenset().union(*(_axes(x) for x in jax.tree.leaves(trees)))


def vary_like(tree, *refs):
    """``tree`` with every array marked varying along each axis along which ``tree`` or ``refs`` varies."""
    axes = varying_axes(tree, refs)
    if not axes:
        return tree
    pcast = getattr(jax.lax, "pcast", None)

    def cast(x):
        missing = tuple(sorted(axes - _axes(x)))
        if not missing:
            return x
        return pcast(x, missing, to="varying") if pcast is not None else jax.lax.pvary(x, missing)

    return jax.tree.map(cast, tree)


def cond(pred, true_fun, false_fun, *operands):
    """``jax.lax.cond`` whose two branches both return arrays varying like ``operands``.

    A branch that returns constants (e.g. zeros when there is nothing to do) varies along no axis,
    while the other one, computed from the batch, varies along the data axis; ``lax.cond`` needs
    both to match.
    """
    def like(fun):
        return lambda *ops: vary_like(fun(*ops), *ops)

    return jax.lax.cond(pred, like(true_fun), like(false_fun), *operands)
