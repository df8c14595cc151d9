"""Shared command-line interface of the experiments: the same flags everywhere."""

from __future__ import annotations

import argparse
import json
import pathlib
import time

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
