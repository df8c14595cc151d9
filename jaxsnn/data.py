"""Datasets: the Yin-Yang generator; MNIST, Fashion-MNIST, EMNIST and CIFAR-10 from official files or tfds.

Image datasets come back as numpy arrays: ``images`` uint8 ``[N, 28, 28]`` (MNIST orientation;
CIFAR-10: ``[N, 32, 32, 3]``, height, width, RGB) and ``labels`` int64 ``[N]``. Two sources,
chosen with ``source=``:

* ``"raw"``: the official files, read directly: the IDX ``.gz`` files of the MNIST family
  (verified against the SHA-256 of the official release) and CIFAR-10's binary version
  (``cifar-10-batches-bin/*.bin``, or the archive ``cifar-10-binary.tar.gz`` itself, verified).
  No network, no TensorFlow.
* ``"tfds"``: a dataset prepared by tensorflow-datasets in ``array_record`` format, read with
  ``tfds.data_source`` (no TensorFlow needed to read; tensorflow-datasets is the optional extra
  ``[tfds]``). :func:`prepare_tfds` prepares one from the official files offline (preparing needs
  the ``[prepare]`` extra, i.e. TensorFlow and tensorflow-datasets); a user with internet may
  also let tfds download and prepare it (``tfds.builder(name, data_dir=<data_dir>/tfds,
  file_format="array_record").download_and_prepare()``).
* ``"auto"`` (default): a prepared tfds dataset if there is one and tensorflow-datasets is
  installed, else the raw files.

Where the data is looked for, in order: the ``data_dir`` argument, the environment variable
``JAXSNN_DATA_DIR``, then ``~/.cache/jaxsnn``. Raw files may sit in ``<data_dir>/<name>/`` or
directly in ``<data_dir>/``. Nothing is downloaded; a missing dataset raises
:class:`FileNotFoundError` naming the files and where to put them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import tarfile
from typing import Iterator, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxsnn import _tfds

__all__ = [
    "yinyang",
    "load_yinyang",
    "load_dataset",
    "prepare_tfds",
    "read_idx",
    "read_cifar10",
    "data_dir",
    "DATASETS",
    "shuffled_batches",
    "epoch_batches",
]

# ----------------------------------------------------------------------------------------------
# Yin-Yang (Kriener, Göltz & Petrovici 2022, "The Yin-Yang dataset", NICE '22)
# ----------------------------------------------------------------------------------------------

YINYANG_CLASSES = ("yin", "yang", "dot")


def _yinyang_class(x, y, r_small, r_big):
    d_right = jnp.hypot(x - 1.5 * r_big, y - r_big)
    d_left = jnp.hypot(x - 0.5 * r_big, y - r_big)
    is_yin = (
        (d_right <= r_small)
        | ((d_left > r_small) & (d_left <= 0.5 * r_big))
        | ((y > r_big) & (d_right > 0.5 * r_big))
    )
    is_dot = (d_right < r_small) | (d_left < r_small)
    return jnp.where(is_dot, 2, is_yin.astype(jnp.int32))


def yinyang(key: ArrayLike, n: int = 5000, *, r_small: float = 0.1, r_big: float = 0.5,
            oversample: int = 16) -> tuple[jax.Array, jax.Array]:
    """Sample the Yin-Yang dataset: points in a disc labelled yin (0), yang (1) or dot (2).

    Points are uniform in the disc of radius ``r_big`` centred at ``(r_big, r_big)``; the class
    of each sample is drawn uniformly first and the point is rejection-sampled from that class,
    so the classes are balanced in expectation (Kriener et al. 2022). Deterministic in ``key``;
    a pure function, usable under ``jit`` (``n`` static).

    Args:
      key: ``jax.random`` key (or an int seed).
      n: number of samples.
    Returns:
      ``(inputs [n, 4], labels [n])``: inputs are ``(x, y, 1 - x, 1 - y)`` in ``[0, 1]``
      (``2 r_big = 1`` by default), labels int32.
    """
    if isinstance(key, int):
        key = jax.random.PRNGKey(key)
    k_goal, k_pts = jax.random.split(key)
    goal = jax.random.randint(k_goal, (n,), 0, 3)
    m = oversample * n
    pts = jax.random.uniform(k_pts, (m, 2)) * 2.0 * r_big
    inside = jnp.hypot(pts[:, 0] - r_big, pts[:, 1] - r_big) <= r_big
    cls = jnp.where(inside, _yinyang_class(pts[:, 0], pts[:, 1], r_small, r_big), -1)
    # The j-th sample whose goal is c takes the j-th candidate point of class c.
    rank = jnp.cumsum(jax.nn.one_hot(goal, 3, dtype=jnp.int32), axis=0)[jnp.arange(n), goal] - 1
    cand = jnp.stack([jnp.nonzero(cls == c, size=n, fill_value=-1)[0] for c in range(3)])
    idx = cand[goal, rank]
    xy = pts[idx] / (2.0 * r_big)
    inputs = jnp.concatenate([xy, 1.0 - xy], axis=1)
    return inputs, goal.astype(jnp.int32)


def load_yinyang(seed: int = 0, n_train: int = 5000,
                 n_test: int = 1000) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """The usual splits (5000 train / 1000 test) from independent keys derived from ``seed``.

    Returns:
      ``((x_train, y_train), (x_test, y_test))`` as numpy arrays.
    """
    k_train, k_test = jax.random.split(jax.random.PRNGKey(seed))
    sample = jax.jit(yinyang, static_argnums=1)
    train = tuple(np.asarray(a) for a in sample(k_train, n_train))
    test = tuple(np.asarray(a) for a in sample(k_test, n_test))
    return train, test


# ----------------------------------------------------------------------------------------------
# Image datasets from the official IDX files
# ----------------------------------------------------------------------------------------------

# name -> split -> official files (IDX: images, labels); sha256 of the official release where known.
DATASETS = {
    "mnist": {
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    },
    "fashion_mnist": {
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    },
}
EMNIST_SPLITS = ("balanced", "byclass", "bymerge", "digits", "letters", "mnist")
for _s in EMNIST_SPLITS:
    DATASETS[f"emnist/{_s}"] = {
        sp: (f"emnist-{_s}-{sp}-images-idx3-ubyte.gz", f"emnist-{_s}-{sp}-labels-idx1-ubyte.gz")
        for sp in ("train", "test")
    }

# CIFAR-10, binary version (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny
# Images"): 5 training batches and 1 test batch of 10000 records, inside cifar-10-batches-bin/ of
# the official archive. A record is 1 label byte and 3072 pixel bytes (1024 R, 1024 G, 1024 B,
# each 32 x 32 row-major).
DATASETS["cifar10"] = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}
CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = {"cifar10": (32, 32, 3)}  # every other dataset: (28, 28)

SHA256 = {
    ("cifar10", CIFAR10_ARCHIVE): "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    ("mnist", "train-images-idx3-ubyte.gz"): "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ("mnist", "train-labels-idx1-ubyte.gz"): "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ("mnist", "t10k-images-idx3-ubyte.gz"): "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ("mnist", "t10k-labels-idx1-ubyte.gz"): "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ("fashion_mnist", "train-images-idx3-ubyte.gz"): "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    ("fashion_mnist", "train-labels-idx1-ubyte.gz"): "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    ("fashion_mnist", "t10k-images-idx3-ubyte.gz"): "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    ("fashion_mnist", "t10k-labels-idx1-ubyte.gz"): "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    ("emnist/balanced", "emnist-balanced-train-images-idx3-ubyte.gz"): "74295e75e4e9fa2c102147460ee7eb763653d5132d883a84fb88932bfb8d2db4",  # noqa: E501
    ("emnist/balanced", "emnist-balanced-train-labels-idx1-ubyte.gz"): "b46d41e5156a0a8aaaa4d18979fdd1588850fa8571018acffd5d93b325a7d6ed",  # noqa: E501
    ("emnist/balanced", "emnist-balanced-test-images-idx3-ubyte.gz"): "117fc12b015e37ea98bfb2cbba3f77c3782c056cdbd219b87abfc8661d7135db",  # noqa: E501
    ("emnist/balanced", "emnist-balanced-test-labels-idx1-ubyte.gz"): "a67cac948379b67270b9a4d0a01c8ec661598accf2f2b1964340b7c83cb175cd",  # noqa: E501
    ("emnist/letters", "emnist-letters-train-images-idx3-ubyte.gz"): "6288f418a917e007bf5fddb823a2dc7a5c6a35031401b93292a539cb12bd881f",  # noqa: E501
    ("emnist/letters", "emnist-letters-train-labels-idx1-ubyte.gz"): "9759af91ea6bccdf07a6040fd085861f2ec88e37f7c3f5760f6feb57106fbe5c",  # noqa: E501
    ("emnist/letters", "emnist-letters-test-images-idx3-ubyte.gz"): "50f0e93d75b99b463e9760b8345866f22587fa2c2fba472730a5ba09c693412d",  # noqa: E501
}


def data_dir(path: Optional[Union[str, os.PathLike]] = None) -> pathlib.Path:
    """Resolve the data folder: ``path``, else ``$JAXSNN_DATA_DIR``, else ``~/.cache/jaxsnn``."""
    if path is None:
        path = os.environ.get("JAXSNN_DATA_DIR") or os.path.join("~", ".cache", "jaxsnn")
    return pathlib.Path(path).expanduser()


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_idx(path: Union[str, os.PathLike]) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array (the format of MNIST's files)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX element type 0x{raw[2]:02x}")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dt = np.dtype(dtypes[raw[2]])
    offset = 4 + 4 * ndim
    expected = offset + int(np.prod(shape)) * dt.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: {len(raw)} bytes, the header promises {expected}")
    return np.frombuffer(raw, dt, offset=offset).reshape(shape).astype(dt.newbyteorder("="))


def read_cifar10(source: Union[str, os.PathLike, bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch of CIFAR-10's binary version (a path, or the file's bytes).

    Each record is a label byte followed by 3072 pixel bytes, the red, green and blue planes of a
    32 x 32 image in row-major order (Krizhevsky 2009, the dataset's page).

    Returns:
      ``(images uint8 [N, 32, 32, 3], labels int64 [N])``, height, width, RGB.
    """
    raw = source if isinstance(source, bytes) else pathlib.Path(source).read_bytes()
    record = 1 + 3 * 32 * 32
    if len(raw) == 0 or len(raw) % record:
        what = "the bytes" if isinstance(source, bytes) else str(source)
        raise ValueError(f"{what}: expected a whole number of {record}-byte CIFAR-10 records, got {len(raw)} bytes")
    rows = np.frombuffer(raw, np.uint8).reshape(-1, record)
    labels = rows[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise ValueError(f"CIFAR-10 labels: expected 0..9, got {labels.max()}")
    images = np.ascontiguousarray(rows[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels


def _cifar10_raw_files(root: pathlib.Path, verify: bool) -> dict:
    """``{file name: bytes}`` of every official CIFAR-10 batch: from the unpacked folder or the archive."""
    names = DATASETS["cifar10"]["train"] + DATASETS["cifar10"]["test"]
    found = {f: _find_raw("cifar10", f, root) or _find_raw("cifar10", f"{CIFAR10_FOLDER}/{f}", root) for f in names}
    if None not in found.values():
        return {f: p.read_bytes() for f, p in found.items()}
    archive = _find_raw("cifar10", CIFAR10_ARCHIVE, root)
    if archive is None:
        raise _missing_error("cifar10", "train and test", root, (CIFAR10_ARCHIVE, f"or {CIFAR10_FOLDER}/*.bin"))
    if verify and _sha256(archive) != SHA256[("cifar10", CIFAR10_ARCHIVE)]:
        raise ValueError(f"{archive}: SHA-256 does not match the official release of cifar10")
    with tarfile.open(archive, "r:gz") as tar:
        return {f: tar.extractfile(f"{CIFAR10_FOLDER}/{f}").read() for f in names}


def _find_raw(name: str, fname: str, root: pathlib.Path) -> Optional[pathlib.Path]:
    for folder in (root / name, root / name.replace("/", "_"), root / name.split("/")[0], root):
        if (folder / fname).is_file():
            return folder / fname
    return None


def _missing_error(name, split, root, files):
    return FileNotFoundError(
        f"{name} ({split}) not found and jaxsnn does not download. Put the official files\n"
        + "".join(f"    {f}\n" for f in files)
        + f"in {root / name} (or {root}), or pass data_dir=... / set JAXSNN_DATA_DIR, "
        "or prepare it with tensorflow-datasets (see jaxsnn.data.prepare_tfds)."
    )


def _load_raw(name: str, split: str, root: pathlib.Path, verify: bool = True):
    if name == "cifar10":
        files = _cifar10_raw_files(root, verify)
        parts = [read_cifar10(files[f]) for f in DATASETS[name][split]]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    files = DATASETS[name][split]
    paths = [_find_raw(name, f, root) for f in files]
    if any(p is None for p in paths):
        raise _missing_error(name, split, root, files)
    if verify:
        for f, p in zip(files, paths):
            want = SHA256.get((name, f))
            if want is not None and _sha256(p) != want:
                raise ValueError(f"{p}: SHA-256 does not match the official release of {name}")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{name} ({split}): inconsistent files {images.shape} vs {labels.shape}")
    if name.startswith("emnist"):
        images = np.ascontiguousarray(images.transpose(0, 2, 1))  # to MNIST orientation
    return images.astype(np.uint8), labels.astype(np.int64)


def prepare_tfds(name: str, raw_dir: Union[str, os.PathLike],
                 data_dir: Optional[Union[str, os.PathLike]] = None) -> pathlib.Path:
    """Prepare the tfds dataset ``name`` offline from the official files, for ``source="tfds"``.

    Runs tensorflow-datasets' own builder for ``name`` and writes ``<data_dir>/tfds/<name>/<version>/``
    in ``array_record`` format, as ``tfds`` would after downloading, but fed from ``raw_dir``:
    nothing is downloaded (tfds's lookup of ready-made copies on GCS is switched off and every
    file its builder asks for is local). Does nothing if ``name`` is already prepared there.

    ``raw_dir`` holds the official ``.gz`` files (directly or in ``<raw_dir>/<name>/``, as for the
    raw path of :func:`load_dataset`); they are checked against the official SHA-256 where known.
    CIFAR-10: the binary batches (``cifar-10-batches-bin/``) or the official archive
    ``cifar-10-binary.tar.gz`` (SHA-256 checked), as for the raw path.
    EMNIST: tfds's builder wants the official 562 MB archive ``gzip.zip``. If ``raw_dir`` holds it
    (and not the individual files), it is used as is and tfds checks its checksum; otherwise the
    four files of the requested split (``emnist-<split>-{train,test}-{images,labels}-...gz``) are
    handed to the builder in place of the unpacked archive.

    Preparing needs TensorFlow (tfds's builders decompress, read and PNG-encode the data with it):
    ``pip install "jaxsnn-exact[prepare]"``. Reading the prepared dataset does not.

    Args:
      name: ``"mnist"``, ``"fashion_mnist"``, ``"emnist/<split>"`` or ``"cifar10"``.
      raw_dir: folder with the official files.
      data_dir: where to write (``<data_dir>/tfds``); default as for :func:`load_dataset`.
    Returns:
      the folder of the prepared dataset.
    Raises:
      FileNotFoundError: official files missing. ImportError: TensorFlow not installed.
    """
    import importlib.util
    import tempfile

    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    root = globals()["data_dir"](data_dir)
    done = _tfds.prepared(name, root)
    if done is not None:
        return done
    raw_dir = pathlib.Path(raw_dir).expanduser()
    emnist, cifar = name.startswith("emnist/"), name == "cifar10"
    found = {} if cifar else {f: _find_raw(name, f, raw_dir) for sp in ("train", "test") for f in DATASETS[name][sp]}
    archive = raw_dir / "gzip.zip"
    use_archive = emnist and None in found.values() and archive.is_file()
    batches = _cifar10_raw_files(raw_dir, verify=True) if cifar else None
    if None in found.values() and not use_archive:
        raise FileNotFoundError(
            f"cannot prepare {name}: no\n"
            + "".join(f"    {f}\n" for f, p in found.items() if p is None)
            + f"in {raw_dir} or {raw_dir / name}"
            + (" (nor the official archive gzip.zip in the former)" if emnist else "")
        )
    if not use_archive:
        for f, path in found.items():
            want = SHA256.get((name, f))
            if want is not None and _sha256(path) != want:
                raise ValueError(f"{path}: SHA-256 does not match the official release of {name}")
    if importlib.util.find_spec("tensorflow") is None:
        raise ImportError(
            "preparing a tfds dataset needs TensorFlow (tensorflow-datasets' builders use it to read "
            'and encode the data; reading the result does not): pip install "jaxsnn-exact[prepare]"'
        )
    tfds = _tfds.import_tfds()

    out = str(root / "tfds")
    with tempfile.TemporaryDirectory(prefix="jaxsnn-tfds-") as tmp:
        files = pathlib.Path(tmp) / "files"  # links to the official files, where tfds looks for them
        files.mkdir()
        if cifar:  # the unpacked archive: the batches and the class names
            (files / CIFAR10_FOLDER).mkdir()
            for f, raw in batches.items():
                (files / CIFAR10_FOLDER / f).write_bytes(raw)
            (files / CIFAR10_FOLDER / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n")
            builder_cls = _tfds.builder_from_folder(tfds.image_classification.Cifar10, files)
            builder = builder_cls(data_dir=out, file_format="array_record")
        elif use_archive:
            (files / "gzip.zip").symlink_to(archive.resolve())
            builder = tfds.builder(name, data_dir=out, file_format="array_record")
        elif emnist:
            (files / "gzip").mkdir()
            for f, path in found.items():
                (files / "gzip" / f).symlink_to(path.resolve())
            builder_cls = _tfds.builder_from_folder(tfds.image_classification.EMNIST, files)
            builder = builder_cls(config=name.split("/", 1)[1], data_dir=out, file_format="array_record")
        else:
            for f, path in found.items():
                (files / f).symlink_to(path.resolve())
            builder = tfds.builder(name, data_dir=out, file_format="array_record")
        dl_config = tfds.download.DownloadConfig(manual_dir=str(files), try_download_gcs=False)
        builder.download_and_prepare(download_dir=os.path.join(tmp, "downloads"), download_config=dl_config)
    return pathlib.Path(os.fspath(builder.data_path))


def load_dataset(name: str, split: str = "train", *, data_dir: Optional[Union[str, os.PathLike]] = None,
                 source: str = "auto", verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST, Fashion-MNIST, an EMNIST split or CIFAR-10 as numpy arrays, offline.

    Args:
      name: ``"mnist"``, ``"fashion_mnist"``, ``"emnist/<split>"`` with ``<split>`` one of
        ``balanced, byclass, bymerge, digits, letters, mnist``, or ``"cifar10"``.
      split: ``"train"`` or ``"test"``.
      data_dir: folder holding the official files (or a ``tfds/`` folder prepared by
        :func:`prepare_tfds`); see the module docstring for the default.
      source: ``"auto"``, ``"raw"`` or ``"tfds"``.
      verify: check the SHA-256 of raw files against the official release (where known).
    Returns:
      ``(images uint8 [N, 28, 28], labels int64 [N])``; CIFAR-10: images ``[N, 32, 32, 3]``
      (height, width, RGB), labels 0..9 (:data:`CIFAR10_CLASSES`). EMNIST images are transposed
      to the MNIST orientation; labels are those of the official files (EMNIST letters: 1..26).
      The order is that of the official files, from either source.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if source not in ("auto", "raw", "tfds"):
        raise ValueError(f"source must be 'auto', 'raw' or 'tfds', got {source!r}")
    root = globals()["data_dir"](data_dir)
    if source == "tfds" or (source == "auto" and _tfds.prepared(name, root) and _tfds.has_tfds()):
        if not _tfds.prepared(name, root):
            raise FileNotFoundError(
                f"no tfds-prepared {name} in {root / 'tfds'}; run jaxsnn.data.prepare_tfds("
                f"{name!r}, raw_dir=..., data_dir={str(root)!r}) first (needs the [prepare] extra)"
            )
        images, labels = _tfds.read(name, split, root, IMAGE_SHAPE.get(name, (28, 28)))
        if name.startswith("emnist"):
            # tfds's EMNIST builder stores the images as in the official files, like the raw path reads them
            images = np.ascontiguousarray(images.transpose(0, 2, 1))
        return images, labels
    return _load_raw(name, split, root, verify=verify)


# ----------------------------------------------------------------------------------------------
# Batching
# ----------------------------------------------------------------------------------------------


def shuffled_batches(key: ArrayLike, arrays: Tuple[np.ndarray, ...], batch_size: int, *,
                     drop_last: bool = True) -> Iterator[tuple[np.ndarray, ...]]:
    """Iterate over shuffled mini-batches of host arrays (the permutation comes from ``key``).

    Yields tuples of arrays with leading size ``batch_size`` (the last smaller one unless
    ``drop_last``).
    """
    n = len(arrays[0])
    perm = np.asarray(jax.random.permutation(key, n))
    stop = n - n % batch_size if drop_last else n
    for i in range(0, stop, batch_size):
        idx = perm[i: i + batch_size]
        yield tuple(a[idx] for a in arrays)


def epoch_batches(key: ArrayLike, arrays: Sequence[jax.Array], batch_size: int) -> tuple[jax.Array, ...]:
    """One shuffled epoch as device arrays ``[n_batches, batch_size, ...]``, usable inside ``jit``.

    Keep the whole dataset on the device and call this in a jitted function; ``lax.scan`` over
    the leading axis then runs a whole epoch in one compiled program. The last incomplete batch
    is dropped (static shapes).
    """
    n = arrays[0].shape[0]
    nb = n // batch_size
    perm = jax.random.permutation(key, n)[: nb * batch_size]
    return tuple(jnp.take(a, perm, axis=0).reshape((nb, batch_size) + a.shape[1:]) for a in arrays)
