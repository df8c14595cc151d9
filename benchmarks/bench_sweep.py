"""An 8-configuration Yin-Yang sweep as one vmapped program against 8 sequential runs.

The job is the quickstart (experiments/yinyang.py: SRM 4-120-3, 5000 samples, batch 50, test
accuracy after every epoch); the 8 configurations are 2 seeds x 2 learning rates x 2 loss
temperatures. Measured in one run, compilation included, wall-clock:

- ``sweep``: :func:`jaxsnn.train.sweep` over the 8 configurations (one compiled program), on
  one CPU device, and split over one CPU device per core (``train.use_cpu_devices()``, a mesh
  over them: half of the configurations on each core);
- ``sequential, compiled once``: 8 calls of :func:`jaxsnn.train.fit` (the hyperparameters are
  traced, so the cached program is reused: what a Python loop over ``fit`` costs);
- ``sequential, compiled per run``: the same with the program cache cleared before each run
  (what 8 separate scripts, or a closure over constant hyperparameters, cost).

The sequential runs use the default device, as a plain ``fit`` does.

The final test accuracies of the sweep and of the sequential runs are compared as a check.

    python benchmarks/bench_sweep.py --epochs 20 --out results/bench_sweep.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root

import jax
import numpy as np

from jaxsnn import coding, data, train

train.use_cpu_devices()  # before any JAX computation
from experiments.yinyang import make_task  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)

    (xtr, ytr), (xte, yte) = data.load_yinyang(seed=0)
    xtr, xte = coding.ttfs_encode(xtr), coding.ttfs_encode(xte)
    bs = 50
    task, _ = make_task(total_steps=args.epochs * (len(xtr) // bs))
    configs = train.grid(seed=[0, 1], lr=[1e-2, 5e-3], tau=[0.2, 0.5], t_cap=[8.0], hinge=[1.0])
    kw = dict(epochs=args.epochs, batch_size=bs, eval_data=(xte, yte), eval_name="test", progress=False)

    def sequential(clear_cache):
        accs = []
        for cfg in train.unstack(configs):
            if clear_cache:
                train.clear_compiled()
            seed = cfg.pop("seed")
            accs.append(train.fit(task, (xtr, ytr), cfg, seed=seed, **kw).history[-1]["test_acc"])
        return np.asarray(accs)

    def vmapped(mesh):
        return train.sweep(task, (xtr, ytr), configs, mesh=mesh, **kw).final()["test_acc"]

    n_dev = jax.device_count()
    results = {}
    for name, fn in ((f"sweep, {n_dev} CPU devices", lambda: vmapped(train.make_mesh())),
                     ("sweep, 1 CPU device", lambda: vmapped(None)),
                     ("sequential, compiled per run", lambda: sequential(True)),
                     ("sequential, compiled once", lambda: sequential(False))):
        t0 = time.perf_counter()
        acc = fn()
        results[name] = dict(seconds=time.perf_counter() - t0, test_acc=[float(a) for a in acc])
        print(f"{name:30s} {results[name]['seconds']:7.1f} s   test acc {np.round(acc, 3).tolist()}", flush=True)

    speedups = {}
    for sw in (f"sweep, {n_dev} CPU devices", "sweep, 1 CPU device"):
        for name in ("sequential, compiled per run", "sequential, compiled once"):
            speedups[f"{sw} vs {name}"] = results[name]["seconds"] / results[sw]["seconds"]
            print(f"{sw} is {speedups[f'{sw} vs {name}']:.2f}x faster than {name}")
    diff = np.max(np.abs(np.subtract(results["sweep, 1 CPU device"]["test_acc"],
                                     results["sequential, compiled once"]["test_acc"])))
    print(f"largest test-accuracy difference sweep vs sequential: {diff:.4f} (float32 rounding differs between "
          "the vmapped and the single program, and training amplifies it)")
    report = dict(job=f"Yin-Yang SRM 4-120-3, {args.epochs} epochs, batch {bs}, 8 configurations",
                  results=results, speedups=speedups, max_test_acc_difference=float(diff), jax=jax.__version__,
                  devices=[str(d) for d in jax.devices()], cpu_count=os.cpu_count(), machine=platform.machine(),
                  command="python benchmarks/bench_sweep.py " + " ".join(sys.argv[1:] if argv is None else argv))
    if args.out:
        train.atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
