"""Every spiking layer against the dense ReLU layer of the same shape, forward + backward, in one run.

One layer ``n_in -> n_out`` (default 784 -> 400), batch 128, float32, jitted ``value_and_grad`` with
respect to the weights and the inputs. The reference is the physical limit for that shape on the
same device, ``relu(x @ W)`` forward and backward (three matrix products), timed in alternating
rounds with each layer so that both see the same machine state. Rows:

* ``srm``: :func:`jaxsnn.srm.first_spike_times`, ramp response, no cutoff;
* ``srm early``: the same with threshold 0.05, so that about 3 in 4 neurons fire before their last
  input arrives (with threshold 1 they all fire after it, where :mod:`jaxsnn.srm_ramp` needs only
  matrix products);
* ``srm+delays``: the same with per-synapse delays (uniform in ``[0, 0.02]``);
* ``lif single``: :func:`jaxsnn.lif.spike_times` with ``max_spikes = 1`` (Fast & Deep);
* ``lif multi K``: ``max_spikes = K`` for K in ``--ks`` (Bacho & Chu; threshold lowered so the
  neurons fire several times);
* ``lif single block screen``: the same with ``lif.Config(screen_block=64)``, the first spikes by
  the block screen of :mod:`jaxsnn.lif.screen` (matrix products, walks in flagged blocks only);
* ``... 8-bit times``: the same LIF layers with the input times on 256 levels of the window, as
  pixel-coded images have them (events at one time are one step of the walk);
* ``lif walk floor``: not a library function: the least any exact event walk does, forward only:
  per event one weight row gathered, two multiply-adds and a threshold test for every neuron
  (no crossing solve, no backward). The LIF rows cannot get below it by a better walk;
* ``dlif T``: :func:`jaxsnn.dlif.simulate` over ``T`` steps of Bernoulli spikes (rate coded), against
  the dense layer applied to the same ``T x batch`` rows (``dense_rows``) as well as to one batch;
* with spyx installed (``pip install spyx``; Flax NNX from 1.0), spyx's LIF layer on the same
  DLIF workload;
* with ``--devices N`` (CPU), each srm and lif row and the walk floor again as ``..., N devices``:
  the batch split over ``N`` JAX devices, each running its share as its own program
  (``jax.shard_map``, as data-parallel training does). XLA:CPU runs an event walk's small
  operations on one core, while the dense reference's matrix products use every core of its one
  device: the split rows compare both using the whole machine.

Input: each input neuron spikes once with probability ``--density`` (default 0.9) at a time uniform
in the 0.1 window (``MNIST-like`` in the sense of one spike per active input), the rest ``inf``.
Results go to ``--out`` (default ``runs/bench_layers.json``, never into ``results/`` unless asked).

    python -m benchmarks.bench_layers                    # CPU: all rows, about 5 minutes on 2 cores
    python -m benchmarks.bench_layers --quick            # fewer repeats, for a lent GPU or a smoke test
    python -m benchmarks.bench_layers --devices 2        # CPU: also every event layer over both cores

On a GPU the same command measures the GPU (``jax.default_backend()`` is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from benchmarks.timing import interleaved_timings
from jaxsnn import dlif, lif, srm, train


def _dense(x_rows):
    def loss(w, x):
        return jnp.sum(jax.nn.relu(x @ w))

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1))), x_rows


def _finite_sum(t):
    return jnp.sum(jnp.where(jnp.isfinite(t), t, 0.0))


def _layer_cases(args, key):
    B, n_in, n_out = args.batch, args.n_in, args.n_out
    k1, k2, k3, k4 = jax.random.split(key, 4)
    u = jax.random.uniform(k1, (B, n_in), maxval=0.1)
    t_in = jnp.where(jax.random.uniform(k2, (B, n_in)) < args.density, u, jnp.inf).astype(jnp.float32)
    x_dense = jnp.where(jnp.isfinite(t_in), 0.1 - t_in, 0.0)  # the same activity as a dense input
    w_srm = (2.0 / n_in + jax.random.normal(k3, (n_in, n_out)) / np.sqrt(n_in)).astype(jnp.float32)
    w_lif = jax.random.uniform(k3, (n_in, n_out), minval=-1.0, maxval=1.0).astype(jnp.float32)
    delays = jax.random.uniform(k4, (n_in, n_out), maxval=0.02).astype(jnp.float32)

    def srm_case(threshold=1.0, **kw):
        def loss(w, x):
            return _finite_sum(srm.first_spike_times(x, w, threshold, **kw))

        return _value_and_grad(loss), (w_srm, t_in), lambda: _data_parallel(loss, (w_srm, t_in))

    def lif_case(K, threshold, t=t_in, config=None):
        def loss(w, x):
            return _finite_sum(lif.spike_times(x, w, tau_syn=0.13, threshold=threshold, max_spikes=K, t_max=0.2,
                                               config=config))

        return _value_and_grad(loss), (w_lif, t[..., None]), lambda: _data_parallel(loss, (w_lif, t[..., None]))

    # "srm": threshold 1, the neurons fire after their last input; "srm early": threshold 0.05, about
    # 3 in 4 fire while inputs still arrive (the harder case for the fast path, see jaxsnn.srm_ramp)
    cases = [("srm", srm_case()), ("srm early", srm_case(0.05)), ("srm+delays", srm_case(delays=delays)),
             ("lif single", lif_case(1, 0.7))]
    cases += [(f"lif multi K={k}", lif_case(k, 0.2)) for k in args.ks]
    t_8bit = jnp.round(t_in / 0.1 * 255.0) / 255.0 * 0.1  # inf stays inf
    screen = lif.Config(screen_block=64)
    cases += [("lif single block screen", lif_case(1, 0.7, config=screen)),
              ("lif single 8-bit times", lif_case(1, 0.7, t_8bit)),
              ("lif single block screen 8-bit times", lif_case(1, 0.7, t_8bit, config=screen)),
              (f"lif multi K={max(args.ks)} 8-bit times", lif_case(max(args.ks), 0.2, t_8bit)),
              ("lif walk floor", _walk_floor(w_lif, t_in))]
    return cases, (w_srm, x_dense)


def _walk_floor(w, t_in):
    """The minimal forward event walk (see the module docstring), on the events of ``t_in``."""
    order = jnp.argsort(t_in, axis=1)
    t_sorted = jnp.take_along_axis(t_in, order, axis=1)

    def walk(w, t_sorted, order):
        e1 = jnp.where(jnp.isfinite(t_sorted), jnp.exp(t_sorted / 0.26), 0.0).T  # [E, B]
        x = jnp.where(jnp.isfinite(t_sorted), jnp.exp(-t_sorted / 0.26), 0.0).T

        def body(e, carry):
            a, c, fired = carry
            row = w[order[:, e]]
            a, c = a + row * e1[e][:, None], c + row * (e1[e] * e1[e])[:, None]
            return a, c, fired | (a * x[e][:, None] - c * (x[e] * x[e])[:, None] >= 0.7)

        z = jnp.zeros((t_sorted.shape[0], w.shape[1]), w.dtype)
        return jax.lax.fori_loop(0, t_sorted.shape[1], body, (z, z, z > 0))[2]

    def split():  # the same walk on each device's share of the batch
        mesh = train.make_mesh("b")
        f = jax.jit(jax.shard_map(walk, mesh=mesh, in_specs=(P(), P("b"), P("b")), out_specs=P("b"), check_vma=False))
        specs = (P(), P("b"), P("b"))
        return f, tuple(jax.device_put(a, NamedSharding(mesh, sp)) for a, sp in zip((w, t_sorted, order), specs))

    return jax.jit(walk), (w, t_sorted, order), split


def _value_and_grad(loss):
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def _data_parallel(loss, args):
    """``loss(w, x)``'s value and gradients with the batch split over all devices: each device runs
    the layer on its share as its own program (``jax.shard_map``, as :func:`jaxsnn.train.train_step`
    with a mesh does); the loss and the weight gradient are summed over the devices."""
    mesh = train.make_mesh("b")

    def local(w, x):
        v, (gw, gx) = jax.value_and_grad(loss, argnums=(0, 1))(w, x)
        return jax.lax.psum(v, "b"), jax.lax.psum(gw, "b"), gx

    f = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(), P("b")), out_specs=(P(), P(), P("b"))))
    w, x = args
    return f, (jax.device_put(w, NamedSharding(mesh, P())), jax.device_put(x, NamedSharding(mesh, P("b"))))


def _dlif_case(args, key):
    B, n_in, n_out, T = args.batch, args.n_in, args.n_out, args.steps
    x = (jax.random.uniform(key, (T, B, n_in)) < 0.1).astype(jnp.float32)
    w = (jax.random.normal(jax.random.fold_in(key, 1), (n_in, n_out)) / np.sqrt(n_in)).astype(jnp.float32)

    def loss(w, x):
        s, v = dlif.simulate(x, w, beta=0.95, threshold=1.0)
        return jnp.sum(v) + jnp.sum(s)

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1))), (w, x)


def _spyx_case(args, key):
    """spyx's LIF layer on the DLIF workload (spyx >= 1.0: Flax NNX; older: haiku), or None when
    spyx is not installed."""
    try:
        import spyx
    except ImportError:
        return None
    B, n_in, n_out, T = args.batch, args.n_in, args.n_out, args.steps
    x = (jax.random.uniform(key, (T, B, n_in)) < 0.1).astype(jnp.float32)  # time-major
    if hasattr(spyx.nn, "run"):  # spyx 1.x
        from flax import nnx

        rngs = nnx.Rngs(0)
        model = spyx.nn.Sequential(nnx.Linear(n_in, n_out, use_bias=False, rngs=rngs),
                                   spyx.nn.LIF((n_out,), beta=0.95, rngs=rngs))
        graphdef, params = nnx.split(model)

        def loss(p, x):
            return jnp.sum(spyx.nn.run(nnx.merge(graphdef, p), x)[0])
    else:  # spyx 0.x: haiku
        import haiku as hk

        def net(x):
            core = hk.DeepRNN([hk.Linear(n_out, with_bias=False), spyx.nn.LIF((n_out,))])
            return hk.dynamic_unroll(core, x, core.initial_state(x.shape[1]), time_major=True)[0]

        model = hk.without_apply_rng(hk.transform(net))
        params = model.init(key, x)

        def loss(p, x):
            return jnp.sum(model.apply(p, x))

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1))), (params, x)


def _row(name, f, f_args, g, g_args, repeat):
    tf, tg = interleaved_timings(f, f_args, repeat, g, g_args, 5 * repeat)
    t_f, t_g = float(np.median(tf)), float(np.median(tg))
    print(f"{name:24s} {1e3 * t_f:10.2f} ms   dense {1e3 * t_g:8.3f} ms   ratio {t_f / t_g:8.1f}x", flush=True)
    return dict(case=name, layer_ms=1e3 * t_f, dense_ms=1e3 * t_g, ratio=t_f / t_g,
                layer_min_ms=1e3 * float(np.min(tf)), dense_min_ms=1e3 * float(np.min(tg)))


def _selected(name, only):
    return not only or any(name == o or name.startswith(o + " ") for o in only)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--n-in", type=int, default=784)
    p.add_argument("--n-out", type=int, default=400)
    p.add_argument("--density", type=float, default=0.9, help="fraction of inputs that spike (once)")
    p.add_argument("--ks", type=int, nargs="+", default=[1, 4, 8], help="max_spikes of the multi-spike rows")
    p.add_argument("--steps", type=int, default=25, help="time steps of the DLIF row")
    p.add_argument("--repeat", type=int, default=10, help="timed calls per layer (the dense reference: 5x)")
    p.add_argument("--slow-repeat", type=int, default=2, help="timed calls of layers slower than a second")
    p.add_argument("--quick", action="store_true", help="3 timed calls per layer")
    p.add_argument("--only", nargs="+", default=None,
                   help="run only these rows: a whole name or its first words ('srm', 'lif multi', 'dlif')")
    p.add_argument("--devices", type=int, default=1,
                   help="CPU only: split the CPU into this many JAX devices (e.g. one per core) and time each "
                        "layer also data-parallel over them (rows '..., N devices'); the dense reference stays "
                        "one device, whose matrix products already use every core")
    p.add_argument("--out", default="runs/bench_layers.json")
    args = p.parse_args(argv)
    if args.devices > 1 and not train.use_cpu_devices(args.devices):
        print(f"--devices {args.devices}: JAX has already started; keeping {jax.device_count()} device(s)")
    if args.quick:
        args.repeat, args.slow_repeat = 3, 1
    key = jax.random.PRNGKey(0)
    cases, (w_d, x_d) = _layer_cases(args, key)
    dense, dense_args = _dense(x_d)[0], (w_d, x_d)
    rows = []
    t0 = time.time()
    print(f"backend {jax.default_backend()}, devices {jax.devices()}", flush=True)
    n_dev = jax.device_count()
    for name, (f, f_args, split) in cases:
        if not _selected(name, args.only):
            continue
        runs = [(name, f, f_args)]
        if n_dev > 1 and args.batch % n_dev == 0:
            runs.append((f"{name}, {n_dev} devices", *split()))
        for row_name, g, g_args in runs:
            t_start = time.perf_counter()
            jax.block_until_ready(g(*g_args))  # compile and a first call: is the layer slow?
            slow = time.perf_counter() - t_start > 5.0
            rows.append(_row(row_name, g, g_args, dense, dense_args, args.slow_repeat if slow else args.repeat))
    if _selected(f"dlif T={args.steps}", args.only):
        k = jax.random.fold_in(key, 7)
        f, (w, x) = _dlif_case(args, k)
        x_rows = x.reshape(-1, args.n_in)
        dense_rows = _dense(x_rows)[0]
        rows.append(_row(f"dlif T={args.steps}", f, (w, x), dense, dense_args, args.repeat))
        rows.append(_row(f"dlif T={args.steps} vs T*B rows", f, (w, x), dense_rows, (w, x_rows), args.repeat))
        spyx_case = _spyx_case(args, k)
        if spyx_case is not None:
            rows.append(_row(f"spyx LIF T={args.steps}", *spyx_case, dense_rows, (w, x_rows), args.repeat))
    result = dict(benchmark="spiking layers forward+backward against the dense ReLU layer of the same shape",
                  batch=args.batch, n_in=args.n_in, n_out=args.n_out, density=args.density, rows=rows,
                  backend=jax.default_backend(), devices=[str(d) for d in jax.devices()], jax=jax.__version__,
                  machine=platform.machine(), cpu_count=os.cpu_count(), seconds=time.time() - t0,
                  command="python -m benchmarks.bench_layers " + " ".join(sys.argv[1:] if argv is None else argv))
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
