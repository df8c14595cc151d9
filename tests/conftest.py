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
