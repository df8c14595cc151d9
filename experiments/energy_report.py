"""Estimated energy per inference of the trained classification networks in ``results/``, next
to their accuracy: SRM/TTFS, LIF single-spike (Fast & Deep), LIF multi-spike (Bacho & Chu) and
DLIF (rate, T steps), each against the ReLU ANN of the same topology (jaxsnn.energy).

Reads each experiment's ``result.json`` (accuracy; spikes per sample per layer measured on the
test set) and counts the input spikes from the dataset (TTFS inputs: one spike per non-zero
pixel). Exact-time neurons are event-driven (no per-step neuron updates); a DLIF network updates
every neuron at each of its T steps. Run from the repository root (output in
``runs/energy_report/<dataset>``; it reads the recorded results in ``--results``, by default
``results/``):

    python -m experiments.energy_report --dataset mnist --out results/energy_report_mnist
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from experiments.common import Timer, command, interruptible, output_folder, parser, write_json
from jaxsnn import data, energy


def _mean(summary, key):
    v = summary.get(key)
    return None if v is None else float(v["mean"])


def networks(results, name, input_spikes):
    """``(label, layers, spikes into each layer, output spikes, neuron updates, accuracy, source)``."""
    out = []
    f = results / f"{name}_srm" / "result.json"
    if f.exists():
        r = json.loads(f.read_text())
        s = r["summary"] if "summary" in r else None
        if s is not None:
            hidden = _mean(s, "test_spikes_hidden")
            # bias spikes: one extra input to each layer
            out.append(("SRM / TTFS 784-350-10", [energy.dense(785, 350), energy.dense(351, 10)],
                        [input_spikes + 1, hidden + 1], 10.0, 0, _mean(s, "test_acc"), str(f)))
    for model, label in (("single", "LIF single-spike 784-800-10"), ("multi", "LIF multi-spike 784-800-10")):
        f = results / f"{name}_lif_{model}" / "result.json"
        if f.exists():
            r = json.loads(f.read_text())
            s = r["summary"]
            n_h = list(r["config"]["hidden"])
            layers = [energy.dense(a, b) for a, b in zip([784] + n_h, n_h + [10])]
            if len(n_h) > 1:  # deeper networks need the spikes of each hidden layer
                hidden = [_mean(s, f"test_spikes_hidden_{i}") for i in range(len(n_h))]
                if None in hidden:
                    print(f"{f}: no per-layer spike counts (older run), no energy estimate")
                    continue
            else:
                hidden = [_mean(s, "test_spikes_hidden")]
            label = label.replace("784-800-10", "-".join(map(str, [784] + n_h + [10])))
            out.append((label, layers, [input_spikes] + hidden, _mean(s, "test_spikes_out"), 0,
                        _mean(s, "test_acc"), str(f)))
    dlif = [d / "result.json" for d in results.glob(f"{name}_dlif_T*")]
    dlif += list((results / f"{name}_dlif_timesteps").glob("T*/result.json"))
    by_steps = lambda f: (json.loads(f.read_text())["config"]["num_steps"], str(f))  # noqa: E731
    for f in sorted((f for f in dlif if f.exists()), key=by_steps):
        r = json.loads(f.read_text())
        s, c = r["summary"], r["config"]
        T, n_h = int(c["num_steps"]), list(c["hidden"])
        layers = [energy.dense(a, b) for a, b in zip([784] + n_h, n_h + [10])]
        sweep = " (T sweep)" if "timesteps" in str(f) else ""
        keys = [f"test_spikes_hidden_{i}" for i in range(len(n_h))] if len(n_h) > 1 else ["test_spikes_hidden"]
        hidden = [_mean(s, k) for k in keys]
        if None in hidden:
            print(f"{f}: no per-layer spike counts (older run), no energy estimate")
            continue
        out.append((f"DLIF 784-{'-'.join(map(str, n_h))}-10, T = {T}{sweep}", layers,
                    [_mean(s, "test_spikes_in")] + hidden, _mean(s, "test_spikes_out"), T,
                    _mean(s, "test_acc"), str(f)))
    return out


def main(argv=None):
    p = parser(__doc__.splitlines()[0], script="energy_report",
               dataset="mnist", epochs=None, out="runs/energy_report/<dataset>",
               models=("all",), datasets=("mnist", "fashion_mnist"))
    p.add_argument("--results", default="results", help="folder with the experiments' results (read only)")
    p.add_argument("--no-verify", action="store_true")
    args = p.parse_args(argv)
    out = output_folder(args, "energy_report", args.dataset)
    with interruptible(args, resumable=False):
        return _run(args, argv, out)


def _run(args, argv, out):
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    x, _ = data.load_dataset(args.dataset, "test", data_dir=args.data_dir, verify=not args.no_verify)
    input_spikes = float(np.mean(np.sum(np.asarray(x).reshape(len(x), -1) > 0, axis=1)))
    costs = energy.EnergyCosts()
    rows = []
    for label, layers, spikes_in, spikes_out, updates, acc, src in networks(pathlib.Path(args.results), args.dataset,
                                                                          input_spikes):
        snn = energy.snn_energy(layers, np.asarray(spikes_in), neuron_updates=updates, output_spikes=spikes_out,
                                costs=costs)
        ann = {r: energy.ann_energy(layers, costs, reuse=r)["total"] for r in ("base", "opt")}
        rows.append(dict(network=label, test_acc=acc, spikes_per_inference=float(sum(spikes_in[1:]) + spikes_out),
                         input_spikes=float(spikes_in[0]), neuron_updates=updates,
                         spikes_per_synapse=float(energy.spikes_per_synapse(layers, np.asarray(spikes_in))),
                         snn_energy_nj=float(snn["total"]) / 1e3, ann_opt_energy_nj=ann["opt"] / 1e3,
                         ann_base_energy_nj=ann["base"] / 1e3, snn_vs_ann_opt=ann["opt"] / float(snn["total"]),
                         source=src))
    if not rows:
        raise SystemExit(f"no results found under {args.results} for {args.dataset}")
    table = ["| network | test accuracy | spikes / inference (hidden + output) | spikes per synapse | SNN energy (nJ) "
             "| ANN-opt (nJ) | ANN-base (nJ) | E_ANN-opt / E_SNN |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['network']} | {100 * r['test_acc']:.2f} % | {r['spikes_per_inference']:.0f} | "
                     f"{r['spikes_per_synapse']:.3f} | {r['snn_energy_nj']:.0f} | {r['ann_opt_energy_nj']:.0f} | "
                     f"{r['ann_base_energy_nj']:.0f} | {r['snn_vs_ann_opt']:.2f} |")
    text = (f"# {args.dataset}: estimated energy per inference of the trained networks\n\n"
            f"Input: {input_spikes:.1f} spikes per image (TTFS: one per non-zero pixel; DLIF: its Bernoulli count). "
            f"Constants: jaxsnn.energy defaults (Horowitz 2014, 45 nm; local {costs.e_local:.1f} pJ, distant "
            f"{costs.e_distant:.1f} pJ per access).\n\n" + "\n".join(table)
            + f"\n\nCommand: `{command('energy_report', argv)}`\n")
    write_json(out / "result.json", dict(dataset=args.dataset, rows=rows, input_spikes=input_spikes,
                                         command=command("energy_report", argv), seconds=timer()))
    (out / "README.md").write_text(text)
    print(text)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return rows
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, r in enumerate(rows):
        ax.scatter(r["snn_energy_nj"], r["test_acc"], color=f"C{i}", label=r["network"])
        ax.scatter(r["ann_opt_energy_nj"], r["test_acc"], color=f"C{i}", marker="x")
    ax.set(xscale="log", xlabel="energy per inference (nJ); x = ANN-opt of the same topology",
           ylabel="test accuracy", title=f"{args.dataset}: accuracy against energy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "accuracy_energy.png", dpi=120)
    plt.close(fig)
    return rows


if __name__ == "__main__":
    main()
