"""Training steps per second of a rate-coded DLIF network: jaxsnn vs snnTorch, Norse and Spyx, and
the matmul-bound limit, in one run on one machine.

Workloads (the issue's): 784-1000-10 with T = 25 and 784-1000-1000-10 with T = 100, batch 128,
``beta = 0.95``, threshold 1, subtract reset, fast-sigmoid surrogate (slope 25), inputs = Bernoulli
spikes ``[T, B, 784]`` precomputed once from the first 128 MNIST training images (pixel intensity =
spike probability per step; about 13 % of the entries are spikes), cross-entropy on the output spike
counts, Adam (lr 5e-4). Each library's steps per second is the best of ``--rounds`` rounds that
alternate between the libraries (all rounds are in the JSON); its peak resident memory is the
median over the rounds (one process's peak varies by tens of MiB from run to run). jaxsnn runs twice: as users
should run it on sparse encoded inputs (``skip_silent_inputs=True``: the first layer's matmuls on
the input columns that spike in the batch) and with the dense projection (``jaxsnn_dense``). Each library runs
in its own process (``benchmarks/peer/dlif_workload.py``;
the peers from their own venv, ``--peer-python``, never project dependencies), so the peak resident
memory of each process is comparable.

Matmul-bound limit: the step's matmul FLOPs (forward ``x W`` of every layer, the weight gradients,
and the input gradients of every layer but the first) divided by this machine's dense float32 GEMM
rate, measured at the first layer's shape ``[T B, 784] @ [784, 1000]`` with jax and torch (the faster
counts). Everything else a step does (the time loop, the surrogate, Adam) is overhead on top of it.

Memory: with ``--malloc keep`` (the default) every process runs with the glibc settings of
:data:`timing.KEEP_FREED_MEMORY`, so that no library pays for page faults on freed-and-reallocated
temporaries; jaxsnn also runs without them. ``--malloc default`` leaves the environment alone.

    python benchmarks/bench_dlif.py --data-dir ../shared/data \\
        --peer-python /work/venv-dlif-peers/bin/python --out results/bench_dlif.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from timing import KEEP_FREED_MEMORY  # noqa: E402

WORKER = HERE / "peer" / "dlif_workload.py"
WORKLOADS = [dict(layers=(784, 1000, 10), T=25, steps=10), dict(layers=(784, 1000, 1000, 10), T=100, steps=4)]
BATCH = 128


def matmul_flops(layers, rows):
    """Forward, weight-gradient and (all but the first layer) input-gradient matmul FLOPs of one step."""
    total = 0.0
    for i, (a, b) in enumerate(zip(layers[:-1], layers[1:])):
        total += (2 if i == 0 else 3) * 2.0 * rows * a * b
    return total


def make_inputs(path, T, data_dir):
    rng = np.random.default_rng(0)
    try:
        sys.path.insert(0, str(HERE.parent))
        from jaxsnn import data

        x, y = data.load_dataset("mnist", "train", data_dir=data_dir)
        p = np.asarray(x[:BATCH], np.float32).reshape(BATCH, -1) / 255.0
        y = np.asarray(y[:BATCH], np.int32)
        source = "MNIST"
    except Exception as e:  # no MNIST files: uniform 10 % spikes
        print(f"MNIST not available ({e}); using random spikes with p = 0.1")
        p = np.full((BATCH, 784), 0.1, np.float32)
        y = rng.integers(0, 10, BATCH).astype(np.int32)
        source = "random p=0.1"
    x = (rng.random((T, BATCH, 784)) < p).astype(np.float32)
    np.savez(path, x=x, y=y)
    return source, float(x.mean())


def worker(python, *args, env=None):
    r = subprocess.run([python, str(WORKER), *args], capture_output=True, text=True,
                       env=None if env is None else {**os.environ, **env})
    if r.returncode != 0:
        return dict(error=r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--peer-python", default=None, help="python of the venv with snntorch, norse, spyx, torch")
    p.add_argument("--workloads", type=int, nargs="+", default=[0, 1], help="indices into WORKLOADS")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds over the libraries, alternating (each lib's best round counts: the machine is noisy)")
    p.add_argument("--malloc", choices=("default", "keep"), default="keep",
                   help="keep: every process (all libraries, the GEMM rate too) runs with KEEP_FREED_MEMORY; "
                        "jaxsnn then also runs once per round without it, as 'jaxsnn (default malloc)'")
    p.add_argument("--out", default="results/bench_dlif.json")
    args = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in (WORKLOADS[i] for i in args.workloads):
            layers, T = w["layers"], w["T"]
            path = os.path.join(tmp, f"inputs_T{T}.npz")
            source, density = make_inputs(path, T, args.data_dir)
            shape = f"{T * BATCH},784,{layers[1]}"
            env = KEEP_FREED_MEMORY if args.malloc == "keep" else None
            gemm = worker(sys.executable, "--gemm", shape, env=env)["gflops"]
            if args.peer_python:
                gemm.update({f"peer_{k}": v for k, v in
                             worker(args.peer_python, "--gemm", shape, env=env)["gflops"].items()})
            rate = max(gemm.values())
            flops = matmul_flops(layers, T * BATCH)
            limit = rate * 1e9 / flops
            row = dict(layers=layers, T=T, batch=BATCH, inputs=source, input_density=density, gemm_gflops=gemm,
                       matmul_gflop_per_step=flops / 1e9, matmul_bound_steps_per_s=limit, libs={})
            common = ["--inputs", path, "--layers", ",".join(map(str, layers)), "--steps", str(w["steps"])]
            libs = [("jaxsnn", "jaxsnn", sys.executable, env), ("jaxsnn_dense", "jaxsnn_dense", sys.executable, env)]
            if args.malloc == "keep":
                libs.append(("jaxsnn (default malloc)", "jaxsnn", sys.executable, None))
            if args.peer_python:
                libs += [(lib, lib, args.peer_python, env) for lib in ("spyx", "snntorch", "norse")]
            row["malloc"] = args.malloc
            for round_ in range(args.rounds):
                for lib, worker_lib, python, lib_env in libs:
                    r = worker(python, "--lib", worker_lib, *common, env=lib_env)
                    best = row["libs"].get(lib)
                    if "error" in r:
                        print(f"{'-'.join(map(str, layers))} T={T} {lib:9s} failed: {r['error']}")
                        row["libs"].setdefault(lib, r)
                        continue
                    print(f"{'-'.join(map(str, layers))} T={T} round {round_} {lib:9s} {r['steps_per_s']:6.2f} steps/s "
                          f"({100 * r['steps_per_s'] / limit:5.1f} % of the matmul bound {limit:.2f}), "
                          f"peak RSS {r['peak_rss_mb']:.0f} MiB")
                    rounds = (best or {}).get("rounds", []) + [r["steps_per_s"]]
                    rss = (best or {}).get("peak_rss_rounds", []) + [r["peak_rss_mb"]]
                    if best is None or "error" in best or r["steps_per_s"] > best["steps_per_s"]:
                        best = r
                    # speed: the best round; memory: the median round (peak RSS of one process varies
                    # by tens of MiB from run to run with the same code and inputs)
                    row["libs"][lib] = dict(best, rounds=rounds, peak_rss_rounds=rss,
                                            peak_rss_mb=float(np.median(rss)))
            results.append(row)
    out = dict(machine=dict(platform=platform.platform(), cpus=os.cpu_count()), workloads=results,
               command="python benchmarks/bench_dlif.py " + " ".join(sys.argv[1:] if argv is None else argv))
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(table(out))
    return out


def table(out):
    lines = ["| workload | library | steps/s | % of matmul bound | peak RSS (MiB) |", "|---|---|---|---|---|"]
    for w in out["workloads"]:
        name = f"{'-'.join(map(str, w['layers']))}, T = {w['T']}"
        lines.append(f"| {name} | matmul bound ({w['matmul_gflop_per_step']:.1f} GFLOP at "
                     f"{max(w['gemm_gflops'].values()):.0f} GFLOP/s) | {w['matmul_bound_steps_per_s']:.2f} | 100 | |")
        for lib, r in w["libs"].items():
            if "error" in r:
                lines.append(f"| {name} | {lib} | failed | | |")
            else:
                lines.append(f"| {name} | {lib} | {r['steps_per_s']:.2f} | "
                             f"{100 * r['steps_per_s'] / w['matmul_bound_steps_per_s']:.0f} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
