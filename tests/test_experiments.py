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
