"""Shared command-line interface and output of the experiments: the same flags everywhere.

Every script takes ``--dataset --model --epochs --seeds --out --fresh --data-dir --quiet --devices``
(plus its own hyperparameters), trains with :mod:`jaxsnn.train` (one seed: a resumable ``fit``;
several: one vmapped ``sweep``), and writes to ``--out`` (default: ``runs/<script>/...``, relative
to the working directory; the recorded results in ``results/`` are only written with an explicit
``--out results/...``): ``result.json`` (settings, per-seed and mean metrics, history, command),
``results.csv`` (one row per seed), PNG figures, and while it runs ``checkpoint.msgpack`` /
``metrics.jsonl`` (or ``sweep_checkpoint.msgpack``) for resuming: the same command continues after
the last finished epoch, ``--fresh`` starts over. Ctrl-C stops a run with exit code 130.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import pathlib
import sys
import textwrap
import time

import jax
import numpy as np
from flax import traverse_util

from jaxsnn import energy, train

RUNS = "runs"  # default output folders: runs/<script>/..., relative to the working directory


# ----------------------------------------------------------------------------------------------
# Argument types: a bad value ends the parse with exit code 2 and a message naming the flag
# ----------------------------------------------------------------------------------------------


def _checked(convert, ok, expected: str):
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    parse.__name__ = expected
    return parse


positive_int = _checked(int, lambda v: v >= 1, "an integer >= 1")
non_negative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _checked(float, lambda v: math.isfinite(v) and v > 0, "a number > 0")
non_negative_float = _checked(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")
dropout_rate = _checked(float, lambda v: 0.0 <= v < 1.0, "a probability in [0, 1)")
probability = _checked(float, lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]")
positive_float_or_none = _checked(lambda s: None if s.lower() == "none" else float(s),
                                  lambda v: v is None or (math.isfinite(v) and v > 0), "a number > 0 or 'none'")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except ``None`` (no default: the help text says what happens)."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def parser(description: str, *, dataset: str, epochs, out: str, models=("srm",), datasets=None,
           script: str = None) -> argparse.ArgumentParser:
    """The common flags. ``out`` describes the default output folder (``runs/<script>/...``); the
    script resolves it with :func:`output_folder`. ``script``: the module name, for the usage line
    (``python -m experiments.<script>``)."""
    prog = None if script is None else f"python -m experiments.{script}"
    p = argparse.ArgumentParser(prog=prog, description=description, formatter_class=_HelpFormatter)
    p.add_argument("--dataset", default=dataset, choices=datasets, help="dataset name")
    p.add_argument("--model", default=models[0], choices=models, help="network model")
    p.add_argument("--epochs", type=positive_int, default=epochs, help="training epochs")
    p.add_argument("--seeds", "--seed", type=int, nargs="+", default=[0], dest="seeds",
                   help="random seeds (initialization, data order); several run as one vmapped sweep")
    p.add_argument("--out", default=None,
                   help=f"output directory for results (JSON, CSV), figures, checkpoints (default: {out}, "
                        "relative to the working directory; the recorded results are regenerated only with an "
                        "explicit --out results/...)")
    p.add_argument("--fresh", action="store_true",
                   help="start over: delete the checkpoints and logs a rerun would resume from in --out (and its "
                        "subfolders) first; without it the same command resumes after the last finished epoch")
    p.add_argument("--data-dir", default=None,
                   help="folder with the dataset files (default: $JAXSNN_DATA_DIR or ~/.cache/jaxsnn)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--devices", type=positive_int, default=None, action=_CPUDevices,
                   help="split the CPU into this many JAX devices (e.g. one per core): one seed trains data-parallel "
                        "(each batch split over them), several seeds sweep-parallel; default: JAX's devices")
    return p


class _CPUDevices(argparse.Action):
    """``--devices N``: :func:`jaxsnn.train.use_cpu_devices` while the arguments are parsed (before JAX runs)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if not train.use_cpu_devices(values):
            print(f"--devices {values}: JAX has already started; keeping {jax.device_count()} device(s)",
                  file=sys.stderr)
        setattr(namespace, self.dest, values)


# ----------------------------------------------------------------------------------------------
# Output folder, starting over, Ctrl-C
# ----------------------------------------------------------------------------------------------

# what a rerun resumes from (fit, sweep, ValidationBest / KeepBest) or appends to (validation.jsonl);
# lif_collapse's per-weight step files (steps_drive*.jsonl) are read back when complete
RESUME_FILES = ("checkpoint.msgpack", "sweep_checkpoint.msgpack", "best_params.msgpack", "metrics.jsonl",
                "validation.jsonl", "steps_drive*.jsonl")


def output_folder(args, script: str, *variant: str, keep=()) -> pathlib.Path:
    """The run's folder: ``--out``, or ``runs/<script>/<variant...>`` (relative to the working
    directory). Sets ``args.out`` to it. With ``--fresh`` the files a rerun would resume from are
    deleted first (:func:`start_fresh`; ``keep``: files to spare, e.g. parameters to start from)."""
    if args.out is None:
        args.out = str(pathlib.Path(RUNS, script, *(v.replace("/", "_") for v in variant)))
    out = pathlib.Path(args.out)
    if getattr(args, "fresh", False):
        start_fresh(out, keep=keep)
    return out


def start_fresh(out, keep=()) -> list:
    """Delete the resumable state (:data:`RESUME_FILES`) in ``out`` and its direct subfolders (the
    runs of a sweep script: ``T4/``, ``pretrain/``, ``srm/``, ...), except the files in ``keep``;
    a snapshot's ``resume/`` folder (``experiments.snapshot``) is kept. Returns the deleted paths."""
    out = pathlib.Path(out)
    spared = {pathlib.Path(k).resolve() for k in keep if k}
    deleted = []
    for folder in [out] + (sorted(d for d in out.iterdir() if d.is_dir() and d.name != "resume")
                           if out.is_dir() else []):
        for pattern in RESUME_FILES:
            for f in sorted(folder.glob(pattern)):
                if f.is_file() and f.resolve() not in spared:
                    f.unlink()
                    deleted.append(f)
    return deleted


_GUARDS = []


@contextlib.contextmanager
def interruptible(args, *, resumable: bool = True):
    """Ctrl-C inside: one line on stderr (how to resume from ``args.out``) and exit code 130, no
    traceback. Nested guards (a script that runs another's ``main``) leave it to the outermost."""
    _GUARDS.append(args)
    try:
        yield
    except KeyboardInterrupt:
        if len(_GUARDS) > 1:
            raise
        if not resumable:
            line = f"interrupted: nothing to resume; rerun the same command to start again ({args.out})"
        elif getattr(args, "fresh", False):
            line = f"interrupted: rerun the same command without --fresh to resume from {args.out}"
        else:
            line = f"interrupted: rerun the same command to resume from {args.out}"
        newline = "\n" if getattr(sys.stderr, "isatty", lambda: False)() else ""  # after a progress bar
        print(newline + line, file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    finally:
        _GUARDS.pop()


def mesh_or_none():
    """A mesh over all devices when there are several (see ``--devices``), else ``None``."""
    return train.make_mesh() if jax.device_count() > 1 else None


def command(script: str, argv) -> str:
    """The command line of a run, as recorded in its results: ``python -m experiments.<script> ...``."""
    name = script.removesuffix(".py")
    return f"python -m experiments.{name} " + " ".join(sys.argv[1:] if argv is None else argv)


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
    ``eval_data`` is the test set: its metrics are reported as ``test_*`` (``eval_name="test"``).
    ``callback`` (one seed only) is passed to :func:`jaxsnn.train.fit`.
    """
    progress = not args.quiet
    if callback is not None and len(args.seeds) != 1:
        raise ValueError("a per-epoch callback (e.g. validation) needs a single seed")
    if len(args.seeds) == 1:
        run = train.fit(task, train_data, hparams, seed=args.seeds[0], epochs=args.epochs, batch_size=batch_size,
                        eval_data=eval_data, eval_batch_size=eval_batch_size, eval_name="test",
                        epoch_in_jit=epoch_in_jit, mesh=mesh_or_none(), out=out, progress=progress, callback=callback)
        return [dict(seed=args.seeds[0], history=run.history, params=run.state.params)]
    configs = {"seed": np.asarray(args.seeds)}
    configs.update({k: np.full(len(args.seeds), v) for k, v in hparams.items()})
    res = train.sweep(task, train_data, configs, epochs=args.epochs, batch_size=batch_size, eval_data=eval_data,
                      eval_batch_size=eval_batch_size, eval_name="test", out=out, progress=progress,
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
        print("matplotlib not installed: no figure written (pip install 'jaxsnn-exact[experiments]')")
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


def input_spikes(x) -> float:
    """Mean spikes per sample of spike times ``x [N, n]`` (``inf``: no spike), e.g. a TTFS-encoded
    test set (one spike per non-zero pixel): :func:`jaxsnn.energy.spike_counts`, averaged in float64."""
    return float(np.mean(np.asarray(energy.spike_counts(x), np.float64)))


def energy_text(e: dict) -> str:
    """One line for the printed summary of an experiment."""
    return (f"energy {e['snn_nj']:.0f} nJ per inference ({e['spikes_per_synapse']:.3f} spikes per synapse), "
            f"{e['ann_opt_over_snn']:.2f}x less than the same-topology ANN (optimized accelerator)")
