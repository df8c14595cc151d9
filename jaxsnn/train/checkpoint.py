"""Files of :mod:`jaxsnn.train`: atomic writes, checkpoints, resuming, results as JSON lines / CSV.

Every file is written atomically (a temporary file in the same folder, fsync, rename), so a
run killed at any moment leaves the old file or the new one. Checkpoints are msgpack
(``flax.serialization``) of nested dicts of arrays, ints, floats and strings, or, for large
sharded runs, orbax checkpoints (``checkpoint_format="orbax"`` of ``fit`` / ``sweep``).
:func:`resume_checkpoint` is the one routine by which :func:`~jaxsnn.train.fit` and
:func:`~jaxsnn.train.sweep` continue an interrupted run: it reads the checkpoint, refuses one
made with other settings (by the :func:`run_fingerprint` saved in it) and restores the
structure of the saved state. An unreadable (corrupt, truncated) checkpoint raises a
``ValueError`` that names the file.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from typing import Callable, Mapping, Optional, Sequence, Union

import jax
import numpy as np
from flax import serialization

from jaxsnn._internal import fail
from jaxsnn.train.distributed import to_host

__all__ = ["atomic_write_bytes", "atomic_write_text", "checkpoint_path", "CHECKPOINT_FORMATS", "save_checkpoint",
           "restore_checkpoint", "run_fingerprint", "resume_checkpoint", "write_jsonl", "write_csv"]


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync, rename.

    A reader (or a run killed at any moment) sees either the old file or the new one, never
    a half-written one.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


CHECKPOINT_FORMATS = ("msgpack", "orbax")


def checkpoint_path(folder, name: str, checkpoint_format: str) -> pathlib.Path:
    """``<folder>/<name>.msgpack`` (a file) or ``<folder>/<name>.orbax`` (an orbax checkpoint folder)."""
    if checkpoint_format not in CHECKPOINT_FORMATS:
        raise fail("checkpoint_format", f"one of {CHECKPOINT_FORMATS}", repr(checkpoint_format))
    return pathlib.Path(folder) / f"{name}.{checkpoint_format}"


def _is_orbax(path) -> bool:
    return pathlib.Path(path).suffix == ".orbax"


_SEP = "|"  # joins the keys of a flattened state dict (flax names hold no "|")


def save_checkpoint(path, tree) -> None:
    """Save a pytree of arrays (and ints, floats, strings) atomically.

    ``path`` ending in ``.orbax``: an orbax checkpoint (a folder; ``orbax-checkpoint``, which Flax
    installs): the arrays go to orbax as they are, so arrays sharded over the processes of a
    multi-host run are written shard by shard without gathering them (every process must call it
    then); strings go to a JSON item of the same checkpoint. Otherwise msgpack
    (``flax.serialization``) of the arrays fetched to the host, written by this process alone.
    """
    if not _is_orbax(path):
        state = serialization.to_state_dict(to_host(tree))
        atomic_write_bytes(path, serialization.msgpack_serialize(state))
        return
    import orbax.checkpoint as ocp
    from flax import traverse_util

    flat = traverse_util.flatten_dict(serialization.to_state_dict(tree), keep_empty_nodes=True, sep=_SEP)
    empty = [k for k, v in flat.items() if v is traverse_util.empty_node]
    arrays = {k: v for k, v in flat.items() if not isinstance(v, str) and k not in empty}
    meta = dict(strings={k: v for k, v in flat.items() if isinstance(v, str)}, empty=empty)
    path = pathlib.Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckpt:  # written to a temporary folder, renamed
        ckpt.save(path, ocp.args.Composite(arrays=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)),
                  force=True)


def _restore_orbax(path) -> dict:
    import orbax.checkpoint as ocp
    from flax import traverse_util

    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckpt:
        saved = ckpt.restore(pathlib.Path(path).absolute(),
                             ocp.args.Composite(arrays=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
    empty = {k: traverse_util.empty_node for k in saved["meta"]["empty"]}
    flat = {**saved["arrays"], **saved["meta"]["strings"], **empty}
    return traverse_util.unflatten_dict(flat, sep=_SEP)


def _unreadable(path, why) -> ValueError:
    return fail(str(path), "a checkpoint written by jaxsnn.train.save_checkpoint",
                f"a corrupt or truncated file ({why}); delete it or pass a fresh output folder")


def restore_checkpoint(path, target=None):
    """Load a checkpoint written by :func:`save_checkpoint`; ``None`` when there is none.

    With ``target`` (a pytree of the saved structure, e.g. a fresh :class:`TrainState`) the
    result has that structure (NamedTuples, optax states); without it, nested dicts. A file
    that cannot be decoded (corrupt, truncated) raises a ``ValueError`` naming it.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return None
    try:
        raw = _restore_orbax(path) if _is_orbax(path) else serialization.msgpack_restore(path.read_bytes())
    except Exception as e:  # msgpack raises ValueError subclasses; damaged array records raise others
        raise _unreadable(path, f"{type(e).__name__}: {e}") from e
    return raw if target is None else serialization.from_state_dict(target, raw)


def run_fingerprint(hparams, **static) -> str:
    """A string that identifies a run's settings (to refuse resuming someone else's checkpoint)."""
    leaves = jax.tree_util.tree_flatten_with_path(hparams)[0]
    hp = [[jax.tree_util.keystr(path), _jsonable(v)] for path, v in leaves]
    return json.dumps(dict(hparams=hp, **static), sort_keys=True)


def resume_checkpoint(path, target: Union[Mapping, Callable[[dict], Mapping]], fingerprint: str, *,
                      mismatch: str = "with other hyperparameters, seed, batch size or data") -> Optional[dict]:
    """The checkpoint at ``path`` to continue a run from, or ``None`` when there is none.

    The one resume routine of :func:`~jaxsnn.train.fit` and :func:`~jaxsnn.train.sweep`: reads
    the checkpoint (a dict saved by :func:`save_checkpoint` with an entry ``fingerprint``),
    refuses one whose fingerprint is not ``fingerprint`` and restores the structure of the
    entries named in ``target``; the other entries come back as saved (nested dicts, numpy
    arrays, numbers, strings).

    Args:
      path: the checkpoint file.
      target: ``{entry: template}``, e.g. ``{"state": fresh_train_state}`` (templates give the
        structure: NamedTuples, optax states; their leaves may be ``jax.ShapeDtypeStruct``),
        or a function of the saved dict that returns it (for structures that depend on what
        was saved, such as the number of finished chunks of a sweep).
      fingerprint: :func:`run_fingerprint` of the settings of the run that resumes.
      mismatch: how the refusal describes a checkpoint of other settings.

    Raises:
      ValueError: ``"<path> was made <mismatch>; use another output folder or resume=False"``
        for a checkpoint of other settings; ``"<path>: expected a checkpoint ..., got a corrupt
        or truncated file (...); delete it or pass a fresh output folder"`` for one that
        cannot be read.
    """
    path = pathlib.Path(path)
    saved = restore_checkpoint(path)
    if saved is None:
        return None
    if not isinstance(saved, dict) or "fingerprint" not in saved:
        raise _unreadable(path, "it holds no run fingerprint")
    if saved["fingerprint"] != fingerprint:
        raise ValueError(f"{path} was made {mismatch}; use another output folder or resume=False")
    target = target(saved) if callable(target) else target
    missing = sorted(set(target) - set(saved))
    if missing:
        raise _unreadable(path, f"it lacks the entries {missing}")
    restored = {k: serialization.from_state_dict(t, saved[k], name=k) for k, t in target.items()}
    return {**saved, **restored}


def _jsonable(v):
    if isinstance(v, (np.ndarray, jax.Array)) or np.isscalar(v):
        v = np.asarray(v)
        return v.item() if v.ndim == 0 else v.tolist()
    return v


def write_jsonl(path, records: Sequence[dict]) -> None:
    """Write records as JSON lines, atomically (the whole file is replaced)."""
    atomic_write_text(path, "".join(json.dumps({k: _jsonable(v) for k, v in r.items()}) + "\n" for r in records))


def write_csv(path, records: Sequence[dict]) -> None:
    """Write records (dicts with the same keys) as CSV, atomically."""
    keys = list(dict.fromkeys(k for r in records for k in r))
    lines = [",".join(keys)] + [",".join(str(_jsonable(r.get(k, ""))) for k in keys) for r in records]
    atomic_write_text(path, "\n".join(lines) + "\n")
