"""Tests of dldiag.datasets: the named data sets, the generic loaders and their errors.

Fixtures are tiny IDX folders and .npz archives generated in ``tmp_path``; the real
Fashion-MNIST files are read from /usr/share/datasets/fashion-mnist/ when installed.
"""

from __future__ import annotations

import dataclasses
import gzip
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_breast_cancer

from dldiag import datasets
from dldiag.datasets import (
    DATASET_NAMES,
    FASHION_MNIST_CLASSES,
    Dataset,
    DatasetError,
    DatasetNotFoundError,
    as_dataset,
    load_dataset,
    read_idx,
)
from dldiag.sources import FolderSource, H5Source, TorchDatasetSource
from test_sources import PairDataset, as_rgb, digits_uint8, write_folder

SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (SYSTEM_FASHION / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST not installed in /usr/share/datasets/fashion-mnist "
    "(apt-get install dataset-fashion-mnist)",
)

_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


# --------------------------------------------------------------------------------------------
# Fixture writers
# --------------------------------------------------------------------------------------------


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encode ``arr`` as an IDX file: magic, big-endian uint32 sizes, big-endian data."""
    arr = np.asarray(arr)
    code = _CODES[arr.dtype]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, arr: np.ndarray) -> Path:
    """Write ``arr`` as IDX to ``path``, gzipped if the name ends in ``.gz``."""
    data = idx_bytes(arr)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def make_split(rng, n, shape=(28, 28), n_classes=10, *, first_label=None):
    x = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    y = (np.arange(n) % n_classes).astype(np.uint8)
    if first_label is not None:
        y[0] = first_label
    return x, y


def write_idx_folder(folder: Path, splits=("train", "test"), *, gz=True, n=(12, 6),
                     shape=(28, 28), n_classes=10, first_label=None, seed=0):
    """Write an MNIST-layout folder; return {split: (x, y)} as written."""
    rng = np.random.default_rng(seed)
    written = {}
    for split, count in zip(("train", "test"), n):
        if split not in splits:
            continue
        x, y = make_split(rng, count, shape, n_classes, first_label=first_label)
        images, labels = datasets.IDX_FILES[split]
        ext = ".gz" if gz else ""
        write_idx(folder / f"{images}{ext}", x)
        write_idx(folder / f"{labels}{ext}", y)
        written[split] = (x, y)
    return written


@pytest.fixture
def isolated_lookup(tmp_path, monkeypatch):
    """Point the fashion-mnist lookup folders into tmp_path; return (repo, env, system)."""
    repo, env, system = tmp_path / "repo", tmp_path / "env", tmp_path / "sys"
    monkeypatch.setattr(datasets, "_REPO_DATA_DIR", repo)
    monkeypatch.setattr(datasets, "_SYSTEM_DATA_DIR", system)
    monkeypatch.delenv("DLDIAG_DATA", raising=False)
    return repo / "fashion-mnist", env, system / "fashion-mnist"


# --------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------


def test_digits_shapes_dtypes_and_values():
    d = load_dataset("digits")
    assert d.name == "digits"
    assert d.x_train.shape == (1347, 1, 8, 8) and d.x_test.shape == (450, 1, 8, 8)
    assert d.x_train.dtype == d.x_test.dtype == np.float32
    assert d.y_train.dtype == d.y_test.dtype == np.int64
    assert d.item_shape == (1, 8, 8) and d.n_classes == 10
    assert d.class_names == tuple(str(i) for i in range(10))
    assert 0.0 <= d.x_test.min() and d.x_test.max() == 1.0
    # values are multiples of 1/16
    assert np.allclose(d.x_test * 16, np.round(d.x_test * 16))


def test_digits_split_is_deterministic_and_stratified():
    a = load_dataset("digits")
    b = load_dataset("digits", splits=("test",))
    assert b.x_train is None and b.y_train is None
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.fingerprint() == b.fingerprint()
    all_counts = np.bincount(np.concatenate([a.y_train, a.y_test]), minlength=10)
    test_counts = np.bincount(a.y_test, minlength=10)
    assert np.all(np.abs(test_counts - all_counts * 0.25) <= 1)


# --------------------------------------------------------------------------------------------
# fashion-mnist, real files
# --------------------------------------------------------------------------------------------


@needs_fashion
def test_read_idx_real_labels():
    y = read_idx(SYSTEM_FASHION / "t10k-labels-idx1-ubyte.gz")
    assert y.shape == (10000,) and y.dtype == np.uint8
    assert np.bincount(y).tolist() == [1000] * 10


@needs_fashion
def test_fashion_mnist_real_files(monkeypatch, tmp_path):
    # Only the system folder can answer, so this reads the Debian package's files.
    monkeypatch.setattr(datasets, "_REPO_DATA_DIR", tmp_path / "repo")
    monkeypatch.delenv("DLDIAG_DATA", raising=False)
    d = load_dataset("fashion-mnist")
    assert d.x_train.shape == (60000, 1, 28, 28) and d.x_test.shape == (10000, 1, 28, 28)
    assert d.x_test.dtype == np.float32 and d.y_test.dtype == np.int64
    assert d.class_names == FASHION_MNIST_CLASSES and d.n_classes == 10
    head = d.x_test[:300]
    assert head.min() == 0.0 and head.max() == 1.0
    assert np.bincount(d.y_test).tolist() == [1000] * 10
    assert d.sources == tuple(
        str(SYSTEM_FASHION / f"{stem}.gz")
        for split in ("train", "test")
        for stem in datasets.IDX_FILES[split]
    )
    assert len(d.fingerprint()) == 64


@needs_fashion
def test_fashion_mnist_test_split_only():
    d = load_dataset("fashion-mnist", splits=("test",))
    assert d.x_train is None and d.y_train is None
    assert d.x_test.shape == (10000, 1, 28, 28)
    assert len(d.sources) == 2 and all("t10k" in s for s in d.sources)


# --------------------------------------------------------------------------------------------
# fashion-mnist lookup order, with generated files
# --------------------------------------------------------------------------------------------


def test_lookup_order_repo_env_env_subfolder_system(isolated_lookup, monkeypatch):
    repo, env, system = isolated_lookup
    written = {
        "system": write_idx_folder(system, seed=1),
        "env/fashion-mnist": write_idx_folder(env / "fashion-mnist", seed=2),
        "env": write_idx_folder(env, seed=3),
        "repo": write_idx_folder(repo, splits=("test",), seed=4),
    }

    def load():
        return load_dataset("fashion-mnist")

    # Without DLDIAG_DATA: test from the repo, train from the system folder.
    d = load()
    np.testing.assert_array_equal(d.y_test, written["repo"]["test"][1])
    np.testing.assert_array_equal(d.x_train * 255, written["system"]["train"][0][:, None])
    assert d.sources[0].startswith(str(system)) and d.sources[2].startswith(str(repo))

    # DLDIAG_DATA itself comes before DLDIAG_DATA/fashion-mnist and before the system.
    monkeypatch.setenv("DLDIAG_DATA", str(env))
    d = load()
    np.testing.assert_array_equal(d.x_train * 255, written["env"]["train"][0][:, None])
    np.testing.assert_array_equal(d.x_test * 255, written["repo"]["test"][0][:, None])

    # A folder holding only one file of a pair is passed over.
    (env / "train-labels-idx1-ubyte.gz").unlink()
    d = load()
    np.testing.assert_array_equal(
        d.x_train * 255, written["env/fashion-mnist"]["train"][0][:, None]
    )
    assert d.sources[0] == str(env / "fashion-mnist" / "train-images-idx3-ubyte.gz")


def test_lookup_accepts_ungzipped_names(isolated_lookup, monkeypatch):
    _, env, _ = isolated_lookup
    written = write_idx_folder(env, gz=False)
    monkeypatch.setenv("DLDIAG_DATA", str(env))
    d = load_dataset("fashion-mnist")
    np.testing.assert_array_equal(d.y_train, written["train"][1])
    assert d.sources[-1] == str(env / "t10k-labels-idx1-ubyte")


def test_fashion_mnist_not_found_lists_every_place(isolated_lookup, monkeypatch):
    repo, env, system = isolated_lookup
    env.mkdir()
    write_idx_folder(system, splits=("test",))  # only the test split is anywhere
    monkeypatch.setenv("DLDIAG_DATA", str(env))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist")
    msg = str(info.value)
    assert "train split" in msg and "train-images-idx3-ubyte[.gz]" in msg
    for folder in (repo, env, env / "fashion-mnist", system):
        assert str(folder) in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "DLDIAG_DATA" in msg
    assert "idx:DIR" in msg
    # The test split alone is found.
    assert load_dataset("fashion-mnist", splits=("test",)).x_test.shape == (6, 1, 28, 28)


def test_fashion_mnist_not_found_without_env(isolated_lookup):
    repo, _, system = isolated_lookup
    with pytest.raises(DatasetNotFoundError, match=r"\$DLDIAG_DATA is not set") as info:
        load_dataset("fashion-mnist", splits=("test",))
    msg = str(info.value)
    assert f"{repo} (repository): no such folder" in msg
    assert str(system) in msg and "apt-get install dataset-fashion-mnist" in msg


def test_fashion_mnist_label_out_of_range(isolated_lookup):
    repo, _, _ = isolated_lookup
    write_idx_folder(repo, splits=("test",), first_label=10)
    path = re.escape(str(repo / "t10k-labels-idx1-ubyte.gz"))
    with pytest.raises(DatasetError, match=path + r": label 10 at index 0 is out of range"):
        load_dataset("fashion-mnist", splits=("test",))


def test_fashion_mnist_wrong_item_shape(isolated_lookup):
    repo, _, _ = isolated_lookup
    write_idx_folder(repo, splits=("test",), shape=(8, 8))
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte\.gz: Fashion-MNIST items "
                                           r"must be 28×28"):
        load_dataset("fashion-mnist", splits=("test",))


# --------------------------------------------------------------------------------------------
# idx:DIR
# --------------------------------------------------------------------------------------------


def test_idx_round_trip(tmp_path):
    written = write_idx_folder(tmp_path, shape=(5, 7), n_classes=3)
    d = load_dataset(f"idx:{tmp_path}")
    assert d.name == f"idx:{tmp_path}"
    assert d.x_train.shape == (12, 1, 5, 7) and d.x_test.shape == (6, 1, 5, 7)
    assert d.x_test.dtype == np.float32 and d.y_test.dtype == np.int64
    np.testing.assert_allclose(d.x_test[:, 0], written["test"][0] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(d.y_train, written["train"][1])
    assert d.class_names == ("0", "1", "2")
    assert len(d.sources) == 4


def test_idx_class_names_file_and_ungzipped(tmp_path):
    write_idx_folder(tmp_path, gz=False, shape=(4, 4), n_classes=3)
    (tmp_path / "class_names.txt").write_text("cat\ndog\nbird\nfish\n\n", encoding="utf-8")
    d = load_dataset(f"idx:{tmp_path}", splits=("test",))
    assert d.class_names == ("cat", "dog", "bird", "fish")
    assert d.x_train is None
    assert d.sources[-1] == str(tmp_path / "class_names.txt")


def test_idx_inferred_classes_do_not_depend_on_splits(tmp_path):
    write_idx_folder(tmp_path, shape=(4, 4), n=(12, 3), n_classes=5)  # test labels 0..2
    both = load_dataset(f"idx:{tmp_path}")
    test_only = load_dataset(f"idx:{tmp_path}", splits=("test",))
    assert both.class_names == test_only.class_names == ("0", "1", "2", "3", "4")
    assert both.fingerprint() == test_only.fingerprint()


def test_idx_label_out_of_range_with_class_names(tmp_path):
    write_idx_folder(tmp_path, shape=(4, 4), n_classes=3)
    (tmp_path / "class_names.txt").write_text("a\nb\n", encoding="utf-8")
    names = re.escape(str(tmp_path / "class_names.txt"))
    with pytest.raises(DatasetError, match=r"label 2 at index 2 is out of range: " + names
                       + r" names 2 classes"):
        load_dataset(f"idx:{tmp_path}")


def test_idx_negative_labels(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((3, 4, 4), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, -1, 1], np.int8))
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz: labels must be >= 0; "
                                           r"found 1 negative, the first at index 1"):
        load_dataset(f"idx:{tmp_path}", splits=("test",))


def test_idx_count_mismatch(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 4, 4), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(DatasetError, match=r"count mismatch: .*t10k-images-idx3-ubyte\.gz "
                                           r"holds 5 items but .*labels.* holds 4 labels"):
        load_dataset(f"idx:{tmp_path}", splits=("test",))


def test_idx_wrong_dims(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 4, 4), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros((5, 2), np.uint8))
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz: labels must be a 1-d "
                                           r"array; got shape \(5, 2\)"):
        load_dataset(f"idx:{tmp_path}", splits=("test",))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte\.gz: items must have 2 to "
                                           r"4 dimensions.*got shape \(5,\)"):
        load_dataset(f"idx:{tmp_path}", splits=("test",))


def test_idx_item_shapes_differ_between_splits(tmp_path):
    write_idx_folder(tmp_path, splits=("test",), shape=(4, 4))
    write_idx_folder(tmp_path, splits=("train",), shape=(5, 5))
    with pytest.raises(DatasetError, match=r"item shapes differ: .*train-images.* \(1, 5, 5\) "
                                           r"but .*t10k-images.* \(1, 4, 4\)"):
        load_dataset(f"idx:{tmp_path}")


def test_idx_missing_folder_and_missing_files(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DatasetNotFoundError, match=re.escape(f"folder {missing} does not exist")):
        load_dataset(f"idx:{missing}")
    write_idx_folder(tmp_path, splits=("test",), shape=(4, 4))
    with pytest.raises(DatasetNotFoundError, match=r"the train split needs "
                                                   r"train-images-idx3-ubyte\[\.gz\] and "
                                                   r"train-labels-idx1-ubyte\[\.gz\] in "
                       + re.escape(str(tmp_path))):
        load_dataset(f"idx:{tmp_path}")


# --------------------------------------------------------------------------------------------
# read_idx
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_read_idx_round_trip(tmp_path, dtype, name):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    out = read_idx(write_idx(tmp_path / name, arr))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.flags.writeable
    np.testing.assert_array_equal(out, arr)


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(DatasetError, match=re.escape(str(path)) + r": bad magic number "
                                                                  r"0x12340801"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x07\x01" + b"\x00" * 8)  # unknown type code
    with pytest.raises(DatasetError, match=r"bad magic number 0x00000701"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DatasetError, match=r"not an IDX file: 2 bytes"):
        read_idx(path)


def test_read_idx_truncated_raw(tmp_path):
    path = tmp_path / "t.idx"
    path.write_bytes(idx_bytes(np.zeros((10, 4, 4), np.uint8))[:-7])
    with pytest.raises(DatasetError, match=re.escape(str(path)) + r": truncated: the header says "
                                           r"10×4×4 items of uint8 = 160 bytes of data, the "
                                           r"file holds only 153"):
        read_idx(path)
    path.write_bytes(idx_bytes(np.zeros((10, 4, 4), np.uint8))[:9])  # header cut short
    with pytest.raises(DatasetError, match=r"bad IDX header: 3 dimensions need a 16-byte header"):
        read_idx(path)


def test_read_idx_truncated_gzip(tmp_path):
    path = tmp_path / "t.idx.gz"
    rng = np.random.default_rng(0)
    write_idx(path, rng.integers(0, 256, (50, 8, 8), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DatasetError, match=re.escape(str(path)) + r": truncated gzip stream"):
        read_idx(path)


def test_read_idx_gzip_of_truncated_data(tmp_path):
    # A complete gzip stream whose content is short: caught by the header check.
    path = tmp_path / "t.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(100, np.uint8))[:50]))
    with pytest.raises(DatasetError, match=r"truncated: the header says 100 items of uint8 = "
                                           r"100 bytes of data, the file holds only 42"):
        read_idx(path)


def test_read_idx_damaged_gzip(tmp_path):
    path = tmp_path / "d.idx.gz"
    good = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    path.write_bytes(good[:12] + b"\xff" * 20 + good[32:])
    with pytest.raises(DatasetError, match=re.escape(str(path)) + r": damaged gzip stream"):
        read_idx(path)


def test_read_idx_trailing_bytes(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"\x00\x00")
    with pytest.raises(DatasetError, match=r"2 unexpected bytes after the data"):
        read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent.idx")


# --------------------------------------------------------------------------------------------
# npz:FILE
# --------------------------------------------------------------------------------------------


def test_npz_round_trip_uint8_hw(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (10, 6, 6), dtype=np.uint8),
        "y_train": np.arange(10) % 3,
        "x_test": rng.integers(0, 256, (4, 6, 6), dtype=np.uint8),
        "y_test": np.array([0, 1, 2, 3]),
        "class_names": np.array(["a", "b", "c", "d"]),
    }
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    d = load_dataset(f"npz:{path}")
    assert d.x_train.shape == (10, 1, 6, 6) and d.x_test.dtype == np.float32
    np.testing.assert_allclose(d.x_test[:, 0], arrays["x_test"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(d.y_test, arrays["y_test"])
    assert d.y_test.dtype == np.int64
    assert d.class_names == ("a", "b", "c", "d")
    assert d.sources == (str(path),)


def test_npz_channels_last_is_transposed(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((5, 8, 9, 3)).astype(np.float64)
    path = tmp_path / "c.npz"
    np.savez(path, x_train=x, y_train=np.zeros(5, int), x_test=x[:2], y_test=np.ones(2, int))
    d = load_dataset(f"npz:{path}")
    assert d.item_shape == (3, 8, 9) and d.x_train.dtype == np.float32
    np.testing.assert_allclose(d.x_test, x[:2].transpose(0, 3, 1, 2).astype(np.float32))
    assert d.class_names == ("0", "1")


def test_npz_channels_first_kept_and_flat_features_stay_vectors(tmp_path):
    x = np.random.default_rng(2).random((4, 3, 8, 8)).astype(np.float32)
    path = tmp_path / "f.npz"
    np.savez(path, x_test=x, y_test=np.array([0, 1, 0, 1]))
    d = load_dataset(f"npz:{path}", splits=("test",))
    assert d.item_shape == (3, 8, 8)
    np.testing.assert_array_equal(d.x_test, x)

    flat = np.random.default_rng(3).random((4, 7))
    np.savez(path, x_test=flat, y_test=np.array([0, 1, 0, 1]))
    d = load_dataset(f"npz:{path}", splits=("test",))
    assert d.x_test.shape == (4, 7) and d.item_shape == (7,) and d.item_kind == "vector"
    np.testing.assert_array_equal(d.x_test, flat.astype(np.float32))


def test_npz_nan(tmp_path):
    x = np.zeros((3, 4, 4))
    x[1, 2, 3] = np.nan
    path = tmp_path / "n.npz"
    np.savez(path, x_test=x, y_test=np.zeros(3, int))
    with pytest.raises(DatasetError, match=re.escape(f"{path}[x_test]") + r": items must be "
                                           r"finite; found 1 NaN/inf values.*index \(1, 0, 2, 3\)"):
        load_dataset(f"npz:{path}", splits=("test",))


def test_npz_missing_array(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, x_test=np.zeros((3, 4, 4)), y_test=np.zeros(3, int))
    with pytest.raises(DatasetError, match=re.escape(str(path)) + r": missing array 'x_train' "
                                           r"\(for the train split\); the archive holds "
                                           r"\['x_test', 'y_test'\]"):
        load_dataset(f"npz:{path}")
    np.savez(path, x_test=np.zeros((3, 4, 4)))
    with pytest.raises(DatasetError, match=r"missing array 'y_test' \(the evaluation split\)"):
        load_dataset(f"npz:{path}", splits=("test",))


def test_npz_label_problems(tmp_path):
    path = tmp_path / "l.npz"
    x = np.zeros((3, 4, 4), np.uint8)
    np.savez(path, x_test=x, y_test=np.array([0, 1, 2]), class_names=np.array(["a", "b"]))
    with pytest.raises(DatasetError, match=re.escape(f"{path}[y_test]") + r": label 2 at index 2 "
                                           r"is out of range"):
        load_dataset(f"npz:{path}", splits=("test",))
    np.savez(path, x_test=x, y_test=np.array([0, -3, 1]))
    with pytest.raises(DatasetError, match=r"labels must be >= 0; found 1 negative"):
        load_dataset(f"npz:{path}", splits=("test",))
    np.savez(path, x_test=x, y_test=np.array([0.0, 0.5, 1.0]))
    with pytest.raises(DatasetError, match=r"labels must be integers.*float64"):
        load_dataset(f"npz:{path}", splits=("test",))
    np.savez(path, x_test=x, y_test=np.array([0.0, 2.0, 1.0]))  # whole floats are fine
    assert load_dataset(f"npz:{path}", splits=("test",)).y_test.tolist() == [0, 2, 1]


def test_npz_count_mismatch_and_wrong_dims(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, x_test=np.zeros((3, 4, 4)), y_test=np.zeros(2, int))
    with pytest.raises(DatasetError, match=r"count mismatch: .*\[x_test\] holds 3 items but "
                                           r".*\[y_test\] holds 2 labels"):
        load_dataset(f"npz:{path}", splits=("test",))
    np.savez(path, x_test=np.zeros((3, 2, 2, 2, 2)), y_test=np.zeros(3, int))
    with pytest.raises(DatasetError, match=r"\[x_test\]: items must have 2 to 4 dimensions.*"
                                           r"got shape \(3, 2, 2, 2, 2\)"):
        load_dataset(f"npz:{path}", splits=("test",))


def test_npz_not_an_archive_and_missing(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"PK\x03\x04 this is not really a zip file")
    with pytest.raises(DatasetError, match=re.escape(str(path)) + r": not a readable \.npz"):
        load_dataset(f"npz:{path}")
    with pytest.raises(DatasetNotFoundError, match=r"file .*absent\.npz does not exist"):
        load_dataset(f"npz:{tmp_path / 'absent.npz'}")


def test_empty_split_is_refused_naming_the_split(tmp_path):
    # Zero-length arrays are well-formed, so nothing else catches them before the full pass.
    x, y = np.zeros((5, 4, 4), np.uint8), np.arange(5) % 2
    path = tmp_path / "e.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:0], y_test=y[:0])
    message = re.escape(f"dataset 'npz:{path}': the test split holds no items (read from {path})")
    with pytest.raises(DatasetError, match=message):
        load_dataset(f"npz:{path}", splits=("test",))
    np.savez(path, x_train=x[:0], y_train=y[:0], x_test=x, y_test=y)
    assert len(load_dataset(f"npz:{path}", splits=("test",)).x_test) == 5  # train not read
    with pytest.raises(DatasetError, match=r"the train split holds no items"):
        load_dataset(f"npz:{path}")
    write_idx_folder(tmp_path / "idx", splits=("test",), n=(0, 0), shape=(4, 4))
    with pytest.raises(DatasetError, match=r"dataset 'idx:.*': the test split holds no items"):
        load_dataset(f"idx:{tmp_path / 'idx'}", splits=("test",))


# --------------------------------------------------------------------------------------------
# names and splits
# --------------------------------------------------------------------------------------------


def test_unknown_name():
    assert DATASET_NAMES == ("digits", "fashion-mnist", "galaxies")
    with pytest.raises(ValueError, match=r"name must be one of 'digits', 'fashion-mnist', 'galaxies', "
                                         r"'idx:DIR' .*'npz:FILE' .* or 'chunks:DIR' .*; got 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match=r"name 'idx:' lacks a path after 'idx:'"):
        load_dataset("idx:")


@pytest.mark.parametrize(
    "splits, message",
    [
        (("train", "val"), r"splits must be a non-empty subset of \('train', 'test'\); got "
                           r"\('train', 'val'\) \('val' is not a split\)"),
        (("train",), r"splits must include 'test'.*got \('train',\)"),
        ((), r"splits must include 'test'.*got \(\)"),
        ("test", r"splits must be a non-empty tuple of names from \('train', 'test'\).*"
                 r"got 'test'"),
    ],
)
def test_bad_splits(splits, message):
    with pytest.raises(ValueError, match=message):
        load_dataset("digits", splits=splits)


# --------------------------------------------------------------------------------------------
# Dataset and fingerprint
# --------------------------------------------------------------------------------------------


def small_dataset(**changes) -> Dataset:
    fields = dict(
        name="tiny",
        x_train=None,
        y_train=None,
        x_test=np.linspace(0, 1, 2 * 4, dtype=np.float32).reshape(2, 1, 2, 2),
        y_test=np.array([0, 1], dtype=np.int64),
        class_names=("a", "b"),
    )
    fields.update(changes)
    return Dataset(**fields)


def test_fingerprint_stable_and_sensitive():
    d = small_dataset()
    fp = d.fingerprint()
    assert fp == d.fingerprint() == small_dataset().fingerprint()
    assert re.fullmatch(r"[0-9a-f]{64}", fp)
    assert small_dataset(y_test=np.array([1, 1], dtype=np.int64)).fingerprint() != fp
    x = d.x_test.copy()
    x[0, 0, 0, 0] += 0.5
    assert small_dataset(x_test=x).fingerprint() != fp
    assert small_dataset(class_names=("a", "c")).fingerprint() != fp
    assert small_dataset(name="other").fingerprint() != fp
    # The train split is not part of it.
    with_train = small_dataset(x_train=d.x_test, y_train=d.y_test)
    assert with_train.fingerprint() == fp


def test_fingerprint_changes_when_one_label_changes():
    d = load_dataset("digits", splits=("test",))
    y = d.y_test.copy()
    y[17] = (y[17] + 1) % 10
    assert dataclasses.replace(d, y_test=y).fingerprint() != d.fingerprint()


def test_dataset_validates_its_fields():
    assert repr(small_dataset()) == (
        "Dataset(name='tiny', item_shape=(1, 2, 2), n_classes=2, n_train=None, n_test=2)"
    )
    with pytest.raises(ValueError, match=r"x_test must be a float32 array of shape "
                                         r"\(N, \*item_shape\).* or an ItemSource; got "
                                         r"float64 array"):
        small_dataset(x_test=np.zeros((2, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"y_test must be an int64 array of shape \(2,\)"):
        small_dataset(y_test=np.array([0, 1, 1], dtype=np.int64))
    with pytest.raises(ValueError, match=r"y_test must hold labels in \[0, 2\)"):
        small_dataset(y_test=np.array([0, 2], dtype=np.int64))
    with pytest.raises(ValueError, match=r"x_train and y_train must both be arrays or both be "
                                         r"None"):
        small_dataset(x_train=np.zeros((2, 1, 2, 2), np.float32))
    with pytest.raises(dataclasses.FrozenInstanceError):
        small_dataset().name = "x"


def test_dataset_holds_a_source_and_checks_it(tmp_path):
    x, y = _digit_arrays(12)
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["x"] = x
    src = H5Source(path, "x")
    d = small_dataset(x_test=src, y_test=y, class_names=tuple("0123456789"))
    assert d.item_shape == (1, 8, 8) and d.item_kind == "image" and d.x_test is src
    assert d.fingerprint() == small_dataset(x_test=x, y_test=y,
                                            class_names=tuple("0123456789")).fingerprint()
    with pytest.raises(ValueError, match=r"y_test must be an int64 array of shape \(12,\) to "
                                         r"match x_test"):
        small_dataset(x_test=src, y_test=y[:5], class_names=tuple("0123456789"))
    with pytest.raises(ValueError, match=r"x_train items have shape \(4,\) but x_test items "
                                         r"have shape \(1, 8, 8\)"):
        small_dataset(x_test=src, y_test=y, class_names=tuple("0123456789"),
                      x_train=np.zeros((2, 4), np.float32), y_train=np.zeros(2, np.int64))
    assert small_dataset(x_test=np.zeros((2, 5), np.float32)).item_kind == "vector"
    assert small_dataset(x_test=np.zeros((2, 2, 4, 4), np.float32)).item_kind == "other"


# --------------------------------------------------------------------------------------------
# folder: and h5: specs
# --------------------------------------------------------------------------------------------


def _digit_arrays(n: int, seed: int = 0):
    """``n`` digits as float32 (n, 1, 8, 8) in [0, 1] (multiples of 1/255) and int64 labels."""
    images, labels = digits_uint8(n, seed)
    return images[:, None].astype(np.float32) / np.float32(255.0), labels


def test_folder_spec_gives_the_items_it_was_written_from(tmp_path):
    x, y = write_folder(tmp_path / "imgs", *digits_uint8(40))
    spec = f"folder:{tmp_path / 'imgs'}"
    d = load_dataset(spec, splits=("test",))
    assert isinstance(d.x_test, FolderSource) and d.x_train is None and d.name == spec
    np.testing.assert_array_equal(d.x_test[:], x)
    np.testing.assert_array_equal(d.y_test, y)
    assert d.class_names == tuple(f"digit-{k}" for k in range(10))
    assert d.item_shape == (1, 8, 8) and d.sources == (str(tmp_path / "imgs"),)
    # Same items under the same name: the same cache key, streamed or in memory.
    arrays = as_dataset((x, y), class_names=d.class_names, name=spec)
    assert arrays.fingerprint() == d.fingerprint()
    assert as_dataset(spec).fingerprint() == d.fingerprint()
    with pytest.raises(ValueError, match=r"dataset 'folder:.*' is an image folder, which holds "
                                         r"only the evaluation split; splits must be "
                                         r"\('test',\); got \('train', 'test'\)"):
        load_dataset(spec)


def test_folder_spec_rgb(tmp_path):
    images, labels = digits_uint8(30, seed=3)
    x, y = write_folder(tmp_path, as_rgb(images), labels)
    d = as_dataset(f"folder:{tmp_path}")
    assert d.item_shape == (3, 8, 8) and d.item_kind == "image"
    np.testing.assert_array_equal(d.x_test[np.arange(30)], x)
    np.testing.assert_array_equal(d.y_test, y)


def test_folder_spec_unreadable_files_and_mixed_sizes(tmp_path):
    write_folder(tmp_path, *digits_uint8(10))
    bad = sorted(tmp_path.glob("digit-*"))[1] / "zz-bad.png"
    bad.write_bytes(b"not a png")
    spec = f"folder:{tmp_path}"
    with pytest.raises(DatasetError, match=r"1 of 11 image files cannot be read: "
                                           r"digit-\d/zz-bad\.png \(.*\); fix or remove them, "
                                           r"or pass skip_unreadable=True"):
        as_dataset(spec)
    with pytest.warns(UserWarning, match=r"left out 1 of 11 image files"):
        assert len(as_dataset(spec, skip_unreadable=True).x_test) == 10
    bad.unlink()
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(bad.parent / "zz-tall.png")
    with pytest.raises(DatasetError, match=r"images differ in size: digit-\d/\d+\.png is 8×8 "
                                           r"\(width×height\) but digit-\d/zz-tall\.png is 8×9"):
        load_dataset(spec, splits=("test",))


def _write_h5(path, **arrays):
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            if key == "class_names_vlen":
                f.create_dataset("class_names", data=value, dtype=h5py.string_dtype())
            else:
                f[key] = value


def test_h5_spec_default_keys_both_splits_and_class_names(tmp_path):
    images, labels = digits_uint8(60, seed=4)
    path = tmp_path / "digits.h5"
    names = [f"digit {k}" for k in range(10)]
    _write_h5(path, x_train=images[:40], y_train=labels[:40], x_test=images[40:],
              y_test=labels[40:], class_names_vlen=names)
    d = load_dataset(f"h5:{path}")
    assert isinstance(d.x_test, H5Source) and isinstance(d.x_train, H5Source)
    assert d.class_names == tuple(names) and d.item_shape == (1, 8, 8)
    expected = images[:, None].astype(np.float32) / np.float32(255.0)
    np.testing.assert_array_equal(d.x_train[:], expected[:40])
    np.testing.assert_array_equal(d.x_test[[19, 0, 19]], expected[40:][[19, 0, 19]])
    np.testing.assert_array_equal(d.y_test, labels[40:])
    assert d.y_test.dtype == np.int64


def test_h5_spec_named_keys_colons_and_feature_vectors(tmp_path):
    bunch = load_breast_cancer()
    path = tmp_path / "run:3 cancer.h5"
    _write_h5(path, **{"eval/features": bunch.data, "eval/labels": bunch.target,
                       "a&b": bunch.data[:, :4]})
    spec = f"h5:{path}?x=eval/features&y=eval/labels"
    d = as_dataset(spec, class_names=list(bunch.target_names))
    assert d.name == spec and d.item_shape == (30,) and d.item_kind == "vector"
    assert len(d.x_test) == 569 and d.class_names == ("malignant", "benign")
    np.testing.assert_array_equal(d.x_test[:], bunch.data.astype(np.float32))
    np.testing.assert_array_equal(d.y_test, bunch.target)
    # x_test/y_test are aliases of x/y, and %-escapes reach names holding '&'
    d = load_dataset(f"h5:{path}?x_test=a%26b&y_test=eval/labels", splits=("test",))
    assert d.item_shape == (4,) and d.class_names == ("0", "1")
    # A file whose name holds '?' is taken whole when it exists.
    odd = tmp_path / "what?.h5"
    _write_h5(odd, x_test=bunch.data[:5], y_test=bunch.target[:5])
    assert len(load_dataset(f"h5:{odd}", splits=("test",)).x_test) == 5


def test_h5_spec_errors(tmp_path):
    path = tmp_path / "e.h5"
    _write_h5(path, images=np.zeros((4, 6)), labels=np.array([0, 1, 2, 1]))
    with pytest.raises(DatasetError, match=re.escape(str(path)) + r": no dataset 'x_test' "
                                           r"\(the evaluation split\); the file holds images "
                                           r"\(4, 6\) float64, labels \(4,\) int64$"):
        load_dataset(f"h5:{path}", splits=("test",))
    with pytest.raises(DatasetError, match=r"no dataset 'x_train' \(for the train split\)"):
        load_dataset(f"h5:{path}?x=images&y=labels")
    with pytest.raises(DatasetError, match=r"no dataset 'names' \(the class names\)"):
        load_dataset(f"h5:{path}?x=images&y=labels&class_names=names", splits=("test",))
    with pytest.raises(ValueError, match=r"'z=1' must be key=NAME with key one of x, y, x_train, "
                                         r"y_train, class_names"):
        load_dataset(f"h5:{path}?x=images&z=1", splits=("test",))
    with pytest.raises(ValueError, match=r"key 'x' is given twice"):
        load_dataset(f"h5:{path}?x=images&x_test=images", splits=("test",))
    with pytest.raises(ValueError, match=r"name 'h5:\?x=a' lacks a path after 'h5:'"):
        load_dataset("h5:?x=a", splits=("test",))
    _write_h5(path, images=np.zeros((4, 6)), labels=np.array([0, 1, 2]))
    with pytest.raises(DatasetError, match=r"count mismatch: .*\[images\] holds 4 items but "
                                           r".*\[labels\] holds 3 labels"):
        load_dataset(f"h5:{path}?x=images&y=labels", splits=("test",))
    _write_h5(path, x_test=np.zeros((3, 6)), y_test=np.array([0, 1, 2]),
              class_names=np.arange(3))
    with pytest.raises(DatasetError, match=r"\[class_names\]: class names must be a 1-d dataset "
                                           r"of strings; got dtype int64"):
        load_dataset(f"h5:{path}", splits=("test",))
    _write_h5(path, x_test=np.zeros((3, 6)), y_test=np.array([0, 1, 2]),
              class_names=np.array([b"a", b"b"]))
    with pytest.raises(DatasetError, match=r"\[y_test\]: label 2 at index 2 is out of range: "
                                           r".*\[class_names\] names 2 classes, so labels must "
                                           r"be in \[0, 2\)"):
        load_dataset(f"h5:{path}", splits=("test",))


# --------------------------------------------------------------------------------------------
# npz: images and feature vectors give the arrays they were written from
# --------------------------------------------------------------------------------------------


def test_npz_feature_vectors_breast_cancer(tmp_path):
    bunch = load_breast_cancer()
    path = tmp_path / "cancer.npz"
    np.savez(path, x_test=bunch.data, y_test=bunch.target, class_names=bunch.target_names)
    d = as_dataset(f"npz:{path}")
    assert d.x_test.shape == (569, 30) and d.item_kind == "vector"
    assert d.class_names == ("malignant", "benign")
    arrays = as_dataset((bunch.data, bunch.target), class_names=bunch.target_names.tolist())
    np.testing.assert_array_equal(d.x_test, arrays.x_test)
    np.testing.assert_array_equal(d.y_test, arrays.y_test)


def test_npz_images_equal_the_arrays(tmp_path):
    images, labels = digits_uint8(50, seed=5)
    path = tmp_path / "digits.npz"
    np.savez(path, x_test=images, y_test=labels)
    d = as_dataset(f"npz:{path}")
    x, _ = _digit_arrays(50, seed=5)
    np.testing.assert_array_equal(d.x_test, x)
    np.testing.assert_array_equal(d.y_test, labels)


# --------------------------------------------------------------------------------------------
# as_dataset
# --------------------------------------------------------------------------------------------


def test_as_dataset_numpy_arrays_no_copy_and_a_stable_name():
    digits = load_dataset("digits", splits=("test",))
    d = as_dataset((digits.x_test, digits.y_test))
    assert np.shares_memory(d.x_test, digits.x_test)
    assert re.fullmatch(r"arrays:[0-9a-f]{12}", d.name) and d.x_train is None
    assert d.class_names == tuple(str(k) for k in range(10))
    again = as_dataset((digits.x_test.copy(), digits.y_test.tolist()))
    assert again.name == d.name and again.fingerprint() == d.fingerprint()
    # The seeded digest is the one a fresh Dataset computes.
    fresh = Dataset(d.name, None, None, d.x_test, d.y_test, d.class_names)
    assert fresh.fingerprint() == d.fingerprint()
    changed = digits.x_test.copy()
    changed[3, 0, 2, 2] += 0.25
    assert as_dataset((changed, digits.y_test)).name != d.name
    assert as_dataset(digits) is digits
    renamed = as_dataset(digits, name="mine", class_names=list("abcdefghij"))
    assert renamed.name == "mine" and renamed.class_names[2] == "c"
    assert renamed.x_test is digits.x_test


def test_as_dataset_torch_tensors_share_memory_and_the_key():
    x, y = _digit_arrays(30)
    d = as_dataset((torch.from_numpy(x), torch.from_numpy(y)))
    assert np.shares_memory(d.x_test, x) and d.y_test.dtype == np.int64
    assert d.fingerprint() == as_dataset((x, y)).fingerprint()
    # Other dtypes are cast with their values unchanged (no /255 for Python data).
    d = as_dataset((torch.from_numpy(x * 255).to(torch.uint8), torch.from_numpy(y).int()))
    np.testing.assert_array_equal(d.x_test, np.round(x * 255))
    assert d.x_test.dtype == np.float32
    d = as_dataset(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)))
    assert d.name.startswith("TensorDataset:") and np.shares_memory(d.x_test, x)


def test_as_dataset_any_item_shape():
    bunch = load_breast_cancer()
    d = as_dataset((torch.tensor(bunch.data), torch.tensor(bunch.target)))
    assert d.item_shape == (30,) and len(d.x_test) == 569
    np.testing.assert_array_equal(d.x_test, bunch.data.astype(np.float32))
    d = as_dataset((np.zeros((4, 2, 3, 5), np.float32), np.arange(4)))
    assert d.item_shape == (2, 3, 5) and d.item_kind == "other"


def test_as_dataset_torch_dataset_and_dataloader():
    x, y = _digit_arrays(45, seed=6)
    ds = PairDataset(x, y)
    ds.classes = [f"digit {k}" for k in range(10)]
    d = as_dataset(ds)
    assert isinstance(d.x_test, TorchDatasetSource)
    assert re.fullmatch(r"PairDataset:[0-9a-f]{12}", d.name)
    assert d.class_names == tuple(ds.classes)
    np.testing.assert_array_equal(d.x_test[:], x)
    np.testing.assert_array_equal(d.y_test, y)
    # Through a shuffling DataLoader: the Dataset's own order, and the same name and key.
    loader = torch.utils.data.DataLoader(PairDataset(x, y), batch_size=7, shuffle=True)
    via_loader = as_dataset(loader, class_names=ds.classes)
    assert via_loader.name == d.name and via_loader.fingerprint() == d.fingerprint()
    np.testing.assert_array_equal(via_loader.x_test[[44, 3]], x[[44, 3]])


def test_as_dataset_spec_string_and_class_names():
    d = as_dataset("digits")
    assert d.x_train is None and d.name == "digits" and len(d.x_test) == 450
    # Numbered names may be replaced by as many or more names, not fewer than the labels need.
    more = as_dataset("digits", class_names=[f"c{k}" for k in range(12)])
    assert more.n_classes == 12
    with pytest.raises(DatasetError, match=r"dataset 'digits' y_test: label 9 at index \d+ is "
                                           r"out of range: class_names names 9 classes, so "
                                           r"labels must be in \[0, 9\)"):
        as_dataset("digits", class_names=[f"c{k}" for k in range(9)])


class _Stream(torch.utils.data.IterableDataset):
    def __iter__(self):
        yield torch.zeros(3), 0


class _Unlabelled(torch.utils.data.Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        return torch.zeros(4)


_X5 = np.zeros((5, 3), np.float32)


@pytest.mark.parametrize(
    "data, kwargs, error, message",
    [
        (_X5, {}, DatasetError, r"labels are missing: data is a single ndarray of shape "
                                r"\(5, 3\); give an \(x, y\) pair"),
        (torch.zeros(5, 3), {}, DatasetError, r"labels are missing: data is a single torch "
                                              r"tensor of shape \(5, 3\)"),
        ((_X5, None), {}, DatasetError, r"labels are missing: y is None"),
        ([_X5], {}, DatasetError, r"data must be an \(x, y\) pair; got a list of 1 elements"),
        (_Unlabelled(), {}, DatasetError, r"torch dataset _Unlabelled: item 0 is a Tensor, not "
                                          r"an \(x, y\) pair; labels are missing"),
        ((_X5, np.array([0, 0.5, 1, 1, 0])), {}, DatasetError,
         r"^y: labels must be integers \(or floats with whole values\); got dtype float64 "
         r"with non-integral or NaN values$"),
        ((_X5, np.array(list("abcab"))), {}, DatasetError,
         r"y: labels must be integers .*got dtype <U1"),
        ((_X5, np.array([0, 1, 0, 2, 1])), {"class_names": ["a", "b"]}, DatasetError,
         r"^y: label 2 at index 3 is out of range: class_names names 2 classes, so labels "
         r"must be in \[0, 2\)$"),
        ((_X5, np.array([0, 1, -1, 0, 1])), {}, DatasetError,
         r"y: labels must be >= 0; found 1 negative, the first at index 2 \(-1\)"),
        ((_X5, np.zeros(4, int)), {}, DatasetError,
         r"^count mismatch: x holds 5 items but y holds 4 labels; give one label per item$"),
        ((_X5[:0], np.zeros(0, int)), {}, DatasetError,
         r"x and y hold no items; the evaluation split needs at least one"),
        ((np.zeros(5), np.zeros(5, int)), {}, DatasetError,
         r"x must have shape \(N, \*item_shape\), at least 2 dimensions; got shape \(5,\)"),
        ((np.full((5, 3), np.nan), np.zeros(5, int)), {}, DatasetError,
         r"x: items must be finite; found 15 NaN/inf values"),
        ((_X5, np.zeros((5, 2))), {}, DatasetError,
         r"y: labels must be a 1-d array; got shape \(5, 2\) \(for one-hot labels give "
         r"y\.argmax\(1\)\)"),
        ((_X5, np.zeros(5, int)), {"class_names": "a,b"}, ValueError,
         r"class_names must be a sequence of str, one per class, e\.g\. \['cat', 'dog'\], or "
         r"None; got 'a,b'"),
        ((_X5, np.zeros(5, int)), {"class_names": ["a", "a"]}, DatasetError,
         r"class_names: class names must be unique; repeated: \['a'\]"),
        ((_X5, np.zeros(5, int)), {"name": ""}, ValueError,
         r"name must be a non-empty str or None; got ''"),
        (_Stream(), {}, DatasetError, r"_Stream is an IterableDataset, which cannot be "
                                      r"indexed; .*pass a map-style Dataset"),
        (torch.utils.data.DataLoader(_Stream()), {}, DatasetError,
         r"_Stream is an IterableDataset, which cannot be indexed"),
        ({"x": _X5}, {}, TypeError, r"data must be an \(x, y\) pair of numpy arrays or torch "
                                    r"tensors, .*; got dict"),
    ],
)
def test_as_dataset_bad_input_gets_one_line(data, kwargs, error, message):
    with pytest.raises(error, match=message) as err:
        as_dataset(data, **kwargs)
    assert "\n" not in str(err.value)


def test_as_dataset_class_names_of_the_wrong_length_for_a_folder(tmp_path):
    images, _ = digits_uint8(6)
    write_folder(tmp_path, images, np.arange(6), names=[f"k{i}" for i in range(6)])
    with pytest.raises(DatasetError, match=r"class_names gives 2 names but dataset "
                                           r"'folder:.*' names 6 classes \(k0, k1, k2, k3, "
                                           r"k4, …\); give one name per class"):
        as_dataset(f"folder:{tmp_path}", class_names=["a", "b"])
    ok = as_dataset(f"folder:{tmp_path}", class_names=[f"n{i}" for i in range(6)])
    assert ok.class_names[0] == "n0" and ok.y_test.tolist() == list(range(6))
