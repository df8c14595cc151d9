import gc
import os
import pathlib
import shutil
import tempfile


def _share_compiled_programs():
    """One persistent XLA compilation cache for the whole test run; returns the folder it created.

    Most of the suite's time is compilation, and many programs are compiled again and again: by
    each test module (``_release_compiled_programs`` below drops them), by both xdist workers, and
    by the experiment scripts the tests start as fresh processes. JAX's persistent compilation cache
    (keyed on the program, the compile options and the jax/jaxlib versions, so a hit is the same
    executable) lets every process reuse what another one compiled. The folder is set in the
    environment before jax is imported, so xdist workers and script subprocesses inherit it; it is
    new for each run (cold, as on a clean clone) and removed when the run ends. A
    ``JAX_COMPILATION_CACHE_DIR`` set by the user is used as it is and kept.
    """
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    path = tempfile.mkdtemp(prefix="jaxsnn-tests-xla-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = path
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # tests compile many small programs
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    return path


_CREATED_CACHE = _share_compiled_programs()

import jax  # noqa: E402  (after the cache folder is in the environment)
import pytest  # noqa: E402

# jax reads these variables when it is imported; set them again in case a plugin imported it first
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
if _CREATED_CACHE:
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes",
                      int(os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"]))


def pytest_unconfigure(config):
    if _CREATED_CACHE:
        shutil.rmtree(_CREATED_CACHE, ignore_errors=True)

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
