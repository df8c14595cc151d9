"""jaxsnn.data, CIFAR-10: the official binary batches (folder or archive) and the tfds path.

The files are generated here in the official format (Krizhevsky's binary version: per record a
label byte, then the red, green and blue planes of a 32 x 32 image, row-major), from images held
as ``[N, 32, 32, 3]``; the loader must give those images back.
"""

import importlib.util
import io
import tarfile

import numpy as np
import pytest

from jaxsnn import data

TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]


def cifar_records(images, labels):
    """The official binary records of ``images [N, 32, 32, 3]`` (written plane by plane, by loops)."""
    out = bytearray()
    for image, label in zip(images, labels):
        out.append(int(label))
        for channel in range(3):
            for row in range(32):
                out.extend(int(v) for v in image[row, :, channel])
    return bytes(out)


def generated_cifar(seed=0, per_batch=3, n_test=4):
    """``{file name: (images, labels)}`` for the 5 training batches and the test batch."""
    rng = np.random.default_rng(seed)
    sizes = {f: per_batch + i for i, f in enumerate(TRAIN_FILES)} | {"test_batch.bin": n_test}
    return {f: (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64))
            for f, n in sizes.items()}


def write_folder(root, batches):
    folder = root / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for f, (images, labels) in batches.items():
        (folder / f).write_bytes(cifar_records(images, labels))
    return folder


def write_archive(path, batches):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for f, (images, labels) in batches.items():
            raw = cifar_records(images, labels)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{f}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def expected(batches, split):
    files = TRAIN_FILES if split == "train" else ["test_batch.bin"]
    return np.concatenate([batches[f][0] for f in files]), np.concatenate([batches[f][1] for f in files])


@pytest.mark.parametrize("split", ["train", "test"])
def test_raw_folder_gives_the_images_back_in_official_order(tmp_path, split):
    batches = generated_cifar()
    write_folder(tmp_path, batches)
    images, labels = data.load_dataset("cifar10", split, data_dir=tmp_path, source="raw")
    want_images, want_labels = expected(batches, split)
    assert images.shape == (len(want_labels), 32, 32, 3) and images.dtype == np.uint8 and labels.dtype == np.int64
    np.testing.assert_array_equal(images, want_images)
    np.testing.assert_array_equal(labels, want_labels)


def test_raw_archive_is_read_without_unpacking_and_its_checksum_checked(tmp_path):
    batches = generated_cifar(seed=1)
    write_archive(tmp_path / "cifar10" / data.CIFAR10_ARCHIVE, batches)
    with pytest.raises(ValueError, match="SHA-256"):  # a generated archive is not the official one
        data.load_dataset("cifar10", "test", data_dir=tmp_path, source="raw")
    for split in ("train", "test"):
        images, labels = data.load_dataset("cifar10", split, data_dir=tmp_path, source="raw", verify=False)
        np.testing.assert_array_equal(images, expected(batches, split)[0])
        np.testing.assert_array_equal(labels, expected(batches, split)[1])


def test_missing_and_malformed_files_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-binary.tar.gz"):
        data.load_dataset("cifar10", "train", data_dir=tmp_path, source="raw")
    with pytest.raises(ValueError, match="3073-byte CIFAR-10 records, got 3074"):
        data.read_cifar10(bytes(3074))
    with pytest.raises(ValueError, match="labels: expected 0..9"):
        data.read_cifar10(bytes([10]) + bytes(3072))


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                    reason='preparing a tfds dataset needs TensorFlow: pip install "jaxsnn-exact[prepare]"')
def test_prepare_tfds_from_the_binary_batches_reads_back_like_the_raw_files(tmp_path, monkeypatch):
    import tempfile

    folder = tmp_path / "temporary"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    batches = generated_cifar(seed=2, per_batch=2, n_test=3)
    write_folder(tmp_path / "raw", batches)
    data.prepare_tfds("cifar10", tmp_path / "raw", data_dir=tmp_path / "out")
    for split in ("train", "test"):
        images, labels = data.load_dataset("cifar10", split, data_dir=tmp_path / "out", source="tfds")
        np.testing.assert_array_equal(images, expected(batches, split)[0])
        np.testing.assert_array_equal(labels, expected(batches, split)[1])
