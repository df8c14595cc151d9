"""Step-by-step record of the output-layer collapse of the single-spike MNIST LIF network.

Starts from saved parameters (e.g. ``results/mnist_lif_single_30ep/best_params.msgpack``, the
epoch-14 network of the 30-epoch run), trains on the first 55 000 MNIST training images with
Adam at a constant learning rate, and writes one JSON line per step: loss, gradient and update
norms, output spikes per sample and the fraction of samples whose label neuron stayed silent.
The loss is ``experiments.mnist_lif``'s: ``--silent-label-drive G`` adds ``G * losses.silent_label_drive`` to
the TTFS cross-entropy and drops the cross-entropy's gradient of samples whose label neuron is
silent (``G = 0``: the reference loss).
Several values of ``G`` run one after the other (a weight whose step file in ``--out`` is complete
is read back, not rerun), each from the same parameters and with the same
data order (``--seeds``: its first value), and ``collapse.png`` compares them. Run from the
repository root (output in ``runs/lif_collapse``):

    python -m experiments.lif_collapse --init-params results/mnist_lif_single_30ep/best_params.msgpack \
        --silent-label-drive 0 1 100 --epochs 4 --data-dir ../shared/data --out results/lif_collapse
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import mnist_lif
from experiments.common import (
    command,
    interruptible,
    non_negative_float,
    non_negative_int,
    output_folder,
    parser,
    positive_int,
    write_json,
)
from experiments.presets import LIF
from jaxsnn import data

HPARAMS = dict(tau=LIF["single"]["tau"])


def make_step(task, opt):
    """One Adam step of ``mnist_lif``'s loss (the same as in training), with its diagnostics."""

    @jax.jit
    def step(params, opt_state, x, y):
        (value, aux), grads = jax.value_and_grad(task.loss, has_aux=True)(params, (x, y), None, HPARAMS)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        norm = lambda tree: jnp.sqrt(sum(jnp.sum(v ** 2) for v in jax.tree_util.tree_leaves(tree)))  # noqa: E731
        return params, opt_state, dict(loss=value, grad_norm=norm(grads), update_norm=norm(updates),
                                       out_spikes=aux["out_spikes"], label_silent=aux["label_silent"])

    return step


def run(args, gamma, xtr, ytr, out):
    path = out / f"steps_drive{gamma:g}.jsonl"
    steps = args.epochs * (len(xtr) // LIF["single"]["batch_size"])
    if path.exists():  # a finished run of this weight is kept (resumable sweeps over the weight)
        records = [json.loads(line) for line in path.read_text().splitlines()]
        if len(records) == steps:
            return records
    # clean inputs, as in the recorded runs (the preset's input augmentation would need a key per step)
    cfg = dict(LIF["single"], lr_schedule="constant", silent_label_drive=gamma,
               input_jitter=0.0, input_drop=0.0)
    if args.hidden:
        cfg["hidden"] = tuple(args.hidden)
    task, model, _ = mnist_lif.make_task(cfg, 10, len(xtr) // cfg["batch_size"], args.epochs)
    params = mnist_lif._init_from(args.init_params, task.init)(jax.random.PRNGKey(0), None)
    opt = optax.adam(args.lr)
    opt_state = opt.init(params)
    step = make_step(task, opt)
    rng = np.random.default_rng(args.seeds[0])
    batch = cfg["batch_size"]
    steps_per_epoch = len(xtr) // batch
    records = []
    with open(path, "w") as f:
        for epoch in range(args.epochs):
            perm = rng.permutation(len(xtr))
            for i in range(steps_per_epoch):
                idx = perm[i * batch:(i + 1) * batch]
                params, opt_state, m = step(params, opt_state, xtr[idx], ytr[idx])
                rec = dict(step=epoch * steps_per_epoch + i, **{k: float(v) for k, v in m.items()})
                records.append(rec)
                f.write(json.dumps(rec) + "\n")
                if not args.quiet and i % 200 == 0:
                    print(f"drive {gamma:g} epoch {epoch + 1} step {i}: output spikes {rec['out_spikes']:.2f}, "
                          f"label silent {rec['label_silent']:.3f}", flush=True)
    return records


def summarize(records, window):
    keys = ("out_spikes", "label_silent", "grad_norm")
    series = {k: np.array([r[k] for r in records]) for k in keys}
    silent = series["label_silent"]
    smooth = np.convolve(silent, np.ones(window) / window, mode="valid")
    collapsed = np.nonzero(smooth > 0.25)[0]
    return dict(steps=len(records),
                collapse_step=int(collapsed[0] + window - 1) if len(collapsed) else None,
                **{f"{k}_per_{window}_steps": [float(np.mean(v[i:i + window])) for i in range(0, len(v), window)]
                   for k, v in series.items()})


def plot(out, curves, window):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    for gamma, records in curves.items():
        for a, key in zip(ax, ("out_spikes", "label_silent")):
            v = np.array([r[key] for r in records])
            a.plot(np.convolve(v, np.ones(window) / window, mode="valid"), label=f"drive weight {gamma:g}")
    ax[0].set(xlabel="training step", ylabel="output spikes per sample", title="output spikes")
    ax[1].set(xlabel="training step", ylabel="fraction of samples", title="label neuron silent")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "collapse.png", dpi=120)
    plt.close(fig)


def main(argv=None):
    p = parser(__doc__.splitlines()[0], script="lif_collapse",
               dataset="mnist", epochs=4, out="runs/lif_collapse", models=("single",),
               datasets=("mnist",))
    p.add_argument("--init-params", required=True, help="best_params.msgpack or checkpoint.msgpack to start from")
    p.add_argument("--silent-label-drive", type=non_negative_float, nargs="+", default=[0.0, 100.0])
    p.add_argument("--lr", type=non_negative_float, default=5e-4, help="constant Adam learning rate")
    p.add_argument("--hidden", type=positive_int, nargs="+", default=None,
                   help="hidden sizes of the saved network (default 800)")
    p.add_argument("--val", type=non_negative_int, default=5000, help="the last N training images are left out")
    p.add_argument("--limit", type=positive_int, default=None, help="use only this many training images")
    p.add_argument("--window", type=positive_int, default=50, help="steps averaged in the summary and the figure")
    args = p.parse_args(argv)
    out = output_folder(args, "lif_collapse", keep=(args.init_params,))  # --fresh: every weight's step file
    with interruptible(args):
        return _run(args, argv, out)


def _run(args, argv, out):
    out.mkdir(parents=True, exist_ok=True)
    xtr, ytr = data.load_dataset("mnist", "train", data_dir=args.data_dir)
    xtr, ytr = mnist_lif.encode(xtr)[:len(xtr) - args.val], np.asarray(ytr, np.int32)[:len(ytr) - args.val]
    xtr, ytr = xtr[:args.limit], ytr[:args.limit]
    curves = {g: run(args, g, xtr, ytr, out) for g in args.silent_label_drive}
    result = dict(init_params=args.init_params, lr=args.lr, epochs=args.epochs, n_train=len(xtr),
                  runs={f"{g:g}": summarize(r, args.window) for g, r in curves.items()},
                  command=command("lif_collapse", argv))
    write_json(out / "result.json", result)
    plot(out, curves, args.window)
    for g, s in result["runs"].items():
        print(f"drive weight {g}: collapse at step {s['collapse_step']}")
    return result


if __name__ == "__main__":
    main()
