"""jaxsnn.data, tensorflow-datasets path: prepare_tfds (needs TensorFlow) and reading (must not).

Preparing runs tfds's own builders, which need TensorFlow; those tests skip without it. The
reading tests write small datasets in tfds's layout without TensorFlow (array_record files of
tfds-serialized examples, in the order tfds writes them) and read them in a process where
TensorFlow cannot be imported.
"""

import gzip
import hashlib
import importlib.util
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

from jaxsnn import data

needs_tensorflow = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason='preparing a tfds dataset needs TensorFlow: pip install "jaxsnn-exact[prepare]"',
)

MNIST_FILES = [f for split in ("train", "test") for f in data.DATASETS["mnist"][split]]


@pytest.fixture(autouse=True)
def temporary_files_in_tmp_path(tmp_path, monkeypatch):
    """Keep temporary files under ``tmp_path``: tfds leaves an empty one per builder it makes."""
    folder = tmp_path / "temporary"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))  # for subprocesses


@pytest.fixture
def no_network(monkeypatch):
    """Fail any attempt (from Python) to open a network connection."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def write_tfds_layout(tfds_dir, name, splits):
    """Write ``{split: (images, labels)}`` as tfds's builder for ``name`` would, without TensorFlow.

    ``images`` are as the builder stores them (for EMNIST: as in the official files). Records are
    written in tfds's order (sorted by the MD5 of split + index) with tfds's own serializer.
    """
    import tensorflow_datasets as tfds
    from array_record.python.array_record_module import ArrayRecordWriter
    from PIL import Image

    builder = tfds.builder(name, data_dir=str(tfds_dir), file_format="array_record")
    folder = pathlib.Path(os.fspath(builder.data_path))
    folder.mkdir(parents=True)
    infos = []
    for split, (images, labels) in splits.items():
        order = sorted(range(len(labels)), key=lambda i: hashlib.md5(f"{split}{i}".encode()).digest())
        path = folder / f"{builder.name}-{split}.array_record-00000-of-00001"
        writer = ArrayRecordWriter(str(path), "group_size:1")
        for i in order:
            example = {"image": Image.fromarray(images[i]), "label": int(labels[i])}
            if "id" in builder.info.features:  # CIFAR: the position in the official files
                example["id"] = f"{split}_{i:05d}"
            writer.write(builder.info.features.serialize_example(example))
        writer.close()
        size = path.stat().st_size
        infos.append(tfds.core.SplitInfo(name=split, shard_lengths=[len(labels)], num_bytes=size))
    builder.info.set_splits(tfds.core.SplitDict(infos))
    builder.info.write_to_directory(folder)
    return folder


def write_idx_gz(path, array):
    """Write a uint8 array as a gzipped IDX file (the format of the official files)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


def random_split(seed, n, classes=10):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, classes, n).astype(np.int64)


def random_cifar(seed, n):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)


def check_reading(tmp):
    """Round trip through tfds's layout: MNIST (order restored), EMNIST (also transposed), CIFAR-10."""
    tmp = pathlib.Path(tmp)
    mnist = {"train": random_split(0, 40), "test": random_split(1, 15)}
    write_tfds_layout(tmp / "tfds", "mnist", mnist)
    emnist = {"train": random_split(2, 30), "test": random_split(3, 12)}
    write_tfds_layout(tmp / "tfds", "emnist/digits", emnist)
    cifar = {"train": random_cifar(4, 25), "test": random_cifar(5, 9)}
    write_tfds_layout(tmp / "tfds", "cifar10", cifar)
    for name, splits, to_mnist_orientation in (
        ("mnist", mnist, lambda x: x),
        ("emnist/digits", emnist, lambda x: x.transpose(0, 2, 1)),
        ("cifar10", cifar, lambda x: x),
    ):
        for split, (images, labels) in splits.items():
            got_images, got_labels = data.load_dataset(name, split, data_dir=tmp, source="tfds")
            assert got_images.dtype == np.uint8 and got_labels.dtype == np.int64
            np.testing.assert_array_equal(got_images, to_mnist_orientation(images))
            np.testing.assert_array_equal(got_labels, labels)


# ------------------------------------------------------------------------------------------
# Reading (no TensorFlow)
# ------------------------------------------------------------------------------------------

HIDE_TENSORFLOW = """
import importlib.machinery, sys

class HideTensorFlow(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.split(".")[0] == "tensorflow" else super().find_spec(name, path, target)

sys.meta_path[:] = [HideTensorFlow if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
"""


def run_without_tensorflow(code, *args):
    """Run ``code`` in a fresh interpreter in which ``import tensorflow`` fails as if not installed."""
    here = pathlib.Path(__file__).resolve().parent
    path = [str(here.parent), str(here), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    script = HIDE_TENSORFLOW + textwrap.dedent(code)
    command = [sys.executable, "-c", script, *map(str, args)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_reading_needs_no_tensorflow(tmp_path):
    out = run_without_tensorflow(
        """
        import sys
        import test_data_tfds
        test_data_tfds.check_reading(sys.argv[1])
        assert "tensorflow" not in sys.modules
        print("read without TensorFlow")
        """,
        tmp_path,
    )
    assert "read without TensorFlow" in out


def test_prepare_without_tensorflow_says_how_to_install(tmp_path, shared_data):
    out = run_without_tensorflow(
        """
        import sys
        from jaxsnn import data
        try:
            data.prepare_tfds("mnist", sys.argv[1], data_dir=sys.argv[2])
        except ImportError as e:
            print(e)
        """,
        shared_data,
        tmp_path,
    )
    assert "jaxsnn-exact[prepare]" in out


def test_missing_tfds_dataset_points_to_prepare_tfds(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare_tfds"):
        data.load_dataset("mnist", "train", data_dir=tmp_path, source="tfds")
    (tmp_path / "tfds" / "mnist" / "incomplete.ABC_3.0.1").mkdir(parents=True)  # an interrupted preparation
    (tmp_path / "tfds" / "mnist" / "incomplete.ABC_3.0.1" / "dataset_info.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="prepare_tfds"):
        data.load_dataset("mnist", "test", data_dir=tmp_path, source="tfds")


def test_prepare_needs_the_official_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz"):
        data.prepare_tfds("mnist", tmp_path / "empty", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="gzip.zip"):
        data.prepare_tfds("emnist/letters", tmp_path / "empty", data_dir=tmp_path)


def test_auto_prefers_a_prepared_tfds_dataset(tmp_path):
    name = "emnist/digits"  # no official checksums known, so synthetic raw files pass
    raw = {"train": random_split(4, 20), "test": random_split(5, 10)}
    for split, (images, labels) in raw.items():
        image_file, label_file = data.DATASETS[name][split]
        write_idx_gz(tmp_path / name / image_file, images)
        write_idx_gz(tmp_path / name / label_file, labels.astype(np.uint8))
    from_raw = data.load_dataset(name, "train", data_dir=tmp_path, source="raw")
    np.testing.assert_array_equal(data.load_dataset(name, "train", data_dir=tmp_path)[0], from_raw[0])

    prepared = {"train": random_split(6, 25), "test": random_split(7, 5)}
    write_tfds_layout(tmp_path / "tfds", name, prepared)
    for split, (images, labels) in prepared.items():
        got_images, got_labels = data.load_dataset(name, split, data_dir=tmp_path)  # source="auto"
        np.testing.assert_array_equal(got_images, images.transpose(0, 2, 1))
        np.testing.assert_array_equal(got_labels, labels)
    still_raw = data.load_dataset(name, "train", data_dir=tmp_path, source="raw")
    np.testing.assert_array_equal(still_raw[0], from_raw[0])


# ------------------------------------------------------------------------------------------
# Preparing (TensorFlow)
# ------------------------------------------------------------------------------------------


@needs_tensorflow
def test_prepare_mnist_offline_matches_raw(tmp_path, shared_data, no_network):
    folder = data.prepare_tfds("mnist", shared_data, data_dir=tmp_path)
    assert folder.parent == tmp_path / "tfds" / "mnist" and (folder / "dataset_info.json").is_file()
    assert sorted(p.name for p in folder.glob("*.array_record-*")) == [
        "mnist-test.array_record-00000-of-00001",
        "mnist-train.array_record-00000-of-00001",
    ]
    assert data.prepare_tfds("mnist", shared_data, data_dir=tmp_path) == folder  # already there
    for split, n in (("train", 60000), ("test", 10000)):
        images, labels = data.load_dataset("mnist", split, data_dir=tmp_path, source="tfds")
        raw_images, raw_labels = data.load_dataset("mnist", split, data_dir=shared_data, source="raw")
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.int64
        np.testing.assert_array_equal(images, raw_images)
        np.testing.assert_array_equal(labels, raw_labels)


@needs_tensorflow
def test_prepare_emnist_from_the_individual_files(tmp_path, shared_data, no_network):
    """EMNIST is not available; its "mnist" split has MNIST's sizes, so MNIST's files stand in."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for f in MNIST_FILES:
        (raw / f"emnist-mnist-{f.replace('t10k', 'test')}").symlink_to(shared_data / "mnist" / f)
    data.prepare_tfds("emnist/mnist", raw, data_dir=tmp_path / "out")
    for split in ("train", "test"):
        images, labels = data.load_dataset("emnist/mnist", split, data_dir=tmp_path / "out", source="tfds")
        raw_images, raw_labels = data.load_dataset("emnist/mnist", split, data_dir=raw, source="raw")
        np.testing.assert_array_equal(images, raw_images)  # both transposed from the files
        np.testing.assert_array_equal(labels, raw_labels)
        mnist = data.load_dataset("mnist", split, data_dir=shared_data, source="raw")[0]
        np.testing.assert_array_equal(images, mnist.transpose(0, 2, 1))


# ------------------------------------------------------------------------------------------
# tensorflow-datasets is optional (the [tfds] extra)
# ------------------------------------------------------------------------------------------

HIDE_TFDS = HIDE_TENSORFLOW.replace('== "tensorflow"', 'in ("tensorflow", "tensorflow_datasets")')


def test_without_tensorflow_datasets_raw_files_load_and_tfds_names_the_extra(tmp_path):
    # a prepared-looking tfds folder beside raw files: "auto" must read the raw files, "tfds" must name the extra
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    test_files = data.DATASETS["mnist"]["test"]
    write_idx_gz(tmp_path / "mnist" / test_files[0], images)
    write_idx_gz(tmp_path / "mnist" / test_files[1], np.array([3, 7], np.uint8))
    (tmp_path / "tfds" / "mnist" / "3.0.1").mkdir(parents=True)
    (tmp_path / "tfds" / "mnist" / "3.0.1" / "dataset_info.json").write_text("{}")
    code = HIDE_TFDS + textwrap.dedent(
        """
        import sys
        from jaxsnn import data
        x, y = data.load_dataset("mnist", "test", data_dir=sys.argv[1], verify=False)
        assert x.shape == (2, 28, 28) and list(y) == [3, 7] and "tensorflow_datasets" not in sys.modules
        try:
            data.load_dataset("mnist", "test", data_dir=sys.argv[1], source="tfds")
        except ImportError as e:
            print(e)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'pip install "jaxsnn-exact[tfds]"' in proc.stdout
