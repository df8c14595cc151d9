"""Yin-Yang with a two-layer SRM network (closed-form first-spike times): the quickstart.

The four inputs ``(x, y, 1-x, 1-y)`` become one spike each at ``t = 1 - value``; every layer
gets a bias spike at ``t = 0``; the class is the output neuron that fires first. The whole
dataset stays on the device and each epoch is one compiled ``lax.scan`` over mini-batches.

    python experiments/yinyang.py            # about a minute on 2 CPU cores
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import jax
import jax.numpy as jnp
import numpy as np
import optax

from common import Timer, kernels, parser, plot_history, write_json
from jaxsnn import coding, data, losses, nn, train


def build(args):
    model = nn.SRMMLP((args.hidden, 3), layer_kwargs=dict(
        bias_time=0.0, weight_mean=args.weight_mean, weight_std=args.weight_std))

    def loss_fn(params, batch, step):
        x, y = batch
        t = model.apply(params, x)
        loss = losses.ttfs_cross_entropy(t, y, tau=args.tau, t_cap=args.t_cap)
        loss = loss + args.hinge * sum(losses.weight_sum_hinge(k) for k in kernels(params))
        return loss, dict(acc=jnp.mean(coding.first_spike_class(t) == y))

    return model, loss_fn


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
    p = parser(__doc__.splitlines()[0], dataset="yinyang", epochs=100, out="results/yinyang")
    p.add_argument("--hidden", type=int, default=120)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--tau", type=float, default=0.2)
    p.add_argument("--t-cap", type=float, default=8.0)
    p.add_argument("--hinge", type=float, default=1.0,
                   help="weight of the weight-sum hinge that keeps neurons able to fire")
    p.add_argument("--weight-mean", type=float, default=2.0)
    p.add_argument("--weight-std", type=float, default=2.0)
    args = p.parse_args(argv)
    if args.dataset != "yinyang":
        p.error("this experiment trains on --dataset yinyang only")
    out = pathlib.Path(args.out)
    timer = Timer()

    (xtr, ytr), (xte, yte) = data.load_yinyang(seed=args.seed)
    xtr, xte = coding.ttfs_encode(xtr), coding.ttfs_encode(xte)
    model, loss_fn = build(args)
    key = jax.random.PRNGKey(args.seed)
    k_init, k_data = jax.random.split(key)
    params = model.init(k_init, xtr[:2])
    steps = args.epochs * (len(xtr) // args.batch_size)
    tx = optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adam(optax.cosine_decay_schedule(args.lr, steps, alpha=0.01)))
    step = train.make_train_step(loss_fn, tx)
    predict = lambda p, x: coding.first_spike_class(model.apply(p, x))

    @jax.jit
    def run_epoch(state, k):
        batches = data.epoch_batches(k, (xtr, ytr), args.batch_size)
        state, m = train.scan_epoch(step, state, batches)
        return state, m, jnp.mean(predict(state.params, xte) == yte)

    state = train.create_state(params, tx)
    history = []
    for epoch in range(args.epochs):
        state, m, test_acc = run_epoch(state, jax.random.fold_in(k_data, epoch))
        rec = dict(epoch=epoch + 1, loss=float(m["loss"]), train_acc=float(m["acc"]), test_acc=float(test_acc))
        history.append(rec)
        if not args.quiet and (epoch + 1) % max(1, args.epochs // 10) == 0:
            print(f"epoch {epoch + 1:4d}/{args.epochs}  loss {rec['loss']:.4f}  "
                  f"train {rec['train_acc']:.4f}  test {rec['test_acc']:.4f}  ({timer():.0f}s)", flush=True)
    train_acc = float(jnp.mean(predict(state.params, xtr) == ytr))
    test_acc = float(jnp.mean(predict(state.params, xte) == yte))
    result = dict(dataset="yinyang", model=f"SRM 4(+bias)-{args.hidden}-3 ramp", train_acc=train_acc,
                  test_acc=test_acc, seconds=timer(), args=vars(args), history=history,
                  command="python experiments/yinyang.py " + " ".join(sys.argv[1:] if argv is None else argv))
    write_json(out / "result.json", result)
    plot_history(history, out / "accuracy.png", title="Yin-Yang, SRM network")
    plot_decision_map(lambda x: predict(state.params, coding.ttfs_encode(x)), xte, yte, out / "decision_map.png")
    print(f"Yin-Yang: train accuracy {train_acc:.4f}, test accuracy {test_acc:.4f} ({timer():.0f}s)")
    return result


if __name__ == "__main__":
    main()
