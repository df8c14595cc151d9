"""Does an event-driven (zero-skipping) input projection beat the dense matmul on binary spikes?

The DLIF layer's input projection ``I = x W`` with binary ``x [R, n_in]`` (R = T * batch rows) is
the sum of the rows of ``W`` selected by the spikes. An event-driven projection compacts each row's
spikes to at most ``K`` indices (``lax.top_k`` on the binary row) and sums the gathered weight rows
(``W[idx].sum(1)``, in row chunks so the gather never materializes ``[R, K, n_out]`` at once); its
weight gradient scatter-adds the output gradient rows into the rows of the active inputs. This
script times both against the dense matmul (forward ``x W`` and weight gradient ``x^T g``) at several
spike densities, at the benchmark's shape (784 -> 1000, T = 25, batch 128), jitted, in one run.

    python benchmarks/bench_dlif_projection.py [--out results/bench_dlif_projection.json]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from timing import timeit  # noqa: E402

R, N_IN, N_OUT = 25 * 128, 784, 1000
DENSITIES = (0.02, 0.05, 0.1, 0.13)


def compact(x, k):
    """Indices of the (at most ``k``) spikes of each row; unused slots point at row ``n_in`` (zeros)."""
    vals, idx = jax.lax.top_k(x, k)
    return jnp.where(vals > 0, idx, x.shape[-1])


def event_forward(x, w, k, chunk=128):
    idx = compact(x, k)
    w_pad = jnp.concatenate([w, jnp.zeros((1, w.shape[1]), w.dtype)])
    rows = idx.reshape(-1, chunk, k)
    return jax.lax.map(lambda i: jnp.take(w_pad, i, axis=0).sum(1), rows).reshape(x.shape[0], -1)


def event_weight_grad(x, g, k):
    idx = compact(x, k)
    rows = jnp.broadcast_to(jnp.arange(x.shape[0])[:, None], idx.shape)
    dw = jnp.zeros((x.shape[1] + 1, g.shape[1]), g.dtype).at[idx.reshape(-1)].add(g[rows.reshape(-1)])
    return dw[:-1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/bench_dlif_projection.json")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.normal(0, 0.03, (N_IN, N_OUT)).astype(np.float32))
    g = jnp.asarray(rng.normal(0, 1, (R, N_OUT)).astype(np.float32))
    dense_fwd = jax.jit(lambda x, w: x @ w)
    dense_dw = jax.jit(lambda x, g: jax.lax.dot_general(x, g, (((0,), (0,)), ((), ()))))
    rows = []
    for density in DENSITIES:
        x = jnp.asarray((rng.random((R, N_IN)) < density).astype(np.float32))
        k = int(jnp.max(jnp.sum(x, 1)))
        k = int(2 ** np.ceil(np.log2(k)))  # a static bucket, as a layer would use
        ev_fwd = jax.jit(lambda x, w, k=k: event_forward(x, w, k))
        ev_dw = jax.jit(lambda x, g, k=k: event_weight_grad(x, g, k))
        np.testing.assert_allclose(np.asarray(ev_fwd(x, w)), np.asarray(dense_fwd(x, w)), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(np.asarray(ev_dw(x, g)), np.asarray(dense_dw(x, g)), rtol=1e-3, atol=1e-3)
        row = dict(density=density, k=k, dense_forward_ms=1e3 * timeit(dense_fwd, (x, w), 10),
                   event_forward_ms=1e3 * timeit(ev_fwd, (x, w), 10),
                   dense_weight_grad_ms=1e3 * timeit(dense_dw, (x, g), 10),
                   event_weight_grad_ms=1e3 * timeit(ev_dw, (x, g), 10))
        rows.append(row)
        print(f"density {density:.2f} (K = {k}): forward dense {row['dense_forward_ms']:.1f} ms, event "
              f"{row['event_forward_ms']:.1f} ms; weight gradient dense {row['dense_weight_grad_ms']:.1f} ms, "
              f"event {row['event_weight_grad_ms']:.1f} ms")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(shape=[R, N_IN, N_OUT], rows=rows,
                                   command="python benchmarks/bench_dlif_projection.py"), indent=2) + "\n")


if __name__ == "__main__":
    main()
