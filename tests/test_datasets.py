"""Tests of dldiag.datasets: the named data sets, the generic loaders and their errors.

Fixtures are tiny IDX folders and .npz archives generated in ``tmp_path``; the real
Fashion-MNIST files are read from /usr/share/datasets/fashion-mnist/ when installed.
"""

from __future__ import annotations

import dataclasses
import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from dldiag import datasets
from dldiag.datasets import (
    DATASET_NAMES,
    FASHION_MNIST_CLASSES,
    Dataset,
    DatasetError,
    DatasetNotFoundError,
    load_dataset,
    read_idx,
)

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


def test_npz_channels_first_kept_and_flat_features(tmp_path):
    x = np.random.default_rng(2).random((4, 3, 8, 8)).astype(np.float32)
    path = tmp_path / "f.npz"
    np.savez(path, x_test=x, y_test=np.array([0, 1, 0, 1]))
    d = load_dataset(f"npz:{path}", splits=("test",))
    assert d.item_shape == (3, 8, 8)
    np.testing.assert_array_equal(d.x_test, x)

    flat = np.random.default_rng(3).random((4, 7))
    np.savez(path, x_test=flat, y_test=np.array([0, 1, 0, 1]))
    d = load_dataset(f"npz:{path}", splits=("test",))
    assert d.x_test.shape == (4, 1, 1, 7)


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
    assert DATASET_NAMES == ("digits", "fashion-mnist")
    with pytest.raises(ValueError, match=r"name must be one of 'digits', 'fashion-mnist', "
                                         r"'idx:DIR' .* or 'npz:FILE' .*; got 'mnist'"):
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
                                         r"\(N, C, H, W\); got float64 array"):
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
