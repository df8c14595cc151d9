"""Run by tests/test_train.py in a fresh process with several (host) devices.

    python tests/distributed_worker.py single OUT.npz         # 4 host devices, one process
    python tests/distributed_worker.py multi OUT.npz ADDR N I # process I of N (2 devices each)

``single`` trains with and without a 4-device mesh (data-parallel fit, sweep-parallel sweep)
and saves both; ``multi`` joins a multi-process job with jax.distributed and runs the sharded
sweep over the devices of all processes.
"""

import os
import sys

mode = sys.argv[1]
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + \
    f" --xla_force_host_platform_device_count={4 if mode == 'single' else 2}"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if mode == "multi":
    from jaxsnn import train as _t  # noqa: E402

    _t.initialize_distributed(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))

import numpy as np  # noqa: E402
from tasks import tiny_data, tiny_task  # noqa: E402

from jaxsnn import train  # noqa: E402

(xtr, ytr), (xte, yte) = tiny_data()
configs = train.grid(seed=[0, 1], lr=[0.01, 0.003], tau=[0.5])
kw = dict(epochs=2, batch_size=20, eval_data=(xte, yte), eval_name="test", progress=False)
task = tiny_task()
mesh = train.make_mesh("d")
assert mesh.size == 4, mesh
res = {}
if mode == "single":
    try:
        train.fit(task, (xtr, ytr), dict(lr=0.01, tau=0.5), mesh=mesh, epochs=1, batch_size=22, progress=False)
        raise AssertionError("a batch size that is not a multiple of the device count was accepted")
    except ValueError as e:
        assert "multiple of the number of devices" in str(e), e
    for name, m in (("one", None), ("four", mesh)):
        run = train.fit(task, (xtr, ytr), dict(lr=0.01, tau=0.5), seed=0, mesh=m, **kw)
        res[f"fit_{name}"] = np.concatenate([np.ravel(v) for v in jax.tree.leaves(run.state.params)])
        res[f"fit_{name}_acc"] = np.asarray([h["test_acc"] for h in run.history])
        sw = train.sweep(task, (xtr, ytr), configs, mesh=m, **kw)
        res[f"sweep_{name}"] = np.concatenate([np.reshape(v, (4, -1)) for v in jax.tree.leaves(sw.params)], 1)
        res[f"sweep_{name}_acc"] = sw.history["test_acc"]
else:
    sw = train.sweep(task, (xtr, ytr), configs, mesh=mesh, **kw)
    res["sweep"] = np.concatenate([np.reshape(v, (4, -1)) for v in jax.tree.leaves(sw.params)], 1)
    res["sweep_acc"] = sw.history["test_acc"]
    res["devices"] = np.asarray([jax.device_count(), jax.local_device_count(), jax.process_count()])
np.savez(sys.argv[2], **res)
print("ok", {k: np.shape(v) for k, v in res.items()})
