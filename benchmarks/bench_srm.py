"""Forward + backward cost of jaxsnn.srm.first_spike_times against a dense ReLU layer.

The physical limit for a layer of this shape is the dense matmul layer ``relu(x @ W)``
(forward and backward: three matmuls). Both are timed in the same run, jitted, on the same
inputs, and the ratio is reported. Batch 128, shapes 784->350 and 350->10 (the MNIST network).

    python benchmarks/bench_srm.py --data-dir ../shared/data [--out results/bench_srm.json]

Inputs of the first layer are TTFS-encoded MNIST test images (black pixels do not spike) when
the MNIST files are found, otherwise uniform random times with 80 % silent inputs; the
"all inputs arrive" row is the worst case for the event-driven forward pass.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxsnn import coding, data, srm


def timeit_pair(f, g, args, repeat, rounds=5):
    """Median times of ``f(*args)`` and ``g(*args)``.

    Measured in alternating blocks of ``repeat // rounds`` consecutive calls each, so that both
    run warm (one does not evict the other's cache between calls) and slow drifts of the
    machine are shared.
    """
    jax.block_until_ready(f(*args))
    jax.block_until_ready(g(*args))
    tf, tg = [], []
    for _ in range(rounds):
        for fn, ts in ((f, tf), (g, tg)):
            for _ in range(max(1, repeat // rounds)):
                t0 = time.perf_counter()
                jax.block_until_ready(fn(*args))
                ts.append(time.perf_counter() - t0)
    return float(np.median(tf)), float(np.median(tg))


def srm_fwd_bwd(**kw):
    def loss(w, x):
        t = srm.first_spike_times(x, w, 1.0, **kw)
        return jnp.sum(jnp.where(jnp.isfinite(t), t, 0.0))

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def dense_fwd_bwd():
    def loss(w, x):
        return jnp.sum(jax.nn.relu(jnp.where(jnp.isfinite(x), x, 0.0) @ w))

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeat", type=int, default=40)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args()
    key = jax.random.PRNGKey(0)
    B = args.batch
    try:
        images, _ = data.load_dataset("mnist", "test", data_dir=args.data_dir)
        x1 = coding.ttfs_encode(images[:B].reshape(B, -1) / 255.0, silent_below=0.0).astype(jnp.float32)
        source = "MNIST test images, TTFS-encoded"
    except FileNotFoundError:
        u = jax.random.uniform(key, (B, 784))
        x1 = jnp.where(u < 0.8, jnp.inf, u)
        source = "uniform random, 80% silent"
    x1_dense = jax.random.uniform(key, (B, 784))
    w1 = 1.0 * (2.0 / 784 + jax.random.normal(jax.random.fold_in(key, 1), (784, 350)) / 28.0)
    x2 = srm.first_spike_times(x1, w1, 1.0)
    x2 = jnp.where(jnp.isfinite(x2), x2, jnp.inf)
    w2 = 2.0 / 350 + jax.random.normal(jax.random.fold_in(key, 2), (350, 10)) / np.sqrt(350.0)
    d1 = jax.random.uniform(jax.random.fold_in(key, 3), (784, 350), maxval=0.2)

    dense = dense_fwd_bwd()
    rows = []
    cases = [
        ("784->350, no delays", x1, w1, {}),
        ("784->350, no delays, all inputs arrive", x1_dense, w1, {}),
        ("350->10, no delays", x2, w2, {}),
        ("784->350, delays", x1, w1, dict(delays=d1)),
        ("350->10, delays", x2, w2, dict(delays=d1[:350, :10])),
        ("784->350, delta=0.5 (cutoff knots)", x1, w1, dict(delta=0.5)),
    ]
    for name, x, w, kw in cases:
        if "delays" in kw:
            t_srm, t_dense = timeit_pair(srm_fwd_bwd(**kw), dense, (w, x), 2, rounds=2)
        else:
            t_srm, t_dense = timeit_pair(srm_fwd_bwd(**kw), dense, (w, x), args.repeat)
        rows.append(dict(case=name, srm_ms=1e3 * t_srm, dense_ms=1e3 * t_dense, ratio=t_srm / t_dense))
        print(f"{name:42s} srm {1e3 * t_srm:8.2f} ms   dense relu {1e3 * t_dense:6.3f} ms   "
              f"ratio {t_srm / t_dense:6.1f}x", flush=True)
    result = dict(benchmark="first_spike_times forward+backward vs dense ReLU layer", batch=B, inputs=source,
                  jax=jax.__version__, device=str(jax.devices()[0]), machine=platform.machine(),
                  cpu_count=__import__("os").cpu_count(), rows=rows,
                  command="python benchmarks/bench_srm.py --data-dir ../shared/data")
    if args.out:
        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
