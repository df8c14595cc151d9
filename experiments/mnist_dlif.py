"""Rate-coded MNIST / Fashion-MNIST / EMNIST with discretized LIF neurons (surrogate gradients, BPTT).

Network 784-1000-10 (``--hidden`` to change) of :class:`jaxsnn.nn.DLIFDense` layers: ``beta = 0.95``,
threshold 1, subtract reset, fast-sigmoid surrogate (slope 25). Each image is encoded afresh at every
step as Bernoulli spike trains of ``--num-steps`` steps (pixel intensity = spike probability per step,
:func:`jaxsnn.coding.bernoulli_encode`); the test set with a fixed key. Loss: softmax cross-entropy on
the output spike counts (``--loss count``) or on the mean output membrane (``--loss membrane``, the
default: it learns faster from the silent start). The decision is the readout the loss trains: the most
active output neuron (ties: lowest index) or the highest mean membrane; the count decision is also
recorded (``acc_count``). Adam with a cosine-decayed learning rate.

Recorded per epoch: test accuracy, input / hidden / output spikes per sample, and the spikes per
synapse of each layer (presynaptic spikes divided by the number of presynaptic neurons: every such
spike is one synaptic event per outgoing synapse), which the energy model uses.

The defaults are ``experiments.presets.DLIF``. Run from the repository root (output in
``runs/mnist_dlif/<dataset>_T<num-steps>``):

    python -m experiments.mnist_dlif --dataset mnist --epochs 15 --data-dir ../shared/data
    python -m experiments.mnist_dlif --dataset fashion_mnist --epochs 15 --data-dir ../shared/data
    python -m experiments.mnist_dlif --num-steps 4 --epochs 3 --out results/mnist_dlif_T4
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.common import (
    Timer,
    command,
    energy_estimate,
    energy_text,
    interruptible,
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
from experiments.presets import DLIF, N_CLASSES
from jaxsnn import coding, data, energy, losses, nn, train

EVAL_KEY = 20_251_123


def make_task(cfg, n_classes, total_steps):
    """The task; traced hyperparameter: ``lr`` (peak learning rate)."""
    layer_kwargs = dict(beta=cfg["beta"], threshold=cfg["threshold"], reset=cfg["reset"], surrogate=cfg["surrogate"])
    model = nn.DLIFMLP(tuple(cfg["hidden"]) + (n_classes,), layer_kwargs=layer_kwargs)
    T = cfg["num_steps"]

    def forward(params, x, key):
        spikes_in = coding.bernoulli_encode(key, x, T, dtype=x.dtype)
        s, aux = model.apply(params, spikes_in)
        v, hidden = aux["membrane"], aux["hidden"]
        return spikes_in, s, v, hidden

    def objective(s, v, y):
        if cfg["loss"] == "membrane":
            return losses.membrane_cross_entropy(v, y)
        return losses.rate_cross_entropy(s, y)

    def init(key, hp):
        return model.init(key, jnp.zeros((1, 1, 784)))

    def decide(s, v):
        # the readout the loss trains: spike counts, or the mean membrane
        return jnp.argmax(jnp.mean(v, 0), -1) if cfg["loss"] == "membrane" else coding.rate_class(s)

    def loss(params, batch, key, hp):
        x, y = batch
        _, s, v, _ = forward(params, x, key)
        return objective(s, v, y), dict(acc=jnp.mean(decide(s, v) == y))

    def evaluate(params, batch, hp):
        x, y = batch
        # a fixed encoding per test image (same key for every epoch; images differ per batch)
        spikes_in, s, v, hidden = forward(params, x, jax.random.key(EVAL_KEY))
        per_sample = lambda a: jnp.mean(energy.spike_counts(a, time_major=True))  # noqa: E731
        return dict(acc=jnp.mean(decide(s, v) == y), acc_count=jnp.mean(coding.rate_class(s) == y),
                    spikes_in=per_sample(spikes_in), spikes_hidden=sum(per_sample(h) for h in hidden),
                    spikes_out=per_sample(s),
                    **({f"spikes_hidden_{i}": per_sample(h) for i, h in enumerate(hidden)} if len(hidden) > 1 else {}))

    def optimizer(hp):
        return optax.adam(optax.cosine_decay_schedule(hp["lr"], total_steps, alpha=0.01))

    return train.Task(init, loss, optimizer, evaluate), model


def main(argv=None):
    d = DLIF
    p = parser(__doc__.splitlines()[0], script="mnist_dlif",
               dataset="mnist", epochs=d["epochs"],
               out="runs/mnist_dlif/<dataset>_T<num-steps>", models=("dlif",), datasets=tuple(N_CLASSES))
    p.add_argument("--hidden", type=positive_int, nargs="+", default=list(d["hidden"]), help="hidden layer sizes")
    p.add_argument("--num-steps", type=positive_int, default=d["num_steps"], help="time steps T")
    p.add_argument("--beta", type=non_negative_float, default=d["beta"])
    p.add_argument("--threshold", type=positive_float, default=d["threshold"])
    p.add_argument("--reset", default=d["reset"], choices=["subtract", "zero"])
    p.add_argument("--surrogate", default=d["surrogate"])
    p.add_argument("--loss", default=d["loss"], choices=["count", "membrane"])
    p.add_argument("--lr", type=non_negative_float, default=d["lr"], help="peak learning rate (cosine decay to 1 %%)")
    p.add_argument("--batch-size", type=positive_int, default=d["batch_size"])
    p.add_argument("--limit", type=positive_int, default=None, help="use only this many training samples")
    p.add_argument("--test-limit", type=positive_int, default=None, help="evaluate on only this many test samples")
    p.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check of the dataset files")
    args = p.parse_args(argv)
    cfg = dict(hidden=tuple(args.hidden), num_steps=args.num_steps, beta=args.beta, threshold=args.threshold,
               reset=args.reset, surrogate=args.surrogate, loss=args.loss, lr=args.lr, batch_size=args.batch_size)
    out = output_folder(args, "mnist_dlif", f"{args.dataset}_T{args.num_steps}")
    with interruptible(args):
        return _run(args, argv, cfg, out)


def _run(args, argv, cfg, out):
    timer = Timer()

    (xtr, ytr), (xte, yte) = [data.load_dataset(args.dataset, s, data_dir=args.data_dir, verify=not args.no_verify)
                              for s in ("train", "test")]
    xtr, ytr, xte, yte = xtr[: args.limit], ytr[: args.limit], xte[: args.test_limit], yte[: args.test_limit]
    prep = lambda x: (np.asarray(x, np.float32).reshape(len(x), -1) / 255.0)  # noqa: E731
    xtr, xte = prep(xtr), prep(xte)
    ytr, yte = np.asarray(ytr, np.int32), np.asarray(yte, np.int32)
    n_classes = N_CLASSES[args.dataset]
    steps = args.epochs * (len(xtr) // args.batch_size)
    task, model = make_task(cfg, n_classes, steps)
    runs = run_seeds(task, (xtr, ytr), (xte, yte), dict(lr=args.lr), args, batch_size=args.batch_size, out=out,
                     eval_batch_size=min(1000, len(xte)))

    keys = ("train_acc", "test_acc", "test_acc_count", "test_spikes_in", "test_spikes_hidden", "test_spikes_out")
    n_hidden = len(cfg["hidden"])
    per_layer = tuple(f"test_spikes_hidden_{i}" for i in range(n_hidden)) if n_hidden > 1 else ("test_spikes_hidden",)
    summary = summarize(runs, keys + per_layer * (n_hidden > 1))
    sizes = (784,) + tuple(cfg["hidden"]) + (n_classes,)
    s = {k: summary[f"test_{k}"]["mean"] for k in ("spikes_in", "spikes_hidden", "spikes_out")}
    # spikes into each layer; spikes per synapse of a layer = presynaptic spikes per presynaptic neuron
    layer_inputs = [s["spikes_in"]] + [summary[k]["mean"] for k in per_layer]
    per_synapse = [x / n for x, n in zip(layer_inputs, sizes)]
    synaptic_events = sum(x * n for x, n in zip(layer_inputs, sizes[1:]))
    energy_est = energy_estimate(sizes, layer_inputs, s["spikes_out"], neuron_updates=cfg["num_steps"],
                             max_spikes=cfg["num_steps"])
    name = f"DLIF {'-'.join(map(str, sizes))}, T = {cfg['num_steps']}"
    result = dict(dataset=args.dataset, model=name, config=cfg, epochs=args.epochs, seeds=args.seeds, summary=summary,
                  spikes_per_synapse=per_synapse, synaptic_events_per_sample=synaptic_events, energy=energy_est,
                  n_train=len(xtr), n_test=len(xte), seconds=timer(), command=command("mnist_dlif", argv))
    write_results(out, result, runs)
    plot_history(runs, out / "accuracy.png", title=f"{args.dataset}, {name}")
    acc = summary["test_acc"]
    print(f"{args.dataset}, {name}: test accuracy {100 * acc['mean']:.2f} %, spikes per sample "
          f"{s['spikes_in']:.0f} in / {s['spikes_hidden']:.0f} hidden / {s['spikes_out']:.1f} out, "
          f"{energy_text(energy_est)}, {timer():.0f} s")
    return result


if __name__ == "__main__":
    main()
