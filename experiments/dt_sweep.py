"""Time-step study: multi-spike LIF networks trained and run on a clock of step dt; accuracy,
spike counts and prediction latency as dt grows (one vmapped program for the whole sweep).

The networks run with the clock in the loop (:func:`jaxsnn.lif.spike_times` with ``dt``: the
input is quantized once, every layer emits its spikes at bin ends and runs its causality checks
on clocked times; the backward pass uses the straight-through estimator, or the sine estimator
with ``--estimator sine``). dt is a traced value everywhere, so each program compiles once for
the whole sweep. The networks are the multi-spike presets of ``experiments.mnist_lif``
(``experiments.presets.LIF``); the default dts are ``experiments.presets.DT_SWEEP_DTS``. Two protocols:

* default: one continuous network (dt = 0) is trained, evaluated at every dt as it is
  (post-training quantization), then fine-tuned on the clock for every (seed, dt) (the seed
  sets the data order); one compiled training program serves every run.
* ``--from-scratch``: every (seed, dt) trains from its own initialization, all configurations
  in one ``jax.vmap`` (:func:`jaxsnn.train.sweep`). On a CPU this is slower per configuration
  (vmapped event loops run to the longest member, and the event compaction evaluates every
  size), so it suits an accelerator.

Reports, per dt (mean over seeds): test accuracy, spikes per sample per layer, total spikes,
prediction latency, and confidence over time (fraction of test samples already correctly and
finally decided at fixed decision times); the accuracy-vs-sparsity Pareto frontier; the dt range
within 1 point of the continuous network (dt = 0) and the hidden-spike reduction there.

Run from the repository root (output in ``runs/dt_sweep/<dataset>``):

    python -m experiments.dt_sweep --dataset mnist --limit 6000 --epochs 2 --seeds 0 1 --out results/dt_sweep_mnist
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.common import (
    Timer,
    command,
    energy_estimate,
    input_spikes,
    interruptible,
    non_negative_float,
    output_folder,
    parser,
    positive_int,
    write_json,
)
from experiments.mnist_lif import encode
from experiments.presets import DT_SWEEP_DTS, LIF, N_CLASSES
from jaxsnn import coding, data, losses, metrics, nn, train


def make_task(cfg, n_classes, estimator, steps_per_epoch):
    model = nn.LIFMLP(tuple(cfg["hidden"]) + (n_classes,), thresholds=tuple(cfg["thresholds"]),
                      max_spikes=tuple(cfg["max_spikes"]), estimator=estimator,
                      layer_kwargs=dict(tau_syn=0.13, tau_ratio=2, t_max=cfg["t_max"],
                                        weight_low=cfg["weight_range"][0], weight_high=cfg["weight_range"][1]))

    def init(key, hp):
        return model.init(key, jnp.zeros((1, 784, 1)))

    def loss(params, batch, key, hp):
        x, y = batch
        t, _ = model.apply(params, x[..., None], dt=hp["dt"])
        return losses.spike_count_loss(t, y, target_true=15.0, target_false=3.0), dict(
            acc=jnp.mean(coding.count_class(t) == y))

    def evaluate(params, batch, hp):
        x, y = batch
        t, aux = model.apply(params, x[..., None], dt=hp["dt"])
        hidden = aux["hidden"]
        lat = metrics.prediction_latency(t, "count")
        out = dict(acc=jnp.mean(coding.count_class(t) == y), spikes_out=metrics.spikes_per_sample(t),
                   latency=jnp.mean(jnp.where(jnp.isfinite(lat), lat, cfg["t_max"])))
        for i, h in enumerate(hidden):
            out[f"spikes_hidden{i + 1}"] = metrics.spikes_per_sample(h)
        return out

    def optimizer(hp):
        if cfg["lr_halve_every"]:
            sched = lambda step: jnp.maximum(
                hp["lr"] * 0.5 ** (step // (cfg["lr_halve_every"] * steps_per_epoch)), jnp.minimum(hp["lr"], 1e-4))
            return optax.adam(sched)
        return optax.adam(hp["lr"])

    return train.Task(init, loss, optimizer, evaluate), model


def confidence_curves(model, params, dts, x, y, times, batch=500):
    """Confidence over time ``[N, T]`` for every configuration (stacked params): one jitted
    program (params and dt traced) called per configuration and batch. A loop, not a vmap: on
    a CPU a vmapped event loop runs every member to the longest one's length."""
    fwd = jax.jit(lambda p, d, xb, yb: metrics.confidence_over_time(model.apply(p, xb[..., None], dt=d)[0], yb, times))
    rows = []
    for i in range(len(dts)):
        p_i = jax.tree.map(lambda v: v[i], params)
        total = 0.0
        for j in range(0, len(x), batch):
            total = total + np.asarray(fwd(p_i, dts[i], x[j:j + batch], y[j:j + batch])) * len(x[j:j + batch])
        rows.append(total / len(x))
    return np.stack(rows)


def summarize(records, dts, keys):
    out = []
    for dt in dts:
        rows = [r for r in records if np.isclose(r["dt"], dt)]
        s = dict(dt=float(dt), n=len(rows))
        for k in keys:
            v = np.array([r[k] for r in rows], float)
            s[k] = float(v.mean())
            s[k + "_std"] = float(v.std())
        out.append(s)
    return out


def within_one_point(summary, hidden_keys):
    """The dts whose mean accuracy is within 1 point of dt = 0, and the hidden-spike change."""
    ref = next((s for s in summary if s["dt"] == 0.0), None)
    if ref is None:
        return None
    ok = [s for s in summary if s["test_acc"] >= ref["test_acc"] - 0.01]
    largest = max(ok, key=lambda s: s["dt"])
    h0 = sum(ref[k] for k in hidden_keys)
    return dict(continuous_acc=ref["test_acc"], dts_within_1pt=[s["dt"] for s in ok],
                largest_dt_within_1pt=largest["dt"],
                hidden_spikes_continuous=h0, hidden_spikes_at_largest=sum(largest[k] for k in hidden_keys),
                hidden_spike_change=sum(largest[k] for k in hidden_keys) / h0 - 1.0,
                min_hidden_spikes_within_1pt=min(sum(s[k] for k in hidden_keys) for s in ok))


def plot(out, summary, records, front, conf_times, conf, dts, title):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    cmap = plt.get_cmap("viridis")
    colors = {float(d): cmap(i / max(len(dts) - 1, 1)) for i, d in enumerate(dts)}
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.2))
    inv = np.array([1.0 / r["total_spikes"] for r in records])
    acc = np.array([r["test_acc"] for r in records])
    for r, a, c in zip(records, acc, inv):
        ax[0].scatter(c, a, color=colors[float(r["dt"])], s=25)
    f = np.array(front)
    ax[0].plot(inv[f], acc[f], "k--", lw=1, label="Pareto frontier")
    for d in dts:
        ax[0].scatter([], [], color=colors[float(d)], label=f"dt = {1e3 * d:g} ms")
    ax[0].set(xlabel="1 / (total spikes per sample)", ylabel="test accuracy", title="accuracy vs sparsity")
    ax[0].legend(fontsize=6, ncol=2)
    n_seeds = len(records) // len(dts)
    for i, d in enumerate(dts):
        mean = conf[i::len(dts)].mean(axis=0) if n_seeds > 1 else conf[i]
        ax[1].plot(1e3 * conf_times, mean, color=colors[float(d)], label=f"{1e3 * d:g} ms")
    ax[1].set(xlabel="decision time (ms)", ylabel="fraction correctly decided", title="confidence over time")
    ax[1].legend(fontsize=6, ncol=2)
    x = [1e3 * s["dt"] for s in summary]
    ax[2].errorbar(x, [s["test_acc"] for s in summary], [s["test_acc_std"] for s in summary], fmt="o-", color="C0")
    ax[2].set(xlabel="dt (ms)", ylabel="test accuracy", title=title)
    ax2 = ax[2].twinx()
    ax2.errorbar(x, [s["total_spikes"] for s in summary], [s["total_spikes_std"] for s in summary], fmt="s--",
                 color="C3")
    ax2.set_ylabel("total spikes per sample", color="C3")
    fig.tight_layout()
    fig.savefig(out / "dt_sweep.png", dpi=120)
    plt.close(fig)


def main(argv=None):
    p = parser(__doc__.splitlines()[0], script="dt_sweep",
               dataset="mnist", epochs=2, out="runs/dt_sweep/<dataset>", models=("multi",),
               datasets=tuple(N_CLASSES))
    p.add_argument("--dts", type=non_negative_float, nargs="+", default=list(DT_SWEEP_DTS),
                   help="time steps (s); 0 = continuous")
    p.add_argument("--estimator", default="straight_through", choices=("straight_through", "sine"))
    p.add_argument("--limit", type=positive_int, default=6000, help="training samples used")
    p.add_argument("--test-limit", type=positive_int, default=2000, help="test samples used")
    p.add_argument("--batch-size", type=positive_int, default=None, help="default: the preset's")
    p.add_argument("--lr", type=non_negative_float, default=None, help="default: the preset's")
    p.add_argument("--hidden", type=positive_int, nargs="+", default=None,
                   help="hidden layer sizes (default: the preset's)")
    p.add_argument("--max-spikes", type=positive_int, nargs="+", default=None, help="spikes per neuron, one per layer")
    p.add_argument("--chunk-size", type=positive_int, default=None, help="configurations per vmapped chunk (memory)")
    p.add_argument("--no-verify", action="store_true")
    p.add_argument("--from-scratch", action="store_true",
                   help="train every (seed, dt) from its own initialization, all in one vmapped sweep "
                        "(default: fine-tune each from one continuous network)")
    p.add_argument("--pretrain-epochs", type=positive_int, default=1, help="epochs of the continuous network")
    p.add_argument("--pretrain-limit", type=positive_int, default=None,
                   help="training samples of the continuous network (default: the whole training set)")
    p.add_argument("--pretrain-dir", default=None,
                   help="folder of the continuous network's checkpoint (default: <out>/pretrain); a finished one "
                        "with the same settings is reused, e.g. to compare estimators on the same network; "
                        "--fresh deletes it only when it lies in --out")
    args = p.parse_args(argv)
    cfg = dict(LIF.get((args.dataset, args.model), LIF[args.model]))
    for k in ("batch_size", "lr", "hidden", "max_spikes"):
        if getattr(args, k) is not None:
            cfg[k] = tuple(getattr(args, k)) if isinstance(getattr(args, k), list) else getattr(args, k)
    if len(cfg["thresholds"]) != len(cfg["hidden"]) + 1:
        p.error("--hidden must keep the preset's number of layers (one threshold per layer)")
    out = output_folder(args, "dt_sweep", args.dataset)  # --fresh: pretrain/ and finetune_*/ too
    with interruptible(args):
        return _run(args, argv, cfg, out)


def _run(args, argv, cfg, out):
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    (xtr, ytr), (xte, yte) = [data.load_dataset(args.dataset, s, data_dir=args.data_dir, verify=not args.no_verify)
                              for s in ("train", "test")]
    xtr_full, ytr_full = xtr, ytr
    xtr, ytr = encode(xtr[: args.limit]), np.asarray(ytr[: args.limit], np.int32)
    xte, yte = encode(xte[: args.test_limit]), np.asarray(yte[: args.test_limit], np.int32)
    n_classes = N_CLASSES[args.dataset]
    dts = np.asarray(args.dts, np.float32)
    configs = train.grid(seed=np.asarray(args.seeds, np.int32), dt=dts)
    configs["lr"] = np.full(len(configs["dt"]), cfg["lr"], np.float32)
    ev_bs = min(500, len(xte))
    post_training = None
    if args.from_scratch:
        task, model = make_task(cfg, n_classes, args.estimator, len(xtr) // cfg["batch_size"])
        res = train.sweep(task, (xtr, ytr), configs, epochs=args.epochs, batch_size=cfg["batch_size"],
                          eval_data=(xte, yte), eval_batch_size=ev_bs, eval_name="test", chunk_size=args.chunk_size,
                          out=out, progress=not args.quiet)
        records, params, history = res.records(), res.params, {k: v.tolist() for k, v in res.history.items()}
    else:
        # 1. a continuous network (dt = 0), 2. every (seed, dt) fine-tuned from it on the clock
        n_pre = args.pretrain_limit or len(xtr_full)
        xpre, ypre = encode(xtr_full[:n_pre]), np.asarray(ytr_full[:n_pre], np.int32)
        task, model = make_task(cfg, n_classes, args.estimator, n_pre // cfg["batch_size"])
        pre = train.fit(task, (xpre, ypre), dict(lr=cfg["lr"], dt=0.0), seed=0, epochs=args.pretrain_epochs,
                        batch_size=cfg["batch_size"], eval_data=(xte, yte), eval_batch_size=ev_bs, eval_name="test",
                        out=pathlib.Path(args.pretrain_dir) if args.pretrain_dir else out / "pretrain",
                        progress=not args.quiet)
        pretrained = pre.state.params
        ev = jax.jit(lambda p, d, xy: train.evaluate(task, p, xy, dict(dt=d, lr=cfg["lr"]), batch_size=ev_bs))
        post_training = [dict(dt=float(d), **{k: float(v) for k, v in
                                              ev(pretrained, jnp.float32(d), (xte, yte)).items()})
                         for d in dts]
        ft_task, _ = make_task(cfg, n_classes, args.estimator, len(xtr) // cfg["batch_size"])
        ft_task = ft_task._replace(init=lambda key, hp: pretrained)
        records, plist, history = [], [], {}
        for i in range(len(configs["dt"])):
            seed, dt = int(configs["seed"][i]), float(configs["dt"][i])
            run = train.fit(ft_task, (xtr, ytr), dict(lr=cfg["lr"], dt=np.float32(dt)), seed=seed, epochs=args.epochs,
                            batch_size=cfg["batch_size"], eval_data=(xte, yte), eval_batch_size=ev_bs, eval_name="test",
                            out=out / f"finetune_seed{seed}_dt{dt:g}", progress=not args.quiet)
            last = run.history[-1]
            records.append(dict(seed=seed, dt=dt, lr=cfg["lr"], **{k: v for k, v in last.items() if k != "epoch"}))
            plist.append(run.state.params)
            for k, v in last.items():
                history.setdefault(k, []).append([h[k] for h in run.history])
            print(f"seed {seed} dt {1e3 * dt:g} ms: test accuracy {100 * last['test_acc']:.2f} %", flush=True)
        params = jax.tree.map(lambda *p: np.stack(p), *plist)
    hidden_keys = [k for k in records[0] if k.startswith("test_spikes_hidden")]
    for r in records:
        r["test_spikes_hidden"] = sum(r[k] for k in hidden_keys)
        r["total_spikes"] = r["test_spikes_hidden"] + r["test_spikes_out"]
    conf_times = np.linspace(0.0, cfg["t_max"], 41)
    conf = confidence_curves(model, params, jnp.asarray(configs["dt"]), xte, yte, jnp.asarray(conf_times))
    keys = ["test_acc", "test_spikes_out", "test_latency", "test_spikes_hidden", "total_spikes"] + hidden_keys
    summary = summarize(records, dts, keys)
    front = metrics.pareto_frontier([r["test_acc"] for r in records], [r["total_spikes"] for r in records])
    finding = within_one_point(summary, hidden_keys)
    layers = "-".join(map(str, (784,) + tuple(cfg["hidden"]) + (n_classes,)))
    result = dict(
        dataset=args.dataset, network=f"LIF {layers} multi-spike (max {'/'.join(map(str, cfg['max_spikes']))})",
        config=cfg, estimator=args.estimator, epochs=args.epochs, seeds=args.seeds, n_train=len(xtr),
        n_test=len(xte), dts=[float(d) for d in dts], summary=summary, records=records,
        pareto_frontier=[dict(dt=records[i]["dt"], seed=records[i]["seed"], test_acc=records[i]["test_acc"],
                              total_spikes=records[i]["total_spikes"]) for i in front],
        within_one_point=finding, confidence_over_time=dict(time=conf_times.tolist(), per_config=conf.tolist()),
        protocol="from scratch (vmapped sweep)" if args.from_scratch else (
            f"continuous network trained {args.pretrain_epochs} epoch(s) on {args.pretrain_limit or len(xtr_full)} "
            f"samples, then fine-tuned on the clock for {args.epochs} epoch(s) on {len(xtr)} samples per (seed, dt)"),
        post_training_quantization=post_training, history=history, seconds=timer(),
        command=command("dt_sweep", argv))
    # energy per inference (event-driven, jaxsnn.energy defaults) from the measured spike counts
    sizes = (784,) + tuple(cfg["hidden"]) + (n_classes,)
    spikes_in = input_spikes(xte)
    for s in summary:
        s["energy"] = energy_estimate(sizes, [spikes_in] + [s[k] for k in hidden_keys], s["test_spikes_out"])
    write_json(out / "result.json", result)
    rows = ["| dt (ms) | test accuracy | hidden spikes / sample | output spikes / sample | latency (ms) | energy (nJ) |"
            + (" without fine-tuning: accuracy, hidden spikes |" if post_training else ""),
            "|---|---|---|---|---|---|" + ("---|" if post_training else "")]
    for i, s in enumerate(summary):
        rows.append(f"| {1e3 * s['dt']:.4g} | {100 * s['test_acc']:.2f} ± {100 * s['test_acc_std']:.2f} % | "
                    f"{s['test_spikes_hidden']:.0f} | {s['test_spikes_out']:.1f} | {1e3 * s['test_latency']:.1f} | "
                    f"{s['energy']['snn_nj']:.0f} |"
                    + (f" {100 * post_training[i]['acc']:.2f} %, "
                       f"{sum(v for k, v in post_training[i].items() if k.startswith('spikes_hidden')):.0f} |"
                       if post_training else ""))
    table = "\n".join(rows)
    f = finding
    within = ("" if f is None else
              f"Within 1 point of the continuous network ({100 * f['continuous_acc']:.2f} %): dt in "
              f"{[round(1e3 * d, 4) for d in f['dts_within_1pt']]} ms; at the largest, "
              f"{1e3 * f['largest_dt_within_1pt']:.4g} ms, "
              f"hidden spikes change by {100 * f['hidden_spike_change']:+.0f} % "
              f"({f['hidden_spikes_continuous']:.0f} -> {f['hidden_spikes_at_largest']:.0f} per sample).\n\n")
    text = (f"# {args.dataset}: time-step sweep, {result['network']}\n\n"
            f"Protocol: {result['protocol']}; {len(xte)} test samples, seeds {args.seeds}, "
            f"{args.estimator} estimator; mean ± std over seeds.\n\n{table}\n\n"
            + within +
            f"Command: `{result['command']}` ({result['seconds']:.0f} s)\n")
    (out / "README.md").write_text(text)
    plot(out, summary, records, front, conf_times, conf, dts, f"{args.dataset}: accuracy and spikes vs dt")
    print(text)
    return result


if __name__ == "__main__":
    main()
