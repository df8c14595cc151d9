"""Single-spike vs multi-spike LIF networks: one table and one figure from the results of
``experiments.mnist_lif`` (accuracy, spikes per sample, prediction latency, epochs to converge, noise).

Run from the repository root (output in ``runs/lif_compare/<dataset>``; it reads the recorded
results in ``--results``, by default ``results/``):

    python -m experiments.lif_compare --dataset mnist --out results/lif_comparison_mnist
"""

from __future__ import annotations

import json
import pathlib

from experiments.common import interruptible, output_folder, parser


def epochs_to(history, frac=0.99):
    """First epoch whose test accuracy reaches ``frac`` of the best one."""
    best = max(h["test_acc"] for h in history)
    return next(h["epoch"] for h in history if h["test_acc"] >= frac * best)


def main(argv=None):
    p = parser(__doc__.splitlines()[0], script="lif_compare",
               dataset="mnist", epochs=None, out="runs/lif_compare/<dataset>",
               models=("both",), datasets=("mnist", "fashion_mnist", "emnist/balanced"))
    p.add_argument("--results", default="results", help="folder holding <dataset>_lif_<model>/result.json")
    p.add_argument("--single", default=None,
                   help="result folder of the single-spike run (default: <results>/<dataset>_lif_single)")
    p.add_argument("--multi", default=None,
                   help="result folder of the multi-spike run (default: <results>/<dataset>_lif_multi)")
    args = p.parse_args(argv)
    out = output_folder(args, "lif_compare", args.dataset)
    with interruptible(args, resumable=False):
        return _run(args, out)


def _run(args, out):
    name = args.dataset.replace("/", "_")
    runs = {}
    for model in ("single", "multi"):
        f = pathlib.Path(getattr(args, model) or pathlib.Path(args.results) / f"{name}_lif_{model}") / "result.json"
        if f.exists():
            runs[model] = json.loads(f.read_text())
    if not runs:
        raise SystemExit(f"no results found under {args.results}/{name}_lif_*/")
    out.mkdir(parents=True, exist_ok=True)
    rows = ["| | " + " | ".join(runs) + " |", "|---|" + "---|" * len(runs)]

    def add(label, fn):
        rows.append(f"| {label} | " + " | ".join(fn(r) for r in runs.values()) + " |")

    s = lambda r, k: r["summary"][k]["mean"]
    add("network", lambda r: r["model"])
    add("epochs run", lambda r: str(r["epochs"]) + (f" (reported: epoch {r['selected_epoch']}, best on "
                                                     f"{r['n_val']} validation images)"
                                                     if r.get("selected_epoch") else ""))
    add("test accuracy", lambda r: f"{100 * s(r, 'test_acc'):.2f} %")
    add("hidden spikes / sample", lambda r: f"{s(r, 'test_spikes_hidden'):.0f}")
    add("output spikes / sample", lambda r: f"{s(r, 'test_spikes_out'):.1f}")
    add("silent hidden neurons (per sample)", lambda r: f"{100 * s(r, 'test_silent_hidden'):.0f} %")
    add("prediction latency (mean)", lambda r: f"{1e3 * s(r, 'test_latency'):.1f} ms")
    add("epochs to 99 % of best test accuracy", lambda r: str(epochs_to(r["runs"][0]["history"])))
    for k in ("0.005", "0.02"):
        add(f"accuracy, input jitter {1e3 * float(k):g} ms",
            lambda r, k=k: f"{100 * r['noise_robustness']['jitter'][k]:.2f} %")
    for k in ("0.2", "0.4"):
        add(f"accuracy, {100 * float(k):g} % input spikes deleted",
            lambda r, k=k: f"{100 * r['noise_robustness']['delete'][k]:.2f} %")
    add("accuracy without noise (same test subset)", lambda r: f"{100 * r['noise_robustness']['jitter']['0.0']:.2f} %")
    add("command", lambda r: f"`{r['command']}`")
    table = "\n".join(rows) + "\n"
    (out / "comparison.md").write_text(f"# {args.dataset}: single-spike vs multi-spike LIF\n\n" + table)
    print(table)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return table
    fig, ax = plt.subplots(1, 4, figsize=(15, 3.2))
    for model, r in runs.items():
        h = r["runs"][0]["history"]
        ax[0].plot([x["epoch"] for x in h], [x["test_acc"] for x in h], "o-", label=model)
        c = r["accuracy_over_time"]
        ax[1].plot([1e3 * t for t in c["time"]], c["accuracy"], label=model)
        nj = r["noise_robustness"]["jitter"]
        ax[2].plot([1e3 * float(k) for k in nj], list(nj.values()), "o-", label=model)
        nd = r["noise_robustness"]["delete"]
        ax[3].plot([float(k) for k in nd], list(nd.values()), "o-", label=model)
    ax[0].set(xlabel="epoch", ylabel="test accuracy", title="convergence")
    ax[1].set(xlabel="time (ms)", ylabel="accuracy of the decision so far", title="latency")
    ax[2].set(xlabel="input jitter std (ms)", ylabel="test accuracy", title="spike-time jitter")
    ax[3].set(xlabel="fraction of input spikes deleted", ylabel="test accuracy", title="deleted spikes")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    fig.savefig(out / "comparison.png", dpi=120)
    plt.close(fig)
    return table


if __name__ == "__main__":
    main()
