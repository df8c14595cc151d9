"""tensorflow-datasets plumbing of :mod:`jaxsnn.data` (private): find, read and build tfds datasets.

tensorflow-datasets is optional (the ``[tfds]`` extra): nothing here imports it at module level.
Reading goes through ``tfds.data_source`` (``array_record`` files, no TensorFlow); building runs
tfds's own builders, fed from local files instead of the network (:func:`builder_from_folder`).
"""

from __future__ import annotations

import hashlib
import pathlib
import re
from typing import Optional

import numpy as np


def has_tfds() -> bool:
    """Whether tensorflow-datasets is installed (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("tensorflow_datasets") is not None


def import_tfds():
    """tensorflow_datasets, or an ImportError saying which extra installs it (it is optional)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError('the tfds path of jaxsnn.data needs tensorflow-datasets: pip install "jaxsnn-exact[tfds]" '
                          '(the raw official files need nothing more: source="raw")') from e
    return tfds


def write_order(split: str, n: int) -> np.ndarray:
    """Which example of the official file sits at each position of a split written by tfds.

    tfds does not keep the order of the examples: it writes them sorted by the MD5 of
    ``split + str(key)``, a hash it keeps stable across versions (changing it would reorder
    every published dataset). The MNIST-family builders use the index in the official file as
    the key, so this gives back the official order.
    """
    order = sorted(range(n), key=lambda i: hashlib.md5(f"{split}{i}".encode()).digest())
    return np.array(order, np.int64)


def prepared(name: str, root: pathlib.Path) -> Optional[pathlib.Path]:
    """The folder of a finished tfds preparation of ``name`` in ``<root>/tfds`` (any version), or None."""
    for info in sorted((root / "tfds" / name).glob("*/dataset_info.json")):
        if re.fullmatch(r"\d+\.\d+\.\d+", info.parent.name):  # not tfds's "incomplete.*" folders
            return info.parent
    return None


def read(name: str, split: str, root: pathlib.Path, image_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """A tfds-prepared split as ``(images uint8 [N, *image_shape], labels int64 [N])`` in the official order.

    The official order comes back from the ``id`` feature where the builder writes one (CIFAR:
    ``"train_00042"`` is example 42 of the official files), else from :func:`write_order`.
    """
    tfds = import_tfds()
    source = tfds.data_source(name, split=split, data_dir=str(root / "tfds"), download=False)
    n = len(source)
    # One batched read; decoding the PNG of each image (by Pillow or OpenCV) is most of the time.
    records = source.__getitems__(range(n))
    images = np.stack([r["image"] for r in records]).reshape((n,) + tuple(image_shape)).astype(np.uint8, copy=False)
    labels = np.fromiter((r["label"] for r in records), np.int64, count=n)
    if n and "id" in records[0]:
        ids = [r["id"].decode() if isinstance(r["id"], bytes) else str(r["id"]) for r in records]
        official = np.argsort(np.array([int(i.rsplit("_", 1)[-1]) for i in ids], np.int64), kind="stable")
    elif not source.dataset_info.disable_shuffling:
        official = np.argsort(write_order(split, n))
    else:
        official = np.arange(n)
    return images[official], labels[official]


def builder_from_folder(builder_cls, folder: pathlib.Path):
    """A subclass of the tfds builder ``builder_cls`` whose download is ``folder``.

    tfds's builders ask their download manager to download and unpack an archive, then read the
    files inside; here that request answers ``folder`` (laid out as the unpacked archive) and
    everything else is left to tfds's download manager.
    """

    class LocalArchive:
        def __init__(self, manager):
            self._manager = manager

        def download_and_extract(self, url):
            return folder

        def __getattr__(self, attr):
            return getattr(self._manager, attr)

    class FromFolder(builder_cls, skip_registration=True):
        name = builder_cls.name

        def _split_generators(self, dl_manager):
            return super()._split_generators(LocalArchive(dl_manager))

    return FromFolder
