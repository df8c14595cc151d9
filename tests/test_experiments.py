"""The experiment scripts run end to end (tiny settings) and write their results."""

import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "experiments"))


def test_yinyang_script_runs_and_writes_results(tmp_path):
    import yinyang

    result = yinyang.main(["--epochs", "2", "--hidden", "16", "--out", str(tmp_path), "--quiet"])
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["test_acc"] == result["test_acc"] and 0.0 <= result["test_acc"] <= 1.0
    assert len(saved["history"]) == 2 and saved["command"].startswith("python experiments/yinyang.py")
    assert (tmp_path / "accuracy.png").exists() and (tmp_path / "decision_map.png").exists()


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
    assert len(lines) == 2 and json.loads(lines[1])["epoch"] == 2
    assert 0.0 <= result["test_acc"] <= 1.0 and (tmp_path / "accuracy.png").exists()


def test_help_documents_the_common_flags(capsys):
    import yinyang

    with pytest.raises(SystemExit):
        yinyang.main(["--help"])
    out = capsys.readouterr().out
    for flag in ("--dataset", "--epochs", "--seed", "--out", "--data-dir"):
        assert flag in out
