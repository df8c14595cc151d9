"""Convolutional TTFS networks: a ReLU CNN converted exactly into a single-spike SRM network.

The CNN is trained on MNIST or Fashion-MNIST, converted with :mod:`jaxsnn.theory.conversion` and
optionally fine-tuned with the exact spike-time gradients:

1. A VGG-style ReLU CNN (Flax linen, ``nn.Sequential``): 3x3 ``SAME`` convolutions with bias in
   blocks of two (``--widths``), each block followed by 2x2 max pooling, then dense layers
   (``--dense``) and the 10 outputs. Training only: dropout before every dense layer, random
   shifts of up to ``--shift`` pixels (zero padding, then a random crop) and, with ``--flip``,
   horizontal flips. AdamW with cosine decay, through :func:`jaxsnn.train.fit` (checkpoint and
   ``metrics.jsonl`` after every epoch, resumable; one line per epoch on stdout).
2. ``convert(layers_from_flax(model, variables), (0, 1))`` on the pixels in ``[0, 1]``, spike
   times in float64 (``--snn-dtype``); the test set is evaluated in batches of ``--snn-batch``:
   ANN and SNN accuracy, the fraction of images where both predict the same class (the
   conversion is exact: 1 up to rounding), spikes per neuron (finite spike times of every neuron
   of the converted network, relays included, divided by its neuron count; a TTFS neuron spikes
   at most once), the fraction of ReLU units whose clamp neuron codes a value > 0, synaptic
   events and the energy estimate of :mod:`jaxsnn.energy`, and the latency (the output spikes
   ``SpikingNetwork.latency + t`` after the input's reference).
3. ``--finetune-epochs N``: Adam (``--finetune-lr``) on the cross-entropy of the decoded outputs
   ``SpikingNetwork.apply(params, x)`` (the logits) with ``jax.grad`` (exact spike-time gradients)
   of the kernels and thresholds, the reference weights tied to the kernels
   (:func:`jaxsnn.theory.conversion.tie_reference_weights`), again through :func:`jaxsnn.train.fit`
   (in ``<out>/finetune_ann<epochs>``, resumable), then re-evaluated.

How the converted network is counted: every neuron of this construction fires exactly once per
input (slope 1 after its last input), and a ReLU value 0 is a spike *at* the layer's reference
spike, not a missing spike; so spikes per neuron is 1 and the sparsity shows in
``relu_active_fraction`` instead. Max pooling is the earliest spike of each window (a routing, no
neurons); the zero padding of a convolution spikes with the reference and is merged into the
reference synapse for the synapse count.

Run from the repository root (output in ``runs/conv_ttfs/<dataset>``, presets in
``experiments.presets.CONV_TTFS``):

    python -m experiments.conv_ttfs --dataset mnist --finetune-epochs 2
    python -m experiments.conv_ttfs --dataset fashion_mnist --finetune-epochs 2
"""

from __future__ import annotations

import argparse
import math
import time

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.common import (
    Timer,
    command,
    dropout_rate,
    interruptible,
    mesh_or_none,
    non_negative_float,
    non_negative_int,
    output_folder,
    parser,
    plot_history,
    positive_float,
    positive_int,
    write_json,
)
from experiments.presets import CONV_TTFS, N_CLASSES
from jaxsnn import data, energy, train
from jaxsnn.theory import conversion as cv

IMAGES = {"cifar10": (32, 32, 3)}  # height, width, channels; every other dataset: 28 x 28 grey


def image_shape(dataset: str) -> tuple:
    return IMAGES.get(dataset, (28, 28, 1))


# ----------------------------------------------------------------------------------------------
# The ReLU CNN and its training
# ----------------------------------------------------------------------------------------------


class ConvNet(fnn.Sequential):
    """``nn.Sequential`` (what :func:`jaxsnn.theory.conversion.layers_from_flax` reads) whose call
    takes a dropout rate and key: with a key, dropout before every ``nn.Dense`` (training only)."""

    @fnn.compact
    def __call__(self, x, *, dropout=0.0, key=None):
        for layer in self.layers:
            if key is not None and isinstance(layer, fnn.Dense):
                key, k = jax.random.split(key)
                rate = jnp.asarray(dropout, x.dtype)  # a traced hyperparameter; float32 stays float32
                x = jnp.where(jax.random.bernoulli(k, 1.0 - rate, x.shape), x / (1.0 - rate), 0.0)
            x = layer(x)
        return x


def build_model(widths, dense, n_classes) -> ConvNet:
    """Convolutions ``widths`` (3x3 SAME, a 2x2 max pooling after every second one and after the
    last), flattening, dense layers ``dense`` and ``n_classes`` outputs; a ReLU after every layer
    but the last."""
    layers = []
    for i, w in enumerate(widths):
        layers += [fnn.Conv(w, (3, 3), padding="SAME"), fnn.relu]
        if i % 2 == 1 or i == len(widths) - 1:
            layers.append(cv.MaxPool(2))
    layers.append(cv.Flatten())
    for w in dense:
        layers += [fnn.Dense(w), fnn.relu]
    return ConvNet(layers + [fnn.Dense(n_classes)])


def describe(widths, dense, n_classes) -> str:
    blocks = [f"c{w}" + ("-p" if i % 2 == 1 or i == len(widths) - 1 else "") for i, w in enumerate(widths)]
    return "ReLU CNN " + "-".join(blocks + [f"d{w}" for w in (*dense, n_classes)])


def images(x):
    """``uint8 [N, H, W]`` or ``[N, H, W, C]`` -> float pixels in ``[0, 1]``, ``[N, H, W, C]``."""
    x = jnp.asarray(x, jnp.float32) / 255.0
    return x[..., None] if x.ndim == 3 else x


def augment(key, x, shift: int, flip: bool):
    """Random shifts of up to ``shift`` pixels (zero padding, random crop) and, with ``flip``,
    horizontal flips of images ``x [N, H, W, C]``; the pixels stay in ``[0, 1]``."""
    k_shift, k_flip = jax.random.split(key)
    n, h, w, c = x.shape
    if shift:
        padded = jnp.pad(x, ((0, 0), (shift, shift), (shift, shift), (0, 0)))
        offsets = jax.random.randint(k_shift, (n, 2), 0, 2 * shift + 1)
        x = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, c)))(padded, offsets)
    if flip:
        x = jnp.where(jax.random.bernoulli(k_flip, 0.5, (n, 1, 1, 1)), x[:, :, ::-1], x)
    return x


def cross_entropy(logits, y):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y)), \
        dict(acc=jnp.mean(jnp.argmax(logits, -1) == y))


def ann_task(model, *, image, shift, flip, total_steps):
    """The CNN's :class:`jaxsnn.train.Task`; traced hyperparameters ``lr, weight_decay, dropout``."""

    def loss(params, batch, key, hp):
        x, y = batch
        k_aug, k_drop = jax.random.split(key)
        return cross_entropy(model.apply(params, augment(k_aug, images(x), shift, flip), dropout=hp["dropout"],
                                         key=k_drop), y)

    def evaluate(params, batch, hp):
        x, y = batch
        return dict(acc=jnp.mean(jnp.argmax(model.apply(params, images(x)), -1) == y))

    def optimizer(hp):  # no weight decay on the biases
        return optax.adamw(optax.cosine_decay_schedule(hp["lr"], total_steps), weight_decay=hp["weight_decay"],
                           mask=lambda p: jax.tree.map(lambda a: a.ndim > 1, p))

    return train.Task(lambda key, hp: model.init(key, jnp.zeros((1,) + tuple(image))), loss, optimizer, evaluate)


def finetune_task(net: cv.SpikingNetwork, *, shift, flip):
    """Fine-tuning of the converted network with Adam (``lr``) on the cross-entropy of its decoded
    outputs, ``jax.grad`` through the exact spike times. Trained: each layer's ``kernel`` and
    ``threshold``; the reference weights follow (``conversion.tie_reference_weights``). With free
    reference weights a
    neuron's weight gradient :math:`(a_u - t)/S` scales with its layer's time scale :math:`K`
    (1e2 to 1e5 here), and a few Adam steps of 1e-5 already change the slopes enough to scramble
    the outputs (measured: 4 steps, loss 2.3 -> 5, no prediction left equal to the CNN's); tied,
    the gradient of a weight is its input's value, as in the ReLU CNN."""

    def logits(params, x):
        z = net.apply(cv.tie_reference_weights(params), x)
        return jnp.where(jnp.isfinite(z), z, -1e4)  # a silent output neuron (inf): a very small logit

    def loss(params, batch, key, hp):
        x, y = batch
        return cross_entropy(logits(params, augment(key, images(x), shift, flip)), y)

    def evaluate(params, batch, hp):
        x, y = batch
        return dict(acc=jnp.mean(jnp.argmax(logits(params, images(x)), -1) == y))

    init = tuple(dict(kernel=p["kernel"], threshold=p["threshold"]) for p in net.params)
    return train.Task(lambda key, hp: init, loss, lambda hp: optax.adam(hp["lr"]), evaluate)


class EpochLog:
    """A ``fit`` callback: one line per epoch on stdout (epoch, loss, accuracies, wall seconds)."""

    def __init__(self, name, epochs, quiet):
        self.name, self.epochs, self.quiet, self.last = name, epochs, quiet, time.perf_counter()

    def __call__(self, state, rec):
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        if not self.quiet:
            print(f"{self.name} epoch {rec['epoch']}/{self.epochs}: loss {rec['train_loss']:.4f}, train acc "
                  f"{100 * rec['train_acc']:.2f} %, test acc {100 * rec['test_acc']:.2f} %, {seconds:.1f} s",
                  flush=True)


def epoch_seconds(history) -> list:
    """Seconds of each epoch (``fit`` records the cumulative time; the first epoch includes compiling)."""
    total = [h["seconds"] for h in history]
    return [round(b - a, 3) for a, b in zip([0.0] + total[:-1], total)]


# ----------------------------------------------------------------------------------------------
# Evaluating the converted network
# ----------------------------------------------------------------------------------------------

NEURON_OPS = ("conv", "dense", "clamp")  # each adds its neurons and one relay neuron


def layer_times(net: cv.SpikingNetwork, params, t_in):
    """``[(op, t_in, t_out)]`` for every operation ``op`` of the converted network
    (:meth:`~jaxsnn.theory.conversion.SpikingNetwork.spike_times` with ``return_layers``)."""
    _, outs = net.spike_times(params, t_in, return_layers=True)
    return list(zip(net.ops, (t_in,) + outs[:-1], outs))


def energy_layers(net: cv.SpikingNetwork, params, image):
    """The :class:`jaxsnn.energy.Layer` of every neuron layer of the converted network (its neurons and
    relay; synapses: the in-image taps of a convolution, the reference's and the relay's) and of the
    ReLU CNN, from the shapes of the operations on one image of shape ``image [H, W, C]``."""
    snn, ann = [], []
    shapes = jax.eval_shape(lambda t: [(a, b) for _, a, b in layer_times(net, params, t)],
                            jax.ShapeDtypeStruct((1,) + tuple(image), jnp.float32))
    index = np.cumsum([op[0] in ("conv", "dense") for op in net.ops]) - 1  # of each op's parameters
    for op, k, (t_in, t_out) in zip(net.ops, index, shapes):
        kind, k = op[0], int(k)
        s_in, s_out = t_in.shape[1:], t_out.shape[1:]
        n_in, n_out = math.prod(s_in), math.prod(s_out)
        if kind == "conv":
            kh, kw, c, o = params[k]["kernel"].shape
            if kh != kw or kh % 2 == 0 or op[1:3] != ((1, 1), "SAME"):
                raise ValueError("the synapse count assumes square, odd, stride-1 SAME convolutions")
            ann.append(energy.conv2d(s_in[0], s_in[1], c, o, kh, padding=kh // 2))
            snn.append(energy.Layer("conv", n_in + 1, n_out + 1, ann[-1].synapses + n_out + 1, ann[-1].params + o))
        elif kind == "dense":
            ann.append(energy.dense(n_in, n_out))
            snn.append(energy.Layer("dense", n_in + 1, n_out + 1, (n_in + 1) * n_out + 1, (n_in + 1) * n_out))
        elif kind == "clamp":
            snn.append(energy.Layer("clamp", n_in + 1, n_out + 1, 2 * n_out + 1, 2))
    return snn, ann


def conversion_stats(model, net):
    """A jitted ``(snn_params, ann_variables, images uint8 [B, H, W(, C)]) -> per-image statistics``
    (compiled once per network: give it to every :func:`evaluate_conversion` of ``net``)."""

    def count(b):  # per image
        return jnp.sum(b, axis=tuple(range(1, b.ndim)))

    @jax.jit
    def stats(params, variables, x):
        x = images(x)
        z_ann = model.apply(variables, x)
        into, out, neurons, active, relu_units = [], [], [], [], []
        for op, t_in, t_out in layer_times(net, params, net.encode(x)):
            kind = op[0]
            if kind in NEURON_OPS:  # spikes into the layer (+ its reference) and out of it (+ its relay)
                into.append(count(jnp.isfinite(t_in)) + 1)
                out.append(count(jnp.isfinite(t_out)) + 1)
                neurons.append(math.prod(t_out.shape[1:]) + 1)
            if kind == "clamp":  # the value max(0, z) is the time after the next reference
                active.append(count(t_out > 0))
                relu_units.append(math.prod(t_out.shape[1:]))

        t = t_out  # of the last operation: the output layer
        z = net.decode(t)
        return dict(ann_pred=jnp.argmax(z_ann, -1), snn_pred=jnp.argmax(z, -1), max_err=jnp.max(jnp.abs(z - z_ann), -1),
                    spikes=sum(out), active=sum(active) / max(sum(relu_units), 1), layer_in=jnp.stack(into, -1),
                    out_spikes=out[-1], t_first=net.latency + jnp.min(t, -1), t_mean=net.latency + jnp.mean(t, -1),
                    neurons=jnp.full(len(x), sum(neurons)))

    return stats


def evaluate_conversion(stats, variables, net, x, y, *, batch: int, params=None) -> dict:
    """ANN and converted-SNN accuracy, agreement, spikes, energy and latency on ``(x, y)``, in batches
    of ``batch`` (the last one padded with black images, which are dropped). ``stats``:
    :func:`conversion_stats` of ``net``; ``params``: the SNN's parameters (default ``net.params``,
    e.g. fine-tuned ones)."""
    params = net.params if params is None else params
    timer, parts = Timer(), []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        xb = np.concatenate([xb, np.zeros((batch - len(xb),) + xb.shape[1:], xb.dtype)])
        parts.append({k: np.asarray(v)[:len(x) - i] for k, v in stats(params, variables, xb).items()})
    seconds = timer()
    r = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    snn_layers, ann_layers = energy_layers(net, params, images(x[:1]).shape[1:])
    e = energy.snn_energy(snn_layers, r["layer_in"].astype(np.float64), neuron_updates=0,
                          output_spikes=r["out_spikes"].astype(np.float64), max_spikes=1)
    mean = lambda a: float(np.mean(np.asarray(a, np.float64)))  # noqa: E731
    return dict(
        n_test=len(x), ann_acc=mean(r["ann_pred"] == y), snn_acc=mean(r["snn_pred"] == y),
        agreement=mean(r["ann_pred"] == r["snn_pred"]), max_abs_output_error=float(np.max(r["max_err"])),
        neurons=int(r["neurons"][0]), spikes_per_sample=mean(r["spikes"]),
        spikes_per_neuron=mean(r["spikes"] / r["neurons"]),
        relu_active_fraction=mean(r["active"]), input_spikes=mean(r["layer_in"][:, 0] - 1),
        synapses=energy.synapses(snn_layers), synaptic_events=mean(e["events"]), snn_energy_nj=mean(e["total"]) / 1e3,
        ann_opt_energy_nj=energy.ann_energy(ann_layers, reuse="opt")["total"] / 1e3,
        latency=float(net.latency), mean_first_output_time=mean(r["t_first"]), mean_output_time=mean(r["t_mean"]),
        seconds=seconds)


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def main(argv=None):
    p = parser(__doc__.splitlines()[0], script="conv_ttfs", dataset="mnist", epochs=None,
               out="runs/conv_ttfs/<dataset>", models=("cnn",), datasets=tuple(CONV_TTFS))
    p.add_argument("--widths", type=positive_int, nargs="+", default=None,
                   help="convolution channels (3x3 SAME, 2x2 max pooling after every second one and the last; "
                        "at most 8 for 28x28 images, 10 for 32x32), default: the preset's")
    p.add_argument("--dense", type=positive_int, nargs="*", default=None,
                   help="hidden dense layer widths (none: flatten straight into the outputs), default: the preset's")
    p.add_argument("--batch-size", type=positive_int, default=None, help="default: the preset's")
    p.add_argument("--lr", type=positive_float, default=None, help="AdamW peak learning rate (cosine decay)")
    p.add_argument("--weight-decay", type=non_negative_float, default=None, help="AdamW weight decay (kernels)")
    p.add_argument("--dropout", type=dropout_rate, default=None, help="dropout before the dense layers (training)")
    p.add_argument("--shift", type=non_negative_int, default=None, help="augmentation: random shifts up to this (px)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="augmentation: random horizontal flips (default: the preset's)")
    p.add_argument("--train-limit", "--limit", dest="train_limit", type=positive_int, default=None,
                   help="use only this many training images")
    p.add_argument("--test-limit", type=positive_int, default=None, help="evaluate on only this many test images")
    p.add_argument("--snn-batch", type=positive_int, default=None,
                   help="test images per batch of the converted network's evaluation (memory grows with it)")
    p.add_argument("--snn-dtype", choices=("float64", "float32"), default="float64",
                   help="precision of the converted network's spike times (float32: faster, not exact)")
    p.add_argument("--bounds", choices=("box", "data"), default="box",
                   help="value bounds of the conversion: box (interval arithmetic, exact on every input in [0, 1]) "
                        "or data (the largest values on the training images: smaller time scales, float32 suffices)")
    p.add_argument("--finetune-epochs", type=non_negative_int, default=0,
                   help="epochs of fine-tuning of the converted network (exact spike-time gradients)")
    p.add_argument("--finetune-lr", type=positive_float, default=None, help="Adam learning rate of the fine-tuning")
    p.epilog = ("Flags left unset take the values of experiments.presets.CONV_TTFS[<dataset>]: "
                + "; ".join(f"{k}: {v}" for k, v in CONV_TTFS.items()))
    args = p.parse_args(argv)
    if len(args.seeds) > 1:
        p.error("--seeds: one seed per run (each run converts and evaluates its own network)")
    side = min(image_shape(args.dataset)[:2])
    if args.widths is not None and side >> -(-len(args.widths) // 2) == 0:  # a pooling after every second one
        most = 2 * (side.bit_length() - 1)
        p.error(f"--widths: at most {most} convolutions ({most // 2} poolings of a {side}x{side} image), "
                f"got {len(args.widths)}")
    settings = dict(CONV_TTFS[args.dataset])
    for k in settings:
        if getattr(args, k, None) is None:
            setattr(args, k, settings[k])
        settings[k] = getattr(args, k)
    out = output_folder(args, "conv_ttfs", args.dataset)
    with interruptible(args):
        return _run(args, argv, out, settings)


def _run(args, argv, out, settings):
    timer = Timer()
    (xtr, ytr), (xte, yte) = [data.load_dataset(args.dataset, s, data_dir=args.data_dir) for s in ("train", "test")]
    xtr, ytr, xte, yte = xtr[:args.train_limit], ytr[:args.train_limit], xte[:args.test_limit], yte[:args.test_limit]
    widths, dense, seed = tuple(args.widths), tuple(args.dense), args.seeds[0]
    model, name = build_model(widths, dense, N_CLASSES[args.dataset]), describe(widths, dense, N_CLASSES[args.dataset])
    aug = dict(shift=args.shift, flip=args.flip)
    task = ann_task(model, image=image_shape(args.dataset), total_steps=args.epochs * (len(xtr) // args.batch_size),
                    **aug)
    hp = dict(lr=args.lr, weight_decay=args.weight_decay, dropout=args.dropout)
    if not args.quiet:
        print(f"{args.dataset}: {name}, {len(xtr)} training / {len(xte)} test images, {args.epochs} epochs -> {out}")
    # XLA:CPU runs the convolutions' gradients ~35x slower inside the scan of a whole-epoch program
    # (measured: 10 steps of batch 128 in 74 s against 2.1 s), so on a CPU the batches come from the host
    in_jit = jax.default_backend() != "cpu"
    run = train.fit(task, (xtr, ytr), hp, seed=seed, epochs=args.epochs, batch_size=args.batch_size,
                    eval_data=(xte, yte), eval_name="test", epoch_in_jit=in_jit, mesh=mesh_or_none(), out=out,
                    progress=False, callback=EpochLog("ANN", args.epochs, args.quiet))
    result = dict(dataset=args.dataset, model=name, settings=settings, seed=seed, n_train=len(xtr),
                  n_test=len(xte), epochs=args.epochs, history=run.history,
                  seconds_per_epoch=epoch_seconds(run.history), command=command("conv_ttfs", argv))
    plot_history([dict(seed=seed, history=run.history)], out / "accuracy.png", title=f"{args.dataset}, {name}")
    # the time scales of the converted layers (SpikingNetwork.latency) reach 1e5-1e6: float32 spike times
    # lose the exactness (measured: 98.9 % agreement, output errors up to 0.27), float64 keeps it
    with jax.enable_x64(args.snn_dtype == "float64"):
        _convert(args, out, model, jax.device_get(run.state.params), (xtr, ytr), (xte, yte), aug, result)
    result.update(seconds=timer(), args=vars(args))
    # one result file per conversion variant: a rerun with other --bounds / --snn-dtype adds its own
    variant = "" if (args.bounds, args.snn_dtype) == ("box", "float64") else f"_{args.bounds}_{args.snn_dtype}"
    write_json(out / f"result{variant}.json", result)
    return result


def _convert(args, out, model, variables, train_data, test_data, aug, result):
    """Conversion, its evaluation and the optional fine-tuning; adds them to ``result``."""
    (xtr, ytr), (xte, yte) = train_data, test_data
    layers = cv.layers_from_flax(model, variables)
    bounds = None
    if args.bounds == "data":  # the largest values on the training images, batch by batch
        parts = [cv.value_bounds(layers, images(xtr[i:i + 1000])) for i in range(0, len(xtr), 1000)]
        bounds = np.max(np.asarray(parts), axis=0).tolist()
    net = cv.convert(layers, (0.0, 1.0), value_bounds=bounds)
    stats = conversion_stats(model, net)
    conv = result["conversion"] = evaluate_conversion(stats, variables, net, xte, yte, batch=args.snn_batch)
    conv.update(bounds=args.bounds, value_bounds=bounds, dtype=args.snn_dtype)
    if not args.quiet:
        print(f"converted ({args.bounds} bounds, {args.snn_dtype}): ANN {100 * conv['ann_acc']:.2f} %, "
              f"SNN {100 * conv['snn_acc']:.2f} %, "
              f"agreement {100 * conv['agreement']:.2f} % (max output error {conv['max_abs_output_error']:.2g}), "
              f"{conv['spikes_per_neuron']:.3f} spikes per neuron ({conv['neurons']} neurons), ReLU units active "
              f"{100 * conv['relu_active_fraction']:.1f} %, latency {conv['latency']:.4g} (first output spike at "
              f"{conv['mean_first_output_time']:.4g}), {conv['snn_energy_nj']:.0f} nJ (ANN "
              f"{conv['ann_opt_energy_nj']:.0f} nJ); SNN evaluation {conv['seconds']:.1f} s", flush=True)
    if not args.finetune_epochs:
        return
    # one folder per ANN epoch count: a rerun with more ANN epochs fine-tunes the new network afresh
    ft_out = out / f"finetune_ann{args.epochs}"
    hp = dict(lr=args.finetune_lr, float64=float(args.snn_dtype == "float64"))
    tuned = train.fit(finetune_task(net, **aug), (xtr, ytr), hp, seed=args.seeds[0], epochs=args.finetune_epochs,
                      batch_size=args.batch_size, eval_data=(xte, yte), eval_batch_size=args.snn_batch,
                      eval_name="test", epoch_in_jit=jax.default_backend() != "cpu", mesh=mesh_or_none(),
                      out=ft_out, progress=False,
                      callback=EpochLog("fine-tuning", args.finetune_epochs, args.quiet))
    params = cv.tie_reference_weights(jax.device_get(tuned.state.params))
    after = evaluate_conversion(stats, variables, net, xte, yte, batch=args.snn_batch, params=params)
    result["finetune"] = dict(epochs=args.finetune_epochs, lr=args.finetune_lr, out=str(ft_out), history=tuned.history,
                              seconds_per_epoch=epoch_seconds(tuned.history), snn_acc=after["snn_acc"],
                              agreement_with_ann=after["agreement"], spikes_per_neuron=after["spikes_per_neuron"],
                              relu_active_fraction=after["relu_active_fraction"],
                              mean_first_output_time=after["mean_first_output_time"], eval_seconds=after["seconds"])
    if not args.quiet:
        print(f"fine-tuned: SNN {100 * after['snn_acc']:.2f} % (converted {100 * conv['snn_acc']:.2f} %)", flush=True)


if __name__ == "__main__":
    main()
