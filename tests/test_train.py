"""jaxsnn.train: runs are functions of their seed; sweeps, chunks, devices and interruptions
do not change them."""

import io
import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from tasks import tiny_data, tiny_task

from jaxsnn import train

HERE = pathlib.Path(__file__).resolve().parent
(XTR, YTR), (XTE, YTE) = tiny_data()
TASK = tiny_task()
HP = dict(lr=0.01, tau=0.5)
KW = dict(epochs=3, batch_size=20, eval_data=(XTE, YTE), eval_name="test", progress=False)


def flat(params):
    return np.concatenate([np.ravel(v) for v in jax.tree.leaves(params)])


def row(tree, i):
    return jax.tree.map(lambda v: v[i], tree)


def test_fit_is_deterministic_in_the_seed_and_learns():
    a = train.fit(TASK, (XTR, YTR), HP, seed=0, epochs=8, batch_size=20, progress=False)
    b = train.fit(TASK, (XTR, YTR), HP, seed=0, epochs=8, batch_size=20, progress=False)
    c = train.fit(TASK, (XTR, YTR), HP, seed=1, epochs=8, batch_size=20, progress=False)
    np.testing.assert_array_equal(flat(a.state.params), flat(b.state.params))
    assert not np.allclose(flat(a.state.params), flat(c.state.params))
    assert int(a.state.step) == 8 * (len(XTR) // 20)
    assert a.history[-1]["train_loss"] < 0.8 * a.history[0]["train_loss"]
    assert [h["epoch"] for h in a.history] == list(range(1, 9))


def test_whole_epoch_in_jit_equals_host_batches():
    a = train.fit(TASK, (XTR, YTR), HP, seed=3, **KW)
    b = train.fit(TASK, (XTR, YTR), HP, seed=3, epoch_in_jit=False, **KW)
    np.testing.assert_allclose(flat(a.state.params), flat(b.state.params), rtol=1e-10, atol=1e-12)
    for ha, hb in zip(a.history, b.history):
        assert ha["test_acc"] == hb["test_acc"]
        np.testing.assert_allclose(ha["train_loss"], hb["train_loss"], rtol=1e-10)


def test_dropout_draws_from_the_step_key():
    task = tiny_task(dropout=0.3)
    a = train.fit(task, (XTR, YTR), HP, seed=0, epochs=1, batch_size=20, progress=False)
    b = train.fit(task, (XTR, YTR), HP, seed=0, epochs=1, batch_size=20, progress=False)
    c = train.fit(TASK, (XTR, YTR), HP, seed=0, epochs=1, batch_size=20, progress=False)
    np.testing.assert_array_equal(flat(a.state.params), flat(b.state.params))
    assert not np.allclose(flat(a.state.params), flat(c.state.params))


def test_vmapped_sweep_equals_the_runs_one_by_one():
    configs = train.grid(seed=[0, 1], lr=[0.01, 0.003], tau=[0.5, 0.2])
    assert len(configs["seed"]) == 8
    res = train.sweep(TASK, (XTR, YTR), configs, **KW)
    assert res.history["test_acc"].shape == (8, 3) and res.history["train_loss"].shape == (8, 3)
    for i in (0, 3, 6):  # three of the eight, to keep the test short
        cfg = train.unstack(configs)[i]
        seed = cfg.pop("seed")
        one = train.fit(TASK, (XTR, YTR), cfg, seed=seed, **KW)
        np.testing.assert_allclose(flat(row(res.params, i)), flat(one.state.params), rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(res.history["test_acc"][i], [h["test_acc"] for h in one.history])
        np.testing.assert_allclose(res.history["train_loss"][i], [h["train_loss"] for h in one.history], rtol=1e-9)
    recs = res.records()
    assert len(recs) == 8 and recs[5]["lr"] == configs["lr"][5] and "test_acc" in recs[5]


def test_chunked_sweep_equals_one_chunk():
    configs = train.grid(seed=[0, 1, 2], lr=[0.01], tau=[0.5])
    whole = train.sweep(TASK, (XTR, YTR), configs, **KW)
    chunked = train.sweep(TASK, (XTR, YTR), configs, chunk_size=2, **KW)  # 2 + (1 padded to 2)
    np.testing.assert_allclose(flat(chunked.params), flat(whole.params), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(chunked.history["test_acc"], whole.history["test_acc"])
    assert chunked.params["params"]["layer_0"]["kernel"].shape[0] == 3


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("fmt", ["msgpack", "orbax"])
def test_interrupted_fit_resumes_to_the_same_result(tmp_path, fmt):
    whole = train.fit(TASK, (XTR, YTR), HP, seed=2, **KW)
    KW_ = dict(KW, checkpoint_format=fmt)

    def stop_after_two(state, rec):
        if rec["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        train.fit(TASK, (XTR, YTR), HP, seed=2, out=tmp_path, callback=stop_after_two, **KW_)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    resumed = train.fit(TASK, (XTR, YTR), HP, seed=2, out=tmp_path, **KW_)
    np.testing.assert_array_equal(flat(resumed.state.params), flat(whole.state.params))
    assert int(resumed.state.step) == int(whole.state.step)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(resumed.history) == strip(whole.history)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"checkpoint.{fmt}", "metrics.jsonl"]
    with pytest.raises(ValueError, match="other hyperparameters"):
        train.fit(TASK, (XTR, YTR), dict(lr=0.02, tau=0.5), seed=2, out=tmp_path, **KW_)


@pytest.mark.parametrize("fmt", ["msgpack", "orbax"])
def test_interrupted_sweep_keeps_finished_chunks_and_resumes(tmp_path, fmt):
    configs = train.grid(seed=[0, 1, 2], lr=[0.01], tau=[0.5])
    whole = train.sweep(TASK, (XTR, YTR), configs, chunk_size=2, **KW)
    calls = []

    def stop_in_second_chunk(chunk, epoch, metrics):
        calls.append((chunk, epoch))
        if (chunk, epoch) == (1, 1):
            raise Interrupt

    with pytest.raises(Interrupt):
        train.sweep(TASK, (XTR, YTR), configs, chunk_size=2, out=tmp_path, callback=stop_in_second_chunk,
                    checkpoint_format=fmt, **KW)
    assert calls == [(0, 1), (0, 2), (0, 3), (1, 1)]
    calls.clear()
    resumed = train.sweep(TASK, (XTR, YTR), configs, chunk_size=2, out=tmp_path,
                          callback=lambda c, e, m: calls.append((c, e)), checkpoint_format=fmt, **KW)
    assert (tmp_path / f"sweep_checkpoint.{fmt}").exists()
    assert calls == [(1, 2), (1, 3)]  # the first chunk and the second's first epoch are not redone
    np.testing.assert_array_equal(flat(resumed.params), flat(whole.params))
    np.testing.assert_array_equal(resumed.history["test_acc"], whole.history["test_acc"])


def test_evaluate_weights_every_sample_once():
    params = train.init_state(TASK, HP, 0).params
    n = 97  # not a multiple of the chunk size
    data = (XTE[:n], YTE[:n])
    chunked = train.evaluate(TASK, params, data, HP, batch_size=10)
    whole = TASK.evaluate(params, data, HP)
    for k in whole:  # the same numbers summed in another order: equal to the metric's rounding
        rtol = 1e-12 if np.asarray(whole[k]).dtype == np.float64 else 1e-6
        np.testing.assert_allclose(chunked[k], whole[k], rtol=rtol)


def test_grid_and_unstack():
    g = train.grid(a=[1, 2], b=[0.5, 0.25, 0.125])
    assert list(g["a"]) == [1, 1, 1, 2, 2, 2] and list(g["b"]) == [0.5, 0.25, 0.125] * 2
    assert train.unstack(g)[4] == dict(a=2, b=0.25)
    with pytest.raises(ValueError, match="one length"):
        train.sweep(TASK, (XTR, YTR), dict(seed=np.arange(2), lr=np.ones(3)), **KW)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="larger than the training set"):
        train.fit(TASK, (XTR, YTR), HP, epochs=1, batch_size=1000, progress=False)
    mesh2d = jax.sharding.Mesh(np.asarray(jax.devices()[:1]).reshape(1, 1), ("a", "b"))
    with pytest.raises(ValueError, match="one axis"):
        train.fit(TASK, (XTR, YTR), HP, epochs=1, batch_size=20, mesh=mesh2d, progress=False)
    with pytest.raises(ValueError, match="no evaluate"):
        train.fit(TASK._replace(evaluate=None), (XTR, YTR), HP, epochs=1, batch_size=20,
                  eval_data=(XTE, YTE), progress=False)


def test_checkpoint_roundtrip_and_atomic_write(tmp_path):
    state = train.init_state(TASK, HP, 0)
    train.save_checkpoint(tmp_path / "c.msgpack", dict(state=state, epoch=3, note="x"))
    raw = train.restore_checkpoint(tmp_path / "c.msgpack")
    assert raw["epoch"] == 3 and raw["note"] == "x"
    back = train.restore_checkpoint(tmp_path / "c.msgpack", dict(state=state, epoch=0, note=""))
    assert isinstance(back["state"], train.TrainState)
    jax.tree.map(np.testing.assert_array_equal, back["state"], jax.tree.map(np.asarray, state))
    assert train.restore_checkpoint(tmp_path / "missing.msgpack") is None
    with pytest.raises(TypeError):  # a failing write leaves the old file and no temporary file
        train.atomic_write_bytes(tmp_path / "c.msgpack", None)
    assert train.restore_checkpoint(tmp_path / "c.msgpack")["epoch"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["c.msgpack"]
    train.write_csv(tmp_path / "r.csv", [dict(a=1, b=0.5), dict(a=2, b=0.25)])
    assert (tmp_path / "r.csv").read_text() == "a,b\n1,0.5\n2,0.25\n"


def test_a_truncated_checkpoint_is_refused_with_its_path(tmp_path):
    kw = dict(epochs=1, batch_size=20, progress=False)
    train.fit(TASK, (XTR, YTR), HP, seed=2, out=tmp_path / "fit", **kw)
    ckpt = tmp_path / "fit" / "checkpoint.msgpack"
    ckpt.write_bytes(ckpt.read_bytes()[:-100])  # a copy cut short (a full disk, an interrupted transfer)
    with pytest.raises(ValueError, match="delete it or pass a fresh output folder") as err:
        train.fit(TASK, (XTR, YTR), HP, seed=2, out=tmp_path / "fit", **kw)
    assert str(ckpt) in str(err.value) and "corrupt or truncated" in str(err.value)
    with pytest.raises(ValueError, match="fresh output folder"):
        train.restore_checkpoint(ckpt)
    swept = tmp_path / "sweep" / "sweep_checkpoint.msgpack"
    for damaged in (b"", b"\x01"):  # empty; readable but not a checkpoint of a run
        swept.parent.mkdir(exist_ok=True)
        swept.write_bytes(damaged)
        with pytest.raises(ValueError, match="delete it or pass a fresh output folder") as err:
            train.sweep(TASK, (XTR, YTR), dict(seed=np.arange(2), lr=np.full(2, 0.01), tau=np.full(2, 0.5)),
                        out=swept.parent, **kw)
        assert str(swept) in str(err.value)


def test_a_damaged_orbax_checkpoint_is_refused_with_its_path(tmp_path):
    kw = dict(epochs=1, batch_size=20, progress=False, checkpoint_format="orbax")
    train.fit(TASK, (XTR, YTR), HP, seed=2, out=tmp_path, **kw)
    ckpt = tmp_path / "checkpoint.orbax"
    for f in (ckpt / "meta").iterdir():  # the JSON item (fingerprint, history) damaged
        f.write_text("{")
    with pytest.raises(ValueError, match="delete it or pass a fresh output folder") as err:
        train.fit(TASK, (XTR, YTR), HP, seed=2, out=tmp_path, **kw)
    assert str(ckpt) in str(err.value)
    with pytest.raises(ValueError, match="checkpoint_format: expected one of"):
        train.fit(TASK, (XTR, YTR), HP, seed=2, out=tmp_path, **dict(kw, checkpoint_format="pickle"))


def test_evaluation_metrics_are_named_by_eval_name(capsys):
    kw = dict(epochs=1, batch_size=20, eval_data=(XTE, YTE))
    run = train.fit(TASK, (XTR, YTR), HP, seed=0, progress=True, **kw)
    rec = run.history[0]
    assert "eval_acc" in rec and not any(k.startswith("test_") for k in rec)
    assert "eval acc" in capsys.readouterr().err  # the progress line follows the name
    best = train.KeepBest("eval_acc")
    best(run.state, rec)
    assert best.epoch == 1 and best.value == rec["eval_acc"]
    val = train.fit(TASK, (XTR, YTR), HP, seed=0, eval_name="val", progress=False, **kw)
    assert val.history[0]["val_acc"] == rec["eval_acc"] and "eval_acc" not in val.history[0]
    res = train.sweep(TASK, (XTR, YTR), train.grid(seed=[0], lr=[0.01], tau=[0.5]), eval_name="val",
                      progress=False, **kw)
    assert {k.split("_")[0] for k in res.history} == {"train", "val"}
    np.testing.assert_array_equal(res.history["val_acc"][0], [rec["eval_acc"]])
    assert "val_acc" in res.records()[0]
    for bad in ("train", ""):
        with pytest.raises(ValueError, match="eval_name: expected"):
            train.fit(TASK, (XTR, YTR), HP, eval_name=bad, progress=False, **kw)
        with pytest.raises(ValueError, match="eval_name: expected"):
            train.sweep(TASK, (XTR, YTR), train.grid(lr=[0.01], tau=[0.5]), eval_name=bad, progress=False, **kw)


def test_progress_prints_lines_when_not_a_terminal():
    buf = io.StringIO()
    bar = train.Progress(20, "run", stream=buf)
    for i in range(1, 21):
        bar(i, loss=1.0 / i)
    lines = buf.getvalue().splitlines()
    assert 2 <= len(lines) <= 11 and lines[-1].startswith("run [" + "#" * 24 + "] 20/20")
    silent = io.StringIO()
    train.Progress(5, stream=silent, enabled=False)(5)
    assert silent.getvalue() == ""


def _worker(*args, devices_env=None):
    env = dict(os.environ, PYTHONPATH=str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("XLA_FLAGS", None)
    return subprocess.Popen([sys.executable, str(HERE / "distributed_worker.py"), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc, timeout=600):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out


def test_four_device_data_and_sweep_parallel_runs_equal_one_device(tmp_path):
    """4 host devices in a fresh process: a data-parallel fit and a sweep-parallel sweep."""
    _finish(_worker("single", str(tmp_path / "r.npz")))
    r = np.load(tmp_path / "r.npz")
    for k in ("fit", "sweep"):
        np.testing.assert_allclose(r[f"{k}_four"], r[f"{k}_one"], rtol=1e-9, atol=1e-12)
        # the data-parallel evaluation averages per-device (float32) accuracies: equal up to rounding
        np.testing.assert_allclose(r[f"{k}_four_acc"], r[f"{k}_one_acc"], rtol=1e-6, atol=0)


def test_two_processes_with_jax_distributed_equal_one_process(tmp_path):
    """A sweep sharded over the 4 devices of 2 processes (jax.distributed, gloo on CPU)."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    procs = [_worker("multi", str(tmp_path / f"m{i}.npz"), f"localhost:{port}", "2", str(i)) for i in range(2)]
    for p in procs:
        _finish(p)
    configs = train.grid(seed=[0, 1], lr=[0.01, 0.003], tau=[0.5])
    ref = train.sweep(TASK, (XTR, YTR), configs, epochs=2, batch_size=20, eval_data=(XTE, YTE), eval_name="test",
                      progress=False)
    ref_params = np.concatenate([np.reshape(v, (4, -1)) for v in jax.tree.leaves(ref.params)], 1)
    for i in range(2):
        m = np.load(tmp_path / f"m{i}.npz")
        assert list(m["devices"]) == [4, 2, 2]  # global devices, local devices, processes
        np.testing.assert_allclose(m["sweep"], ref_params, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(m["sweep_acc"], ref.history["test_acc"])


def test_keep_best_holds_the_best_epochs_parameters(tmp_path):
    snapshots = []
    best = train.KeepBest("test_acc", path=tmp_path / "best.msgpack")
    worst_loss = train.KeepBest("train_loss", mode="min")

    def callback(state, rec):
        snapshots.append(flat(state.params))
        best(state, rec)
        worst_loss(state, rec)

    run = train.fit(TASK, (XTR, YTR), dict(HP, lr=0.05), seed=2, epochs=6, batch_size=20, eval_data=(XTE, YTE),
                    eval_name="test", progress=False, callback=callback)
    accs = [h["test_acc"] for h in run.history]
    assert best.epoch == int(np.argmax(accs)) + 1 and best.value == pytest.approx(max(accs))
    np.testing.assert_array_equal(flat(best.params), snapshots[best.epoch - 1])
    losses = [h["train_loss"] for h in run.history]
    assert worst_loss.epoch == int(np.argmin(losses)) + 1
    again = train.KeepBest("test_acc", path=tmp_path / "best.msgpack")  # a resumed run finds it
    assert again.epoch == best.epoch
    np.testing.assert_array_equal(flat(again.params), snapshots[best.epoch - 1])
    with pytest.raises(ValueError, match="mode"):
        train.KeepBest("test_acc", mode="best")
    with pytest.raises(ValueError, match="not among"):
        train.KeepBest("val_acc")(run.state, run.history[-1])
