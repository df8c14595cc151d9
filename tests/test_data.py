"""jaxsnn.data: Yin-Yang generator, official IDX files (raw path), EMNIST layout, batching."""

import gzip
import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsnn import data

# ------------------------------------------------------------------------------------------
# Yin-Yang
# ------------------------------------------------------------------------------------------


def reference_yinyang_class(x, y, r_small=0.1, r_big=0.5):
    """Class of one point, written as scalar geometry (independent of the vectorized code)."""
    import math

    d_right = math.dist((x, y), (1.5 * r_big, r_big))
    d_left = math.dist((x, y), (0.5 * r_big, r_big))
    if d_right < r_small or d_left < r_small:
        return 2
    yin = d_right <= r_small or (r_small < d_left <= 0.5 * r_big) or (y > r_big and d_right > 0.5 * r_big)
    return int(yin)


def test_yinyang_labels_match_geometry_and_are_balanced():
    x, y = data.yinyang(jax.random.PRNGKey(0), 3000)
    x, y = np.asarray(x, float), np.asarray(y)
    assert x.shape == (3000, 4) and y.shape == (3000,)
    np.testing.assert_allclose(x[:, 2:], 1.0 - x[:, :2], atol=1e-6)
    assert x.min() >= 0 and x.max() <= 1
    # every point in the disc, labelled by the reference geometry (coordinates in [0, 1] = 2 r_big)
    assert np.all(np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5) <= 0.5 + 1e-6)
    want = [reference_yinyang_class(a, b) for a, b in x[:, :2]]
    np.testing.assert_array_equal(y, want)
    counts = np.bincount(y, minlength=3)
    assert np.all(np.abs(counts - 1000) < 100), counts


def test_yinyang_is_deterministic_and_key_dependent():
    a = data.yinyang(jax.random.PRNGKey(1), 100)
    b = data.yinyang(jax.random.PRNGKey(1), 100)
    c = data.yinyang(jax.random.PRNGKey(2), 100)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    jitted = jax.jit(data.yinyang, static_argnums=1)(jax.random.PRNGKey(1), 100)
    np.testing.assert_array_equal(a[0], jitted[0])
    (xtr, ytr), (xte, yte) = data.load_yinyang(seed=0)
    assert xtr.shape == (5000, 4) and xte.shape == (1000, 4)
    assert not np.array_equal(xtr[:1000], xte)


# ------------------------------------------------------------------------------------------
# Official files
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_official_files_load_with_checksums(shared_data, name):
    xtr, ytr = data.load_dataset(name, "train", data_dir=shared_data, source="raw")
    xte, yte = data.load_dataset(name, "test", data_dir=shared_data, source="raw")
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.int64
    assert ytr.min() == 0 and ytr.max() == 9 and yte.min() == 0 and yte.max() == 9
    assert np.all(np.bincount(ytr) > 5000)
    # The checksum table agrees with the files (independently of the loader).
    for f in data.DATASETS[name]["train"] + data.DATASETS[name]["test"]:
        h = hashlib.sha256((shared_data / name / f).read_bytes()).hexdigest()
        assert h == data.SHA256[(name, f)]


@pytest.mark.parametrize("name,first_labels", [
    ("mnist", [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]),          # the published first training labels
    ("fashion_mnist", [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]),  # ankle boot, T-shirt, T-shirt, dress, ...
])
def test_known_pixels_and_labels(shared_data, name, first_labels):
    x, y = data.load_dataset(name, "train", data_dir=shared_data, source="raw")
    np.testing.assert_array_equal(y[:10], first_labels)
    # Known pixels read straight from the decompressed IDX bytes (16-byte header, row-major).
    raw = gzip.open(shared_data / name / "train-images-idx3-ubyte.gz").read()
    for i, r, c in [(0, 14, 14), (1, 20, 5), (59999, 27, 27)]:
        assert x[i, r, c] == raw[16 + i * 784 + r * 28 + c]
    assert x[0, 0, 0] == 0 and x[0].max() == 255


def test_environment_variable_and_layouts(shared_data, monkeypatch, tmp_path):
    monkeypatch.setenv("JAXSNN_DATA_DIR", str(shared_data))
    _, y = data.load_dataset("fashion_mnist", "test")
    assert y.shape == (10000,)
    # files directly in the folder (no per-dataset subfolder) also work
    for f in data.DATASETS["mnist"]["test"]:
        (tmp_path / f).symlink_to(shared_data / "mnist" / f)
    _, y2 = data.load_dataset("mnist", "test", data_dir=tmp_path)
    assert y2.shape == (10000,)


def test_corrupted_file_fails_checksum(shared_data, tmp_path):
    (tmp_path / "mnist").mkdir()
    for f in data.DATASETS["mnist"]["test"]:
        (tmp_path / "mnist" / f).write_bytes((shared_data / "mnist" / f).read_bytes())
    p = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(p.read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    p.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ValueError, match="SHA-256"):
        data.load_dataset("mnist", "test", data_dir=tmp_path, source="raw")
    _, y = data.load_dataset("mnist", "test", data_dir=tmp_path, source="raw", verify=False)
    assert y.shape == (10000,)


def test_missing_dataset_error_says_where_to_put_which_files(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        data.load_dataset("fashion_mnist", "train", data_dir=tmp_path, source="raw")
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path) in msg


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load_dataset("cifar100")
    with pytest.raises(ValueError, match="split"):
        data.load_dataset("mnist", "validation")
    with pytest.raises(ValueError, match="source"):
        data.load_dataset("mnist", source="web")


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("split", ["balanced", "letters"])
def test_emnist_synthetic_files_in_official_layout_are_transposed(tmp_path, split):
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)  # as stored: transposed
    labels = rng.integers(1, 27, 7)
    folder = tmp_path / "emnist"
    folder.mkdir()
    for sp in ("train", "test"):
        img_f, lab_f = data.DATASETS[f"emnist/{split}"][sp]
        _write_idx(folder / img_f, stored)
        _write_idx(folder / lab_f, labels)
    # The synthetic files do not carry the official checksums: verification must catch it ...
    with pytest.raises(ValueError, match="SHA-256"):
        data.load_dataset(f"emnist/{split}", "train", data_dir=tmp_path)
    # ... and without verification they load in MNIST orientation.
    x, y = data.load_dataset(f"emnist/{split}", "test", data_dir=tmp_path, verify=False, source="raw")
    np.testing.assert_array_equal(x, stored.transpose(0, 2, 1))
    np.testing.assert_array_equal(y, labels)


def test_read_idx_rejects_truncated_file(tmp_path):
    p = tmp_path / "x.gz"
    with gzip.open(p, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\x00" * 9)
    with pytest.raises(ValueError, match="header"):
        data.read_idx(p)


# ------------------------------------------------------------------------------------------
# Batching
# ------------------------------------------------------------------------------------------


def test_shuffled_batches_cover_the_data_once():
    x = np.arange(103)
    seen = np.concatenate([b[0] for b in data.shuffled_batches(jax.random.PRNGKey(0), (x,), 10)])
    assert len(seen) == 100 and len(np.unique(seen)) == 100
    everything = np.concatenate([b[0] for b in data.shuffled_batches(jax.random.PRNGKey(0), (x,), 10, drop_last=False)])
    np.testing.assert_array_equal(np.sort(everything), x)
    again = np.concatenate([b[0] for b in data.shuffled_batches(jax.random.PRNGKey(0), (x,), 10)])
    np.testing.assert_array_equal(seen, again)


def test_epoch_batches_inside_jit():
    x = jnp.arange(50.0)
    y = jnp.arange(50) * 2
    bx, by = jax.jit(lambda k: data.epoch_batches(k, (x, y), 8))(jax.random.PRNGKey(3))
    assert bx.shape == (6, 8) and by.shape == (6, 8)
    np.testing.assert_array_equal(by, 2 * bx)  # pairs stay together
    assert len(np.unique(np.asarray(bx))) == 48
