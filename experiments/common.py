"""Shared command-line interface of the experiments: the same flags everywhere."""

from __future__ import annotations

import argparse
import json
import pathlib
import time

from flax import traverse_util

from jaxsnn.train import atomic_write_bytes


def parser(description: str, *, dataset: str, epochs: int, out: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default=dataset, help="dataset name")
    p.add_argument("--epochs", type=int, default=epochs, help="training epochs")
    p.add_argument("--seed", type=int, default=0, help="random seed (data order, initialization)")
    p.add_argument("--out", default=out, help="output directory for results (JSON) and figures")
    p.add_argument("--data-dir", default=None,
                   help="folder with the dataset files (default: $JAXSNN_DATA_DIR or ~/.cache/jaxsnn)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    return p


def write_json(path, obj) -> None:
    atomic_write_bytes(pathlib.Path(path), (json.dumps(obj, indent=2) + "\n").encode())


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0


def plot_history(history, path, *, title="", keys=("train_acc", "test_acc")):
    """Accuracy per epoch as a PNG (skipped with a note when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure written (pip install 'jaxsnn[experiments]')")
        return
    fig, ax = plt.subplots(figsize=(5, 3.2))
    epochs = [r["epoch"] for r in history]
    for k in keys:
        ax.plot(epochs, [r[k] for r in history], label=k.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def kernels(params):
    """The weight matrices of a Flax parameter tree (leaves named ``kernel``)."""
    flat = traverse_util.flatten_dict(params)
    return [v for k, v in flat.items() if k[-1] == "kernel"]
