"""TTFS-coded MNIST (or Fashion-MNIST) with a two-layer SRM network (784-350-10, ramp response).

Pixels become one spike each at ``t = 1 - x`` (black pixels do not spike); every layer gets a
bias spike at ``t = 0``; the class is the output neuron that fires first. Trained with the
TTFS cross-entropy and Adam. Resumable: a checkpoint and ``metrics.jsonl`` are written after
every epoch to ``--out``, and a rerun continues from the last finished epoch.

    python experiments/mnist_srm.py --epochs 30 --out results/mnist_srm
"""

from __future__ import annotations

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import jax
import jax.numpy as jnp
import numpy as np
import optax

from common import Timer, kernels, parser, plot_history, write_json
from jaxsnn import coding, data, losses, nn, train


def main(argv=None):
    p = parser(__doc__.splitlines()[0], dataset="mnist", epochs=30, out="results/mnist_srm")
    p.add_argument("--hidden", type=int, default=350)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--tau", type=float, default=0.2, help="temperature of the TTFS cross-entropy")
    p.add_argument("--t-cap", type=float, default=8.0, help="spikes later than this count as this in the loss")
    p.add_argument("--alpha", type=float, default=0.0, help="weight of the early-label regularizer")
    p.add_argument("--cap", choices=("hard", "soft"), default="hard", help="how the loss treats spikes after --t-cap")
    p.add_argument("--hinge", type=float, default=0.0,
                   help="weight of the weight-sum hinge that keeps neurons able to fire")
    p.add_argument("--weight-mean", type=float, default=2.0)
    p.add_argument("--weight-std", type=float, default=1.0)
    p.add_argument("--clip", type=float, default=1.0, help="global gradient-norm clipping (0: none)")
    p.add_argument("--jitter", type=float, default=0.0,
                   help="std of Gaussian noise added to input spike times during training")
    p.add_argument("--dropout", type=float, default=0.2, help="hidden spike dropout probability during training")
    p.add_argument("--limit", type=int, default=None, help="use only this many training samples")
    p.add_argument("--test-limit", type=int, default=None, help="evaluate on only this many test samples")
    args = p.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    (xtr, ytr), (xte, yte) = [data.load_dataset(args.dataset, s, data_dir=args.data_dir) for s in ("train", "test")]
    if args.limit:
        xtr, ytr = xtr[: args.limit], ytr[: args.limit]
    if args.test_limit:
        xte, yte = xte[: args.test_limit], yte[: args.test_limit]
    encode = lambda img: coding.ttfs_encode(img.reshape(img.shape[0], -1) / 255.0, silent_below=0.0)
    xtr, xte = np.asarray(encode(xtr), np.float32), np.asarray(encode(xte), np.float32)

    model = nn.SRMMLP((args.hidden, 10), layer_kwargs=dict(
        bias_time=0.0, weight_mean=args.weight_mean, weight_std=args.weight_std), spike_dropout=args.dropout)
    key = jax.random.PRNGKey(args.seed)
    k_init, k_data = jax.random.split(key)
    params = model.init(k_init, xtr[:2])
    steps_per_epoch = len(xtr) // args.batch_size
    sched = optax.cosine_decay_schedule(args.lr, args.epochs * steps_per_epoch, alpha=0.01)
    tx = optax.adam(sched)
    if args.clip:
        tx = optax.chain(optax.clip_by_global_norm(args.clip), tx)

    k_noise, k_drop = jax.random.fold_in(key, 12345), jax.random.fold_in(key, 54321)

    def loss_fn(params, batch, step_index):
        x, y = batch
        if args.jitter:
            noise = args.jitter * jax.random.normal(jax.random.fold_in(k_noise, step_index), x.shape)
            x = x + noise  # inf (no spike) stays inf
        t = model.apply(params, x, train=True, rngs={"dropout": jax.random.fold_in(k_drop, step_index)})
        loss = losses.ttfs_cross_entropy(t, y, tau=args.tau, t_cap=args.t_cap, cap=args.cap, alpha=args.alpha)
        loss = loss + args.hinge * sum(losses.weight_sum_hinge(k) for k in kernels(params))
        acc = jnp.mean(coding.first_spike_class(t) == y)
        return loss, dict(acc=acc, silent=jnp.mean(~jnp.isfinite(t)))

    step = jax.jit(train.make_train_step(loss_fn, tx), donate_argnums=0)
    evaluate = train.make_eval_fn(lambda p, x: coding.first_spike_class(model.apply(p, x)))

    ckpt = out / "checkpoint.pkl"
    state, start = train.create_state(params, tx), 0
    saved = train.load_checkpoint(ckpt)
    if saved is not None:
        state, start = jax.tree.map(jnp.asarray, saved["state"]), saved["epoch"]
        state = train.TrainState(*state)
        print(f"resuming after epoch {start}")
    timer = Timer()
    for epoch in range(start, args.epochs):
        ek = jax.random.fold_in(k_data, epoch)
        ms = []
        for i, batch in enumerate(data.shuffled_batches(ek, (xtr, ytr), args.batch_size)):
            state, m = step(state, batch)
            ms.append(m)
            if not args.quiet and i % 200 == 0:
                print(f"  epoch {epoch + 1} batch {i}/{steps_per_epoch} loss {float(m['loss']):.4f}", flush=True)
        m = jax.tree.map(lambda *v: float(np.mean(v)), *ms)
        test_acc = evaluate(state.params, xte, yte)
        rec = dict(epoch=epoch + 1, train_loss=m["loss"], train_acc=m["acc"], silent_frac=m["silent"],
                   test_acc=test_acc, seconds=timer())
        train.append_jsonl(out / "metrics.jsonl", rec)
        train.save_checkpoint(ckpt, dict(state=tuple(state), epoch=epoch + 1))
        print(f"epoch {epoch + 1}/{args.epochs} loss {m['loss']:.4f} train {m['acc']:.4f} "
              f"test {test_acc:.4f} ({timer():.0f}s)", flush=True)

    test_acc = evaluate(state.params, xte, yte)
    train_acc = evaluate(state.params, xtr, ytr)
    result = dict(dataset=args.dataset, model=f"SRM 784-{args.hidden}-10 ramp", epochs=args.epochs,
                  test_acc=test_acc, train_acc=train_acc, args=vars(args),
                  command="python experiments/mnist_srm.py " + " ".join(sys.argv[1:] if argv is None else argv))
    write_json(out / "result.json", result)
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    plot_history(history, out / "accuracy.png", title=f"{args.dataset}, SRM 784-{args.hidden}-10")
    print(f"final: train {train_acc:.4f} test {test_acc:.4f}")
    return result


if __name__ == "__main__":
    main()
