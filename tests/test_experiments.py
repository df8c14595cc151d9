"""The experiment scripts run end to end (tiny settings) and write their results.

The scripts are the modules of the package ``experiments`` (``python -m experiments.<name>`` from
the repository root); the tests import them from there or run them so. No test writes into the
repository's ``results/`` or ``runs/``: every run gets ``--out`` under ``tmp_path``, or runs in
``tmp_path`` as its working directory when the default output folder is tested.
"""

import importlib
import json
import pathlib
import sys

import pytest

from jaxsnn import energy

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_yinyang_script_runs_one_seed_and_several_seeds_as_a_sweep(tmp_path):
    from experiments import yinyang

    args = ["--epochs", "2", "--hidden", "16", "--quiet"]
    one = yinyang.main(args + ["--out", str(tmp_path / "one")])
    saved = json.loads((tmp_path / "one" / "result.json").read_text())
    assert saved["summary"]["test_acc"] == one["summary"]["test_acc"]
    assert len(saved["runs"][0]["history"]) == 2 and saved["command"].startswith("python -m experiments.yinyang ")
    for f in ("accuracy.png", "decision_map.png", "results.csv", "metrics.jsonl", "checkpoint.msgpack"):
        assert (tmp_path / "one" / f).exists(), f
    two = yinyang.main(args + ["--seeds", "0", "1", "--out", str(tmp_path / "two")])
    # Seed 0 of the two-seed sweep is the one-seed run.
    assert two["summary"]["test_acc"]["per_seed"][0] == pytest.approx(one["summary"]["test_acc"]["mean"], abs=1e-6)
    rows = (tmp_path / "two" / "results.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("seed,epoch,")


def test_mnist_script_runs_resumes_and_writes_results(tmp_path, shared_data):
    from experiments import mnist_srm

    args = ["--data-dir", str(shared_data), "--limit", "256", "--test-limit", "500", "--hidden", "32",
            "--batch-size", "64",
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
    e = result["energy"]  # one bias spike into each layer
    events = (result["input_spikes"] + 1) * 32 + (result["summary"]["test_spikes_hidden"]["mean"] + 1) * 10
    assert e["spikes_per_synapse"] == pytest.approx(events / (785 * 32 + 33 * 10)) and e["snn_nj"] > 0


def test_conv_ttfs_script_converts_exactly_and_fine_tunes(tmp_path, shared_data):
    from experiments import conv_ttfs

    def recorded():  # the recorded results: no file may change
        return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in (ROOT / "results").rglob("*") if p.is_file()}

    before = recorded()
    out = tmp_path / "out"
    result = conv_ttfs.main(["--epochs", "1", "--train-limit", "256", "--test-limit", "128", "--widths", "4",
                             "--dense", "--batch-size", "64", "--finetune-epochs", "1", "--quiet",
                             "--data-dir", str(shared_data), "--out", str(out)])
    saved = json.loads((out / "result.json").read_text())
    assert saved["command"].startswith("python -m experiments.conv_ttfs ") and saved["model"] == "ReLU CNN c4-p-d10"
    c = saved["conversion"]
    assert c["agreement"] >= 0.99 and c == result["conversion"]  # the conversion is exact
    for acc in (c["ann_acc"], c["snn_acc"], saved["finetune"]["snn_acc"], saved["history"][0]["test_acc"]):
        assert 0.0 <= acc <= 1.0
    # every neuron of the construction fires once: 28x28x4 affine, 14x14x4 clamp, 10 output neurons, 3 relays
    assert c["neurons"] == 28 * 28 * 4 + 14 * 14 * 4 + 10 + 3 and c["spikes_per_neuron"] == 1.0
    assert 0.0 <= c["relu_active_fraction"] <= 1.0 and c["latency"] > 0 and c["input_spikes"] == 784
    for f in ("metrics.jsonl", "checkpoint.msgpack", "accuracy.png", "finetune_ann1/metrics.jsonl",
              "finetune_ann1/checkpoint.msgpack"):
        assert (out / f).exists(), f
    # a rerun resumes the trained CNN and converts it with bounds measured on the training images, in float32
    conv_ttfs.main(["--epochs", "1", "--train-limit", "256", "--test-limit", "128", "--widths", "4", "--dense",
                    "--batch-size", "64", "--bounds", "data", "--snn-dtype", "float32", "--quiet",
                    "--data-dir", str(shared_data), "--out", str(out)])
    d = json.loads((out / "result_data_float32.json").read_text())["conversion"]
    assert d["agreement"] >= 0.99 and d["latency"] < c["latency"] and len(d["value_bounds"]) == 1
    assert json.loads((out / "result.json").read_text()) == saved  # the first variant's file is kept
    assert recorded() == before


def test_conv_ttfs_script_runs_on_cifar10_files(tmp_path):
    """The CIFAR-10 path end to end (32x32 RGB images), on generated files in the official format."""
    from test_data_cifar import generated_cifar, write_folder

    from experiments import conv_ttfs

    write_folder(tmp_path / "data", generated_cifar(seed=3, per_batch=8, n_test=12))
    out = tmp_path / "out"
    conv_ttfs.main(["--dataset", "cifar10", "--epochs", "1", "--widths", "2", "--dense", "--batch-size", "8",
                    "--snn-batch", "6", "--quiet", "--data-dir", str(tmp_path / "data"), "--out", str(out)])
    saved = json.loads((out / "result.json").read_text())
    c = saved["conversion"]
    assert saved["model"] == "ReLU CNN c2-p-d10" and saved["n_train"] == 50 and c["n_test"] == 12
    assert c["agreement"] == 1.0 and c["input_spikes"] == 32 * 32 * 3
    assert c["neurons"] == 32 * 32 * 2 + 16 * 16 * 2 + 10 + 3
    with pytest.raises(SystemExit):  # 11 convolutions would pool a 32x32 image 6 times
        conv_ttfs.main(["--dataset", "cifar10", "--widths"] + ["2"] * 11)


def test_conv_srm_direct_script_trains_the_spiking_conv_net_and_resumes(tmp_path, shared_data):
    from experiments import conv_srm_direct

    args = ["--limit", "64", "--test-limit", "40", "--widths", "2", "--kernel", "3", "--batch-size", "32",
            "--quiet", "--data-dir", str(shared_data), "--out", str(tmp_path)]
    conv_srm_direct.main(args + ["--epochs", "1"])
    first = (tmp_path / "metrics.jsonl").read_text().splitlines()
    result = conv_srm_direct.main(args + ["--epochs", "2"])  # resumes after epoch 1
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and lines[0] == first[0] and json.loads(lines[1])["epoch"] == 2
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["model"] == "SRM conv c2-p-d10, exact gradients" and saved["n_train"] == 64
    assert saved["summary"]["test_acc"] == result["summary"]["test_acc"] and len(saved["seconds_per_epoch"]) == 2
    # hidden spikes: at most one per neuron of the 28x28x2 convolution
    assert 0 < saved["summary"]["test_spikes_hidden"]["mean"] <= 28 * 28 * 2
    with pytest.raises(SystemExit):
        conv_srm_direct.main(["--widths", "2", "2", "2", "2", "2"])


# snapshot: a tool, not an experiment; common, presets: shared code and settings
SCRIPTS = sorted(p.stem for p in (ROOT / "experiments").glob("*.py")
                 if p.stem not in ("__init__", "common", "presets", "snapshot"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_experiment_documents_the_common_flags(script, capsys):
    module = importlib.import_module(f"experiments.{script}")
    with pytest.raises(SystemExit):
        module.main(["--help"])
    out = capsys.readouterr().out
    for flag in ("--dataset", "--model", "--epochs", "--seeds", "--out", "--data-dir", "--quiet", "--devices",
                 "--fresh"):
        assert flag in out, (script, flag)
    assert f"usage: python -m experiments.{script} " in out
    assert "runs/" in out  # the default output folder


def _write_idx(path, array):
    import gzip

    import numpy as np

    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.asarray(array, np.uint8).tobytes())


def _synthetic_emnist(root, n_train=60, n_test=20):
    import numpy as np

    from jaxsnn import data

    rng = np.random.default_rng(0)
    folder = root / "data" / "emnist"
    folder.mkdir(parents=True)
    for sp, n in (("train", n_train), ("test", n_test)):
        img_f, lab_f = data.DATASETS["emnist/balanced"][sp]
        img = rng.integers(0, 256, (n, 28, 28)) * (rng.random((n, 28, 28)) < 0.2)
        _write_idx(folder / img_f, img)
        _write_idx(folder / lab_f, rng.integers(0, 47, n))


@pytest.mark.parametrize("model", ["multi", "single"])
def test_lif_script_runs_on_synthetic_emnist_balanced(tmp_path, model):
    from experiments import mnist_lif

    _synthetic_emnist(tmp_path)
    out = tmp_path / "out"
    result = mnist_lif.main(["--dataset", "emnist/balanced", "--model", model, "--epochs", "1", "--hidden", "12",
                             "--max-spikes", "3", "3", "--batch-size", "20", "--no-verify", "--quiet",
                             "--data-dir", str(tmp_path / "data"), "--out", str(out)])
    assert result["config"]["max_spikes"] == (3, 3) and "47" in result["model"]
    saved = json.loads((out / "result.json").read_text())
    assert set(saved["noise_robustness"]) == {"jitter", "delete"} and len(saved["accuracy_over_time"]["time"]) == 41
    assert saved["energy"]["snn_nj"] > 0 and saved["energy"]["ann_opt_nj"] > 0
    for f in ("accuracy.png", "latency_noise.png", "results.csv", "metrics.jsonl"):
        assert (out / f).exists(), f


def test_lif_script_reports_the_epoch_chosen_on_validation_data(tmp_path):
    from experiments import lif_compare, mnist_lif

    _synthetic_emnist(tmp_path, n_train=80)
    out = tmp_path / "out"
    args = ["--dataset", "emnist/balanced", "--model", "single", "--epochs", "3", "--hidden", "12",
            "--batch-size", "20", "--val", "20", "--lr-schedule", "cosine", "--lr", "0.05", "--no-verify", "--quiet",
            "--noise-samples", "10", "--data-dir", str(tmp_path / "data"), "--out", str(out)]
    result = mnist_lif.main(args)
    val = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    assert [v["epoch"] for v in val] == [1, 2, 3]
    accs = [v["val_acc"] for v in val]
    best = accs.index(max(accs)) + 1  # the first epoch with the best validation accuracy
    assert result["selected_epoch"] == best and result["n_val"] == 20 and result["n_train"] == 60
    saved = json.loads((out / "result.json").read_text())
    history = saved["runs"][0]["history"]
    assert len(history) == 3  # the whole run is recorded, the summary is the chosen epoch's
    assert saved["summary"]["test_acc"]["mean"] == history[best - 1]["test_acc"]
    tests = [h["test_acc"] for h in history]  # the reference code's report, recorded beside ours
    assert saved["best_test_over_epochs"] == [dict(seed=0, epoch=tests.index(max(tests)) + 1, test_acc=max(tests))]
    table = lif_compare.main(["--dataset", "emnist/balanced", "--single", str(out), "--out", str(tmp_path / "cmp")])
    assert f"reported: epoch {best}, best on 20 validation images" in table
    with pytest.raises(ValueError, match="--val"):
        mnist_lif.main(args[:-2] + ["--val", "80", "--out", str(tmp_path / "bad")])
    # continued training starts from the chosen epoch's parameters: with lr 0 nothing moves, so
    # its first epoch scores the chosen epoch's validation accuracy again
    again = args[:-2] + ["--epochs", "1", "--lr", "0", "--init-params", str(out / "best_params.msgpack"),
                         "--out", str(tmp_path / "continued")]
    cont = mnist_lif.main(again)
    first = json.loads((tmp_path / "continued" / "validation.jsonl").read_text().splitlines()[0])
    assert first["val_acc"] == max(accs) and cont["init_params"].endswith("best_params.msgpack")
    with pytest.raises(ValueError, match="--init-params"):
        mnist_lif.main(args[:-2] + ["--init-params", str(tmp_path / "missing.msgpack"), "--out", str(tmp_path / "x")])


def test_lif_script_trains_data_parallel_over_two_cpu_devices_like_on_one(tmp_path):
    """``--devices 2`` (fresh processes, float64): the data-parallel run and its validation equal the one-device run."""
    import os
    import subprocess

    _synthetic_emnist(tmp_path, n_train=80)
    env = dict(os.environ, JAX_ENABLE_X64="1")
    env.pop("XLA_FLAGS", None)
    base = ["--dataset", "emnist/balanced", "--model", "multi", "--epochs", "2", "--hidden", "12", "--max-spikes",
            "3", "3", "--batch-size", "20", "--val", "20", "--no-verify", "--quiet", "--noise-samples", "10",
            "--data-dir", str(tmp_path / "data")]
    for name, extra in (("one", []), ("two", ["--devices", "2"])):
        cmd = [sys.executable, "-m", "experiments.mnist_lif", *base, *extra, "--out", str(tmp_path / name)]
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    runs = {name: json.loads((tmp_path / name / "result.json").read_text())["runs"][0]["history"]
            for name in ("one", "two")}
    assert runs["one"][0]["train_loss"] > 0
    for a, b in zip(runs["two"], runs["one"]):
        for k in ("train_loss", "test_spikes_hidden", "test_acc"):
            assert a[k] == pytest.approx(b[k], rel=1e-9), k
    vals = {name: (tmp_path / name / "validation.jsonl").read_text().splitlines() for name in ("one", "two")}
    assert ([json.loads(v)["val_acc"] for v in vals["two"]]
            == pytest.approx([json.loads(v)["val_acc"] for v in vals["one"]]))


def test_snapshot_saves_a_run_into_the_repository_and_restores_it_to_resume(tmp_path):
    from experiments import mnist_lif, snapshot

    _synthetic_emnist(tmp_path, n_train=60)
    run, dest, again = tmp_path / "run", tmp_path / "results" / "partial", tmp_path / "again"
    args = ["--dataset", "emnist/balanced", "--model", "single", "--hidden", "8", "--batch-size", "20",
            "--val", "20", "--no-verify", "--quiet", "--noise-samples", "10", "--data-dir", str(tmp_path / "data")]
    mnist_lif.main(args + ["--epochs", "2", "--out", str(run)])
    rows = snapshot.save(run, dest, checkpoint=True)
    assert rows.count("\n| ") == 2 and "Best validation: epoch" in rows  # one row per epoch
    assert (dest / "resume" / "checkpoint.msgpack").read_bytes() == (run / "checkpoint.msgpack").read_bytes()
    snapshot.restore(dest, again)
    with pytest.raises(ValueError, match="already holds"):
        snapshot.restore(dest, again)
    mnist_lif.main(args + ["--epochs", "3", "--out", str(again)])  # resumes after epoch 2
    before = (run / "metrics.jsonl").read_text().splitlines()
    after = (again / "metrics.jsonl").read_text().splitlines()
    assert len(after) == 3 and after[:2] == before
    assert [json.loads(v)["epoch"] for v in (again / "validation.jsonl").read_text().splitlines()] == [1, 2, 3]
    with pytest.raises(ValueError, match="no resume"):
        snapshot.restore(tmp_path / "nothing", tmp_path / "x")


def test_lif_script_input_augmentation_changes_training_only(tmp_path):
    from experiments import mnist_lif

    _synthetic_emnist(tmp_path, n_train=40)
    base = ["--dataset", "emnist/balanced", "--model", "single", "--epochs", "1", "--hidden", "12",
            "--thresholds", "0.1", "0.2", "--batch-size", "20", "--lr", "0", "--no-verify", "--quiet",
            "--noise-samples", "10",
            "--data-dir", str(tmp_path / "data")]
    mnist_lif.main(base + ["--input-jitter", "0", "--input-drop", "0", "--out", str(tmp_path / "plain")])
    mnist_lif.main(base + ["--input-jitter", "0.01", "--input-drop", "0.5", "--out", str(tmp_path / "aug")])
    plain, aug = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("plain", "aug"))
    h_plain, h_aug = plain["runs"][0]["history"][0], aug["runs"][0]["history"][0]
    assert h_plain["test_spikes_out"] > 0  # outputs fire, so the loss sees the inputs
    # lr 0: the same parameters; perturbed training inputs change the training loss, not the test
    assert h_aug["train_loss"] != h_plain["train_loss"]
    assert h_aug["test_acc"] == h_plain["test_acc"]
    assert aug["config"]["input_jitter"] == 0.01 and aug["config"]["input_drop"] == 0.5
    assert plain["config"]["input_jitter"] == 0.0 and plain["config"]["input_drop"] == 0.0


def test_collapse_diagnosis_replays_the_same_steps_with_and_without_the_drive(tmp_path, shared_data):
    from experiments import lif_collapse, mnist_lif

    common = ["--hidden", "12", "--limit", "100", "--quiet", "--data-dir", str(shared_data)]
    mnist_lif.main(["--model", "single", "--epochs", "1", "--batch-size", "50", "--test-limit", "50",
                    "--noise-samples", "10", "--out", str(tmp_path / "net")] + common)
    out = tmp_path / "collapse"
    result = lif_collapse.main(["--init-params", str(tmp_path / "net" / "checkpoint.msgpack"), "--epochs", "2",
                                "--silent-label-drive", "0", "50", "--window", "2", "--val", "0",
                                "--out", str(out)] + common)
    runs = {g: [json.loads(line) for line in (out / f"steps_drive{g}.jsonl").read_text().splitlines()]
            for g in ("0", "50")}
    assert [len(r) for r in runs.values()] == [4, 4] and result["n_train"] == 100
    # same parameters, same first batch: the first forward pass is the same; the drive only adds
    # a gradient where label neurons were silent
    first = [r[0] for r in runs.values()]
    assert first[0]["out_spikes"] == first[1]["out_spikes"] and first[0]["label_silent"] == first[1]["label_silent"]
    assert (first[0]["grad_norm"] == pytest.approx(first[1]["grad_norm"])) == (first[0]["label_silent"] == 0)
    assert set(result["runs"]) == {"0", "50"} and result["runs"]["0"]["steps"] == 4
    assert (out / "collapse.png").exists()
    # finished weights are read back, not rerun: a new weight joins the same comparison
    (out / "steps_drive50.jsonl").write_text("\n".join(json.dumps(dict(r, loss=-1.0)) for r in runs["50"]) + "\n")
    again = lif_collapse.main(["--init-params", str(tmp_path / "net" / "checkpoint.msgpack"), "--epochs", "2",
                               "--silent-label-drive", "0", "50", "--window", "2", "--val", "0",
                               "--out", str(out)] + common)
    assert again["runs"] == result["runs"]
    assert all(json.loads(line)["loss"] == -1.0 for line in (out / "steps_drive50.jsonl").read_text().splitlines())


@pytest.mark.parametrize("loss", ["membrane", "count"])
def test_dlif_script_runs_and_counts_spikes(tmp_path, shared_data, loss):
    import numpy as np

    from experiments import mnist_dlif
    from jaxsnn import data

    out = tmp_path / "out"
    result = mnist_dlif.main(["--epochs", "1", "--limit", "256", "--test-limit", "200", "--hidden", "32",
                              "--num-steps", "4", "--batch-size", "64", "--loss", loss, "--quiet",
                              "--data-dir", str(shared_data), "--out", str(out)])
    s = result["summary"]
    assert 0.0 <= s["test_acc"]["mean"] <= 1.0 and (out / "accuracy.png").exists()
    # input spikes per sample: T * (mean pixel intensity sum), up to Bernoulli noise over 200 images
    x, _ = data.load_dataset("mnist", "test", data_dir=shared_data)
    p = np.asarray(x[:200], np.float64).reshape(200, -1) / 255.0
    expect, sd = 4 * p.sum(1).mean(), np.sqrt(4 * (p * (1 - p)).sum(1).sum()) / 200
    assert abs(s["test_spikes_in"]["mean"] - expect) < 5 * sd
    assert result["spikes_per_synapse"][0] == pytest.approx(s["test_spikes_in"]["mean"] / 784)
    assert result["synaptic_events_per_sample"] == pytest.approx(
        32 * s["test_spikes_in"]["mean"] + 10 * s["test_spikes_hidden"]["mean"])
    assert result["energy"]["spikes_per_synapse"] == pytest.approx(
        result["synaptic_events_per_sample"] / (784 * 32 + 32 * 10))


def test_dlif_timestep_sweep_writes_table_and_figure(tmp_path, shared_data):
    from experiments import dlif_timesteps

    result = dlif_timesteps.main(["--epochs", "1", "--num-steps", "1", "3", "--limit", "128", "--test-limit", "100",
                                  "--hidden", "16", "--quiet", "--data-dir", str(shared_data), "--out", str(tmp_path)])
    assert [r["T"] for r in result["rows"]] == [1, 3]
    # more steps, more input spikes (the same images, Bernoulli rate per step)
    assert result["rows"][1]["spikes_in"] > 2 * result["rows"][0]["spikes_in"]
    for f in ("summary.json", "table.md", "timesteps.png", "T1/result.json", "T3/result.json"):
        assert (tmp_path / f).exists(), f


def test_expressivity_generalization_part_runs(tmp_path, shared_data):
    from experiments import expressivity

    res = expressivity.main(["--parts", "generalization", "--widths", "4", "--train-samples", "100", "--epochs", "1",
                             "--num-steps", "2", "--data-dir", str(shared_data), "--out", str(tmp_path), "--quiet"])
    rows = res["generalization"]
    assert [r["model"] for r in rows] == ["srm", "dlif"]
    for r in rows:
        assert 0.0 <= r["train_acc"] <= 1.0 and 0.0 <= r["test_acc"] <= 1.0
        assert r["gap"] == r["train_acc"] - r["test_acc"] and r["bound"] > 0
    assert (tmp_path / "generalization.png").exists()
    assert json.loads((tmp_path / "generalization.json").read_text()) == rows


def test_dt_sweep_finetunes_every_dt_and_writes_frontier(tmp_path, shared_data):
    from experiments import dt_sweep

    result = dt_sweep.main(["--limit", "50", "--test-limit", "50", "--pretrain-limit", "50", "--epochs", "1",
                            "--dts", "0", "0.01", "--hidden", "16", "--max-spikes", "3", "3", "--quiet",
                            "--data-dir", str(shared_data), "--out", str(tmp_path)])
    assert [s["dt"] for s in result["summary"]] == [0.0, pytest.approx(0.01)]
    assert len(result["records"]) == 2 and len(result["post_training_quantization"]) == 2
    assert result["pareto_frontier"] and result["within_one_point"]["dts_within_1pt"][0] == 0.0
    assert len(result["confidence_over_time"]["per_config"]) == 2
    assert all(s["energy"]["snn_nj"] > 0 for s in result["summary"])
    for f in ("result.json", "README.md", "dt_sweep.png"):
        assert (tmp_path / f).exists(), f


def test_energy_scripts_write_tables(tmp_path, shared_data):
    from experiments import energy_alexnet, energy_report

    res = energy_alexnet.main(["--out", str(tmp_path / "alexnet")])
    c = res["crossover"]
    assert c["T1_opt"] < c["T1_base"] and abs(c["T2_opt"] - c["T1_opt"] / 2) < 0.05 * c["T1_opt"]
    assert (tmp_path / "alexnet" / "efficiency.png").exists()
    rows = energy_report.main(["--results", str(ROOT / "results"), "--data-dir", str(shared_data),
                               "--out", str(tmp_path / "report")])
    assert rows and all(r["snn_energy_nj"] > 0 and r["ann_opt_energy_nj"] > 0 for r in rows)
    assert (tmp_path / "report" / "README.md").exists()


def test_family_comparison_trains_every_family_on_one_budget(tmp_path, shared_data):
    from experiments import family_comparison

    args = ["--data-dir", str(shared_data), "--epochs", "2", "--limit", "256", "--test-limit", "200", "--hidden", "16",
            "--families", "srm", "lif_single", "dlif_T4", "ann", "--quiet", "--out", str(tmp_path)]
    rows = family_comparison.main(args)
    assert [r["key"] for r in rows] == ["srm", "lif_single", "dlif_T4", "ann"]
    for r in rows:
        assert r["epochs"] == 2 and len(r["accuracy_per_epoch"]) == 2 and 1 <= r["epochs_to_99pct"] <= 2
        assert r["test_acc"] == r["accuracy_per_epoch"][-1] and r["seconds_per_epoch"] > 0
    ann = rows[-1]
    # the ANN row: 784-16-10, 4 MACs per synapse-level access (weight, input, partial sum r/w) on the
    # optimized accelerator, each weight / input / output once from distant memory
    c = energy.EnergyCosts()
    S = 784 * 16 + 16 * 10
    by_hand = S * (c.mac + 4 * c.e_local) + (S + 784 + 16 + 16 + 10) * c.e_distant
    assert ann["energy_nj"] == pytest.approx(by_hand / 1e3, rel=1e-9)
    for r in rows[:-1]:
        # spikes per synapse = synaptic events / synapses, events = spikes into a layer x its fan-out
        bias = 1 if r["key"] == "srm" else 0
        events = r["input_spikes"] * 16 + (r["hidden_spikes"] + bias) * 10
        assert r["spikes_per_synapse"] == pytest.approx(events / ((784 + bias) * 16 + (16 + bias) * 10), rel=1e-6)
        assert r["energy_nj"] > 0 and r["ann_opt_energy_nj"] > 0
    # a second call resumes every finished run from its checkpoint: the same rows
    again = family_comparison.main(args)
    assert [r["test_acc"] for r in again] == [r["test_acc"] for r in rows]
    assert (tmp_path / "accuracy_energy.png").exists() and (tmp_path / "README.md").exists()


def test_energy_estimate_of_an_experiment_by_hand():
    from experiments.common import energy_estimate

    c = energy.EnergyCosts()
    # 3-2-1 dense, 2 input spikes, 1 hidden spike, 1 output spike, event-driven
    e = energy_estimate((3, 2, 1), [2.0, 1.0], 1.0)
    events = 2 * 2 + 1 * 1
    pj = events * (c.add + c.e_distant + 2 * c.e_local) + (2 * 1 + 2 + 1) * c.e_distant
    assert e["snn_nj"] == pytest.approx(pj / 1e3, rel=1e-9)
    assert e["spikes_per_synapse"] == pytest.approx(events / 8)
    # the SRM bias: one more input per layer, sending one spike
    eb = energy_estimate((3, 2, 1), [2.0, 1.0], 1.0, bias=True)
    assert eb["spikes_per_synapse"] == pytest.approx((3 * 2 + 2 * 1) / (4 * 2 + 3 * 1))


# ----------------------------------------------------------------------------------------------
# The package layout, the command line, the output folder, Ctrl-C
# ----------------------------------------------------------------------------------------------


def test_scripts_are_modules_of_the_experiments_package_without_path_hacks():
    import subprocess

    for path in (ROOT / "experiments").glob("*.py"):
        assert "sys.path" not in path.read_text(), path.name
    proc = subprocess.run([sys.executable, "-m", "experiments.yinyang", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("usage: python -m experiments.yinyang ") and "runs/yinyang" in proc.stdout


BAD_FLAGS = [
    ("yinyang", ["--epochs", "0"], "--epochs"),
    ("yinyang", ["--batch-size", "0"], "--batch-size"),
    ("yinyang", ["--hidden", "0"], "--hidden"),
    ("yinyang", ["--lr", "-0.1"], "--lr"),
    ("yinyang", ["--devices", "0"], "--devices"),
    ("mnist_srm", ["--dropout", "1"], "--dropout"),
    ("mnist_srm", ["--clip", "0"], "--clip"),
    ("mnist_srm", ["--test-limit", "0"], "--test-limit"),
    ("mnist_lif", ["--hidden", "800", "-5"], "--hidden"),
    ("mnist_lif", ["--lr", "nan"], "--lr"),
    ("mnist_lif", ["--epochs", "two"], "--epochs"),
    ("mnist_lif", ["--batch-size", "0"], "--batch-size"),
    ("mnist_dlif", ["--batch-size", "-1"], "--batch-size"),
    ("mnist_dlif", ["--test-limit", "0"], "--test-limit"),
    ("dt_sweep", ["--test-limit", "0"], "--test-limit"),
    ("dt_sweep", ["--hidden", "16", "16"], "--hidden"),  # the multi-spike preset has one hidden layer
    ("family_comparison", ["--hidden", "0"], "--hidden"),
    ("dlif_timesteps", ["--epochs", "0"], "--epochs"),
    ("expressivity", ["--widths", "0"], "--widths"),
    ("conv_ttfs", ["--widths", "0"], "--widths"),
    ("conv_ttfs", ["--snn-batch", "0"], "--snn-batch"),
]


@pytest.mark.parametrize("script, args, flag", BAD_FLAGS, ids=[f"{s}{' '.join(a)}" for s, a, _ in BAD_FLAGS])
def test_a_bad_flag_ends_the_parse_with_exit_code_2_naming_the_flag(script, args, flag, tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.chdir(tmp_path)  # nothing runs; if it did, it would write here
    module = importlib.import_module(f"experiments.{script}")
    with pytest.raises(SystemExit) as stop:
        module.main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"usage: python -m experiments.{script} " in err and f"error: argument {flag}" in err \
        or (script == "dt_sweep" and f"error: {flag}" in err), err
    assert not any(tmp_path.iterdir())


def test_argument_types():
    from experiments import common

    assert common.positive_float_or_none("none") is None and common.positive_float_or_none("0.5") == 0.5
    assert common.dropout_rate("0") == 0.0 and common.non_negative_float("0") == 0.0
    for parse, text in ((common.positive_int, "1.5"), (common.dropout_rate, "-0.1"), (common.positive_float, "inf"),
                        (common.probability, "1.5"), (common.non_negative_int, "-1")):
        with pytest.raises(Exception, match="expected"):
            parse(text)


def test_default_output_is_runs_in_the_working_directory_and_fresh_starts_over(tmp_path, monkeypatch):
    from experiments import yinyang

    monkeypatch.chdir(tmp_path)  # runs/ is relative to the working directory
    args = ["--epochs", "1", "--hidden", "4", "--quiet"]
    result = yinyang.main(args)
    out = tmp_path / "runs" / "yinyang"
    assert result["args"]["out"] == str(pathlib.Path("runs", "yinyang"))
    for f in ("result.json", "results.csv", "metrics.jsonl", "checkpoint.msgpack", "accuracy.png"):
        assert (out / f).exists(), f
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]  # nothing else, no results/
    # a rerun resumes from the checkpoint: a damaged one stops it ...
    (out / "checkpoint.msgpack").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        yinyang.main(args)
    # ... and --fresh deletes it and starts over
    again = yinyang.main(args + ["--fresh"])
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    assert again["summary"]["test_acc"]["mean"] == pytest.approx(result["summary"]["test_acc"]["mean"], abs=1e-6)


def test_fresh_deletes_only_the_resumable_state(tmp_path):
    from experiments.common import start_fresh

    out = tmp_path / "out"
    files = ["checkpoint.msgpack", "metrics.jsonl", "validation.jsonl", "best_params.msgpack", "steps_drive0.jsonl",
             "T4/checkpoint.msgpack", "T4/metrics.jsonl", "pretrain/sweep_checkpoint.msgpack",
             "result.json", "README.md", "T4/result.json", "resume/checkpoint.msgpack", "a/b/checkpoint.msgpack"]
    for f in files:
        (out / f).parent.mkdir(parents=True, exist_ok=True)
        (out / f).write_text("x")
    keep = out / "best_params.msgpack"  # e.g. --init-params inside --out
    deleted = start_fresh(out, keep=[keep])
    assert sorted(str(p.relative_to(out)) for p in deleted) == sorted(files[:3] + files[4:8])
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert left == sorted([files[3]] + files[8:])


def test_ctrl_c_ends_with_one_line_and_exit_code_130(tmp_path, monkeypatch, capsys, shared_data):
    from experiments import dlif_timesteps, yinyang
    from jaxsnn import train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "fit", interrupted)
    out = tmp_path / "out"
    for extra, line in (([], f"interrupted: rerun the same command to resume from {out}"),
                        (["--fresh"], f"interrupted: rerun the same command without --fresh to resume from {out}")):
        with pytest.raises(SystemExit) as stop:
            yinyang.main(["--epochs", "1", "--quiet", "--out", str(out)] + extra)
        assert stop.value.code == 130
        assert capsys.readouterr().err.strip().splitlines() == [line]
    # a script that runs another's main names its own folder
    with pytest.raises(SystemExit) as stop:
        dlif_timesteps.main(["--epochs", "1", "--num-steps", "2", "--limit", "64", "--test-limit", "64",
                             "--hidden", "8", "--quiet", "--data-dir", str(shared_data), "--out", str(out)])
    assert stop.value.code == 130
    assert capsys.readouterr().err.strip().splitlines() == [f"interrupted: rerun the same command to resume from {out}"]


def test_ctrl_c_in_a_real_run_leaves_no_traceback_and_keeps_the_checkpoint(tmp_path):
    import signal
    import subprocess
    import time

    out = tmp_path / "out"
    # far more epochs than run before the signal arrives (with 200 a loaded machine once saw the
    # run finish between the first metrics line and the signal)
    cmd = [sys.executable, "-m", "experiments.yinyang", "--epochs", "20000", "--hidden", "4", "--quiet",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (out / "metrics.jsonl").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"interrupted: rerun the same command to resume from {out}"
    done = len((out / "metrics.jsonl").read_text().splitlines())
    assert 1 <= done < 20000 and (out / "checkpoint.msgpack").exists()


def test_lif_encoding_is_the_reference_formula_bit_for_bit():
    import numpy as np

    from experiments import mnist_lif

    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)  # every pixel value
    x = np.asarray(images, np.float32).reshape(1, -1) / 255.0
    expected = np.where(x > 0, 0.1 * (1.0 - x), np.inf).astype(np.float32)  # t = 0.1 (1 - p/255), 0: no spike
    got = mnist_lif.encode(images)
    assert got.dtype == np.float32 and np.array_equal(got, expected)
