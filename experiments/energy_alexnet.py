"""Energy of a DLIF SNN against the ANN of the same topology (AlexNet), after Fono et al.
Figure 3 / Dampfhoffer et al.: efficiency E_ANN / E_SNN against spikes per synapse per time
step for T = 1, 2, 4, 8 and two ANN accelerators (base: no reuse; opt: maximal reuse), the
crossovers, and the energy breakdown into distant memory, local memory and compute.

Analytic (jaxsnn.energy with its default Horowitz 45 nm constants): no training involved. The
time steps and rates: ``experiments.presets.ALEXNET_TIME_STEPS`` / ``ALEXNET_BREAKDOWN_RATES``.
Run from the repository root (output in ``runs/energy_alexnet``):

    python -m experiments.energy_alexnet --out results/energy_alexnet
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from experiments.common import Timer, command, interruptible, output_folder, parser, positive_float, write_json
from experiments.presets import ALEXNET_BREAKDOWN_RATES as BREAKDOWN_RATES
from experiments.presets import ALEXNET_TIME_STEPS as STEPS
from jaxsnn import energy


def crossover(net, time_steps, reuse, costs, lo=1e-4, hi=100.0):
    """Spikes per synapse per step at which the SNN and the ANN use the same energy (bisection
    on the log scale; the efficiency decreases with the rate)."""
    f = lambda r: float(energy.efficiency(net, r, time_steps=time_steps, reuse=reuse, costs=costs)) - 1.0
    if f(lo) < 0 or f(hi) > 0:
        return None
    for _ in range(80):
        mid = float(np.sqrt(lo * hi))
        lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
    return lo


def main(argv=None):
    p = parser(__doc__.splitlines()[0], script="energy_alexnet",
               dataset="none", epochs=None, out="runs/energy_alexnet", models=("alexnet",))
    p.add_argument("--local-kib", type=positive_float, default=8.0, help="local buffer size (KiB)")
    p.add_argument("--distant-kib", type=positive_float, default=1024.0, help="distant SRAM size (KiB)")
    args = p.parse_args(argv)
    out = output_folder(args, "energy_alexnet")
    with interruptible(args, resumable=False):
        return _run(args, argv, out)


def _run(args, argv, out):
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    costs = energy.EnergyCosts(local_kib=args.local_kib, distant_kib=args.distant_kib)
    net = energy.alexnet()
    rates = np.logspace(-2, 1, 121)
    curves = {f"T{T}_{r}": np.asarray(energy.efficiency(net, jnp.asarray(rates), time_steps=T, reuse=r, costs=costs))
              for T in STEPS for r in ("base", "opt")}
    cross = {f"T{T}_{r}": crossover(net, T, r, costs) for T in STEPS for r in ("base", "opt")}
    n_in = jnp.asarray([l.n_in for l in net], float)
    breakdown = {f"ANN-{r}": energy.ann_energy(net, costs, reuse=r) for r in ("base", "opt")}
    for rate in BREAKDOWN_RATES:
        e = energy.snn_energy(net, rate * n_in, neuron_updates=1, output_spikes=rate * net[-1].n_out, costs=costs)
        breakdown[f"SNN T=1, {rate:g} sp/syn"] = {k: float(v) for k, v in e.items() if k != "events"}
    result = dict(
        topology=[l._asdict() for l in net], synapses=energy.synapses(net),
        costs=dict(mac=costs.mac, add=costs.add, mul=costs.mul, local=costs.e_local, distant=costs.e_distant,
                   local_kib=costs.local_kib, distant_kib=costs.distant_kib),
        rates=rates.tolist(), efficiency={k: v.tolist() for k, v in curves.items()}, crossover=cross,
        breakdown_pj=breakdown, seconds=timer(), command=command("energy_alexnet", argv))
    write_json(out / "result.json", result)
    rows = ["| T | crossover vs ANN-base | crossover vs ANN-opt |", "|---|---|---|"]
    for T in STEPS:
        rows.append(f"| {T} | {cross[f'T{T}_base']:.3f} | {cross[f'T{T}_opt']:.3f} |")
    rows2 = ["| | compute (µJ) | local memory (µJ) | distant memory (µJ) | total (µJ) |", "|---|---|---|---|---|"]
    for k, v in breakdown.items():
        rows2.append(f"| {k} | {v['compute'] / 1e6:.1f} | {v['local'] / 1e6:.1f} | {v['distant'] / 1e6:.1f} | "
                     f"{v['total'] / 1e6:.1f} |")
    text = (f"# AlexNet: DLIF SNN against the ANN of the same topology\n\n"
            f"{energy.synapses(net) / 1e6:.0f} M synapses; local buffer {costs.local_kib:g} KiB "
            f"({costs.e_local:.1f} pJ/access), distant SRAM {costs.distant_kib:g} KiB "
            f"({costs.e_distant:.1f} pJ/access), "
            f"MAC {costs.mac:.1f} pJ, add {costs.add:.1f} pJ.\n\n"
            "Spikes per synapse per time step below which the SNN uses less energy:\n\n" + "\n".join(rows)
            + "\n\nEnergy per inference:\n\n" + "\n".join(rows2) + f"\n\nCommand: `{result['command']}`\n")
    (out / "README.md").write_text(text)
    print(text)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return result
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.2))
    for i, T in enumerate(STEPS):
        for r, ls in (("base", "--"), ("opt", "-")):
            ax[0].loglog(rates, curves[f"T{T}_{r}"], ls, color=f"C{i}", label=f"T = {T}, ANN-{r}")
    ax[0].axhline(1.0, color="k", lw=0.8)
    ax[0].set(xlabel="spikes per synapse per time step", ylabel="E_ANN / E_SNN",
              title="AlexNet: SNN efficiency relative to the ANN")
    ax[0].legend(fontsize=7, ncol=2)
    names = list(breakdown)
    bottom = np.zeros(len(names))
    for part, color in (("distant", "C3"), ("local", "C1"), ("compute", "C0")):
        v = np.array([breakdown[n][part] / 1e6 for n in names])
        ax[1].bar(range(len(names)), v, bottom=bottom, color=color, label=f"{part}")
        bottom += v
    ax[1].set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
    ax[1].set(ylabel="energy per inference (µJ)", title="breakdown")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(out / "efficiency.png", dpi=120)
    plt.close(fig)
    return result


if __name__ == "__main__":
    main()
