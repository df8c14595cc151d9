"""Shared command-line interface and output of the experiments: the same flags everywhere.

Every script takes ``--dataset --model --epochs --seeds --out --data-dir --quiet`` (plus its
own hyperparameters), trains with :mod:`jaxsnn.train` (one seed: a resumable ``fit``; several:
one vmapped ``sweep``), and writes to ``--out``: ``result.json`` (settings, per-seed and mean
metrics, history, command), ``results.csv`` (one row per seed), PNG figures, and while it runs
``checkpoint.msgpack`` / ``metrics.jsonl`` (or ``sweep_checkpoint.msgpack``) for resuming.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import textwrap
import time

import jax
import numpy as np
from flax import traverse_util

from jaxsnn import train


def parser(description: str, *, dataset: str, epochs: int, out: str, models=("srm",),
           datasets=None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default=dataset, choices=datasets, help="dataset name")
    p.add_argument("--model", default=models[0], choices=models, help="network model")
    p.add_argument("--epochs", type=int, default=epochs, help="training epochs")
    p.add_argument("--seeds", "--seed", type=int, nargs="+", default=[0], dest="seeds",
                   help="random seeds (initialization, data order); several run as one vmapped sweep")
    p.add_argument("--out", default=out, help="output directory for results (JSON, CSV), figures, checkpoints")
    p.add_argument("--data-dir", default=None,
                   help="folder with the dataset files (default: $JAXSNN_DATA_DIR or ~/.cache/jaxsnn)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--devices", type=int, default=None, action=_CPUDevices,
                   help="split the CPU into this many JAX devices (e.g. one per core): one seed trains data-parallel "
                        "(each batch split over them), several seeds sweep-parallel; default: JAX's devices")
    return p


class _CPUDevices(argparse.Action):
    """``--devices N``: :func:`jaxsnn.train.use_cpu_devices` while the arguments are parsed (before JAX runs)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if values < 1:
            parser.error(f"--devices must be positive, got {values}")
        if not train.use_cpu_devices(values):
            print(f"--devices {values}: JAX has already started; keeping {jax.device_count()} device(s)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def mesh_or_none():
    """A mesh over all devices when there are several (see ``--devices``), else ``None``."""
    return train.make_mesh() if jax.device_count() > 1 else None


def command(script: str, argv) -> str:
    return f"python experiments/{script} " + " ".join(sys.argv[1:] if argv is None else argv)


def write_json(path, obj) -> None:
    train.atomic_write_text(pathlib.Path(path), json.dumps(obj, indent=2) + "\n")


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0


def run_seeds(task, train_data, eval_data, hparams: dict, args, *, batch_size: int, out,
              eval_batch_size: int = 1000, epoch_in_jit: bool = True, callback=None):
    """Train ``task`` once per seed of ``args.seeds``.

    One seed: :func:`jaxsnn.train.fit` (checkpoint and ``metrics.jsonl`` in ``out``), data-parallel
    over the devices when there are several. Several: :func:`jaxsnn.train.sweep` over the seeds
    as one vmapped program (checkpoint in ``out``), split over the devices when there are
    several (``--devices``, :func:`jaxsnn.train.use_cpu_devices`).
    Returns a list of ``dict(seed, history, params)`` (history: one dict per epoch).
    ``callback`` (one seed only) is passed to :func:`jaxsnn.train.fit`.
    """
    progress = not args.quiet
    if callback is not None and len(args.seeds) != 1:
        raise ValueError("a per-epoch callback (e.g. validation) needs a single seed")
    if len(args.seeds) == 1:
        run = train.fit(task, train_data, hparams, seed=args.seeds[0], epochs=args.epochs, batch_size=batch_size,
                        eval_data=eval_data, eval_batch_size=eval_batch_size, epoch_in_jit=epoch_in_jit,
                        mesh=mesh_or_none(), out=out, progress=progress, callback=callback)
        return [dict(seed=args.seeds[0], history=run.history, params=run.state.params)]
    configs = {"seed": np.asarray(args.seeds)}
    configs.update({k: np.full(len(args.seeds), v) for k, v in hparams.items()})
    res = train.sweep(task, train_data, configs, epochs=args.epochs, batch_size=batch_size, eval_data=eval_data,
                      eval_batch_size=eval_batch_size, out=out, progress=progress,
                      mesh=mesh_or_none())
    runs = []
    for i, seed in enumerate(args.seeds):
        hist = [dict(epoch=e + 1, **{k: float(v[i, e]) for k, v in res.history.items()}) for e in range(args.epochs)]
        runs.append(dict(seed=seed, history=hist, params=jax.tree.map(lambda p: p[i], res.params)))
    return runs


class ValidationBest:
    """A ``fit`` callback: evaluates ``task.evaluate`` on held-out training data after every
    epoch, appends the metrics (``val_*``) to ``out/validation.jsonl`` and keeps the parameters
    of the best epoch by ``val_<metric>`` (:class:`jaxsnn.train.KeepBest`, resumable through
    ``out/best_params.msgpack``). The test set plays no part in the choice.
    """

    def __init__(self, task, val_data, hparams, out, *, metric="acc", batch_size=1000):
        self.out = pathlib.Path(out)
        self.keep = train.KeepBest("val_" + metric, path=self.out / "best_params.msgpack")
        self.data, self.hp = val_data, hparams
        mesh = mesh_or_none()
        self._eval = jax.jit(lambda p, d, h: train.evaluate(task, p, d, h, batch_size=batch_size, mesh=mesh))

    def __call__(self, state, record):
        val = {f"val_{k}": float(v) for k, v in jax.device_get(self._eval(state.params, self.data, self.hp)).items()}
        val["epoch"] = int(record["epoch"])
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "validation.jsonl", "a") as f:
            f.write(json.dumps(val) + "\n")
        self.keep(state, dict(record, **val))

    @property
    def epoch(self):
        return self.keep.epoch

    @property
    def params(self):
        return self.keep.params


def summarize(runs, metrics=("test_acc",)) -> dict:
    """Mean and standard deviation over seeds of the final value of each metric."""
    out = {}
    for m in metrics:
        vals = [r["history"][-1][m] for r in runs]
        out[m] = dict(mean=float(np.mean(vals)), std=float(np.std(vals)), per_seed=vals)
    return out


def write_results(out, result: dict, runs) -> None:
    """``result.json`` (with every seed's history) and ``results.csv`` (final metrics per seed).

    A run whose reported epoch was selected (``history`` cut there) keeps its whole history
    in ``history_all``; that is what ``result.json`` records.
    """
    out = pathlib.Path(out)
    result = dict(result, runs=[dict(seed=r["seed"], history=r.get("history_all", r["history"])) for r in runs])
    write_json(out / "result.json", result)
    train.write_csv(out / "results.csv", [dict(seed=r["seed"], **r["history"][-1]) for r in runs])


def plot_history(runs, path, *, title="", keys=("train_acc", "test_acc")):
    """Accuracy per epoch for every seed as a PNG (skipped with a note when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure written (pip install 'jaxsnn[experiments]')")
        return
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for j, k in enumerate(keys):
        for i, r in enumerate(runs):
            h = r["history"]
            ax.plot([x["epoch"] for x in h], [x[k] for x in h], color=f"C{j}", alpha=0.8,
                    label=k.replace("_", " ") if i == 0 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_title(textwrap.fill(title, 60), fontsize=9)  # long run names wrap instead of running off the figure
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def kernels(params):
    """The weight matrices of a Flax parameter tree (leaves named ``kernel``)."""
    flat = traverse_util.flatten_dict(params)
    return [v for k, v in flat.items() if k[-1] == "kernel"]


def energy_estimate(sizes, layer_inputs, output_spikes, *, neuron_updates=0, bias=False, max_spikes=None) -> dict:
    """Estimated energy per inference of a trained dense network, and of the ANN of the same
    topology, from measured spike counts (:mod:`jaxsnn.energy`, default constants).

    Args:
      sizes: ``(784, hidden..., n_out)``.
      layer_inputs: spikes per sample into each layer: the network input, then each hidden layer.
      output_spikes: spikes per sample of the output layer.
      neuron_updates: per-step neuron updates (``T`` for DLIF, 0 for event-driven exact-time neurons).
      bias: every layer gets one extra input that sends one spike (the SRM bias spike).
      max_spikes: the most spikes per neuron and inference; counts above it raise ``ValueError``.
    """
    from jaxsnn import energy

    b = int(bias)
    layers = [energy.dense(a + b, c) for a, c in zip(sizes[:-1], sizes[1:])]
    counts = np.asarray(layer_inputs, np.float64) + b
    snn = energy.snn_energy(layers, counts, neuron_updates=neuron_updates, output_spikes=output_spikes,
                            max_spikes=max_spikes)
    ann = {r: energy.ann_energy(layers, reuse=r)["total"] for r in ("opt", "base")}
    e = float(snn["total"])
    return dict(spikes_per_synapse=float(energy.spikes_per_synapse(layers, counts)), snn_nj=e / 1e3,
                ann_opt_nj=ann["opt"] / 1e3, ann_base_nj=ann["base"] / 1e3, ann_opt_over_snn=ann["opt"] / e,
                ann_base_over_snn=ann["base"] / e,
                breakdown_nj={k: float(snn[k]) / 1e3 for k in ("compute", "local", "distant")})


def energy_text(e: dict) -> str:
    """One line for the printed summary of an experiment."""
    return (f"energy {e['snn_nj']:.0f} nJ per inference ({e['spikes_per_synapse']:.3f} spikes per synapse), "
            f"{e['ann_opt_over_snn']:.2f}x less than the same-topology ANN (optimized accelerator)")
