"""Sweep the number of time steps T of the rate-coded DLIF network: accuracy and spikes per synapse.

Trains ``experiments.mnist_dlif``'s network once per T (same epochs and settings for every T) and
writes ``summary.json``, ``table.md`` and ``timesteps.png`` (test accuracy and spikes per synapse
against T) to ``--out``; each run keeps its own folder ``T<k>/`` (resumable). The values of T:
``experiments.presets.DLIF_TIMESTEPS``. Run from the repository root (output in
``runs/dlif_timesteps/<dataset>``):

    python -m experiments.dlif_timesteps --dataset mnist --epochs 3 --data-dir ../shared/data
"""

from __future__ import annotations

from experiments import mnist_dlif
from experiments.common import Timer, command, interruptible, output_folder, parser, positive_int, write_json
from experiments.presets import DLIF, DLIF_TIMESTEPS, N_CLASSES


def main(argv=None):
    p = parser(__doc__.splitlines()[0], script="dlif_timesteps",
               dataset="mnist", epochs=3, out="runs/dlif_timesteps/<dataset>",
               models=("dlif",), datasets=tuple(N_CLASSES))
    p.add_argument("--num-steps", type=positive_int, nargs="+", default=list(DLIF_TIMESTEPS), help="the values of T")
    p.add_argument("--hidden", type=positive_int, nargs="+", default=list(DLIF["hidden"]))
    p.add_argument("--loss", default=DLIF["loss"], choices=["count", "membrane"])
    p.add_argument("--limit", type=positive_int, default=None)
    p.add_argument("--test-limit", type=positive_int, default=None)
    p.add_argument("--no-verify", action="store_true")
    args = p.parse_args(argv)
    out = output_folder(args, "dlif_timesteps", args.dataset)  # --fresh: the T<k>/ runs too
    with interruptible(args):
        return _run(args, argv, out)


def _run(args, argv, out):
    timer = Timer()
    rows = []
    for T in args.num_steps:
        sub = ["--dataset", args.dataset, "--epochs", str(args.epochs), "--num-steps", str(T), "--loss", args.loss,
               "--out", str(out / f"T{T}"), "--hidden", *map(str, args.hidden),
               "--seeds", *map(str, args.seeds)]
        for flag, v in (("--data-dir", args.data_dir), ("--limit", args.limit), ("--test-limit", args.test_limit)):
            if v is not None:
                sub += [flag, str(v)]
        sub += ["--quiet"] * args.quiet + ["--no-verify"] * args.no_verify
        r = mnist_dlif.main(sub)
        s = r["summary"]
        rows.append(dict(T=T, test_acc=s["test_acc"]["mean"], test_acc_count=s["test_acc_count"]["mean"],
                         spikes_in=s["test_spikes_in"]["mean"], spikes_hidden=s["test_spikes_hidden"]["mean"],
                         spikes_out=s["test_spikes_out"]["mean"], spikes_per_synapse=r["spikes_per_synapse"],
                         synaptic_events_per_sample=r["synaptic_events_per_sample"], energy=r["energy"],
                         seconds=r["seconds"]))
    result = dict(dataset=args.dataset, epochs=args.epochs, hidden=args.hidden, loss=args.loss, rows=rows,
                  seconds=timer(), command=command("dlif_timesteps", argv))
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", result)
    lines = ["| T | test acc. (%) | acc. by count (%) | input spikes | hidden spikes | output spikes "
             "| spikes/synapse L1 | spikes/synapse L2 | energy (nJ) | E_ANN-opt / E |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sps = r["spikes_per_synapse"] + [float("nan")] * (2 - len(r["spikes_per_synapse"]))
        lines.append(f"| {r['T']} | {100 * r['test_acc']:.2f} | {100 * r['test_acc_count']:.2f} | {r['spikes_in']:.0f} "
                     f"| {r['spikes_hidden']:.0f} | {r['spikes_out']:.1f} | {sps[0]:.3f} | {sps[1]:.3f} "
                     f"| {r['energy']['snn_nj']:.0f} | {r['energy']['ann_opt_over_snn']:.2f} |")
    (out / "table.md").write_text(f"{args.dataset}, {args.epochs} epochs per T; `{result['command']}`\n\n"
                                  + "\n".join(lines) + "\n")
    plot(out, rows, args.dataset)
    print("\n".join(lines))
    return result


def plot(out, rows, dataset):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    T = [r["T"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(T, [100 * r["test_acc"] for r in rows], "o-")
    ax[0].set_xlabel("time steps T")
    ax[0].set_ylabel("test accuracy (%)")
    for i, label in enumerate(("input -> hidden", "hidden -> output")):
        vals = [r["spikes_per_synapse"][i] if len(r["spikes_per_synapse"]) > i else float("nan") for r in rows]
        ax[1].plot(T, vals, "o-", label=label)
    ax[1].set_xlabel("time steps T")
    ax[1].set_ylabel("spikes per synapse per sample")
    ax[1].legend()
    for a in ax:
        a.set_xscale("log", base=2)
        a.grid(alpha=0.3)
    fig.suptitle(f"{dataset}: rate-coded DLIF, accuracy and activity against T")
    fig.tight_layout()
    fig.savefig(out / "timesteps.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
