"""The public API is fully annotated, and the layer functions share their argument conventions."""

import importlib
import inspect
import re
import typing

import jax
import pytest

MODULES = [
    "jaxsnn.srm", "jaxsnn.dlif", "jaxsnn.surrogate", "jaxsnn.discretize", "jaxsnn.coding", "jaxsnn.losses",
    "jaxsnn.metrics", "jaxsnn.energy", "jaxsnn.data", "jaxsnn.lambertw", "jaxsnn.lif", "jaxsnn.nn", "jaxsnn.nnx",
    "jaxsnn.conv", "jaxsnn.nn_conv", "jaxsnn.theory.conversion",
]

# classes whose ``__call__`` is public API (Flax modules)
CALLABLE_CLASSES_IN = {"jaxsnn.nn", "jaxsnn.nnx", "jaxsnn.nn_conv"}

LAYER_FUNCTIONS = ["jaxsnn.srm.first_spike_times", "jaxsnn.lif.spike_times", "jaxsnn.dlif.simulate"]
KEYWORD_ONLY_THRESHOLD = ["jaxsnn.lif.spike_times", "jaxsnn.dlif.simulate"]


def _is_function(obj):
    return inspect.isfunction(obj) or isinstance(obj, (jax.custom_jvp, jax.custom_vjp))


def _signature(obj):
    """``inspect.signature``, falling back to the function a ``jax.custom_jvp``/``custom_vjp`` wraps."""
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        for attr in ("__wrapped__", "fun"):
            inner = getattr(obj, attr, None)
            if inner is not None:
                return inspect.signature(inner)
        raise


def _public_functions(module_name):
    """``{qualified name: callable}`` of the module's public functions (and Flax ``__call__`` methods)."""
    module = importlib.import_module(module_name)
    out = {}
    for name in module.__all__:
        obj = getattr(module, name)
        if _is_function(obj):
            out[f"{module_name}.{name}"] = obj
        elif module_name in CALLABLE_CLASSES_IN and inspect.isclass(obj) and "__call__" in vars(obj):
            out[f"{module_name}.{name}.__call__"] = obj.__call__
    return out


def _missing_annotations(fn):
    sig = _signature(fn)
    missing = [p.name for p in sig.parameters.values()
               if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
               and p.name != "self" and p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


@pytest.mark.parametrize("module_name", MODULES)
def test_public_functions_are_annotated(module_name):
    functions = _public_functions(module_name)
    assert functions, f"{module_name}: no public functions found"
    offending = {name: _missing_annotations(fn) for name, fn in functions.items()}
    offending = {name: missing for name, missing in offending.items() if missing}
    assert not offending, "missing annotations: " + "; ".join(
        f"{name}({', '.join(missing)})" for name, missing in sorted(offending.items()))


@pytest.mark.parametrize("module_name", MODULES)
def test_annotations_resolve(module_name):
    # the annotations are strings (``from __future__ import annotations``): every name in them must exist
    unresolved = {}
    for name, fn in _public_functions(module_name).items():
        try:
            typing.get_type_hints(fn)
        except Exception as e:  # NameError, TypeError, ...
            unresolved[name] = f"{type(e).__name__}: {e}"
    assert not unresolved, "annotations that do not resolve: " + "; ".join(
        f"{name}: {err}" for name, err in sorted(unresolved.items()))


def _resolve(path):
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("path", LAYER_FUNCTIONS)
def test_layer_functions_take_threshold(path):
    params = _signature(_resolve(path)).parameters
    assert "threshold" in params, f"{path} has no parameter 'threshold': {list(params)}"
    if path in KEYWORD_ONLY_THRESHOLD:
        kind = params["threshold"].kind
        assert kind is inspect.Parameter.KEYWORD_ONLY, f"{path}: 'threshold' is {kind.description}, not keyword-only"


def _section_entries(doc, sections):
    """``{argument name: first line of its description}`` in the docstring sections named ``sections``
    (Google style: ``Args:`` then indented ``name: text`` lines; ``a, b: text`` documents both)."""
    entries = {}
    header_indent = None
    for line in doc.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.rstrip(":") in sections and stripped.endswith(":"):
            header_indent = indent
            entry_indent = None
            continue
        if header_indent is None or not stripped:
            continue
        if indent <= header_indent:  # the section ended
            header_indent = None
            continue
        if entry_indent is None:
            entry_indent = indent
        if indent == entry_indent:
            m = re.match(r"([\w*]+(?:\s*,\s*[\w*]+)*)\s*:\s*(.*)", stripped)
            if m:
                for name in m.group(1).split(","):
                    entries.setdefault(name.strip().lstrip("*"), m.group(2))
    return entries


def _dt_documentation():
    """``(where, docstring, sections)`` for every public function with a parameter ``dt``. A Flax
    module's ``__call__`` argument ``dt`` overrides the attribute ``dt``, documented in the class."""
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, fn in _public_functions(module_name).items():
            if "dt" not in _signature(fn).parameters:
                continue
            if name.endswith(".__call__"):
                cls = getattr(module, name.rsplit(".", 2)[-2])
                yield name, inspect.getdoc(cls) or "", ("Attributes", "Args")
            else:
                yield name, inspect.getdoc(fn) or "", ("Args",)


def test_dt_is_documented_as_a_step():
    found, offending = [], []
    for name, doc, sections in _dt_documentation():
        found.append(name)
        line = _section_entries(doc, sections).get("dt")
        if line is None:
            offending.append(f"{name} (no '{sections[0]}' entry for dt)")
        elif not re.search(r"\bstep\b", line, flags=re.I):
            offending.append(f"{name} (dt: {line!r})")
    assert "jaxsnn.lif.spike_times" in found and "jaxsnn.discretize.quantize" in found, found
    assert not offending, "dt not documented as a (clock/time) step: " + "; ".join(offending)


def test_section_parser():
    doc = "Summary.\n\nArgs:\n  t: times.\n  dt: time step,\n    continued.\n  a, b: both.\nReturns:\n  dt: no.\n"
    assert _section_entries(doc, ("Args",)) == {"t": "times.", "dt": "time step,", "a": "both.", "b": "both."}
