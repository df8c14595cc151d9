"""A convolutional TTFS network of SRM neurons trained directly with the exact spike-time gradients.

The counterpart of :mod:`experiments.conv_ttfs` (which trains a ReLU CNN and converts it): here the
spiking network itself is trained, end to end, with ``jax.grad`` through the closed-form first-spike
times (:func:`jaxsnn.conv.srm_conv`, :func:`jaxsnn.srm.first_spike_times`):

* Pixels become one spike each at ``t = 1 - x`` (:func:`jaxsnn.coding.ttfs_encode`; black pixels do
  not spike), images ``[N, 28, 28, 1]``.
* ``--widths`` convolutions of SRM neurons (``--kernel`` x ``--kernel``, ``SAME`` padding: padded
  inputs never spike, ramp response, a bias spike at ``t = 0`` with its own weight per channel),
  each followed by a 2x2 min-time pooling (the earliest spike of each window, i.e. max pooling of
  the values), then flattening and a dense SRM layer of 10 output neurons (bias spike at 0).
* The class is the output neuron that fires first; the loss is the TTFS cross-entropy
  (:func:`jaxsnn.losses.ttfs_cross_entropy`) with temperature ``--tau`` plus ``--hinge`` times
  the weight-sum hinge (:func:`jaxsnn.losses.weight_sum_hinge`, Mostafa 2018) of every layer, which
  keeps every neuron able to fire; Adam with cosine decay and gradient clipping, hidden spike
  dropout; :func:`jaxsnn.train.fit` (checkpoint and
  ``metrics.jsonl`` after every epoch, resumable; one line per epoch on stdout).

Run from the repository root (output in ``runs/conv_srm_direct/<dataset>``; presets in
``experiments.presets.CONV_SRM_DIRECT``):

    python -m experiments.conv_srm_direct --dataset mnist --epochs 3 --limit 20000
"""

from __future__ import annotations

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.common import (
    Timer,
    command,
    dropout_rate,
    input_spikes,
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
from experiments.presets import CONV_SRM_DIRECT
from jaxsnn import coding, data, losses, metrics, nn, nn_conv, train


class ConvSRM(fnn.Module):
    """SRM convolutions (each with 2x2 min-time pooling), flattening and a dense SRM output layer.
    Returns the output spike times ``[B, n_classes]`` and the hidden layers' spike times."""

    widths: tuple
    kernel: int
    n_classes: int = 10
    dropout: float = 0.0

    @fnn.compact
    def __call__(self, t, train: bool = False):
        hidden = []
        for w in self.widths:
            t = nn_conv.SRMConv(w, (self.kernel, self.kernel), padding="SAME", bias_time=0.0)(t)
            hidden.append(t)
            t = nn_conv.MinTimePool((2, 2))(t)
            if train and self.dropout > 0:
                t = nn.drop_spikes(t, self.make_rng("dropout"), self.dropout)
        t = t.reshape(t.shape[:-3] + (-1,))
        return nn.SRMDense(self.n_classes, bias_time=0.0)(t), hidden


def make_task(*, widths, kernel, dropout, clip, total_steps):
    """The task; traced hyperparameters ``lr, tau, t_cap, hinge``."""
    model = ConvSRM(tuple(widths), kernel, dropout=dropout)

    def stats(t, hidden, y):
        return dict(acc=jnp.mean(coding.first_spike_class(t) == y), silent_out=metrics.silent_fraction(t),
                    spikes_hidden=sum(metrics.spikes_per_sample(h.reshape(h.shape[0], -1)) for h in hidden))

    def loss(params, batch, key, hp):
        x, y = batch
        t, hidden = model.apply(params, x, train=True, rngs={"dropout": key})
        ce = losses.ttfs_cross_entropy(t, y, temperature=hp["tau"], t_cap=hp["t_cap"], cap="hard")
        # every neuron's summed weight (a conv kernel's taps, a dense column) kept above 1, so that
        # it can fire: without, the output neurons fell silent together after ~200 steps (measured)
        reg = sum(losses.weight_sum_hinge(k.reshape(-1, k.shape[-1])) for k in kernels(params))
        return ce + hp["hinge"] * reg, stats(t, hidden, y)

    def evaluate(params, batch, hp):
        x, y = batch
        return stats(*model.apply(params, x), y)

    def optimizer(hp):
        return optax.chain(optax.clip_by_global_norm(clip),
                           optax.adam(optax.cosine_decay_schedule(hp["lr"], total_steps, alpha=0.01)))

    return train.Task(lambda key, hp: model.init(key, jnp.zeros((1, 28, 28, 1))), loss, optimizer, evaluate)


def main(argv=None):
    d = CONV_SRM_DIRECT
    p = parser(__doc__.splitlines()[0], script="conv_srm_direct", dataset="mnist", epochs=d["epochs"],
               out="runs/conv_srm_direct/<dataset>", models=("conv",), datasets=("mnist", "fashion_mnist"))
    p.add_argument("--widths", type=positive_int, nargs="+", default=d["widths"],
                   help="channels of the SRM convolutions (each followed by 2x2 min-time pooling; at most 4)")
    p.add_argument("--kernel", type=positive_int, default=d["kernel"], help="convolution kernel size")
    p.add_argument("--batch-size", type=positive_int, default=d["batch_size"])
    p.add_argument("--lr", type=positive_float, default=d["lr"], help="initial Adam learning rate (cosine decay)")
    p.add_argument("--tau", type=positive_float, default=d["tau"], help="temperature of the TTFS cross-entropy")
    p.add_argument("--t-cap", type=positive_float, default=d["t_cap"], help="later output spikes count as this")
    p.add_argument("--clip", type=positive_float, default=d["clip"], help="global gradient-norm clipping")
    p.add_argument("--hinge", type=non_negative_float, default=d["hinge"],
                   help="weight of the weight-sum hinge that keeps every neuron able to fire")
    p.add_argument("--dropout", type=dropout_rate, default=d["dropout"], help="hidden spike dropout (training)")
    p.add_argument("--limit", type=positive_int, default=None, help="use only this many training images")
    p.add_argument("--test-limit", type=positive_int, default=None, help="evaluate on only this many test images")
    args = p.parse_args(argv)
    if len(args.widths) > 4:
        p.error(f"--widths: at most 4 convolutions (4 poolings of a 28x28 image), got {len(args.widths)}")
    out = output_folder(args, "conv_srm_direct", args.dataset)
    with interruptible(args):
        return _run(args, argv, out)


def _run(args, argv, out):
    timer = Timer()
    (xtr, ytr), (xte, yte) = [data.load_dataset(args.dataset, s, data_dir=args.data_dir) for s in ("train", "test")]
    xtr, ytr, xte, yte = xtr[:args.limit], ytr[:args.limit], xte[:args.test_limit], yte[:args.test_limit]
    encode = lambda img: np.asarray(coding.ttfs_encode(img[..., None] / 255.0, silent_below=0.0), np.float32)  # noqa: E731
    xtr, xte = encode(xtr), encode(xte)
    task = make_task(widths=args.widths, kernel=args.kernel, dropout=args.dropout, clip=args.clip,
                     total_steps=args.epochs * (len(xtr) // args.batch_size))
    name = "SRM conv " + "-".join(f"c{w}-p" for w in args.widths) + "-d10, exact gradients"
    if not args.quiet:
        print(f"{args.dataset}: {name}, {len(xtr)} training / {len(xte)} test images, {args.epochs} epochs -> {out}")
    hp = dict(lr=args.lr, tau=args.tau, t_cap=args.t_cap, hinge=args.hinge)
    # on a CPU the batches come from the host (XLA:CPU runs convolution gradients far slower inside a
    # whole-epoch scan; see experiments.conv_ttfs)
    runs = run_seeds(task, (xtr, ytr), (xte, yte), hp, args, batch_size=args.batch_size, out=out,
                     eval_batch_size=500, epoch_in_jit=jax.default_backend() != "cpu")
    summary = summarize(runs, ("train_acc", "test_acc", "test_spikes_hidden", "test_silent_out"))
    history = runs[0]["history"]
    seconds = [round(b - a, 3) for a, b in zip([0.0] + [h["seconds"] for h in history[:-1]],
                                                [h["seconds"] for h in history])]
    result = dict(dataset=args.dataset, model=name, epochs=args.epochs, seeds=args.seeds, n_train=len(xtr),
                  n_test=len(xte), summary=summary, input_spikes=input_spikes(xte.reshape(len(xte), -1)),
                  seconds_per_epoch=seconds, seconds=timer(), args=vars(args), command=command("conv_srm_direct", argv))
    write_results(out, result, runs)
    plot_history(runs, out / "accuracy.png", title=f"{args.dataset}, {name}")
    if not args.quiet:
        acc = summary["test_acc"]["mean"]
        print(f"{args.dataset}, {name}: test accuracy {100 * acc:.2f} %, "
              f"{summary['test_spikes_hidden']['mean']:.0f} hidden spikes/sample, {timer():.0f} s", flush=True)
    return result


if __name__ == "__main__":
    main()
