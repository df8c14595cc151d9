"""Expressivity of SRM networks: emulation, discontinuity, linear regions, approximation, generalization.

Runs the constructions of :mod:`jaxsnn.theory` and records their checks (JSON) and
figures in ``--out``:

* ``emulation``: random ReLU networks emulated by SRM networks (max error in float64 and float32,
  sizes), and one-layer SRM networks turned into ReLU networks (error, sizes against fan-in);
* ``maps``: firing maps of small networks (1-D curves, 2-D maps with their linear regions), the
  discontinuous example, and the ``2^d - 1`` regions of one neuron;
* ``approx``: sup error against network size of the one-hidden-layer approximation (``delta = 3``);
* ``generalization`` (``--dataset``, ``--model``, ``--epochs``, first of ``--seeds``): SRM (TTFS)
  and DLIF networks of growing width trained on an MNIST subset; measured train-test gap against
  the growth-function bounds.

Nothing here resumes: an interrupted run starts again. Run from the repository root (output in
``runs/expressivity``):

    python -m experiments.expressivity --parts emulation maps approx generalization --out results/expressivity
"""

from __future__ import annotations

import math

import jax

jax.config.update("jax_enable_x64", True)   # the exactness checks run in float64

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from experiments.common import Timer, command, interruptible, output_folder, parser, positive_int, write_json  # noqa: E402
from experiments.presets import DLIF, MNIST_SRM  # noqa: E402
from jaxsnn import srm  # noqa: E402
from jaxsnn import theory as ex  # noqa: E402

PARTS = ("emulation", "maps", "approx", "generalization")


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def emulation(out, quiet=False):
    rng = np.random.default_rng(0)
    rows = []
    for sizes in [(1, 8, 1), (2, 16, 1), (4, 32, 32, 3), (8, 64, 64, 64, 10), (16, 32, 32, 32, 32, 4)]:
        layers = [(rng.standard_normal((a, b)) / math.sqrt(a), 0.1 * rng.standard_normal(b))
                  for a, b in zip(sizes[:-1], sizes[1:])]
        net = ex.relu_to_snn(layers, (0.0, 1.0))
        x = rng.uniform(0, 1, (1000, sizes[0]))
        ref = np.asarray(ex.relu_forward(layers, x))
        scale = 1.0 + np.abs(ref)
        e64 = float(np.max(np.abs(np.asarray(net(jnp.asarray(x))) - ref) / scale))
        with jax.enable_x64(False):
            e32 = float(np.max(np.abs(np.asarray(net(jnp.asarray(x, jnp.float32)), np.float64) - ref) / scale))
        rows.append(dict(relu_sizes=sizes, relu_units=int(sum(sizes[1:])), snn_layers=net.num_layers,
                         snn_neurons=net.num_neurons, snn_inputs=net.num_inputs, max_rel_error_f64=e64,
                         max_rel_error_f32=e32))
        if not quiet:
            print(f"relu_to_snn {sizes}: {net.num_layers} spiking layers, {net.num_neurons} neurons, "
                  f"error f64 {e64:.2e} f32 {e32:.2e}", flush=True)
    back = []
    for k in range(1, 11):
        W = rng.uniform(0.1, 1.0, (k, 2))
        th = rng.uniform(0.5, 2.0, 2)
        D = rng.uniform(0.0, 0.5, (k, 2))
        relu = ex.snn_to_relu(W, th, delays=D)
        t = rng.uniform(0.0, 2.0, (2000, k))
        snn = np.asarray(srm.first_spike_times(jnp.asarray(t), W, th, delays=D))
        err = float(np.max(np.abs(np.asarray(relu(t)) - snn)))
        back.append(dict(fan_in=k, pieces=2 ** k - 1, relu_layers=relu.num_layers, relu_units=relu.num_neurons,
                         relu_parameters=relu.num_parameters, max_abs_error=err))
        if not quiet:
            print(f"snn_to_relu fan-in {k}: {relu.num_layers} affine maps, {relu.num_neurons} ReLU units, "
                  f"error {err:.2e}", flush=True)
    write_json(out / "emulation.json", dict(relu_to_snn=rows, snn_to_relu=back))
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    ax[0].plot([r["relu_units"] for r in rows], [r["snn_neurons"] for r in rows], "o-")
    ax[0].set(xlabel="ReLU units", ylabel="spiking neurons", title="relu_to_snn: size (linear)")
    ax[1].semilogy([b["fan_in"] for b in back], [b["relu_units"] for b in back], "o-", label="ReLU units")
    ax[1].semilogy([b["fan_in"] for b in back], [b["pieces"] for b in back], "k--", label="2^k - 1 pieces")
    ax[1].set(xlabel="fan-in k of the SRM neuron", title="snn_to_relu: size (exponential)")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(out / "emulation_sizes.png", dpi=120)
    plt.close(fig)
    return dict(relu_to_snn=rows, snn_to_relu=back)


def maps(out, quiet=False):
    plt = _plt()
    rng = np.random.default_rng(1)
    fig, ax = plt.subplots(2, 3, figsize=(13, 7.5))
    # 1-D: an emulated ReLU network
    layers = [(rng.standard_normal((1, 6)) * 2, rng.standard_normal(6)), (rng.standard_normal((6, 1)), np.zeros(1))]
    net = ex.relu_to_snn(layers, (0.0, 1.0))
    x = np.linspace(0, 1, 801)[:, None]
    ax[0, 0].plot(x[:, 0], np.asarray(ex.relu_forward(layers, x))[:, 0], lw=4, alpha=0.4, label="ReLU network")
    ax[0, 0].plot(x[:, 0], np.asarray(net(jnp.asarray(x)))[:, 0], "k", lw=1, label="SRM network (decoded)")
    ax[0, 0].set(title=f"relu_to_snn: {net.num_neurons} spiking neurons", xlabel="x")
    ax[0, 0].legend()
    # 1-D: the discontinuous example, and the same neuron with delta = inf
    disc, cont = ex.discontinuous_example(), ex.discontinuous_example(delta=math.inf)
    jumps = ex.find_jumps(lambda p: disc(p), 0.0, 1.0)
    ax[0, 1].plot(x[:, 0], np.asarray(disc(jnp.asarray(x)))[:, 0], ".", ms=2, label="delta = 1 (jumps)")
    ax[0, 1].plot(x[:, 0], np.asarray(cont(jnp.asarray(x)))[:, 0], label="delta = inf (continuous)")
    ax[0, 1].set(title=f"discontinuous firing map: jump {jumps[0][1]:.3g} at x = {jumps[0][0]:.6g}",
                 xlabel="input spike time x", ylabel="output spike time")
    ax[0, 1].legend()
    # 1-D: a random one-layer neuron with inhibition and finite delta
    W = np.array([[1.2], [-0.6], [0.9]])
    f1 = lambda p: srm.first_spike_times(jnp.stack([p[..., 0], 0.3 + 0 * p[..., 0], 0.6 + 0 * p[..., 0]], -1),  # noqa: E731
                                         W, 0.5, delta=0.8)
    ax[0, 2].plot(x[:, 0], np.asarray(f1(jnp.asarray(x)))[:, 0])
    ax[0, 2].set(title="one neuron, inhibitory input, delta = 0.8", xlabel="spike time of input 1 (others fixed)")
    # 2-D: regions of the 2^d - 1 neuron, a random positive 2-layer SRM net, and an inhibitory neuron
    axis = np.linspace(0.0013, 0.9971, 181)
    nets2d = [("one neuron, d = 2: 2^2 - 1 regions", lambda p: ex.exponential_regions_neuron(2)(p))]
    W1, W2 = rng.uniform(0.2, 1.0, (2, 4)), rng.uniform(0.2, 1.0, (4, 1))
    nets2d.append(("2-layer SRM net, positive weights",
                   lambda p: srm.first_spike_times(srm.first_spike_times(p, W1, 0.6), W2, 1.0)))
    Wi = np.array([[1.0, 0.8], [-0.4, 1.0]])
    Wo = np.array([[0.7], [0.9]])
    nets2d.append(("2-layer SRM net, inhibitory weight",
                   lambda p: srm.first_spike_times(srm.first_spike_times(p, Wi, 0.5), Wo, 0.8)))
    counts = {}
    for i, (title, f) in enumerate(nets2d):
        n, labels = ex.count_linear_regions(f, [axis, axis], min_points=3)
        g = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
        vals = np.asarray(jax.vmap(lambda p: jnp.squeeze(f(p)))(jnp.asarray(g))).reshape(axis.size, axis.size)
        a = ax[1, i]
        im = a.imshow(vals.T, origin="lower", extent=(0, 1, 0, 1), cmap="viridis")
        edges = ((np.diff(labels, axis=0, prepend=labels[:1]) != 0)
                 | (np.diff(labels, axis=1, prepend=labels[:, :1]) != 0))
        ys, xs = np.nonzero(edges.T)
        a.plot(axis[xs], axis[ys], "w.", ms=0.6)
        a.set(title=f"{title}: {n} regions", xlabel="x1", ylabel="x2")
        fig.colorbar(im, ax=a, fraction=0.046)
        counts[title] = n
    fig.tight_layout()
    fig.savefig(out / "firing_maps.png", dpi=120)
    plt.close(fig)
    regions = []
    for d in range(1, 9):
        neuron = ex.exponential_regions_neuron(d)
        pts = []
        for S in range(1, 2 ** d):
            xx = np.full(d, 0.97)
            idx = [i for i in range(d) if S >> i & 1]
            xx[idx] = 0.01 * (1 + np.arange(len(idx))) / len(idx)
            pts.append(xx)
        _, _, keys = ex.affine_signatures(lambda p: neuron(p), np.array(pts))
        regions.append(dict(d=d, regions_found=int(len(np.unique(keys))), expected=2 ** d - 1, relu_neuron_max=2))
        if not quiet:
            print(f"one neuron, d = {d}: {regions[-1]['regions_found']} linear regions (2^d - 1 = {2 ** d - 1})",
                  flush=True)
    res = dict(discontinuous_jumps=[list(j) for j in jumps], regions_2d=counts, one_neuron_regions=regions)
    write_json(out / "maps.json", res)
    return res


FUNCTIONS = {
    "sin (d=1)": (1, lambda x: 0.5 + 0.4 * np.sin(6 * x[:, 0])),
    "|x - 0.3| kink (d=1)": (1, lambda x: np.abs(x[:, 0] - 0.3)),
    "sqrt (d=1)": (1, lambda x: np.sqrt(x[:, 0])),
    "sin*cos (d=2)": (2, lambda x: 0.5 + 0.3 * np.sin(3 * x[:, 0]) * np.cos(2 * x[:, 1])),
    "bump (d=2)": (2, lambda x: np.exp(-8 * ((x[:, 0] - 0.5) ** 2 + (x[:, 1] - 0.4) ** 2))),
}


def approx(out, quiet=False):
    import warnings
    res = {}
    for name, (d, f) in FUNCTIONS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, info = ex.approximate(f, d, 1e-9, max_level=6 if d == 1 else 4)
        res[name] = info["history"]
        if not quiet:
            print(f"approximate {name}: " + ", ".join(f"{h['hidden']}:{h['error']:.2e}" for h in info["history"]),
                  flush=True)
    write_json(out / "approximation.json", res)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, hist in res.items():
        ax.loglog([h["num_neurons"] for h in hist], [h["error"] for h in hist], "o-", label=name)
    ax.set(xlabel="spiking neurons (hidden + relays + output)", ylabel="sup error on the check grid",
           title="one hidden SRM layer, delta = 3")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "approximation_error.png", dpi=120)
    plt.close(fig)
    return res


def generalization(out, *, widths=(16, 64, 256), m=1000, epochs=40, T=8, data_dir=None, quiet=False,
                   dataset="mnist", models=("srm", "dlif"), seed=0, test_limit=2000):
    from experiments import mnist_dlif, mnist_srm
    from jaxsnn import coding, data, train

    with jax.enable_x64(False):
        (xtr, ytr), (xte, yte) = [data.load_dataset(dataset, s, data_dir=data_dir) for s in ("train", "test")]
        xtr, ytr = xtr[:m], np.asarray(ytr[:m], np.int32)
        xte, yte = xte[:test_limit], np.asarray(yte[:test_limit], np.int32)
        flat = lambda a: np.asarray(a, np.float32).reshape(len(a), -1) / 255.0  # noqa: E731
        ttfs = lambda a: np.asarray(coding.ttfs_encode(flat(a), silent_below=0.0), np.float32)  # noqa: E731
        rows = []
        for model in models:
            for h in widths:
                timer = Timer()
                steps = epochs * (m // 50)
                if model == "srm":
                    task = mnist_srm.make_task(hidden=h, dropout=0.0, total_steps=steps)
                    hp = mnist_srm.hparams(MNIST_SRM)  # mnist_srm defaults
                    tr, te = (ttfs(xtr), ytr), (ttfs(xte), yte)
                    log2g = lambda n, h=h: ex.srm_log2_growth([784, h, 10], n)  # noqa: E731
                else:
                    cfg = dict(DLIF, hidden=(h,), num_steps=T)  # mnist_dlif defaults
                    task, _ = mnist_dlif.make_task(cfg, 10, steps)
                    hp = dict(lr=DLIF["lr"])
                    tr, te = (flat(xtr), ytr), (flat(xte), yte)
                    log2g = lambda n, h=h: ex.dlif_log2_growth([784, h, 10], T, n)  # noqa: E731
                fit = train.fit(task, tr, hp, seed=seed, epochs=epochs, batch_size=50, eval_data=te, eval_name="test",
                                progress=False)
                train_acc = float(train.evaluate(task, fit.state.params, tr, hp)["acc"])
                test_acc = float(fit.history[-1]["test_acc"])
                params = 785 * h + (h + 1) * 10
                row = dict(model=model, dataset=dataset, seed=seed, hidden=h, parameters=params, train_samples=m,
                           test_samples=len(yte), epochs=epochs,
                           T=T if model == "dlif" else None, train_acc=train_acc, test_acc=test_acc,
                           gap=train_acc - test_acc, bound=float(ex.generalization_gap_bound(log2g, m)),
                           bound_at_60000=float(ex.generalization_gap_bound(log2g, 60000)),
                           vc_bound=ex.vc_dimension_bound(log2g), seconds=timer())
                rows.append(row)
                if not quiet:
                    print(f"{model} 784-{h}-10: train {train_acc:.4f} test {test_acc:.4f} gap {row['gap']:.4f} "
                          f"bound {row['bound']:.3g} ({row['seconds']:.0f} s)", flush=True)
                write_json(out / "generalization.json", rows)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, mk in (("srm", "o"), ("dlif", "s")):
        r = [x for x in rows if x["model"] == model]
        if not r:
            continue
        p = [x["parameters"] for x in r]
        ax.loglog(p, [max(x["gap"], 1e-3) for x in r], mk + "-", label=f"{model}: measured gap (m = {m})")
        ax.loglog(p, [x["bound"] for x in r], mk + "--", label=f"{model}: bound (95 %)")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set(xlabel="parameters", ylabel="test error - train error",
           title=f"{dataset} subset: gap vs growth-function bound")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "generalization.png", dpi=120)
    plt.close(fig)
    return rows


def main(argv=None):
    p = parser(__doc__.splitlines()[0], script="expressivity",
               dataset="mnist", epochs=40, out="runs/expressivity",
               models=("both", "srm", "dlif"), datasets=("mnist", "fashion_mnist"))
    p.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    p.add_argument("--widths", type=positive_int, nargs="+", default=[16, 64, 256],
                   help="hidden widths (generalization)")
    p.add_argument("--train-samples", type=positive_int, default=1000, help="MNIST training subset (generalization)")
    p.add_argument("--test-limit", type=positive_int, default=2000, help="test samples for the gap (generalization)")
    p.add_argument("--num-steps", type=positive_int, default=8, help="DLIF time steps (generalization)")
    args = p.parse_args(argv)
    out = output_folder(args, "expressivity")
    with interruptible(args, resumable=False):
        return _run(args, argv, out)


def _run(args, argv, out):
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    results = {}
    for part in args.parts:
        if part == "generalization":
            results[part] = generalization(out, widths=args.widths, m=args.train_samples, epochs=args.epochs,
                                           T=args.num_steps, data_dir=args.data_dir, quiet=args.quiet,
                                           dataset=args.dataset, seed=args.seeds[0], test_limit=args.test_limit,
                                           models=("srm", "dlif") if args.model == "both" else (args.model,))
        else:
            results[part] = globals()[part](out, quiet=args.quiet)
    write_json(out / f"run_{'_'.join(args.parts)}.json",
               dict(command=command("expressivity", argv), seconds=timer(), parts=args.parts))
    return results


if __name__ == "__main__":
    main()
