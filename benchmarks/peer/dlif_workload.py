"""One library's training steps on the DLIF benchmark workload, in its own process (its own venv).

Run by ``benchmarks/bench_dlif.py``; prints one JSON line. The workload (issue: DLIF benchmark):
an MLP of discrete-time LIF neurons (``layers``, e.g. 784-1000-10), ``T`` steps, batch ``B``,
``beta = 0.95``, threshold 1, subtract reset, fast-sigmoid (SuperSpike) surrogate of slope 25,
inputs = precomputed Bernoulli spikes ``[T, B, 784]`` (loaded from ``--inputs``), softmax
cross-entropy on the output spike counts, Adam with lr 5e-4. Every library is written the way its
documentation writes it:

* ``jaxsnn``: ``jaxsnn.nn.DLIFMLP(..., skip_silent_inputs=True)`` (input projection one matmul per
  chunk of steps on the input columns that spike in the batch, hand-written BPTT),
  ``losses.rate_cross_entropy``, one jitted step with donated buffers. ``jaxsnn_dense``: the same
  with the dense projection (``skip_silent_inputs=False``).
* ``snntorch``: ``nn.Linear`` + ``snn.Leaky(beta, spike_grad=surrogate.fast_sigmoid(25))`` per
  step in a Python loop (as in its tutorials), ``SF.ce_count_loss()``.
* ``norse``: ``nn.Linear`` on the whole sequence + ``LIFBoxCell`` stepped in a loop
  (``v += dt/tau (i - v)`` with ``dt/tau = 0.05``: the same leak, inputs scaled by 0.05;
  ``reset_subtract``; SuperSpike ``alpha = 25``).
* ``spyx``: ``spyx.nn.Sequential(nnx.Linear, spyx.nn.LIF(beta, superspike(25)), ...)`` scanned by
  ``spyx.nn.run``; optax Adam inside ``nnx.jit``.

``--gemm`` instead times this machine's dense matmul (jax and, where importable, torch) at the
shape of the first layer's projection ``[T * B, n_in] @ [n_in, n_hidden]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import sys
import time

import numpy as np


def rss_mb():
    """Current resident set size (MiB) from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_steps(step, n_warmup, n_steps, sync):
    for _ in range(n_warmup):
        sync(step())
    t0 = time.perf_counter()
    for _ in range(n_steps):
        out = step()
    sync(out)
    return n_steps / (time.perf_counter() - t0), float(out)


# ---------------------------------------------------------------------------------------------- jax


def jaxsnn_step(x, y, layers, skip_silent_inputs=True):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
    import jax
    import optax

    from jaxsnn import losses, nn

    kw = dict(beta=0.95, threshold=1.0, reset="subtract", surrogate="fast_sigmoid")
    model = nn.DLIFMLP(tuple(layers[1:]), layer_kwargs=kw, skip_silent_inputs=skip_silent_inputs)
    x, y = jax.device_put(x), jax.device_put(y)
    params = model.init(jax.random.key(0), x[:1, :1])
    opt = optax.adam(5e-4)
    state = (params, opt.init(params))

    def train_step(state, x, y):
        params, opt_state = state

        def loss_fn(p):
            spikes, _ = model.apply(p, x)
            return losses.rate_cross_entropy(spikes, y)

        loss, g = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(g, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    train_step = jax.jit(train_step, donate_argnums=0)
    box = [state]

    def step():
        box[0], loss = train_step(box[0], x, y)
        return loss

    return step, lambda a: a.block_until_ready()


def spyx_step(x, y, layers):
    import jax
    import optax
    import spyx
    from flax import nnx

    rngs = nnx.Rngs(0)
    mods = []
    for n_in, n_out in zip(layers[:-1], layers[1:]):
        mods += [nnx.Linear(n_in, n_out, rngs=rngs),
                 spyx.nn.LIF((n_out,), beta=0.95, threshold=1.0, activation=spyx.axn.superspike(25), rngs=rngs)]
    model = spyx.nn.Sequential(*mods)
    optimizer = nnx.Optimizer(model, optax.adam(5e-4), wrt=nnx.Param)
    x, y = jax.device_put(x), jax.device_put(y)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        def loss_fn(model):
            spikes, _ = spyx.nn.run(model, x)
            return optax.softmax_cross_entropy_with_integer_labels(spikes.sum(0), y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    return (lambda: train_step(model, optimizer, x, y)), lambda a: a.block_until_ready()


# -------------------------------------------------------------------------------------------- torch


def torch_model(layers, lib):
    import torch

    if lib == "snntorch":
        import snntorch as snn
        from snntorch import surrogate

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fcs = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(layers[:-1], layers[1:]))
                self.lifs = torch.nn.ModuleList(
                    snn.Leaky(beta=0.95, threshold=1.0, spike_grad=surrogate.fast_sigmoid(slope=25),
                              reset_mechanism="subtract") for _ in layers[1:])

            def forward(self, x):
                mems = [lif.init_leaky() for lif in self.lifs]
                out = []
                for t in range(x.shape[0]):
                    s = x[t]
                    for i, (fc, lif) in enumerate(zip(self.fcs, self.lifs)):
                        s, mems[i] = lif(fc(s), mems[i])
                    out.append(s)
                return torch.stack(out)

        return Net()

    import norse.torch as norse
    from norse.torch.functional.reset import reset_subtract

    p = norse.LIFBoxParameters(tau_mem_inv=torch.as_tensor(50.0), v_th=torch.as_tensor(1.0),
                               method="super", alpha=torch.as_tensor(25.0), reset_method=reset_subtract)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fcs = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(layers[:-1], layers[1:]))
            self.cells = torch.nn.ModuleList(norse.LIFBoxCell(p, dt=0.001) for _ in layers[1:])

        def forward(self, x):
            for fc, cell in zip(self.fcs, self.cells):
                i = fc(x)  # the whole sequence at once
                state, out = None, []
                for t in range(i.shape[0]):
                    z, state = cell(i[t], state)
                    out.append(z)
                x = torch.stack(out)
            return x

    return Net()


def torch_step(x, y, layers, lib):
    import torch

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    net = torch_model(layers, lib)
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    x, y = torch.from_numpy(x), torch.from_numpy(y).long()
    if lib == "snntorch":
        import snntorch.functional as SF

        loss_fn = SF.ce_count_loss()
    else:
        def loss_fn(spikes, y):
            return torch.nn.functional.cross_entropy(spikes.sum(0), y)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return step, lambda a: a


# --------------------------------------------------------------------------------------------- gemm


def gemm_rates(m, k, n, repeat=20):
    """GFLOP/s of an [m, k] @ [k, n] float32 matmul: jax, and torch where importable."""
    rates = {}
    a = np.random.default_rng(0).random((m, k), np.float32)
    b = np.random.default_rng(1).random((k, n), np.float32)
    flops = 2.0 * m * k * n
    try:
        import jax
        import jax.numpy as jnp

        f = jax.jit(jnp.dot)
        aj, bj = jax.device_put(a), jax.device_put(b)
        f(aj, bj).block_until_ready()
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            f(aj, bj).block_until_ready()
            ts.append(time.perf_counter() - t0)
        rates["jax"] = flops / min(ts) / 1e9
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(os.cpu_count())
        at, bt = torch.from_numpy(a), torch.from_numpy(b)
        at @ bt
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            at @ bt
            ts.append(time.perf_counter() - t0)
        rates["torch"] = flops / min(ts) / 1e9
    except ImportError:
        pass
    return rates


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lib", choices=["jaxsnn", "jaxsnn_dense", "snntorch", "norse", "spyx"])
    p.add_argument("--inputs", help=".npz with x [T, B, n_in] float32 and y [B] int32")
    p.add_argument("--layers", default="784,1000,10")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--gemm", default=None, help="m,k,n: time a matmul instead")
    args = p.parse_args()
    if args.gemm:
        m, k, n = map(int, args.gemm.split(","))
        print(json.dumps({"gemm": [m, k, n], "gflops": gemm_rates(m, k, n)}))
        return
    layers = [int(v) for v in args.layers.split(",")]
    d = np.load(args.inputs)
    x, y = d["x"].astype(np.float32), d["y"].astype(np.int32)
    base = rss_mb()
    if args.lib in ("jaxsnn", "jaxsnn_dense"):
        step, sync = jaxsnn_step(x, y, layers, skip_silent_inputs=args.lib == "jaxsnn")
    elif args.lib == "spyx":
        step, sync = spyx_step(x, y, layers)
    else:
        step, sync = torch_step(x, y, layers, args.lib)
    steps_per_s, loss = run_steps(step, args.warmup, args.steps, sync)
    print(json.dumps(dict(lib=args.lib, layers=layers, T=int(x.shape[0]), batch=int(x.shape[1]),
                          steps_per_s=steps_per_s, loss=loss, base_rss_mb=base, peak_rss_mb=peak_rss_mb())))


if __name__ == "__main__":
    main()
