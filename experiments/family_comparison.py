"""The comparison of Fono et al.: SRM/TTFS, LIF single-spike, LIF multi-spike and DLIF networks
against the ReLU ANN of the same topology, on the same data: accuracy, epochs to converge,
training time per epoch, spikes per inference, spikes per synapse and estimated energy per
inference (jaxsnn.energy), as one table and one figure.

The spiking networks are the trained runs recorded in ``results/`` by their own experiments
(``mnist_srm.py``, ``mnist_lif.py``, ``mnist_dlif.py``, ``dlif_timesteps.py``; each row names
its source and how many epochs it ran). The ANNs (one per topology met among them) are trained
here, with Adam, on the same training set and evaluated on the same test set.

    python experiments/family_comparison.py --dataset mnist --epochs 10 --out results/family_comparison_mnist
"""

from __future__ import annotations

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from common import Timer, command, parser, write_json
from energy_report import networks
from jaxsnn import data, energy, train


def epochs_to(history, frac=0.99):
    best = max(h["test_acc"] for h in history)
    return next(h["epoch"] for h in history if h["test_acc"] >= frac * best)


def seconds_per_epoch(history):
    return history[-1]["seconds"] / len(history)


class ReLUMLP(fnn.Module):
    features: tuple

    @fnn.compact
    def __call__(self, x):
        for f in self.features[:-1]:
            x = fnn.relu(fnn.Dense(f)(x))
        return fnn.Dense(self.features[-1])(x)


def train_ann(hidden, xtr, ytr, xte, yte, epochs, seed, quiet):
    model = ReLUMLP(tuple(hidden) + (10,))

    def loss(params, batch, key, hp):
        x, y = batch
        logits = model.apply(params, x)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y)), dict(
            acc=jnp.mean(jnp.argmax(logits, -1) == y))

    def evaluate(params, batch, hp):
        x, y = batch
        return dict(acc=jnp.mean(jnp.argmax(model.apply(params, x), -1) == y))

    task = train.Task(lambda key, hp: model.init(key, jnp.zeros((1, 784))), loss, lambda hp: optax.adam(hp["lr"]),
                      evaluate)
    res = train.fit(task, (xtr, ytr), dict(lr=1e-3), seed=seed, epochs=epochs, batch_size=128, eval_data=(xte, yte),
                    progress=not quiet)
    return res.history


def main(argv=None):
    p = parser(__doc__.splitlines()[0], dataset="mnist", epochs=10, out=None, models=("all",),
               datasets=("mnist", "fashion_mnist"))
    p.add_argument("--results", default="results", help="folder with the spiking networks' results")
    p.add_argument("--limit", type=int, default=None, help="ANN training samples (default: all)")
    p.add_argument("--no-verify", action="store_true")
    args = p.parse_args(argv)
    out = pathlib.Path(args.out or f"results/family_comparison_{args.dataset}")
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    (xtr, ytr), (xte, yte) = [data.load_dataset(args.dataset, s, data_dir=args.data_dir, verify=not args.no_verify)
                              for s in ("train", "test")]
    input_spikes = float(np.mean(np.sum(np.asarray(xte).reshape(len(xte), -1) > 0, axis=1)))
    xtr = np.asarray(xtr, np.float32).reshape(len(xtr), -1) / 255.0
    xte = np.asarray(xte, np.float32).reshape(len(xte), -1) / 255.0
    ytr, yte = np.asarray(ytr, np.int32), np.asarray(yte, np.int32)
    xtr, ytr = xtr[: args.limit], ytr[: args.limit]
    costs = energy.EnergyCosts()
    rows, topologies = [], {}
    for label, layers, spikes_in, spikes_out, updates, acc, src in networks(pathlib.Path(args.results), args.dataset,
                                                                          input_spikes):
        hist = json.loads(pathlib.Path(src).read_text())["runs"][0]["history"]
        snn = energy.snn_energy(layers, np.asarray(spikes_in), neuron_updates=updates, output_spikes=spikes_out,
                                costs=costs)
        hidden = tuple(l.n_out for l in layers[:-1])
        topologies[hidden] = layers
        rows.append(dict(network=label, family="SNN", test_acc=acc, epochs=len(hist), epochs_to_99pct=epochs_to(hist),
                         seconds_per_epoch=seconds_per_epoch(hist), params=sum(l.params for l in layers),
                         spikes_per_inference=float(sum(spikes_in[1:]) + spikes_out),
                         spikes_per_synapse=float(energy.spikes_per_synapse(layers, np.asarray(spikes_in))),
                         energy_nj=float(snn["total"]) / 1e3, source=src))
    if not rows:
        raise SystemExit(f"no spiking-network results under {args.results} for {args.dataset}")
    for hidden, layers in sorted(topologies.items()):
        n_h = [h for h in hidden]
        if layers[0].n_in != 784:  # the SRM topology has bias inputs: its ANN is the plain one
            n_h = [l.n_out for l in layers[:-1]]
        hist = train_ann(n_h, xtr, ytr, xte, yte, args.epochs, args.seeds[0], args.quiet)
        plain = [energy.dense(a, b) for a, b in zip([784] + n_h, n_h + [10])]
        for reuse in ("opt", "base"):
            rows.append(dict(network=f"ReLU ANN 784-{'-'.join(map(str, n_h))}-10 ({reuse} accelerator)", family="ANN",
                             test_acc=hist[-1]["test_acc"], epochs=len(hist), epochs_to_99pct=epochs_to(hist),
                             seconds_per_epoch=seconds_per_epoch(hist), params=sum(l.params + l.n_out for l in plain),
                             spikes_per_inference=None, spikes_per_synapse=None,
                             energy_nj=energy.ann_energy(plain, costs, reuse=reuse)["total"] / 1e3, source="this script"))
    table = ["| network | test accuracy | epochs run | epochs to 99 % of best | s / epoch (2 CPU cores) | weights | "
             "spikes / inference | spikes per synapse | energy / inference (nJ) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sp = "" if r["spikes_per_inference"] is None else f"{r['spikes_per_inference']:.0f}"
        ss = "" if r["spikes_per_synapse"] is None else f"{r['spikes_per_synapse']:.3f}"
        table.append(f"| {r['network']} | {100 * r['test_acc']:.2f} % | {r['epochs']} | {r['epochs_to_99pct']} | "
                     f"{r['seconds_per_epoch']:.1f} | {r['params']:,} | {sp} | {ss} | {r['energy_nj']:.0f} |")
    text = (f"# {args.dataset}: model families against the ANN of the same topology\n\n" + "\n".join(table)
            + "\n\nThe spiking rows come from the runs named in result.json (their own epochs and budgets); "
            f"the ANNs were trained here for {args.epochs} epochs. Energy: jaxsnn.energy defaults.\n\n"
            f"Command: `{command('family_comparison.py', argv)}`\n")
    write_json(out / "result.json", dict(dataset=args.dataset, rows=rows, seconds=timer(),
                                         command=command("family_comparison.py", argv)))
    (out / "README.md").write_text(text)
    print(text)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return rows
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, r in enumerate(rows):
        ax.scatter(r["energy_nj"], 100 * r["test_acc"], marker="o" if r["family"] == "SNN" else "x", color=f"C{i % 10}",
                   label=r["network"])
    ax.set(xscale="log", xlabel="estimated energy per inference (nJ)", ylabel="test accuracy (%)",
           title=f"{args.dataset}: accuracy against energy")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "accuracy_energy.png", dpi=120)
    plt.close(fig)
    return rows


if __name__ == "__main__":
    main()
