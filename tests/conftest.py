import gc
import os
import pathlib

import jax
import pytest

# Oracle comparisons and finite differences run in float64.
jax.config.update("jax_enable_x64", True)

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    path = pathlib.Path(os.environ.get("JAXSNN_TEST_DATA", SHARED_DATA))
    if not (path / "mnist").is_dir():
        pytest.skip(f"official MNIST files not found in {path} (set JAXSNN_TEST_DATA)")
    return path


def _mappings():
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs(request):
    """Drop every compiled program after each test module.

    One process compiles thousands of XLA programs over the suite; each one keeps memory
    mappings alive, and after enough of them the compiler crashed (segmentation fault while
    compiling, only late in a full run). Clearing the caches between modules keeps the process
    far from the kernel's mapping limit (``/proc/sys/vm/max_map_count``).
    """
    yield
    before = _mappings()
    jax.clear_caches()
    gc.collect()
    log = os.environ.get("JAXSNN_TEST_MAPS_LOG")
    if log:  # diagnostics: memory mappings of the process after each module, before and after clearing
        with open(log, "a") as out:
            out.write(f"{request.module.__name__} {before} {_mappings()}\n")
