"""The experiment scripts run end to end (tiny settings) and write their results."""

import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "experiments"))


def test_yinyang_script_runs_one_seed_and_several_seeds_as_a_sweep(tmp_path):
    import yinyang

    args = ["--epochs", "2", "--hidden", "16", "--quiet"]
    one = yinyang.main(args + ["--out", str(tmp_path / "one")])
    saved = json.loads((tmp_path / "one" / "result.json").read_text())
    assert saved["summary"]["test_acc"] == one["summary"]["test_acc"]
    assert len(saved["runs"][0]["history"]) == 2 and saved["command"].startswith("python experiments/yinyang.py")
    for f in ("accuracy.png", "decision_map.png", "results.csv", "metrics.jsonl", "checkpoint.msgpack"):
        assert (tmp_path / "one" / f).exists(), f
    two = yinyang.main(args + ["--seeds", "0", "1", "--out", str(tmp_path / "two")])
    # Seed 0 of the two-seed sweep is the one-seed run.
    assert two["summary"]["test_acc"]["per_seed"][0] == pytest.approx(one["summary"]["test_acc"]["mean"], abs=1e-6)
    rows = (tmp_path / "two" / "results.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("seed,epoch,")


def test_mnist_script_runs_resumes_and_writes_results(tmp_path, shared_data):
    import mnist_srm

    args = ["--data-dir", str(shared_data), "--limit", "256", "--test-limit", "500", "--hidden", "32", "--batch-size", "64",
            "--out", str(tmp_path), "--quiet"]
    mnist_srm.main(args + ["--epochs", "1"])
    first = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(first) == 1
    # A second call with more epochs resumes after the saved epoch instead of starting over.
    result = mnist_srm.main(args + ["--epochs", "2"])
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["epoch"] == 2 and lines[0] == first[0]
    assert 0.0 <= result["summary"]["test_acc"]["mean"] <= 1.0 and (tmp_path / "accuracy.png").exists()
    assert result["summary"]["test_spikes_hidden"]["mean"] > 0


SCRIPTS = sorted(p.stem for p in (pathlib.Path(__file__).resolve().parents[1] / "experiments").glob("*.py")
                 if p.stem != "common")


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_experiment_documents_the_common_flags(script, capsys):
    module = __import__(script)
    with pytest.raises(SystemExit):
        module.main(["--help"])
    out = capsys.readouterr().out
    for flag in ("--dataset", "--model", "--epochs", "--seeds", "--out", "--data-dir", "--quiet"):
        assert flag in out, (script, flag)


def _write_idx(path, array):
    import gzip

    import numpy as np

    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.asarray(array, np.uint8).tobytes())


@pytest.mark.parametrize("model", ["multi", "single"])
def test_lif_script_runs_on_synthetic_emnist_balanced(tmp_path, model):
    import numpy as np

    import mnist_lif
    from jaxsnn import data

    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "emnist"
    folder.mkdir(parents=True)
    for sp, n in (("train", 60), ("test", 20)):
        img_f, lab_f = data.DATASETS["emnist/balanced"][sp]
        img = rng.integers(0, 256, (n, 28, 28)) * (rng.random((n, 28, 28)) < 0.2)
        _write_idx(folder / img_f, img)
        _write_idx(folder / lab_f, rng.integers(0, 47, n))
    out = tmp_path / "out"
    result = mnist_lif.main(["--dataset", "emnist/balanced", "--model", model, "--epochs", "1", "--hidden", "12",
                             "--max-spikes", "3", "3", "--batch-size", "20", "--no-verify", "--quiet",
                             "--data-dir", str(tmp_path / "data"), "--out", str(out)])
    assert result["config"]["max_spikes"] == (3, 3) and "47" in result["model"]
    saved = json.loads((out / "result.json").read_text())
    assert set(saved["noise_robustness"]) == {"jitter", "delete"} and len(saved["accuracy_over_time"]["time"]) == 41
    for f in ("accuracy.png", "latency_noise.png", "results.csv", "metrics.jsonl"):
        assert (out / f).exists(), f
