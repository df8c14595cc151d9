"""The package's layout rules (docs/architecture.md), read from the source with ``ast``."""

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "jaxsnn"
PRIVATE_MODULES = {"jaxsnn._internal", "jaxsnn._vma"}
CORE = {"jaxsnn.checks", "jaxsnn.srm", "jaxsnn.srm_ramp", "jaxsnn.lif", "jaxsnn.dlif", "jaxsnn.surrogate",
        "jaxsnn.discretize", "jaxsnn.coding", "jaxsnn.losses", "jaxsnn.metrics", "jaxsnn.lambertw",
        "jaxsnn.conv"} | PRIVATE_MODULES


def _modules():
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(), str(path))
    return out


MODULES = _modules()


def _in_core(name):
    return any(name == c or name.startswith(c + ".") for c in CORE)


def _imports(tree):
    """``(module imported, names imported from it)`` for every import statement."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [a.name for a in node.names]


def _edges(name, tree):
    """jaxsnn modules this one imports (``from jaxsnn import srm`` names the submodule)."""
    for mod, names in _imports(tree):
        if not mod.startswith("jaxsnn"):
            continue
        subs = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in MODULES]
        yield from subs or [mod]


def test_the_graph_was_read():
    assert {"jaxsnn.srm", "jaxsnn.lif.forward", "jaxsnn.train.core", "jaxsnn.theory.bounds"} <= set(MODULES)


def test_no_import_cycles():
    graph = {n: {e for e in _edges(n, t) if e in MODULES and e != n} for n, t in MODULES.items()}
    # a package's __init__ importing its own submodules is how it re-exports them; the cycle
    # that matters is between modules of different topics
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in graph[n]:
            if state.get(m) == "open":
                cycle = stack[stack.index(m):] + [m]
                if not all(a.startswith(b + ".") or b.startswith(a + ".") or a == b for a, b in zip(cycle, cycle[1:])):
                    pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = "done"

    for n in graph:
        if n not in state:
            visit(n)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _in_core(n)))
def test_core_imports_only_the_core_and_jax(name):
    for mod, _ in _imports(MODULES[name]):
        top = mod.split(".")[0]
        assert top not in ("flax", "optax", "chex", "tensorflow", "tensorflow_datasets"), f"{name} imports {mod}"
        if top == "jaxsnn":
            targets = list(_edges(name, ast.Module(body=[ast.ImportFrom(module=mod, names=[ast.alias(n) for n in _],
                                                                          level=0)], type_ignores=[])))
            for t in targets:
                assert _in_core(t), f"core module {name} imports {t}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_names_from_other_modules(name):
    for mod, names in _imports(MODULES[name]):
        if not mod.startswith("jaxsnn") or mod in PRIVATE_MODULES:
            continue
        private = [n for n in names if n.startswith("_") and f"{mod}.{n}" not in MODULES]
        assert not private, f"{name} imports private {private} from {mod}"
    for node in ast.walk(MODULES[name]):  # srm._argsort-style attribute access on an imported jaxsnn module
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            if isinstance(base, ast.Name) and f"jaxsnn.{base.id}" in MODULES and base.id not in ("self",):
                pytest.fail(f"{name} uses {base.id}.{node.attr}")


def test_no_package_file_is_much_over_450_lines():
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > 480}
    assert not long, long
