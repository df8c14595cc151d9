"""Peer benchmark: one jitted training step of a 784-350-10 single-spike (time-to-first-spike)
LIF network built with the PyPI package ``jaxsnn==0.3.0`` (Electronic Vision(s), Heidelberg;
an unrelated older code base that shares only the name with this project).

It must be run with the separate peer environment (see ``benchmarks/peer/README.md``), never
with the project's own venv; that package is not, and must not become, a dependency of jaxsnn.

What is measured
----------------
The model is built with the package's own event-based API, as in its example
``jaxsnn.examples.event.yinyang_analytical``:

* ``jaxsnn.event.topology.Topology(t_max, backprop_method="analytical")`` with
  ``Source(784) -> Linear -> LIF(350) -> Linear -> LIF(10)``
  (``jaxsnn.event.modules.{Source, Linear, LIF, LIFParameters}``);
* ``LIFParameters(tau_syn=5e-3, tau_mem=1e-2, v_th=1.0, v_reset=-1000.0)``: current-based LIF
  with ``tau_mem = 2 tau_syn``, spike times from the closed-form solver
  ``jaxsnn.event.solver.lif_analytical.ttfs_solver``; ``v_reset=-1000`` allows one spike per
  neuron (the package's way of making the network time-to-first-spike). Gradients are plain
  JAX autodiff through the exact event-by-event simulation ("analytical" backprop method);
* event budget per layer (``LIF(size, n_steps)``): 784 + 350 steps for the hidden layer (every
  input spike plus one spike per hidden neuron) and 350 + 10 for the output layer, so no
  event is dropped;
* inputs: per sample 784 spike times ``U(0, 1) * t_late`` (``t_late = 2 tau_syn``), encoded with
  ``jaxsnn.event.encode.spatio_temporal_encode`` (sorted, one spike per input); ``t_max =
  4 tau_syn``; targets: random classes, ``target_temporal_encode`` (0.9 / 1.1 tau_syn);
* loss: ``jaxsnn.examples.event.utils.loss_wrapper`` with ``-jaxsnn.event.loss.ttfs_loss``,
  i.e. the softmax cross-entropy over ``-t_first / tau_mem`` of the output first-spike times
  (clipped at ``2 tau_mem = t_max``). The package's ``ttfs_loss`` returns
  ``-log sum_j exp((t_c - t_j) / tau)`` = ``log softmax_c(-t / tau)``, the log-likelihood (its
  value is about -2.30 = log 0.1 at chance), so minimizing it as-is would delay the correct
  neuron; the sign is flipped here (the package's own examples use ``mse_loss``). The sign
  does not change the cost of a step;
* optimizer (as in the package example): ``optax.chain(scale(1 / tau_syn), clip(0.01),
  adam(5e-3))``; the step is ``jax.jit(partial(jaxsnn.event.training.update, optimizer,
  loss_fn))`` (forward + backward + Adam update).

For each batch size in ``--batch-sizes`` (default 1, 2, ..., 128), in increasing order, the
step is compiled (the lowered program's memory estimate is checked against
``--mem-fraction`` of the available RAM first, so that the search never drives the machine
into swap/the OOM killer), called once as warm-up, then timed ``--repeats`` times (median).
The search stops at the first failing batch size, at the first one whose step takes longer
than ``--step-limit`` seconds (default 120), or when the next size would not fit in the
remaining ``--max-seconds`` budget (predicted from the last step time, assuming linear
scaling, plus the last compile time).

    /work/venv-peer/bin/python benchmarks/peer/bench_pypi_jaxsnn.py \
        --max-seconds 3600 --out results/bench_pypi_jaxsnn.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import platform
import statistics
import sys
import time
import traceback
from functools import partial


def mem_available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def package_versions():
    from importlib import metadata

    out = {}
    for name in ("jaxsnn", "jax", "jaxlib", "optax", "numpy", "tree-math", "scipy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--batch-sizes", default="1,2,4,8,16,32,64,128")
    p.add_argument("--repeats", type=int, default=3, help="timed steps per batch size (median)")
    p.add_argument("--max-seconds", type=float, default=3600.0, help="total time budget")
    p.add_argument("--step-limit", type=float, default=120.0,
                   help="stop after a batch size whose step takes longer than this")
    p.add_argument("--mem-fraction", type=float, default=0.5,
                   help="skip sizes whose compiled memory estimate exceeds this fraction of MemAvailable")
    p.add_argument("--n-in", type=int, default=784)
    p.add_argument("--n-hidden", type=int, default=350)
    p.add_argument("--n-out", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/bench_pypi_jaxsnn.json")
    args = p.parse_args(argv)
    t_start = time.perf_counter()

    import jax
    import jax.numpy as jnp
    import optax

    from jaxsnn.event.encode import spatio_temporal_encode, target_temporal_encode
    from jaxsnn.event.loss import ttfs_loss
    from jaxsnn.event.modules import LIF, LIFParameters, Linear, Source
    from jaxsnn.event.topology import Topology
    from jaxsnn.event.training import update
    from jaxsnn.event.types import OptState
    from jaxsnn.examples.event.utils import loss_wrapper

    n_in, n_hid, n_out = args.n_in, args.n_hidden, args.n_out
    tau_syn, tau_mem = 5e-3, 1e-2
    params = LIFParameters(tau_syn=tau_syn, tau_mem=tau_mem, v_th=1.0, v_reset=-1000.0)
    t_max = 4.0 * tau_syn
    t_late = 2.0 * tau_syn
    lr = 5e-3
    steps_hidden = n_in + n_hid
    steps_out = n_hid + n_out
    # Weight init: the package's Gaussian ``Linear(mean, std)``; scaled to the fan-in so that a
    # sizeable part of the hidden layer and the output layer spike (the example's yin-yang values,
    # mean 3.0 for 5 inputs, would saturate 784 inputs). Does not change the cost of a step.
    w1 = dict(mean=0.01, std=0.02)
    w2 = dict(mean=0.05, std=0.1)

    builder = Topology(t_max=t_max, backprop_method="analytical")
    builder.add({
        "inp": Source(n_in),
        "lif1": LIF(n_hid, steps_hidden, params),
        "lif2": LIF(n_out, steps_out, params),
        "syn1": Linear(min_delay=0.0, **w1),
        "syn2": Linear(min_delay=0.0, **w2),
    })
    builder.connect([("inp", "syn1"), ("syn1", "lif1"), ("lif1", "syn2"), ("syn2", "lif2")])
    init_fn, apply_fn = builder.done()

    rng = jax.random.PRNGKey(args.seed)
    param_rng, data_rng = jax.random.split(rng)
    weights = init_fn(param_rng)
    optimizer = optax.chain(optax.scale(1.0 / tau_syn), optax.clip(0.01), optax.adam(lr))
    def ttfs_cross_entropy(first_spikes, target, tau):
        # the package's ttfs_loss is log softmax_c(-t / tau); negate to get the cross-entropy
        return -ttfs_loss(first_spikes, target, tau)

    loss_fn = partial(loss_wrapper, apply_fn, ttfs_cross_entropy, tau_mem, "lif2", n_out)
    update_fn = jax.jit(partial(update, optimizer, loss_fn))

    input_encoder = jax.jit(jax.vmap(partial(
        spatio_temporal_encode, t_late=t_late, duplication=1, duplicate_neurons=False)))
    target_encoder = jax.jit(jax.vmap(partial(
        target_temporal_encode, n_classes=n_out,
        correct_target_time=0.9 * tau_syn, wrong_target_time=1.1 * tau_syn)))

    def make_batch(key, bs):
        k1, k2 = jax.random.split(key)
        x = jax.random.uniform(k1, (bs, n_in))
        y = jax.random.randint(k2, (bs,), 0, n_out)
        return {"inp": input_encoder(x)}, target_encoder(y)

    def block(tree):
        jax.tree_util.tree_map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a,
                               tree)

    devices = [str(d) for d in jax.devices()]
    result = dict(
        benchmark="peer: PyPI jaxsnn==0.3.0, jitted training step of a 784-350-10 single-spike LIF net",
        command=" ".join([sys.executable] + sys.argv),
        python=platform.python_version(), platform=platform.platform(), devices=devices,
        cpu_count=os.cpu_count(), versions=package_versions(),
        model=dict(
            layers=[n_in, n_hid, n_out],
            topology="jaxsnn.event.topology.Topology(t_max, backprop_method='analytical'): "
                     "Source(784) -> Linear -> LIF(350) -> Linear -> LIF(10)",
            neuron="jaxsnn.event.modules.LIF + LIFParameters(tau_syn=5e-3, tau_mem=1e-2, v_th=1.0, "
                   "v_reset=-1000.0): current-based LIF, tau_mem = 2 tau_syn, exact spike times from "
                   "jaxsnn.event.solver.lif_analytical.ttfs_solver; v_reset=-1000 => one spike per neuron",
            event_steps=dict(hidden=steps_hidden, output=steps_out),
            t_max=t_max, input_window=t_late,
            weight_init=dict(syn1=w1, syn2=w2, fn="jaxsnn.event.modules.Linear (Gaussian)"),
            inputs="U(0,1) * t_late spike times, one per input, jaxsnn.event.encode.spatio_temporal_encode",
            targets="random classes, jaxsnn.event.encode.target_temporal_encode(0.9 tau_syn, 1.1 tau_syn)",
            loss="jaxsnn.examples.event.utils.loss_wrapper(apply_fn, -jaxsnn.event.loss.ttfs_loss, tau_mem, "
                 "'lif2', 10): TTFS softmax cross-entropy over -t_first/tau_mem (first output spikes via "
                 "jaxsnn.event.loss.first_spike; batch mean). Sign flipped because the package's ttfs_loss "
                 "returns the log-likelihood log softmax_c(-t/tau) (about -2.30 at chance)",
            gradient="jax.value_and_grad through the event-based simulation (analytical method)",
            optimizer=f"optax.chain(scale(1/tau_syn), clip(0.01), adam({lr})) as in "
                      "jaxsnn.examples.event.yinyang_analytical",
            step="jax.jit(partial(jaxsnn.event.training.update, optimizer, loss_fn))",
        ),
        settings=dict(batch_sizes=args.batch_sizes, repeats=args.repeats, max_seconds=args.max_seconds,
                      step_limit=args.step_limit, mem_fraction=args.mem_fraction),
        runs=[],
    )
    print(f"jaxsnn {result['versions']['jaxsnn']}, jax {result['versions']['jax']}, devices {devices}",
          flush=True)

    def remaining():
        return args.max_seconds - (time.perf_counter() - t_start)

    sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    last = None  # (batch size, step seconds, compile seconds)
    stop_reason = "all batch sizes ran"
    for bs in sizes:
        run = dict(batch_size=bs)
        result["runs"].append(run)
        if last is not None:
            pred = last[2] + (1 + args.repeats) * last[1] * bs / last[0]
            run["predicted_seconds"] = pred
            if pred > remaining():
                run["status"] = "skipped"
                stop_reason = (f"batch {bs}: predicted {pred:.0f} s > remaining budget "
                               f"{remaining():.0f} s of --max-seconds")
                print(stop_reason, flush=True)
                break
        try:
            batch = make_batch(jax.random.fold_in(data_rng, bs), bs)
            state = OptState(optimizer.init(weights), weights, rng)
            t0 = time.perf_counter()
            compiled = update_fn.lower(state, batch).compile()
            mem = None
            try:
                ma = compiled.memory_analysis()
                if ma is not None:
                    mem = int(ma.temp_size_in_bytes + ma.argument_size_in_bytes + ma.output_size_in_bytes)
            except Exception:  # noqa: BLE001 - not available on every backend/version
                mem = None
            run["memory_estimate_bytes"] = mem
            avail = mem_available_bytes()
            if mem is not None and avail is not None and mem > args.mem_fraction * avail:
                run["status"] = "skipped"
                stop_reason = (f"batch {bs}: compiled memory estimate {mem / 2**30:.2f} GiB > "
                               f"{args.mem_fraction} x MemAvailable {avail / 2**30:.2f} GiB")
                print(stop_reason, flush=True)
                break
            new_state, (value, _) = compiled(state, batch)  # warm-up
            block(new_state.params)
            t_compile = time.perf_counter() - t0
            run["compile_and_first_step_seconds"] = t_compile
            loss0, (t_first, events) = value
            run["loss_first_step"] = float(loss0)
            hid = events["lif1"]
            outs = events["lif2"]
            run["hidden_spikes_per_sample"] = float(jnp.mean(jnp.sum(hid.internal & (hid.idx >= 0), -1)))
            run["output_spikes_per_sample"] = float(jnp.mean(jnp.sum(outs.internal & (outs.idx >= 0), -1)))
            if not math.isfinite(run["loss_first_step"]):
                raise FloatingPointError(f"non-finite loss {loss0}")
            times = []
            st = new_state
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                st, _ = compiled(st, batch)
                block(st.params)
                times.append(time.perf_counter() - t0)
                if times[-1] > args.step_limit or times[-1] > remaining():
                    break
            step = statistics.median(times)
            run.update(status="ok", step_seconds=times, median_step_seconds=step,
                       samples_per_second=bs / step)
            print(f"batch {bs:4d}: compile+1st {t_compile:7.1f} s, step {step:9.4f} s "
                  f"(median of {len(times)}), {bs / step:9.2f} samples/s, "
                  f"hidden spikes/sample {run['hidden_spikes_per_sample']:.1f}, "
                  f"output {run['output_spikes_per_sample']:.1f}, loss {run['loss_first_step']:.3f}",
                  flush=True)
            last = (bs, step, t_compile)
            if step > args.step_limit:
                stop_reason = f"batch {bs}: step {step:.1f} s > --step-limit {args.step_limit} s"
                print(stop_reason, flush=True)
                break
        except Exception as e:  # noqa: BLE001 - includes XLA resource-exhausted errors
            run.update(status="error", error=f"{type(e).__name__}: {e}"[:2000],
                       traceback=traceback.format_exc()[-4000:])
            stop_reason = f"batch {bs}: {type(e).__name__}"
            print(f"batch {bs}: FAILED {type(e).__name__}: {str(e)[:300]}", flush=True)
            break

    ok = [r for r in result["runs"] if r.get("status") == "ok"]
    result["batch_sizes_tried"] = [r["batch_size"] for r in result["runs"] if r.get("status") != "skipped"]
    result["largest_batch_ran"] = max((r["batch_size"] for r in ok), default=None)
    result["best_samples_per_second"] = max((r["samples_per_second"] for r in ok), default=None)
    result["per_step_seconds"] = {str(r["batch_size"]): r["median_step_seconds"] for r in ok}
    result["samples_per_second"] = {str(r["batch_size"]): r["samples_per_second"] for r in ok}
    result["stop_reason"] = stop_reason
    result["total_seconds"] = time.perf_counter() - t_start

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"largest batch that ran: {result['largest_batch_ran']}; stop: {stop_reason}; "
          f"total {result['total_seconds']:.0f} s; wrote {out}", flush=True)
    return result


if __name__ == "__main__":
    main()
