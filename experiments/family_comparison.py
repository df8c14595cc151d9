"""The comparison of Fono et al. under one budget: SRM/TTFS, LIF single-spike (Fast & Deep), LIF
multi-spike (Bacho & Chu), DLIF (rate coding, several T) and the ReLU ANN, all with the same
topology 784-H-10, trained on the same samples for the same number of epochs and evaluated on the
same test images. Reported per network: test accuracy, accuracy per epoch, epochs to converge
(first epoch within 1 % of the best), seconds per epoch (same machine, one after the other),
spikes per inference, spikes per synapse and the estimated energy per inference (jaxsnn.energy,
measured spike counts), against the ANN of the same topology on the optimized and the baseline
accelerator.

Each family keeps its own reference settings (encoding, loss, learning rate, batch size; see
:func:`family` and ``experiments.presets``: ``MNIST_SRM``, ``LIF``, ``DLIF``, ``FAMILY_ANN``): what
is matched is the topology, the data and the number of epochs. The SRM network adds one bias spike
to each layer's input (its own design). Every run is checkpointed in ``--out`` and resumes where
it stopped. Run from the repository root (output in ``runs/family_comparison/<dataset>``):

    python -m experiments.family_comparison --dataset mnist --epochs 3 --hidden 400 --data-dir ../shared/data
"""

from __future__ import annotations

import dataclasses

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import mnist_dlif, mnist_lif, mnist_srm
from experiments.common import Timer, command, interruptible, output_folder, parser, positive_int, write_json
from experiments.presets import DLIF, FAMILY_ANN, FAMILY_DLIF_STEPS, LIF, MNIST_SRM
from jaxsnn import coding, data, energy, train

FAMILIES = ("srm", "lif_single", "lif_multi", *(f"dlif_T{T}" for T in FAMILY_DLIF_STEPS), "ann")


class ReLUMLP(fnn.Module):
    features: tuple

    @fnn.compact
    def __call__(self, x):
        for f in self.features[:-1]:
            x = fnn.relu(fnn.Dense(f)(x))
        return fnn.Dense(self.features[-1])(x)


def ann_task(hidden, n_classes, total_steps):
    model = ReLUMLP((hidden, n_classes))

    def loss(params, batch, key, hp):
        x, y = batch
        logits = model.apply(params, x)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y)), dict(
            acc=jnp.mean(jnp.argmax(logits, -1) == y))

    def evaluate(params, batch, hp):
        x, y = batch
        return dict(acc=jnp.mean(jnp.argmax(model.apply(params, x), -1) == y))

    return train.Task(lambda key, hp: model.init(key, jnp.zeros((1, 784))), loss,
                      lambda hp: optax.adam(optax.cosine_decay_schedule(hp["lr"], total_steps, alpha=0.01)), evaluate)


def family(name, hidden, n_classes, n_train, epochs):
    """``dict(label, task, hparams, batch_size, encode, layers, neuron_updates, input_spikes)`` of one
    family at the matched topology. ``encode`` maps ``uint8 [N, 28, 28]`` images to the network's
    input; ``input_spikes`` counts the spikes of an encoded batch per sample (``None``: the
    evaluation reports them)."""
    ttfs_count = lambda x: np.asarray(energy.spike_counts(x), np.float64)[:, 0]  # noqa: E731
    plain = [energy.dense(784, hidden), energy.dense(hidden, n_classes)]
    if name == "srm":
        bs = MNIST_SRM["batch_size"]
        task = mnist_srm.make_task(hidden=hidden, total_steps=epochs * (n_train // bs))
        enc = lambda img: np.asarray(coding.ttfs_encode(img.reshape(len(img), -1) / 255.0, silent_below=0.0),  # noqa
                                     np.float32)
        return dict(label=f"SRM / TTFS 784-{hidden}-{n_classes}", task=task, batch_size=bs, encode=enc,
                    hparams=mnist_srm.hparams(MNIST_SRM),
                    # one bias spike into each layer
                    layers=[energy.dense(785, hidden), energy.dense(hidden + 1, n_classes)], neuron_updates=0,
                    input_spikes=lambda x: ttfs_count(x) + 1, hidden_extra=1.0, max_spikes=1)
    if name.startswith("lif_"):
        kind = name[4:]
        cfg = dict(LIF[kind], hidden=(hidden,))
        task, _, _ = mnist_lif.make_task(cfg, n_classes, n_train // cfg["batch_size"])
        spikes = "/".join(map(str, cfg["max_spikes"]))
        return dict(label=f"LIF {kind}-spike 784-{hidden}-{n_classes} (max {spikes})", task=task,
                    batch_size=cfg["batch_size"], encode=mnist_lif.encode, hparams=dict(lr=cfg["lr"], tau=cfg["tau"]),
                    layers=plain, neuron_updates=0, input_spikes=ttfs_count, hidden_extra=0.0,
                    max_spikes=max(cfg["max_spikes"]))
    if name.startswith("dlif_T"):
        T = int(name[6:])
        cfg = dict(DLIF, hidden=(hidden,), num_steps=T)
        task, _ = mnist_dlif.make_task(cfg, n_classes, epochs * (n_train // cfg["batch_size"]))
        return dict(label=f"DLIF 784-{hidden}-{n_classes}, T = {T}", task=task, batch_size=cfg["batch_size"],
                    encode=lambda img: np.asarray(img, np.float32).reshape(len(img), -1) / 255.0,
                    hparams=dict(lr=cfg["lr"]), layers=plain, neuron_updates=T, input_spikes=None, hidden_extra=0.0,
                    max_spikes=T)
    if name == "ann":
        bs = FAMILY_ANN["batch_size"]
        return dict(label=f"ReLU ANN 784-{hidden}-{n_classes}",
                    task=ann_task(hidden, n_classes, epochs * (n_train // bs)),
                    batch_size=bs, encode=lambda img: np.asarray(img, np.float32).reshape(len(img), -1) / 255.0,
                    hparams=dict(lr=FAMILY_ANN["lr"]), layers=plain, neuron_updates=None, input_spikes=None,
                    hidden_extra=0.0)
    raise ValueError(f"unknown family {name!r}; choose from {FAMILIES}")


def epochs_to(history, frac=0.99):
    """The first epoch whose test accuracy is within ``1 - frac`` (relative) of the best."""
    best = max(h["test_acc"] for h in history)
    return next(h["epoch"] for h in history if h["test_acc"] >= frac * best)


def measure(fam, run, x_test_encoded, costs):
    """Accuracy, timing, spike counts and energy of one trained network (last epoch)."""
    hist = run.history
    last = hist[-1]
    row = dict(network=fam["label"], test_acc=last["test_acc"], accuracy_per_epoch=[h["test_acc"] for h in hist],
               epochs=len(hist), epochs_to_99pct=epochs_to(hist), seconds_per_epoch=last["seconds"] / len(hist),
               params=sum(l.params for l in fam["layers"]), batch_size=fam["batch_size"], hparams=fam["hparams"])
    layers = fam["layers"]
    ann = {r: energy.ann_energy(layers, costs, reuse=r)["total"] / 1e3 for r in ("opt", "base")}
    row.update(ann_opt_energy_nj=ann["opt"], ann_base_energy_nj=ann["base"])
    if fam["neuron_updates"] is None:  # the ANN itself
        row.update(family="ANN", energy_nj=ann["opt"], spikes_per_inference=None, spikes_per_synapse=None)
        return row
    if fam["input_spikes"] is None:
        spikes_in = last["test_spikes_in"]
    else:
        spikes_in = float(np.mean(fam["input_spikes"](x_test_encoded)))
    n_out = layers[-1].n_out
    # the SRM evaluation reports the silent fraction of its one-spike output neurons
    out = last["test_spikes_out"] if "test_spikes_out" in last else n_out * (1.0 - last["test_silent_out"])
    hidden = last["test_spikes_hidden"] + fam["hidden_extra"]
    counts = np.asarray([spikes_in, hidden])
    snn = energy.snn_energy(layers, counts, neuron_updates=fam["neuron_updates"], output_spikes=out,
                            max_spikes=fam["max_spikes"], costs=costs)
    row.update(family="SNN", input_spikes=spikes_in, hidden_spikes=last["test_spikes_hidden"], output_spikes=out,
               spikes_per_inference=last["test_spikes_hidden"] + out,
               spikes_per_synapse=float(energy.spikes_per_synapse(layers, counts)),
               energy_nj=float(snn["total"]) / 1e3,
               energy_breakdown_nj={k: float(snn[k]) / 1e3 for k in ("compute", "local", "distant")})
    return row


def table(rows):
    head = ["| network | test accuracy | epochs to converge | s / epoch | weights | spikes / inference "
            "(hidden + output) | spikes per synapse | energy / inference (nJ) | E_ANN-opt / E | E_ANN-base / E |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sp = "" if r["spikes_per_inference"] is None else f"{r['spikes_per_inference']:.0f}"
        ss = "" if r["spikes_per_synapse"] is None else f"{r['spikes_per_synapse']:.3f}"
        name = r["network"] + (" (opt accelerator)" if r["family"] == "ANN" else "")
        head.append(f"| {name} | {100 * r['test_acc']:.2f} % | {r['epochs_to_99pct']} of {r['epochs']} | "
                    f"{r['seconds_per_epoch']:.1f} | {r['params']:,} | {sp} | {ss} | {r['energy_nj']:.0f} | "
                    f"{r['ann_opt_energy_nj'] / r['energy_nj']:.2f} | {r['ann_base_energy_nj'] / r['energy_nj']:.2f} |")
    return head


def plot(rows, out, dataset):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure written (pip install 'jaxsnn-exact[experiments]')")
        return
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, r in enumerate(rows):
        c = f"C{i % 10}"
        ax[0].scatter(r["energy_nj"], 100 * r["test_acc"], marker="x" if r["family"] == "ANN" else "o", color=c,
                      s=60, label=r["network"])
        ax[1].plot(range(1, r["epochs"] + 1), [100 * a for a in r["accuracy_per_epoch"]], "-o", color=c, ms=3,
                   label=r["network"])
    ann = next(r for r in rows if r["family"] == "ANN") if any(r["family"] == "ANN" for r in rows) else None
    if ann is not None:
        ax[0].axvline(ann["ann_base_energy_nj"], color="gray", ls="--", lw=0.8, label="ANN, baseline accelerator")
    ax[0].set(xscale="log", xlabel="estimated energy per inference (nJ)", ylabel="test accuracy (%)",
              title=f"{dataset}: accuracy against energy (x: ANN, opt accelerator)")
    ax[1].set(xlabel="epoch", ylabel="test accuracy (%)", title="convergence")
    ax[0].legend(fontsize=6)
    ax[1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "accuracy_energy.png", dpi=120)
    plt.close(fig)


def main(argv=None):
    p = parser(__doc__.splitlines()[0], script="family_comparison",
               dataset="mnist", epochs=3, out="runs/family_comparison/<dataset>",
               models=("all",), datasets=("mnist", "fashion_mnist"))
    p.add_argument("--hidden", type=positive_int, default=400, help="hidden neurons, the same for every family")
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    p.add_argument("--limit", type=positive_int, default=None, help="training samples (default: all)")
    p.add_argument("--test-limit", type=positive_int, default=None, help="test samples (default: all)")
    p.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check of the dataset files")
    args = p.parse_args(argv)
    out = output_folder(args, "family_comparison", args.dataset)  # --fresh: every family's run
    with interruptible(args):
        return _run(args, argv, out)


def _run(args, argv, out):
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    (xtr, ytr), (xte, yte) = [data.load_dataset(args.dataset, s, data_dir=args.data_dir, verify=not args.no_verify)
                              for s in ("train", "test")]
    xtr, ytr, xte, yte = xtr[: args.limit], ytr[: args.limit], xte[: args.test_limit], yte[: args.test_limit]
    ytr, yte = np.asarray(ytr, np.int32), np.asarray(yte, np.int32)
    costs = energy.EnergyCosts()
    rows = []
    for name in args.families:
        fam = family(name, args.hidden, 10, len(xtr), args.epochs)
        a, b = fam["encode"](np.asarray(xtr)), fam["encode"](np.asarray(xte))
        if not args.quiet:
            print(f"== {fam['label']}: batch {fam['batch_size']}, {fam['hparams']}", flush=True)
        run = train.fit(fam["task"], (a, ytr), fam["hparams"], seed=args.seeds[0], epochs=args.epochs,
                        batch_size=fam["batch_size"], eval_data=(b, yte), eval_batch_size=min(1000, len(b)),
                        eval_name="test", out=out / name, progress=not args.quiet)
        rows.append(dict(measure(fam, run, b, costs), key=name))
        jax.clear_caches()
        write_json(out / "result.json", dict(dataset=args.dataset, hidden=args.hidden, epochs=args.epochs,
                                             seed=args.seeds[0], n_train=len(xtr), n_test=len(xte), rows=rows,
                                             costs=dataclasses.asdict(costs), seconds=timer(),
                                             command=command("family_comparison", argv)))
    text = (f"# {args.dataset}: the model families under one budget\n\n"
            f"Every network is 784-{args.hidden}-10, trained for {args.epochs} epochs on the same {len(xtr)} "
            f"training images (seed {args.seeds[0]}) and tested on the same {len(xte)} test images; each family "
            "keeps its reference encoding, loss, learning rate and batch size (result.json: `hparams`, "
            "`batch_size`). Epochs to converge: the first epoch within 1 % of the best test accuracy. "
            "Seconds per epoch: 2 CPU cores, the runs one after the other (evaluation included). Energy: "
            "jaxsnn.energy defaults, spike counts measured on the test set; the ANN row is the optimized "
            "accelerator, and the last two columns divide the same-topology ANN's energy (optimized, "
            "baseline) by the row's.\n\n" + "\n".join(table(rows))
            + f"\n\nCommand: `{command('family_comparison', argv)}`\n")
    (out / "README.md").write_text(text)
    print(text)
    plot(rows, out, args.dataset)
    return rows


if __name__ == "__main__":
    main()
