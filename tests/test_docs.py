"""The documentation runs: every ``>>>`` example in the package, the README's Python blocks and those of the
pages of the documentation site (``docs/*.md``); the site's API reference names every public module."""

import doctest
import importlib
import inspect
import pathlib
import pkgutil
import re
import sys

import jax
import pytest

import jaxsnn

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODULES = sorted(m.name for m in pkgutil.walk_packages(jaxsnn.__path__, "jaxsnn."))

# the layer functions: each carries at least one runnable example
LAYER_FUNCTIONS = [
    "jaxsnn.srm.first_spike_times", "jaxsnn.srm.potential", "jaxsnn.lif.spike_times", "jaxsnn.dlif.simulate",
    "jaxsnn.dlif.integrate", "jaxsnn.dlif.step", "jaxsnn.dlif.beta_from_tau", "jaxsnn.discretize.quantize",
]


@pytest.mark.parametrize("name", ["jaxsnn"] + MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    with jax.enable_x64(False):  # the examples show a user's default (float32) results
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


@pytest.mark.parametrize("path", LAYER_FUNCTIONS)
def test_every_layer_function_has_an_example(path):
    module, name = path.rsplit(".", 1)
    doc = inspect.getdoc(getattr(importlib.import_module(module), name)) or ""
    assert ">>>" in doc, f"{path} has no >>> example"


def test_core_imports_neither_flax_nor_optax():
    # a fresh interpreter: the functional core is usable from any JAX code
    import subprocess

    code = ("import sys, jaxsnn.srm, jaxsnn.lif, jaxsnn.dlif, jaxsnn.surrogate, jaxsnn.discretize, jaxsnn.coding, "
            "jaxsnn.losses, jaxsnn.metrics, jaxsnn.conv; "
            "print(sorted(m for m in ('flax', 'optax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def _python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    blocks = _python_blocks((ROOT / "README.md").read_text())
    assert blocks, "the README has no python block"
    monkeypatch.chdir(tmp_path)  # a block that writes files writes them here
    with jax.enable_x64(False):
        for i, code in enumerate(blocks):
            exec(compile(code, f"README.md block {i}", "exec"), {"__name__": f"readme_{i}"})


# A ```python block of a docs page is skipped only when this comment stands on the line right before its fence
# (for a block that only illustrates, or would take more than a few seconds); keep that the exception.
SKIP_BLOCK = "<!-- docs-test: skip -->"
DOC_PAGES = sorted(p.name for p in (ROOT / "docs").glob("*.md") if "```python" in p.read_text())


@pytest.mark.parametrize("page", DOC_PAGES)
def test_docs_page_python_blocks_run(page, tmp_path, monkeypatch, capsys):
    # the blocks of a page run in order in one namespace, as a reader runs them
    text = (ROOT / "docs" / page).read_text()
    blocks = [(m.group(1), text[:m.start()].rstrip().endswith(SKIP_BLOCK))
              for m in re.finditer(r"```python\n(.*?)```", text, flags=re.S)]
    assert any(not skip for _, skip in blocks), f"docs/{page}: every python block is skipped"
    monkeypatch.chdir(tmp_path)  # a block that writes files writes them here
    namespace = {"__name__": f"docs_{page[:-3].replace('-', '_')}"}
    with jax.enable_x64(False):
        for i, (code, skip) in enumerate(blocks):
            if not skip:
                exec(compile(code, f"docs/{page} block {i}", "exec"), namespace)


def test_api_reference_covers_every_public_module():
    # every public module has a ::: directive in docs/api/*.md (mkdocstrings renders its public names, see mkdocs.yml)
    documented = set()
    for page in (ROOT / "docs" / "api").glob("*.md"):
        documented |= set(re.findall(r"^::: ([\w.]+)", page.read_text(), flags=re.M))
    public = {"jaxsnn"} | {m for m in MODULES if not any(part.startswith("_") for part in m.split("."))}
    assert sorted(public - documented) == []
