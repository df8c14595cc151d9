"""The layer benchmark runs end to end (tiny shapes, one timed call per row): its one-device rows, its
data-parallel rows over two CPU devices, and the JSON it writes. Timing itself is not tested."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("devices", [1, 2])
def test_bench_layers_runs_end_to_end(tmp_path, devices):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "benchmarks.bench_layers", "--batch", "4", "--n-in", "12", "--n-out", "6",
           "--ks", "2", "--repeat", "1", "--slow-repeat", "1", "--devices", str(devices),
           "--only", "srm+delays", "lif multi K=2", "lif walk floor", "--out", str(out)]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    names = [r["case"] for r in result["rows"]]
    expected = ["srm+delays", "lif multi K=2", "lif multi K=2 8-bit times", "lif walk floor"]
    if devices > 1:
        expected = [n for name in expected for n in (name, f"{name}, 2 devices")]
    assert names == expected
    assert len(result["devices"]) == devices
    for r in result["rows"]:
        assert r["layer_ms"] > 0 and r["dense_ms"] > 0 and r["ratio"] == pytest.approx(r["layer_ms"] / r["dense_ms"])
