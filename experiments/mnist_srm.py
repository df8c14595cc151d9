"""TTFS-coded MNIST (or Fashion-MNIST) with a two-layer SRM network (784-350-10, ramp response).

Pixels become one spike each at ``t = 1 - x`` (black pixels do not spike); every layer gets a
bias spike at ``t = 0``; the class is the output neuron that fires first. Trained with the
TTFS cross-entropy and Adam (cosine decay) through :func:`jaxsnn.train.fit` (one seed) or
:func:`jaxsnn.train.sweep` (several seeds, one vmapped program). Resumable: a rerun with the
same flags continues after the last finished epoch saved in ``--out``.

Run from the repository root (output in ``runs/mnist_srm/<dataset>``):

    python -m experiments.mnist_srm --epochs 30 --out results/mnist_srm
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.common import (
    Timer,
    command,
    dropout_rate,
    energy_estimate,
    energy_text,
    input_spikes,
    interruptible,
    kernels,
    non_negative_float,
    output_folder,
    parser,
    plot_history,
    positive_float,
    positive_float_or_none,
    positive_int,
    run_seeds,
    summarize,
    write_results,
)
from experiments.presets import MNIST_SRM
from jaxsnn import coding, data, losses, metrics, nn, train

HPARAMS = ("lr", "tau", "t_cap", "alpha", "hinge", "jitter")  # the task's traced hyperparameters


def hparams(settings) -> dict:
    """The traced hyperparameters of :func:`make_task` from a settings dict (e.g. ``presets.MNIST_SRM``)."""
    return {k: settings[k] for k in HPARAMS}


def make_task(*, hidden=MNIST_SRM["hidden"], weight_mean=MNIST_SRM["weight_mean"], weight_std=MNIST_SRM["weight_std"],
              dropout=MNIST_SRM["dropout"], cap=MNIST_SRM["cap"], clip=MNIST_SRM["clip"], total_steps=30_000):
    """The MNIST SRM task; traced hyperparameters ``lr, tau, t_cap, alpha, hinge, jitter``;
    ``clip=None``: no gradient clipping."""
    model = nn.SRMMLP((hidden, 10), layer_kwargs=dict(bias_time=0.0, weight_mean=weight_mean,
                                                      weight_std=weight_std), spike_dropout=dropout)

    def stats(t, hid, y):
        return dict(acc=jnp.mean(coding.first_spike_class(t) == y), spikes_hidden=metrics.spikes_per_sample(hid),
                    silent_out=metrics.silent_fraction(t))

    def init(key, hp):
        return model.init(key, jnp.zeros((1, 784)))

    def loss(params, batch, key, hp):
        x, y = batch
        k_noise, k_drop = jax.random.split(key)
        x = x + hp["jitter"] * jax.random.normal(k_noise, x.shape, x.dtype)  # inf (no spike) stays inf
        t, aux = model.apply(params, x, train=True, rngs={"dropout": k_drop})
        (hid,) = aux["hidden"]
        ce = losses.ttfs_cross_entropy(t, y, temperature=hp["tau"], t_cap=hp["t_cap"], cap=cap, alpha=hp["alpha"])
        reg = hp["hinge"] * sum(losses.weight_sum_hinge(k) for k in kernels(params))
        return ce + reg, stats(t, hid, y)

    def evaluate(params, batch, hp):
        x, y = batch
        t, aux = model.apply(params, x)
        (hid,) = aux["hidden"]
        return stats(t, hid, y)

    def optimizer(hp):
        tx = optax.adam(optax.cosine_decay_schedule(hp["lr"], total_steps, alpha=0.01))
        return optax.chain(optax.clip_by_global_norm(clip), tx) if clip else tx

    return train.Task(init, loss, optimizer, evaluate)


def main(argv=None):
    d = MNIST_SRM
    p = parser(__doc__.splitlines()[0], script="mnist_srm",
               dataset="mnist", epochs=d["epochs"], out="runs/mnist_srm/<dataset>",
               datasets=("mnist", "fashion_mnist"))
    p.add_argument("--hidden", type=positive_int, default=d["hidden"])
    p.add_argument("--batch-size", type=positive_int, default=d["batch_size"])
    p.add_argument("--lr", type=non_negative_float, default=d["lr"], help="initial Adam learning rate (cosine decay)")
    p.add_argument("--tau", type=positive_float, default=d["tau"], help="temperature of the TTFS cross-entropy")
    p.add_argument("--t-cap", type=float, default=d["t_cap"], help="spikes later than this count as this in the loss")
    p.add_argument("--alpha", type=non_negative_float, default=d["alpha"], help="weight of the early-label regularizer")
    p.add_argument("--cap", choices=("hard", "soft"), default=d["cap"], help="how the loss treats spikes after --t-cap")
    p.add_argument("--hinge", type=non_negative_float, default=d["hinge"],
                   help="weight of the weight-sum hinge that keeps neurons able to fire")
    p.add_argument("--weight-mean", type=float, default=d["weight_mean"])
    p.add_argument("--weight-std", type=non_negative_float, default=d["weight_std"])
    p.add_argument("--clip", type=positive_float_or_none, default=d["clip"],
                   help="global gradient-norm clipping threshold, > 0 ('none': no clipping)")
    p.add_argument("--jitter", type=non_negative_float, default=d["jitter"],
                   help="std of Gaussian noise added to input spike times during training")
    p.add_argument("--dropout", type=dropout_rate, default=d["dropout"],
                   help="hidden spike dropout probability during training, in [0, 1)")
    p.add_argument("--limit", type=positive_int, default=None, help="use only this many training samples")
    p.add_argument("--test-limit", type=positive_int, default=None, help="evaluate on only this many test samples")
    p.add_argument("--host-batches", action="store_true",
                   help="stream batches from the host instead of keeping the training set on the device")
    args = p.parse_args(argv)
    train.use_cpu_devices()  # one JAX device per core: several seeds train in parallel
    out = output_folder(args, "mnist_srm", args.dataset)
    with interruptible(args):
        return _run(args, argv, out)


def _run(args, argv, out):
    timer = Timer()

    (xtr, ytr), (xte, yte) = [data.load_dataset(args.dataset, s, data_dir=args.data_dir) for s in ("train", "test")]
    xtr, ytr, xte, yte = xtr[: args.limit], ytr[: args.limit], xte[: args.test_limit], yte[: args.test_limit]
    encode = lambda img: coding.ttfs_encode(img.reshape(img.shape[0], -1) / 255.0, silent_below=0.0)
    xtr, xte = np.asarray(encode(xtr), np.float32), np.asarray(encode(xte), np.float32)

    task = make_task(hidden=args.hidden, weight_mean=args.weight_mean, weight_std=args.weight_std,
                     dropout=args.dropout, cap=args.cap, clip=args.clip,
                     total_steps=args.epochs * (len(xtr) // args.batch_size))
    runs = run_seeds(task, (xtr, ytr), (xte, yte), hparams(vars(args)), args, batch_size=args.batch_size, out=out,
                     epoch_in_jit=not args.host_batches)

    summary = summarize(runs, ("train_acc", "test_acc", "test_spikes_hidden", "test_silent_out"))
    name = f"SRM 784(+bias)-{args.hidden}(+bias)-10 ramp"
    # one spike per non-zero pixel; output spikes: the output neurons that fire (at most once)
    spikes_in = input_spikes(xte)
    energy = energy_estimate((784, args.hidden, 10), [spikes_in, summary["test_spikes_hidden"]["mean"]],
                             10 * (1.0 - summary["test_silent_out"]["mean"]), bias=True, max_spikes=1)
    result = dict(dataset=args.dataset, model=name, epochs=args.epochs, seeds=args.seeds, summary=summary,
                  input_spikes=spikes_in, energy=energy, seconds=timer(), args=vars(args),
                  command=command("mnist_srm", argv))
    write_results(out, result, runs)
    plot_history(runs, out / "accuracy.png", title=f"{args.dataset}, {name}")
    acc = summary["test_acc"]
    print(f"{args.dataset}, {name}, {len(args.seeds)} seed(s): test accuracy {100 * acc['mean']:.2f} "
          f"± {100 * acc['std']:.2f} %, train {100 * summary['train_acc']['mean']:.2f} % (running mean "
          f"over the last epoch), {summary['test_spikes_hidden']['mean']:.0f} hidden spikes/sample, "
          f"{energy_text(energy)}, {timer():.0f} s")
    return result


if __name__ == "__main__":
    main()
