"""Yin-Yang with a two-layer SRM network (closed-form first-spike times): the quickstart.

The four inputs ``(x, y, 1-x, 1-y)`` become one spike each at ``t = 1 - value``; every layer
gets a bias spike at ``t = 0``; the class is the output neuron that fires first. The whole
dataset stays on the device and each epoch is one compiled ``lax.scan`` over mini-batches;
several ``--seeds`` train together as one vmapped program.

Run from the repository root (output in ``runs/yinyang/``; ``--out results/yinyang`` regenerates
the recorded result):

    python -m experiments.yinyang                    # about half a minute on 2 CPU cores
    python -m experiments.yinyang --seeds 0 1 2      # three seeds in one program
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.common import (
    Timer,
    command,
    interruptible,
    kernels,
    non_negative_float,
    output_folder,
    parser,
    plot_history,
    positive_float,
    positive_int,
    run_seeds,
    summarize,
    write_results,
)
from experiments.presets import YINYANG
from jaxsnn import coding, data, losses, metrics, nn, train


def make_task(*, hidden=YINYANG["hidden"], weight_mean=YINYANG["weight_mean"], weight_std=YINYANG["weight_std"],
              total_steps=10_000):
    """The Yin-Yang SRM task; traced hyperparameters: ``lr``, ``tau``, ``t_cap``, ``hinge``.

    Metrics: accuracy and spikes per sample in the hidden and output layers.
    """
    model = nn.SRMMLP((hidden, 3), layer_kwargs=dict(bias_time=0.0, weight_mean=weight_mean,
                                                     weight_std=weight_std))

    def forward(params, x):
        t, aux = model.apply(params, x)
        (h,) = aux["hidden"]
        spikes = dict(spikes_hidden=metrics.spikes_per_sample(h), spikes_out=metrics.spikes_per_sample(t))
        return t, spikes

    def init(key, hp):
        return model.init(key, jnp.zeros((1, 4)))

    def loss(params, batch, key, hp):
        x, y = batch
        t, spikes = forward(params, x)
        ce = losses.ttfs_cross_entropy(t, y, temperature=hp["tau"], t_cap=hp["t_cap"])
        reg = hp["hinge"] * sum(losses.weight_sum_hinge(k) for k in kernels(params))
        return ce + reg, dict(acc=jnp.mean(coding.first_spike_class(t) == y), **spikes)

    def evaluate(params, batch, hp):
        x, y = batch
        t, spikes = forward(params, x)
        return dict(acc=jnp.mean(coding.first_spike_class(t) == y), **spikes)

    def optimizer(hp):
        return optax.chain(optax.clip_by_global_norm(1.0),
                           optax.adam(optax.cosine_decay_schedule(hp["lr"], total_steps, alpha=0.01)))

    return train.Task(init, loss, optimizer, evaluate), model


def plot_decision_map(classify, x_test, y_test, path, n=200):
    """Predicted class on a grid over the unit square, with the test points on top."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    g = np.linspace(0.0, 1.0, n)
    gx, gy = np.meshgrid(g, g)
    pts = np.stack([gx.ravel(), gy.ravel()], 1)
    pts = np.concatenate([pts, 1.0 - pts], 1).astype(np.float32)
    inside = np.hypot(pts[:, 0] - 0.5, pts[:, 1] - 0.5) <= 0.5
    cls = np.where(inside, np.asarray(classify(pts)), -1).reshape(n, n).astype(float)
    cls[cls < 0] = np.nan
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.imshow(cls, origin="lower", extent=(0, 1, 0, 1), cmap="viridis", alpha=0.45, vmin=0, vmax=2)
    xt = np.asarray(coding.ttfs_decode(x_test))
    ax.scatter(xt[:, 0], xt[:, 1], c=y_test, s=4, cmap="viridis", vmin=0, vmax=2)
    ax.set_title("Yin-Yang: prediction and test set")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    d = YINYANG
    p = parser(__doc__.splitlines()[0], script="yinyang",
               dataset="yinyang", epochs=d["epochs"], out="runs/yinyang",
               datasets=("yinyang",))
    p.add_argument("--hidden", type=positive_int, default=d["hidden"], help="hidden SRM neurons")
    p.add_argument("--batch-size", type=positive_int, default=d["batch_size"])
    p.add_argument("--lr", type=non_negative_float, default=d["lr"], help="initial Adam learning rate (cosine decay)")
    p.add_argument("--tau", type=positive_float, default=d["tau"], help="temperature of the TTFS cross-entropy")
    p.add_argument("--t-cap", type=float, default=d["t_cap"], help="output spikes later than this count as this")
    p.add_argument("--hinge", type=non_negative_float, default=d["hinge"],
                   help="weight of the weight-sum hinge that keeps neurons able to fire")
    p.add_argument("--weight-mean", type=float, default=d["weight_mean"])
    p.add_argument("--weight-std", type=non_negative_float, default=d["weight_std"])
    args = p.parse_args(argv)
    train.use_cpu_devices()  # one JAX device per core: several seeds train in parallel
    out = output_folder(args, "yinyang")
    with interruptible(args):
        return _run(args, argv, out)


def _run(args, argv, out):
    timer = Timer()

    # The data set is the same for every seed (the Yin-Yang paper's fixed train/test draw).
    (xtr, ytr), (xte, yte) = data.load_yinyang(seed=0)
    xtr, xte = coding.ttfs_encode(xtr), coding.ttfs_encode(xte)
    task, model = make_task(hidden=args.hidden, weight_mean=args.weight_mean, weight_std=args.weight_std,
                            total_steps=args.epochs * (len(xtr) // args.batch_size))
    hparams = dict(lr=args.lr, tau=args.tau, t_cap=args.t_cap, hinge=args.hinge)
    runs = run_seeds(task, (xtr, ytr), (xte, yte), hparams, args, batch_size=args.batch_size, out=out)

    summary = summarize(runs, ("train_acc", "test_acc", "test_spikes_hidden"))
    result = dict(dataset="yinyang", model=f"SRM 4(+bias)-{args.hidden}(+bias)-3 ramp", seeds=args.seeds,
                  summary=summary, seconds=timer(), args=vars(args), command=command("yinyang", argv))
    write_results(out, result, runs)
    plot_history(runs, out / "accuracy.png", title="Yin-Yang, SRM network")
    predict = jax.jit(lambda p, x: coding.first_spike_class(model.apply(p, x)[0]))
    plot_decision_map(lambda x: predict(runs[0]["params"], coding.ttfs_encode(x)), xte, yte,
                      out / "decision_map.png")
    acc = summary["test_acc"]
    print(f"Yin-Yang, SRM {args.hidden} hidden, {len(args.seeds)} seed(s): test accuracy "
          f"{100 * acc['mean']:.2f} ± {100 * acc['std']:.2f} % "
          f"(per seed {', '.join(f'{100 * a:.2f}' for a in acc['per_seed'])}), "
          f"{summary['test_spikes_hidden']['mean']:.1f} hidden spikes/sample, {timer():.0f} s")
    return result


if __name__ == "__main__":
    main()
