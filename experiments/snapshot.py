"""Copy a training run in progress into the repository, or back out of it to resume.

A run of ``experiments.mnist_lif`` (or any script built on ``jaxsnn.train.fit`` with
``experiments.common.ValidationBest``) keeps in its ``--out`` folder ``metrics.jsonl`` (training
means and test metrics per epoch), ``validation.jsonl``, ``checkpoint.msgpack`` (parameters, Adam
state, history) and ``best_params.msgpack`` (the best epoch on validation). Long runs outlive a
working session only if that folder does; this copies it into the repository:

    python -m experiments.snapshot save /work/runs/mnist_lif_multi_100 results/mnist_lif_multi_100_partial
    python -m experiments.snapshot save RUN DEST --checkpoint   # also DEST/resume/*.msgpack

and back, so that the same training command resumes after the last saved epoch:

    python -m experiments.snapshot restore results/mnist_lif_multi_100_partial /work/runs/mnist_lif_multi_100

``save`` prints the per-epoch table (markdown) of what it copied.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil

LOGS = ("metrics.jsonl", "validation.jsonl")
STATE = ("checkpoint.msgpack", "best_params.msgpack")


def _read_jsonl(path):
    path = pathlib.Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _pct(v):
    return "" if v is None else f"{100 * v:.2f} %"


def table(metrics, validation) -> str:
    """Markdown rows: epoch, training running accuracy, validation and test accuracy, spikes, time."""
    val = {r["epoch"]: r for r in validation}
    layers = sorted(k for k in (metrics[0] if metrics else {}) if k.startswith("test_spikes_hidden_"))
    rows = ["| epoch | train (running) | validation | test | hidden spikes / sample | output spikes / sample "
            "| silent hidden | seconds (cumulative) |", "|---|---|---|---|---|---|---|---|"]
    for r in metrics:
        hidden = " / ".join(f"{r[k]:.0f}" for k in layers) if layers else f"{r.get('test_spikes_hidden', 0):.0f}"
        rows.append(f"| {r['epoch']} | {_pct(r.get('train_acc'))} | {_pct(val.get(r['epoch'], {}).get('val_acc'))} "
                    f"| {_pct(r.get('test_acc'))} | {hidden} | {r.get('test_spikes_out', 0):.1f} "
                    f"| {_pct(r.get('test_silent_hidden'))} | {r.get('seconds', 0):.0f} |")
    if validation:
        best = max(validation, key=lambda r: r["val_acc"])
        test = {r["epoch"]: r.get("test_acc") for r in metrics}.get(best["epoch"])
        rows.append(f"\nBest validation: epoch {best['epoch']} ({_pct(best['val_acc'])}), "
                    f"its test accuracy {_pct(test)}.")
    return "\n".join(rows)


def save(run, dest, checkpoint=False):
    run, dest = pathlib.Path(run), pathlib.Path(dest)
    if not (run / "metrics.jsonl").exists():
        raise ValueError(f"run: no metrics.jsonl in {run}")
    dest.mkdir(parents=True, exist_ok=True)
    for name in LOGS:
        if (run / name).exists():
            shutil.copy2(run / name, dest / name)
    if checkpoint:
        (dest / "resume").mkdir(exist_ok=True)
        for name in STATE:
            if (run / name).exists():
                shutil.copy2(run / name, dest / "resume" / name)
    return table(_read_jsonl(dest / "metrics.jsonl"), _read_jsonl(dest / "validation.jsonl"))


def restore(dest, run):
    dest, run = pathlib.Path(dest), pathlib.Path(run)
    if not (dest / "resume" / "checkpoint.msgpack").exists():
        raise ValueError(f"snapshot: no resume/checkpoint.msgpack in {dest}")
    if (run / "checkpoint.msgpack").exists():
        raise ValueError(f"run: {run} already holds a checkpoint; not overwritten")
    run.mkdir(parents=True, exist_ok=True)
    for name in LOGS:
        if (dest / name).exists():
            shutil.copy2(dest / name, run / name)
    for name in STATE:
        if (dest / "resume" / name).exists():
            shutil.copy2(dest / "resume" / name, run / name)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("save", help="copy RUN's logs (and with --checkpoint its state) to DEST")
    s.add_argument("run")
    s.add_argument("dest")
    s.add_argument("--checkpoint", action="store_true", help="also copy the checkpoint and best parameters")
    r = sub.add_parser("restore", help="copy DEST's saved state into RUN (a new folder) to resume there")
    r.add_argument("dest")
    r.add_argument("run")
    args = p.parse_args(argv)
    if args.cmd == "save":
        print(save(args.run, args.dest, args.checkpoint))
    else:
        restore(args.dest, args.run)
        print(f"restored {args.dest} into {args.run}")


if __name__ == "__main__":
    main()
