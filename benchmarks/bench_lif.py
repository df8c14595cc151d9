"""Cost of jaxsnn.lif.spike_times against the dense layer of the same shape, and of a training
step of the 784-800-10 LIF network against the same-topology ReLU MLP, in one run.

* Layers (forward + backward, jitted, batch 50 = the reference batch): 784->800 with 30 spikes
  per neuron (threshold 0.2, t_max 0.2, weights U(-1, 1)) on TTFS-encoded MNIST test images
  (``t = 0.1 (1 - p/255)``, black pixels send no spike), and 800->10 (30 spikes, threshold 1.3)
  on the hidden spikes that layer produces; reference: ``relu(x @ W)`` of the same shape.
* Training step (Adam, batch 50) of the multi-spike 784-800-10 network with the spike-count
  loss, and of the single-spike network (thresholds 0.7/2.0, TTFS cross-entropy), against the
  784-800-10 ReLU MLP with softmax cross-entropy. One MNIST epoch is 1200 such steps; the
  ratio of step times is the ratio of epoch times.
* The multi-spike step again, data-parallel over ``--devices`` CPU devices (default: one per
  core; ``jaxsnn.train.train_step`` with a mesh, as ``fit(..., mesh=...)`` runs it): each device
  runs the event loops of its share of the batch as its own program. XLA:CPU runs one device's
  event loops on one core, while the MLP's matrix products already use every core; the
  reference stays the one-device MLP step, which is faster than the MLP split the same way
  (recorded as ``mlp_data_parallel_ms``). The other rows run on one device.

* Peer: the 784-350-10 single-spike training step (every one of the 784 inputs spikes once,
  uniform in the 0.1 s window; thresholds 0.7/2.0, t_max 1.0, TTFS cross-entropy, Adam) in
  samples per second at batch 1, 128 and 512, against PyPI ``jaxsnn`` 0.3.0's analytical TTFS LIF
  network of the same topology, run in the same invocation from its own environment
  (``--peer-python``, see ``benchmarks/peer/README.md``; never a dependency of this project).

Memory: with ``--malloc keep`` (the default) the whole run, the reference and the peer included,
uses the glibc settings of :data:`timing.KEEP_FREED_MEMORY` (freed memory stays in the process, so
no step pays page faults for re-allocated temporaries); ``--malloc default`` leaves the environment
alone. Times are medians of ``--repeat`` calls (the reference's of 5x as many), taken in 5
alternating rounds of LIF and reference calls; minima are recorded too.

    python benchmarks/bench_lif.py --data-dir ../shared/data [--out results/bench_lif.json] \
        [--peer-python /work/venv-peer/bin/python --peer-seconds 900] [--devices 2]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root

from timing import KEEP_FREED_MEMORY, interleaved_timings, keep_freed_memory, timeit  # noqa: E402

from experiments import mnist_lif, presets  # noqa: E402
from jaxsnn import data, lif, train  # noqa: E402

TAU = 0.13


def inputs(data_dir, batch):
    x, y = data.load_dataset("mnist", "test", data_dir=data_dir)
    return mnist_lif.encode(x[:batch]), np.asarray(y[:batch], np.int32)


def lif_layer(threshold, k, t_max):
    def loss(w, t):
        o = lif.spike_times(t, w, tau_syn=TAU, threshold=threshold, max_spikes=k, t_max=t_max)
        return jnp.sum(jnp.where(jnp.isfinite(o), o, 0.0))

    return jax.jit(jax.value_and_grad(loss))


def dense_layer():
    def loss(w, x):
        return jnp.sum(jax.nn.relu(x @ w))

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def train_step(loss_fn):
    opt = optax.adam(1e-3)

    @jax.jit
    def step(params, state, x, y):
        value, g = jax.value_and_grad(loss_fn)(params, x, y)
        updates, state = opt.update(g, state, params)
        return optax.apply_updates(params, updates), state, value

    return opt, step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--out", default="results/bench_lif.json")
    p.add_argument("--peer-python", default=None, help="python of the environment with PyPI jaxsnn==0.3.0")
    p.add_argument("--peer-seconds", type=float, default=900.0, help="time budget of the peer benchmark")
    p.add_argument("--malloc", choices=("default", "keep"), default="keep",
                   help="keep: re-run this process (and the peer's) with timing.KEEP_FREED_MEMORY")
    p.add_argument("--devices", type=int, default=os.cpu_count() or 1,
                   help="CPU devices of the data-parallel training-step row (jaxsnn.train.use_cpu_devices)")
    args = p.parse_args(argv)
    if args.malloc == "keep" and argv is None:
        keep_freed_memory()
    if not train.use_cpu_devices(args.devices):
        print(f"JAX already started: {jax.device_count()} device(s)", file=sys.stderr)
    t, y = inputs(args.data_dir, args.batch)
    B = args.batch
    key = jax.random.PRNGKey(0)
    w1 = jax.random.uniform(key, (784, 800), minval=-1.0, maxval=1.0)
    w2 = jax.random.uniform(jax.random.fold_in(key, 1), (800, 10), minval=-1.0, maxval=1.0)
    t_in = jnp.asarray(t)[..., None]
    hidden = jax.jit(lambda w, t: lif.spike_times(t, w, tau_syn=TAU, threshold=0.2, max_spikes=30, t_max=0.2))(w1, t_in)
    rows = []

    def row(name, f_lif, f_dense, args_lif, args_dense, extra=None):
        sl, sd = interleaved_timings(f_lif, args_lif, args.repeat, f_dense, args_dense, 5 * args.repeat)
        tl, td = float(np.median(sl)), float(np.median(sd))
        r = dict(name=name, lif_ms=1e3 * tl, reference_ms=1e3 * td, ratio=tl / td, lif_min_ms=1e3 * sl.min(),
                 reference_min_ms=1e3 * sd.min(), ratio_of_minima=float(sl.min() / sd.min()), **(extra or {}))
        rows.append(r)
        print(f"{name:55s} {1e3 * tl:9.2f} ms  reference {1e3 * td:8.3f} ms  ratio {tl / td:7.1f}x "
              f"(minima: {r['ratio_of_minima']:.1f}x)", flush=True)

    x_dense = jnp.asarray(np.where(np.isfinite(t), 1.0 - t / 0.1, 0.0), jnp.float32)
    row("layer 784->800, 30 spikes, fwd+bwd", lif_layer(0.2, 30, 0.2), dense_layer(), (w1, t_in), (w1, x_dense),
        dict(input_spikes_per_sample=float(np.isfinite(t).sum() / B)))
    h_dense = jnp.asarray(jnp.sum(jnp.isfinite(hidden), -1), jnp.float32)
    row("layer 800->10, 30 spikes, fwd+bwd", lif_layer(1.3, 30, 0.2), dense_layer(), (w2, hidden), (w2, h_dense),
        dict(input_spikes_per_sample=float(jnp.isfinite(hidden).sum() / B)))

    # training steps
    from jaxsnn import losses, nn

    def lif_model(single):
        cfg = presets.LIF["single" if single else "multi"]
        return nn.LIFMLP((800, 10), thresholds=cfg["thresholds"], max_spikes=cfg["max_spikes"],
                         layer_kwargs=dict(tau_syn=TAU, t_max=cfg["t_max"], weight_low=cfg["weight_range"][0],
                                           weight_high=cfg["weight_range"][1]))

    multi, single = lif_model(False), lif_model(True)
    mlp = lambda p, x: jax.nn.relu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
    mlp_params = dict(w1=w1 * 0.05, b1=jnp.zeros(800), w2=w2 * 0.05, b2=jnp.zeros(10))
    mlp_loss = lambda p, x, y: optax.softmax_cross_entropy_with_integer_labels(mlp(p, x), y).mean()
    multi_loss = lambda p, x, y: losses.spike_count_loss(multi.apply(p, x[..., None])[0], y)
    single_loss = lambda p, x, y: losses.ttfs_cross_entropy(single.apply(p, x[..., None])[0][..., 0], y,
                                                            temperature=0.005, t_silent=1.0)
    opt, mlp_step = train_step(mlp_loss)
    mlp_state = opt.init(mlp_params)
    yb = jnp.asarray(y)
    for name, model, loss_fn in (("train step 784-800-10 multi-spike (30/30)", multi, multi_loss),
                                 ("train step 784-800-10 single-spike", single, single_loss)):
        params = model.init(key, jnp.asarray(t)[..., None])
        opt_l, step = train_step(loss_fn)
        state = opt_l.init(params)
        row(name, step, mlp_step, (params, state, jnp.asarray(t), yb), (mlp_params, mlp_state, x_dense, yb))
        rows[-1]["epoch_seconds_estimate"] = rows[-1]["lif_ms"] * 1e-3 * 60000 / B
        rows[-1]["reference_epoch_seconds_estimate"] = rows[-1]["reference_ms"] * 1e-3 * 60000 / B

    # data-parallel training step (jaxsnn.train.train_step with a mesh: each device runs its share
    # of the batch as its own program) against the same for the MLP and the one-device MLP step
    n_dev = jax.device_count()
    if n_dev > 1 and B % n_dev == 0:
        mesh = train.make_mesh()
        hp = dict(lr=jnp.asarray(1e-3))

        def task(init, loss_fn):
            return train.Task(lambda k, h: init, lambda p, b, k, h: (loss_fn(p, *b), {}), lambda h: optax.adam(h["lr"]))

        def dp_step(tk):
            return jax.jit(lambda s, b: train.train_step(tk, s, b, hp, mesh)[0])

        batch_place = NamedSharding(mesh, P(mesh.axis_names[0]))
        xb = jax.device_put(jnp.asarray(t), batch_place), jax.device_put(yb, batch_place)
        xd = jax.device_put(x_dense, batch_place), jax.device_put(yb, batch_place)
        lif_task = task(multi.init(key, jnp.asarray(t)), multi_loss)
        mlp_task = task(mlp_params, mlp_loss)
        mlp_dp_s = timeit(dp_step(mlp_task), (train.init_state(mlp_task, hp, 0), xd), 5 * args.repeat)
        row(f"train step 784-800-10 multi-spike (30/30), {n_dev} CPU devices", dp_step(lif_task), mlp_step,
            (train.init_state(lif_task, hp, 0), xb), (mlp_params, mlp_state, x_dense, yb),
            dict(devices=n_dev, reference="one-device MLP step (faster than the MLP split over the devices)",
                 mlp_data_parallel_ms=1e3 * mlp_dp_s))
        rows[-1]["epoch_seconds_estimate"] = rows[-1]["lif_ms"] * 1e-3 * 60000 / B
        rows[-1]["reference_epoch_seconds_estimate"] = rows[-1]["reference_ms"] * 1e-3 * 60000 / B
        print(f"  (MLP step split over the {n_dev} devices: {1e3 * mlp_dp_s:.2f} ms)", flush=True)

    # 784-350-10 single-spike step, the peer comparison
    peer_model = nn.LIFMLP((350, 10), thresholds=(0.7, 2.0), max_spikes=(1, 1),
                           layer_kwargs=dict(tau_syn=TAU, t_max=1.0, weight_low=0.0, weight_high=1.0))
    peer_loss = lambda p, x, y: losses.ttfs_cross_entropy(peer_model.apply(p, x[..., None])[0][..., 0], y,
                                                          temperature=0.005, t_silent=1.0)
    opt_p, step_p = train_step(peer_loss)
    ours = {}
    for b in (1, 128, 512):
        xb = jax.random.uniform(jax.random.fold_in(key, b), (b, 784), minval=0.0, maxval=0.1)
        yb_ = jax.random.randint(jax.random.fold_in(key, 1000 + b), (b,), 0, 10)
        params = peer_model.init(key, xb[..., None])
        sec = timeit(step_p, (params, opt_p.init(params), xb, yb_), args.repeat)
        ours[str(b)] = dict(step_seconds=sec, samples_per_second=b / sec)
        print(f"train step 784-350-10 single-spike, batch {b:4d}: {1e3 * sec:8.2f} ms, {b / sec:10.1f} samples/s",
              flush=True)
    peer = None
    if args.peer_python:
        import subprocess
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = pathlib.Path(tmp) / "peer.json"
            script = pathlib.Path(__file__).resolve().parent / "peer" / "bench_pypi_jaxsnn.py"
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # its own jaxsnn, not ours
            subprocess.run([args.peer_python, str(script), "--max-seconds", str(args.peer_seconds), "--out", str(path)],
                           check=True, cwd=tmp, env=env)
            peer = json.loads(path.read_text())
        best_ours = max(r["samples_per_second"] for r in ours.values())
        peer["speedup_per_sample"] = best_ours / peer["best_samples_per_second"]
        best_batch = max(peer["samples_per_second"], key=lambda b: peer["samples_per_second"][b])
        print(f"PyPI jaxsnn 0.3.0: best {peer['best_samples_per_second']:.3f} samples/s (batch {best_batch}, "
              f"largest that ran {peer['largest_batch_ran']}); jaxsnn lif: {best_ours:.1f} samples/s -> "
              f"{peer['speedup_per_sample']:.0f}x faster per sample", flush=True)

    out = dict(batch=B, rows=rows, single_spike_784_350_10=ours, pypi_jaxsnn_0_3_0=peer,
               machine=dict(processor=platform.processor(), cpus=os.cpu_count(), devices=jax.device_count(),
                                                backend=jax.default_backend(), jax=jax.__version__),
               malloc=KEEP_FREED_MEMORY if args.malloc == "keep" and argv is None else "default",
               command="python benchmarks/bench_lif.py " + " ".join(sys.argv[1:] if argv is None else argv))
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
